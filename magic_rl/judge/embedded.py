"""The embedded CPU safety judge of the sandbox: hashed n-gram bags -> a small MLP -> three signals.

Model: each text becomes a bag of hashed features (word uni/bi-grams and byte 3-5-grams of the
lower-cased text, a length bucket and a bias feature), `n_buckets` buckets. The prompt and the
response have their own embedding table (mean pooling), giving p and r. The prompt is pooled twice,
as written and as `decoded_view` (read through the sandbox's Caesar, Atbash, ASCII and Morse
encodings), and p mixes the two, so what was learnt on plain requests carries to encoded ones
(measured: a never-seen Atbash rewrite strategy went from 5% to 100% recall). Two heads:

    prompt_harmful logit           = MLP_p(p)
    (refusal, harmful) logits      = MLP_r([p, r, p * r])

The prompt head sees the prompt alone, so the prompt-only call and the prompt+response call give the
same request label. The response head sees both: in the sandbox a compliance placeholder is harmful
only when the request is, and `p * r` lets it read that interaction. `score` = P(response harmful).

Trained only on data the project owns (`magic_rl.sandbox.judge_data`); no rules at inference.
Embedding rows train with row-wise Adagrad on the rows a batch touches (fast on CPU), heads with
Adam.
Featurisation is vectorised numpy over a whole batch, so the judge labels thousands of exchanges a
second on two cores (`benchmarks/judge_throughput.py`).

Departure from the paper: the paper judges with WildGuard (7B). This judge stands in for it in the
sandbox only; its agreement with WildGuardTest's human labels is a calibration figure
(`magic_rl.judge.calibrate`), not a claim that it is a general safety classifier.

Run:
    from magic_rl.judge.embedded import train_embedded_judge, EmbeddedJudge
    judge = train_embedded_judge(examples, epochs=8, seed=0)
    judge.save_pretrained("judge/"); EmbeddedJudge.from_pretrained("judge/").judge(prompts, replies)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from magic_rl.records import Verdict

if TYPE_CHECKING:
    import torch

    from magic_rl.sandbox.judge_data import JudgeExample

SIGNALS: tuple[str, ...] = ("prompt_harmful", "response_refusal", "response_harmful")
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "judge_config.json"

_P = np.uint64(0x100000001B3)  # FNV prime: multiplier of the rolling byte hash
_MIX = np.uint64(0x9E3779B97F4A7C15)
_PUNCT = re.compile(r"([^\w\s])")
_ASCII_RUN = re.compile(r"\b(?:\d{2,3}\s+){3,}\d{2,3}\b")
_MORSE_RUN = re.compile(r"(?:[.\-]{1,7}\s+(?:/\s+)?){3,}[.\-]{1,7}")
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_CAESAR_BACK = str.maketrans(
    _LOWER + _LOWER.upper(), _LOWER[-3:] + _LOWER[:-3] + (_LOWER[-3:] + _LOWER[:-3]).upper()
)
_ATBASH = str.maketrans(_LOWER + _LOWER.upper(), _LOWER[::-1] + _LOWER[::-1].upper())
_MORSE_CODES = (
    ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- ...- "
    ".-- -..- -.-- --.. ----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----. .-.-.- "
    "--..-- ..--.. .----. -.-.-- -..-. -....- ---..."
)
_MORSE = dict(zip(_MORSE_CODES.split(), _LOWER + "0123456789.,?'!/-:", strict=True))


@dataclass(frozen=True)
class JudgeModelConfig:
    """Shape of the embedded judge; saved as JSON next to the weights."""

    n_buckets: int = 1 << 18
    dim: int = 32
    hidden: int = 64
    char_ngrams: tuple[int, ...] = (3, 4, 5)
    max_bytes: int = 3000  # the judge reads at most this many bytes of each text
    decode_prompts: bool = True  # also pool `decoded_view(prompt)` and mix it into p

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> JudgeModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known - {"format"}
        if unknown:
            raise ValueError(f"{source}: unknown judge config fields {sorted(unknown)}")
        fields = {k: v for k, v in data.items() if k in known}
        if "char_ngrams" in fields:
            fields["char_ngrams"] = tuple(int(n) for n in fields["char_ngrams"])
        return cls(**fields)


# --- features ---------------------------------------------------------------------------------


def _normalise(text: str, max_bytes: int) -> bytes:
    # Spaces around punctuation make "that." and "that" one word; leading/trailing spaces mark the
    # text's edges for the byte n-grams.
    spaced = " ".join(_PUNCT.sub(r" \1 ", text.lower()).split())
    return (" " + spaced + " ").encode("utf-8", "replace")[:max_bytes]


def _mix(h: np.ndarray, salt: int, n_buckets: int) -> np.ndarray:
    h = h + np.uint64((salt * 0x9E3779B97F4A7C15) % (1 << 64))
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    return (h % np.uint64(n_buckets)).astype(np.int64)


def decoded_view(text: str) -> str:
    """The text read through the sandbox's four encodings: Caesar(-3) and Atbash of the whole
    text, plus every run of decimal ASCII codes and of Morse code decoded.

    It is pooled as a second bag of the prompt table, so "sklvklqj" (Caesar) lands on the rows
    of "phishing" and what the judge learnt from plain requests carries over to encoded ones. Reading an encoding is part of understanding a request (a 7B guard model reads
    these too); the decision is still the trained model's.
    """
    parts = [text.translate(_CAESAR_BACK), text.translate(_ATBASH)]
    for run in _ASCII_RUN.findall(text):
        parts.append("".join(chr(int(c)) for c in run.split() if 32 <= int(c) < 127))
    for run in _MORSE_RUN.findall(text):
        words = run.split("/")
        parts.append(" ".join("".join(_MORSE.get(c, "") for c in w.split()) for w in words))
    return "\n".join(parts)


def _word_features(
    words: list[list[bytes]], cfg: JudgeModelConfig, docs: list, ids: list
) -> np.ndarray:
    """Append hashed word uni- and bi-grams of each doc to (docs, ids); return words per doc."""
    n_docs = len(words)
    counts = np.fromiter((len(w) for w in words), dtype=np.int64, count=n_docs)
    wh = np.fromiter(
        (zlib.crc32(w) for ws in words for w in ws), dtype=np.uint64, count=int(counts.sum())
    )
    wdoc = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
    docs.append(wdoc)
    ids.append(_mix(wh, 101, cfg.n_buckets))
    same = wdoc[1:] == wdoc[:-1]
    docs.append(wdoc[1:][same])
    ids.append(_mix(wh[:-1][same] * _P + wh[1:][same], 102, cfg.n_buckets))
    return counts


def hashed_features(texts: Sequence[str], cfg: JudgeModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Bags of hashed features for a batch: (ids [total] int64, offsets [len(texts)] int64).

    Features of text i are ids[offsets[i]:offsets[i+1]], ready for `nn.EmbeddingBag`.
    """
    enc = [_normalise(t, cfg.max_bytes) for t in texts]
    n_docs = len(enc)
    lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=n_docs)
    # One buffer for the whole batch, texts separated by a 0 byte; n-grams spanning one are dropped.
    buf = np.frombuffer(b"\x00".join(enc) + b"\x00", dtype=np.uint8).astype(np.uint64)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lens + 1)
    zeros = np.concatenate([[0], np.cumsum(buf == 0)])
    docs, ids = [], []

    h = np.zeros(len(buf), dtype=np.uint64)
    for n in range(1, max(cfg.char_ngrams) + 1):
        m = len(buf) - n + 1
        if m <= 0:
            break
        h = h[:m] * _P + buf[n - 1 : n - 1 + m]
        if n in cfg.char_ngrams:
            ok = (zeros[n : n + m] - zeros[:m]) == 0
            docs.append(doc_of[:m][ok])
            ids.append(_mix(h[ok], n, cfg.n_buckets))

    counts = _word_features([e.split() for e in enc], cfg, docs, ids)

    # Bias (so no bag is empty) and a log2 length bucket (empty / short / truncated replies).
    length_bucket = np.log2(counts + 1).astype(np.uint64)
    docs.append(np.arange(n_docs, dtype=np.int64))
    ids.append(_mix(length_bucket, 103, cfg.n_buckets))
    docs.append(np.arange(n_docs, dtype=np.int64))
    ids.append(_mix(np.zeros(n_docs, dtype=np.uint64), 104, cfg.n_buckets))

    doc = np.concatenate(docs)
    order = np.argsort(doc, kind="stable")
    flat = np.concatenate(ids)[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(doc, minlength=n_docs))[:-1]])
    return flat, offsets.astype(np.int64)


# --- model ------------------------------------------------------------------------------------


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
            self.response_head = nn.Sequential(
                nn.Linear(3 * cfg.dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2)
            )

        def heads(
            self, p: torch.Tensor, r: torch.Tensor, with_response: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """p [B, dim], r [R, dim] -> prompt logits [B], (refusal, harmful) logits [R, 2]."""
            prompt_logit = self.prompt_head(p).squeeze(-1)
            if r.shape[0] == 0:
                return prompt_logit, p.new_zeros((0, 2))
            pr = p[with_response]
            return prompt_logit, self.response_head(torch.cat([pr, r, pr * r], dim=-1))

        def forward(
            self,
            p_ids: torch.Tensor,
            p_off: torch.Tensor,
            r_ids: torch.Tensor,
            r_off: torch.Tensor,
            with_response: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            p = self.prompt_vector(mean_bag(self.prompt_bag.weight, p_ids, p_off))
            r = mean_bag(self.response_bag.weight, r_ids, r_off)
            return self.heads(p, r, with_response)

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


def _batch_tensors(
    cfg: JudgeModelConfig, prompts: Sequence[str], responses: Sequence[str | None]
) -> tuple[torch.Tensor, ...]:
    import torch

    has = [i for i, r in enumerate(responses) if r is not None]
    p_ids, p_off = hashed_features(_prompt_bags(prompts, cfg), cfg)
    if has:
        r_ids, r_off = hashed_features([responses[i] for i in has], cfg)  # type: ignore[misc]
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
        """Write model.safetensors (float32) and judge_config.json into `directory`."""
        from safetensors.torch import save_file

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE), metadata={"format": "pt"})
        config = {"format": "magic_rl.embedded_judge/1", **asdict(self.cfg)}
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


# --- training ---------------------------------------------------------------------------------


def _targets(examples: Sequence[JudgeExample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prompt_y = np.array([e.prompt_harmful for e in examples], dtype=np.float32)
    resp_y = np.array(
        [
            (float(bool(e.response_refusal)), float(bool(e.response_harmful)))
            for e in examples
            if e.response is not None
        ],
        dtype=np.float32,
    ).reshape(-1, 2)
    has = np.array([e.response is not None for e in examples], dtype=bool)
    return prompt_y, resp_y, has


class _RowAdagrad:
    """Row-wise Adagrad on an embedding table: only the rows a batch touched move.

    Why not autograd + SparseAdam: coalescing sparse gradients of ~10^5 indices per batch cost
    ~100 ms a step; gathering the batch's unique rows into a small dense leaf costs ~1 ms.
    """

    def __init__(
        self, table: torch.Tensor, lr: float, weight_decay: float = 0.0, eps: float = 1e-8
    ):
        import torch

        self.table, self.lr, self.eps, self.weight_decay = table, lr, eps, weight_decay
        self.sum_sq = torch.zeros(table.shape[0], dtype=table.dtype)

    def gather(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(unique rows, their values as a grad-requiring leaf, ids remapped into them)."""
        import torch

        # np.unique without its sort: ids index a fixed table, so a mask over the table finds
        # the unique rows (ascending, as np.unique) in linear time.
        seen = np.zeros(self.table.shape[0], dtype=bool)
        seen[ids] = True
        uniq = np.flatnonzero(seen)
        inv = (np.cumsum(seen) - 1)[ids]
        rows = torch.from_numpy(uniq)
        return rows, self.table[rows].requires_grad_(True), torch.from_numpy(inv)

    def step(self, rows: torch.Tensor, leaf: torch.Tensor) -> None:
        import torch

        if leaf.grad is None:
            return
        g = leaf.grad + self.weight_decay * leaf.detach()
        # rows are unique, so index_add_ is the in-place update without a gather and a scatter
        self.sum_sq.index_add_(0, rows, g.pow(2).mean(dim=1))
        scale = self.lr / (self.sum_sq[rows].sqrt() + self.eps)
        with torch.no_grad():
            self.table.index_add_(0, rows, -(scale.unsqueeze(1) * g))


def train_embedded_judge(
    examples: Sequence[JudgeExample],
    *,
    epochs: int = 8,
    seed: int = 0,
    lr: float = 3e-3,
    batch_size: int = 256,
    feature_dropout: float = 0.0,
    weight_decay: float = 0.0,
    cfg: JudgeModelConfig | None = None,
) -> EmbeddedJudge:
    """Train on labeled exchanges with BCE on the three signals; returns the judge in eval mode.

    The heads train with Adam at `lr`; the embedding tables with row-wise Adagrad at `10 * lr`.
    Same examples + seed give the same weights.
    """
    import torch

    if not examples:
        raise ValueError("train_embedded_judge: no examples")
    cfg = cfg or JudgeModelConfig()
    threads = torch.get_num_threads()
    # Per-step tensors are small (~1e5 elements): intra-op threads cost more than they save, ~10x
    # on a loaded 2-core machine (165 ms vs 15 ms a step, measured).
    torch.set_num_threads(1)
    try:
        return _train(
            examples,
            epochs=epochs,
            seed=seed,
            lr=lr,
            batch_size=batch_size,
            feature_dropout=feature_dropout,
            weight_decay=weight_decay,
            cfg=cfg,
        )
    finally:
        torch.set_num_threads(threads)


def _train(
    examples: Sequence[JudgeExample],
    *,
    epochs: int,
    seed: int,
    lr: float,
    batch_size: int,
    feature_dropout: float,
    weight_decay: float,
    cfg: JudgeModelConfig,
) -> EmbeddedJudge:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    net = _build_net(cfg)
    prompt_opt = _RowAdagrad(net.prompt_bag.weight.data, lr * 10, weight_decay)
    response_opt = _RowAdagrad(net.response_bag.weight.data, lr * 10, weight_decay)
    head_opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    prompt_y, resp_y, has = _targets(examples)
    resp_row = np.cumsum(has) - 1  # example index -> row of resp_y

    # Features of each distinct text, computed once: prompts repeat across their replies and
    # replies repeat across prompts. A batch pools each distinct text once.
    prompts = sorted({e.prompt for e in examples})
    replies = sorted({e.response for e in examples if e.response is not None})
    prompt_row = {t: i for i, t in enumerate(prompts)}
    reply_row = {t: i for i, t in enumerate(replies)}
    prompt_feats = hashed_features(_prompt_bags(prompts, cfg), cfg)
    reply_feats = hashed_features(replies, cfg) if replies else (np.zeros(0, np.int64),) * 2
    prompt_key = np.array([prompt_row[e.prompt] for e in examples], dtype=np.int64)
    resp_key = np.array(
        [-1 if e.response is None else reply_row[e.response] for e in examples], dtype=np.int64
    )

    def pooled(
        keys: np.ndarray, feats: tuple[np.ndarray, np.ndarray], opt: _RowAdagrad, views: int = 0
    ) -> tuple[torch.Tensor, Any]:
        """Mean bags of keys[i]'s text, [len(keys), dim], pooling each distinct text once. With
        `views` (the number of prompts), bag k + views is the decoded view of bag k: the result
        is [2 len(keys), dim], views after texts, as `prompt_vector` expects."""
        all_ids, all_off = feats
        uniq, inv = np.unique(keys, return_inverse=True)
        if views:
            inv = np.concatenate([inv.reshape(-1), inv.reshape(-1) + len(uniq)])
            uniq = np.concatenate([uniq, uniq + views])
        ends = np.append(all_off[1:], len(all_ids))
        parts = [all_ids[all_off[k] : ends[k]] for k in uniq]
        if feature_dropout > 0:
            # Drop features at random (the bias, last in each bag, stays) so no single n-gram
            # decides: the seeds are few, and their exact words are easy to memorise.
            parts = [q[np.append(gen.random(len(q) - 1) >= feature_dropout, True)] for q in parts]
        off = np.concatenate([[0], np.cumsum([len(q) for q in parts])[:-1]]).astype(np.int64)
        rows, leaf, ids = opt.gather(np.concatenate(parts))
        bags = mean_bag(leaf, ids, torch.from_numpy(off))
        return bags[torch.from_numpy(inv.reshape(-1).astype(np.int64))], (rows, leaf)

    # Batches follow a shuffled order of prompts, each prompt's examples together, so a batch
    # pools few distinct prompts (a ~5x saving) and contrasts replies to the same request.
    gen = np.random.default_rng(seed)
    net.train()
    for _ in range(epochs):
        prompt_rank = gen.permutation(len(prompts))[prompt_key]
        order = np.lexsort((gen.random(len(examples)), prompt_rank))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            bags, p_state = pooled(
                prompt_key[batch], prompt_feats, prompt_opt, len(prompts) * cfg.decode_prompts
            )
            p = net.prompt_vector(bags)
            replied = batch[has[batch]]
            with_response = torch.from_numpy(np.flatnonzero(has[batch]))
            r_state = None
            if len(replied):
                r, r_state = pooled(resp_key[replied], reply_feats, response_opt)
            else:
                r = p.new_zeros((0, cfg.dim))
            pl, rl = net.heads(p, r, with_response)
            loss = F.binary_cross_entropy_with_logits(pl, torch.from_numpy(prompt_y[batch]))
            if len(replied):
                target = torch.from_numpy(resp_y[resp_row[replied]])
                loss = loss + F.binary_cross_entropy_with_logits(rl, target)
            head_opt.zero_grad()
            loss.backward()
            head_opt.step()
            prompt_opt.step(*p_state)
            if r_state is not None:
                response_opt.step(*r_state)
    return EmbeddedJudge(net, cfg)


def evaluate_judge(judge: Any, examples: Sequence[JudgeExample]) -> dict[str, float]:
    """Per-signal accuracy of any Judge on labeled examples (unknown verdicts count as wrong).

    prompt_harmful is scored on every example; reply signals on examples with a reply. Also returns
    the counts `n_prompt` and `n_response`.
    """
    verdicts = judge.judge([e.prompt for e in examples], [e.response for e in examples])
    hits = dict.fromkeys(SIGNALS, 0)
    n_resp = 0
    for e, v in zip(examples, verdicts, strict=True):
        hits["prompt_harmful"] += v.prompt_harmful == e.prompt_harmful
        if e.response is not None:
            n_resp += 1
            hits["response_refusal"] += v.response_refusal == e.response_refusal
            hits["response_harmful"] += v.response_harmful == e.response_harmful
    n = len(examples)
    return {
        "prompt_harmful": hits["prompt_harmful"] / max(n, 1),
        "response_refusal": hits["response_refusal"] / max(n_resp, 1),
        "response_harmful": hits["response_harmful"] / max(n_resp, 1),
        "n_prompt": float(n),
        "n_response": float(n_resp),
    }
