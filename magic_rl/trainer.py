"""The GRPO update of one role (phase 2); supervised fine-tuning is `magic_rl.sft`.

`GRPOTrainer.update(episodes, rewards)` turns a step's episodes into (prompt ids, completion ids,
advantage) samples of its role, every turn of an episode carrying the episode's advantage
(docs/DESIGN.md §1: the reward of the last exchange is broadcast over all of a role's tokens), and
takes one optimiser step with gradient accumulation over micro-batches. The loss covers the role's
own generated tokens only: prompts, and therefore the other role's text, are masked out by
construction.

Each role owns one `GRPOTrainer`, whose AdamW state persists across phase switches and checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from magic_rl import grpo
from magic_rl.config import GRPOConfig, PolicyConfig
from magic_rl.policy import HFPolicy, sequence_logprobs
from magic_rl.records import Episode, RewardBreakdown, Role


@dataclass(frozen=True)
class Sample:
    """One sequence of a role in the update: the prompt it saw and what it generated."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    advantage: float


def role_samples(
    episodes: Sequence[Episode], role: Role, advantages: Sequence[float], valid: Sequence[bool]
) -> list[Sample]:
    """Every turn of `role` in valid episodes, with the episode's advantage on all its tokens."""
    out = []
    for ep, adv, ok in zip(episodes, advantages, valid, strict=True):
        if not ok:
            continue
        for turn in ep.turns:
            prompt, completion = (
                (turn.attack_prompt_ids, turn.attack_ids)
                if role is Role.ATTACKER
                else (turn.reply_prompt_ids, turn.reply_ids)
            )
            if completion:
                out.append(Sample(prompt, completion, float(adv)))
    return out


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Diverged(RuntimeError):
    """A non-finite loss, gradient or weight: the update is not applied and the run stops."""


class GRPOTrainer:
    """GRPO for one role. Holds the role's optimiser; the policy's model is updated in place."""

    def __init__(
        self,
        role: Role,
        policy: HFPolicy,
        pcfg: PolicyConfig,
        gcfg: GRPOConfig,
        *,
        ref_model: torch.nn.Module | None = None,
        accelerator=None,
    ) -> None:
        if gcfg.kl_beta > 0 and ref_model is None:
            raise ValueError(f"{role.value}: grpo.kl_beta > 0 needs a frozen reference model")
        self.role, self.policy, self.gcfg = role, policy, gcfg
        self.autocast = pcfg.autocast
        self.ref_model = ref_model
        self.accelerator = accelerator
        self._bad_loss = 0.0  # micro-batches of the current update with a non-finite loss
        params = [p for p in policy.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=pcfg.lr, betas=tuple(pcfg.adam_betas), weight_decay=pcfg.weight_decay
        )
        # Not wrapped in DDP: ranks hold different numbers of samples (and none at all when every
        # episode of a shard is invalid), while DDP needs the same forward/backward calls on every
        # rank. Gradients are summed explicitly in `_clip_and_step` instead.
        self.model = policy.model
        # A prompt shared by several samples of a micro-batch is forwarded once (policy/logprobs.py):
        # the same gradient up to float rounding; False = one forward per sample.
        self.share_prompts = gcfg.share_prompts
        if accelerator is not None:
            self.optimizer = accelerator.prepare(self.optimizer)
            if accelerator.num_processes > 1:
                _broadcast_from_main(params)

    def update(self, episodes: Sequence[Episode], rewards: Sequence[RewardBreakdown]) -> dict:
        """One optimiser step on this role's samples. Returns `<role>/...` diagnostics."""
        g = self.gcfg
        totals = torch.tensor([r.total for r in rewards], dtype=torch.float32)
        valid = torch.tensor([r.valid for r in rewards], dtype=torch.bool)
        groups = torch.tensor([ep.group for ep in episodes], dtype=torch.long)
        adv = grpo.group_advantages(totals, groups, valid, g.adv_eps)
        if g.drop_zero_std_groups:
            valid = valid & _has_signal(totals, groups, valid)
        samples = role_samples(episodes, self.role, adv.tolist(), valid.tolist())
        prefix = self.role.value
        stats = {
            f"{prefix}/update/samples": float(len(samples)),
            f"{prefix}/update/zero_adv_frac": float((adv[valid] == 0).float().mean())
            if bool(valid.any())
            else 1.0,
        }
        n_tokens = sum(len(s.completion_ids) for s in samples)
        # Data-parallel: the normaliser counts every rank's samples, and `_clip_and_step` sums the
        # ranks' gradients, so the step equals one full-batch step.
        all_tokens, all_samples = self._sum_over_processes(n_tokens, len(samples))
        if not all_samples:
            return stats
        pad_id = self.policy.pad_id
        normaliser = all_tokens if g.loss_agg == "token_mean" else all_samples
        self._check_weights("before the update")
        old_logps = self._old_logprobs(samples, pad_id) if g.ppo_epochs > 1 else None
        self.model.train()
        acc: dict[str, float] = {}
        self._bad_loss = 0.0
        for _epoch in range(g.ppo_epochs):
            for k, batch in enumerate(_chunks(samples, g.micro_batch_size)):
                with self._autocast():
                    logp, mask = sequence_logprobs(
                        self.model,
                        [s.prompt_ids for s in batch],
                        [s.completion_ids for s in batch],
                        pad_id,
                        share_prompts=self.share_prompts,
                    )
                # First epoch is on-policy: pi_old == pi_theta numerically, ratio == 1.
                old = logp.detach() if old_logps is None else old_logps[k].to(logp.device)
                ref = self._ref_logprobs(batch, pad_id) if g.kl_beta > 0 else None
                a = torch.tensor([s.advantage for s in batch], device=logp.device)
                loss, part = grpo.grpo_loss(
                    logp,
                    old,
                    a,
                    mask,
                    clip_eps=g.clip_eps,
                    mode=g.loss_agg,
                    kl_beta=g.kl_beta,
                    ref_logp=ref,
                    normaliser=normaliser,
                )
                self._bad_loss += float(not bool(torch.isfinite(loss)))
                self._backward(loss)
                weight = float(mask.sum()) / n_tokens
                for key, value in part.items():
                    acc[key] = acc.get(key, 0.0) + value * weight / g.ppo_epochs
            grad_norm = self._clip_and_step()
        stats.update({f"{prefix}/update/{k}": v for k, v in acc.items()})
        stats[f"{prefix}/update/grad_norm"] = grad_norm
        stats[f"{prefix}/update/tokens"] = float(n_tokens)
        return stats

    def _autocast(self):
        """bfloat16 autocast of the forward (and so the backward) when the role asks for it;
        log-softmax stays float32 under autocast, and the weights and AdamW state keep their dtype."""
        device = next(self.policy.model.parameters()).device  # where the weights are (accelerate)
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast)

    def _backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    def _sum_over_processes(self, n_tokens: int, n_samples: int) -> tuple[float, float]:
        if self.accelerator is None or self.accelerator.num_processes == 1:
            return float(n_tokens), float(n_samples)
        counts = torch.tensor(
            [n_tokens, n_samples], dtype=torch.float64, device=self.accelerator.device
        )
        tokens, samples = self.accelerator.reduce(counts, reduction="sum").tolist()
        return tokens, samples

    def _clip_and_step(self) -> float:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            _sum_gradients(params)
        if self.accelerator is not None:
            norm = self.accelerator.clip_grad_norm_(params, self.gcfg.grad_clip)
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, self.gcfg.grad_clip)
        self._guard(float(norm))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._check_weights("after the update")
        return float(norm)

    def _guard(self, norm: float) -> None:
        """The divergence guard, before the optimiser step: a non-finite loss (on any rank) or
        gradient norm raises `Diverged` with the gradients dropped and the weights untouched."""
        bad = torch.tensor([self._bad_loss, float(not math.isfinite(norm))])
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad.to(self.accelerator.device), reduction="sum").cpu()
        if bad.sum() == 0:
            return
        self.optimizer.zero_grad(set_to_none=True)
        what = "loss" if bad[0] else "gradient"
        raise Diverged(f"{self.role.value}: non-finite {what} (gradient norm {norm}), not applied")

    def _check_weights(self, when: str) -> None:
        """Weights that hold NaN or inf stop the run before anything is saved from them (after
        an update they can only come from overflow: lr or weight decay far too large)."""
        for name, p in self.model.named_parameters():
            if p.requires_grad and not bool(p.isfinite().all()):
                raise Diverged(f"{self.role.value}: non-finite weights {when} ({name})")

    @torch.no_grad()
    def _old_logprobs(self, samples: list[Sample], pad_id: int) -> list[torch.Tensor]:
        self.model.eval()
        with self._autocast():  # the same numerics as the update's forward, so ratio == 1 at first
            return [
                sequence_logprobs(
                    self.model,
                    [s.prompt_ids for s in b],
                    [s.completion_ids for s in b],
                    pad_id,
                    share_prompts=self.share_prompts,
                )[0].detach()
                for b in _chunks(samples, self.gcfg.micro_batch_size)
            ]

    @torch.no_grad()
    def _ref_logprobs(self, batch: list[Sample], pad_id: int) -> torch.Tensor:
        with self._autocast():
            return sequence_logprobs(
                self.ref_model,
                [s.prompt_ids for s in batch],
                [s.completion_ids for s in batch],
                pad_id,
                share_prompts=self.share_prompts,
            )[0]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def _broadcast_from_main(params: list[torch.nn.Parameter]) -> None:
    """Start every rank from the main process's weights (as DDP does when it wraps a model)."""
    import torch.distributed as dist

    for p in params:
        dist.broadcast(p.data, src=0)


def _sum_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce (sum) the gradients; a rank that had no sample contributes zeros."""
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def _has_signal(totals: torch.Tensor, groups: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    keep = torch.zeros_like(valid)
    for g in torch.unique(groups):
        members = (groups == g) & valid
        if int(members.sum()) >= 2 and float(totals[members].std()) > 0:
            keep |= members
    return keep
