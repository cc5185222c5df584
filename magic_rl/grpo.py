"""GRPO maths as pure tensor functions: group advantages, clipped surrogate, KL, loss aggregation.

Shapes: N = sequences in a step, T = completion tokens (right-padded), mask [N, T] is 1 on the role's own
generated tokens. Everything here is stateless and tested on CPU (tests/test_grpo.py).

Paper (docs/DESIGN.md §4): A_i = (r_i - mean_g) / (std_g + 1e-6), PPO clip 0.2, KL beta = 0,
token-level aggregation. Choices where the paper is silent, recorded in docs/deviations.md:
- std_g is the unbiased (n-1) sample std, as in verl/TRL; a group with fewer than two valid members
  gets advantage 0 (no signal) rather than a division by zero.
- Samples dropped by the reward stage (unknown judge label, masked truncation) are excluded from the
  group statistics and get advantage 0 and no loss.
- KL uses the non-negative "k3" estimator exp(ref - logp) - (ref - logp) - 1 (Schulman 2020), the one
  verl calls `low_var_kl`. Unlike the reference code it works when enabled.
- Gradient accumulation: `aggregate` takes the normaliser of the whole step so that summing
  micro-batch losses equals the loss of the full batch.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor


def group_advantages(
    rewards: Tensor, groups: Tensor, valid: Tensor | None = None, eps: float = 1e-6
) -> Tensor:
    """Group-normalised advantages.

    rewards [N] float, groups [N] long (members of one GRPO group share an id), valid [N] bool.
    Returns A [N]: (r - mean_g) / (std_g + eps) over the valid members of each group, 0 elsewhere.
    """
    if valid is None:
        valid = torch.ones_like(rewards, dtype=torch.bool)
    adv = torch.zeros_like(rewards, dtype=torch.float32)
    for g in torch.unique(groups):
        members = (groups == g) & valid
        n = int(members.sum())
        if n < 2:
            continue
        r = rewards[members].float()
        adv[members] = (r - r.mean()) / (r.std(unbiased=True) + eps)
    return adv


def policy_ratio(logp: Tensor, old_logp: Tensor) -> Tensor:
    """ratio = pi_theta / pi_old per token, [N, T]."""
    return torch.exp(logp - old_logp)


def clipped_surrogate(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, clip_eps: float
) -> tuple[Tensor, Tensor]:
    """PPO-clip per-token loss (to minimise) and per-token clip indicator.

    logp, old_logp [N, T]; advantages [N] (broadcast over a sequence's tokens: the reward of the
    episode goes to every token of the role). Returns (pg_loss [N, T], clipped [N, T] float).
    """
    adv = advantages.unsqueeze(-1)
    ratio = policy_ratio(logp, old_logp)
    pg_loss1 = -adv * ratio
    pg_loss2 = -adv * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    pg_loss = torch.maximum(pg_loss1, pg_loss2)
    clipped = (pg_loss2 > pg_loss1).float()
    return pg_loss, clipped


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token KL(pi_theta || pi_ref) estimate, k3 = exp(ref - logp) - (ref - logp) - 1 >= 0."""
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1.0


def aggregate(
    per_token: Tensor,
    mask: Tensor,
    mode: Literal["token_mean", "seq_mean"] = "token_mean",
    normaliser: float | None = None,
) -> Tensor:
    """Reduce a per-token loss [N, T] to a scalar.

    token_mean: sum over all valid tokens / number of valid tokens (paper).
    seq_mean:   mean over sequences of each sequence's token mean.
    `normaliser` replaces the denominator (total tokens, or total sequences for seq_mean) so that
    micro-batch losses of one step add up to the full-batch loss.
    """
    mask = mask.to(per_token.dtype)
    if mode == "token_mean":
        denom = normaliser if normaliser is not None else mask.sum().clamp(min=1.0)
        return (per_token * mask).sum() / denom
    if mode == "seq_mean":
        seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        seq = seq[mask.sum(-1) > 0]
        denom = normaliser if normaliser is not None else max(seq.numel(), 1)
        return seq.sum() / denom
    raise ValueError(f"unknown loss aggregation {mode!r}: expected token_mean or seq_mean")


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float,
    mode: Literal["token_mean", "seq_mean"] = "token_mean",
    kl_beta: float = 0.0,
    ref_logp: Tensor | None = None,
    normaliser: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """loss = agg(pg_loss + beta * KL). Returns the scalar loss and detached diagnostics."""
    pg_loss, clipped = clipped_surrogate(logp, old_logp, advantages, clip_eps)
    per_token = pg_loss
    stats: dict[str, float] = {}
    if kl_beta > 0.0:
        if ref_logp is None:
            raise ValueError("kl_beta > 0 needs ref_logp from the frozen reference model")
        kl = kl_k3(logp, ref_logp)
        per_token = per_token + kl_beta * kl
        stats["kl"] = float(aggregate(kl.detach(), mask, "token_mean"))
    loss = aggregate(per_token, mask, mode, normaliser)
    stats["clip_frac"] = float(aggregate(clipped, mask, "token_mean"))
    stats["pg_loss"] = float(aggregate(pg_loss.detach(), mask, "token_mean"))
    return loss, stats
