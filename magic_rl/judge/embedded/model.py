"""The embedded judge's network (mean-pooled embedding bags -> prompt and response heads) and
`EmbeddedJudge`, the `Judge` that loads, saves and runs it in batches."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from magic_rl.data.outputs import writing
from magic_rl.judge.embedded.features import JudgeModelConfig, decoded_view, hashed_features
from magic_rl.records import Verdict

if TYPE_CHECKING:
    import torch


SIGNALS: tuple[str, ...] = ("prompt_harmful", "response_refusal", "response_harmful")
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "judge_config.json"


def mean_bag(table: torch.Tensor, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Mean of table rows per bag, [len(offsets), dim].

    Why sum-then-divide: embedding_bag's "mean" backward is ~4x slower than "sum" on CPU.
    """
    import torch
    import torch.nn.functional as F

    if offsets.numel() == 0:
        return table.new_zeros((0, table.shape[1]))
    sums = F.embedding_bag(ids, table, offsets, mode="sum")
    ends = torch.cat([offsets[1:], offsets.new_tensor([ids.numel()])])
    return sums / (ends - offsets).clamp(min=1).unsqueeze(1).to(sums.dtype)


def _build_net(cfg: JudgeModelConfig) -> torch.nn.Module:
    import torch
    from torch import nn

    class JudgeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.prompt_bag = nn.EmbeddingBag(cfg.n_buckets, cfg.dim, mode="mean")
            self.response_bag = nn.EmbeddingBag(cfg.n_buckets, cfg.dim, mode="mean")
            for bag in (self.prompt_bag, self.response_bag):
                nn.init.normal_(bag.weight, std=0.1)
                # Trained by the row-wise sparse update in `train_embedded_judge`, not autograd.
                bag.weight.requires_grad_(False)
            # p = W [bag(prompt); bag(decoded_view(prompt))]: a separate bag keeps an encoded
            # request's decoded words from being diluted by its cipher text.
            self.prompt_mix = nn.Linear(2 * cfg.dim, cfg.dim) if cfg.decode_prompts else None
            self.prompt_head = nn.Sequential(
                nn.Linear(cfg.dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 1)
            )
            # The reply, pooled as written and as decoded_view, like the prompt: an encoded
            # restatement of a harmful task carries it as much as a plain one.
            self.response_mix = nn.Linear(2 * cfg.dim, cfg.dim)
            # Harm needs content: the reply signals read the reply alone, never the prompt.
            self.response_head = nn.Sequential(
                nn.Linear(cfg.dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2)
            )

        def heads(
            self, p: torch.Tensor, r: torch.Tensor, with_response: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """p [B, dim], r [R, dim] -> prompt logits [B], (refusal, harmful) logits [R, 2]."""
            prompt_logit = self.prompt_head(p).squeeze(-1)
            if r.shape[0] == 0:
                return prompt_logit, p.new_zeros((0, 2))
            return prompt_logit, self.response_head(r)

        def forward(
            self,
            p_ids: torch.Tensor,
            p_off: torch.Tensor,
            r_ids: torch.Tensor,
            r_off: torch.Tensor,
            with_response: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            p = self.prompt_vector(mean_bag(self.prompt_bag.weight, p_ids, p_off))
            r = self.response_vector(mean_bag(self.response_bag.weight, r_ids, r_off))
            return self.heads(p, r, with_response)

        def response_vector(self, bags: torch.Tensor) -> torch.Tensor:
            """[2R, dim] (R reply bags, then R decoded-view bags) -> r [R, dim]."""
            half = bags.shape[0] // 2
            return self.response_mix(torch.cat([bags[:half], bags[half:]], dim=-1))

        def prompt_vector(self, bags: torch.Tensor) -> torch.Tensor:
            """[2B, dim] (B prompt bags, then B decoded-view bags) -> p [B, dim]; or [B, dim]."""
            if self.prompt_mix is None:
                return bags
            half = bags.shape[0] // 2
            return self.prompt_mix(torch.cat([bags[:half], bags[half:]], dim=-1))

    return JudgeNet()


def _prompt_bags(prompts: Sequence[str], cfg: JudgeModelConfig) -> list[str]:
    """The texts pooled for a batch of prompts: the prompts, then their decoded views."""
    prompts = list(prompts)
    return prompts + [decoded_view(t) for t in prompts] if cfg.decode_prompts else prompts


def _reply_bags(replies: Sequence[str]) -> list[str]:
    """The texts pooled for a batch of replies: the replies, then their decoded views."""
    replies = list(replies)
    return replies + [decoded_view(t) for t in replies]


def _batch_tensors(
    cfg: JudgeModelConfig, prompts: Sequence[str], responses: Sequence[str | None]
) -> tuple[torch.Tensor, ...]:
    import torch

    has = [i for i, r in enumerate(responses) if r is not None]
    p_ids, p_off = hashed_features(_prompt_bags(prompts, cfg), cfg)
    if has:
        r_ids, r_off = hashed_features(_reply_bags([responses[i] for i in has]), cfg)  # type: ignore[misc]
    else:
        r_ids, r_off = np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (
        torch.from_numpy(p_ids),
        torch.from_numpy(p_off),
        torch.from_numpy(r_ids),
        torch.from_numpy(r_off),
        torch.tensor(has, dtype=torch.long),
    )


class EmbeddedJudge:
    """The sandbox judge. Implements `magic_rl.judge.base.Judge`."""

    def __init__(self, net: torch.nn.Module, cfg: JudgeModelConfig, batch_size: int = 512):
        self.net = net.eval()
        self.cfg = cfg
        self.batch_size = batch_size
        self.name = f"embedded-{self._digest()}"

    def _digest(self) -> str:
        h = hashlib.sha256(json.dumps(asdict(self.cfg), sort_keys=True).encode())
        for key, tensor in sorted(self.net.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().contiguous().numpy().tobytes())
        return h.hexdigest()[:12]

    def logits(
        self, prompts: Sequence[str], responses: Sequence[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits: prompt [B] and (refusal, harmful) [B, 2] (NaN where the response is None)."""
        import torch

        if len(prompts) != len(responses):
            raise ValueError(
                f"judge: {len(prompts)} prompts but {len(responses)} responses; they must pair up"
            )
        prompt_out = np.zeros(len(prompts), dtype=np.float32)
        resp_out = np.full((len(prompts), 2), np.nan, dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(prompts), self.batch_size):
                ps = prompts[start : start + self.batch_size]
                rs = responses[start : start + self.batch_size]
                tensors = _batch_tensors(self.cfg, ps, rs)
                pl, rl = self.net(*tensors)
                prompt_out[start : start + len(ps)] = pl.numpy()
                resp_out[start + tensors[4].numpy()] = rl.numpy()
        return prompt_out, resp_out

    def judge(self, prompts: Sequence[str], responses: Sequence[str | None]) -> list[Verdict]:
        """One verdict per pair; refusal/harm/score are None for a prompt-only call."""
        prompt_logit, resp_logit = self.logits(prompts, responses)
        out = []
        for i, response in enumerate(responses):
            if response is None:
                out.append(Verdict(bool(prompt_logit[i] > 0), None, None))
                continue
            refusal, harm = resp_logit[i]
            out.append(
                Verdict(
                    prompt_harmful=bool(prompt_logit[i] > 0),
                    response_refusal=bool(refusal > 0),
                    response_harmful=bool(harm > 0),
                    score=float(1.0 / (1.0 + math.exp(-float(harm)))),
                )
            )
        return out

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write model.safetensors (float32) and judge_config.json into `directory`. A failed
        write (full disk, refused permission) is an OSError naming the file (`data.outputs.writing`:
        safetensors' own error names none)."""
        from safetensors.torch import save_file

        path = Path(directory)
        with writing(path):
            path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}
        with writing(path / WEIGHTS_FILE):
            save_file(state, str(path / WEIGHTS_FILE), metadata={"format": "pt"})
        config = {"format": "magic_rl.embedded_judge/1", **asdict(self.cfg)}
        with writing(path / CONFIG_FILE):
            (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path, batch_size: int = 512) -> EmbeddedJudge:
        """Load what `save_pretrained` wrote. Raises naming the file when something is off."""
        from safetensors.torch import load_file

        path = Path(directory)
        cfg_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
        for p in (cfg_path, weights_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: missing; is {path} an embedded judge directory?")
        try:
            raw = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{cfg_path}: not valid JSON: {exc}") from exc
        cfg = JudgeModelConfig.from_dict(raw, source=str(cfg_path))
        net = _build_net(cfg)
        try:
            net.load_state_dict(load_file(str(weights_path)))
        except RuntimeError as exc:
            raise ValueError(f"{weights_path}: weights do not match {cfg_path}: {exc}") from exc
        return cls(net, cfg, batch_size=batch_size)
