"""`GRPOTrainer.update` against a hand-written reference gradient on a tiny float64 Llama.

The reference never calls `magic_rl.grpo` or `sequence_logprobs`: each sample's log-probs come from
one unpadded forward of `prompt + completion`, advantages from `statistics.mean/stdev` per group,
and the loss is written out per token:

    token_mean: L = sum_i sum_t [-A_i * s_it + beta * k3_it] / N_tokens
    seq_mean:   L = (1 / N_seq) * sum_i (1 / T_i) * sum_t [-A_i * s_it + beta * k3_it]

where s_it = logp_it on the first (on-policy) epoch, whose gradient equals that of the ratio at
ratio = 1, and the PPO-clip surrogate on later epochs (a token whose ratio left [1-eps, 1+eps] in
the direction of its advantage contributes a constant, so no gradient). k3 = e^(ref-logp) -
(ref-logp) - 1. The trainer's gradient is read just before each optimiser step (grad clipping is
set out of reach) and must match the reference to 1e-6 of its largest entry (the trainer's
advantages are float32). The first-epoch test runs with and without `grpo.share_prompts` (a group's
prompt forwarded once, its completions against its KV cache).

Run: `python -m pytest -q tests/test_trainer_reference.py` (about 5 s).
"""

from __future__ import annotations

import copy
import math
import statistics
from types import SimpleNamespace

import pytest
import torch
from tiny_models import XS, tiny_llama_config

from magic_rl.config import GRPOConfig, PolicyConfig
from magic_rl.records import Episode, RewardBreakdown, Role, Seed, Turn
from magic_rl.trainer import GRPOTrainer

PAD = 0


def _tiny_model(seed: int = 0):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    config = tiny_llama_config(32, XS, pad_token_id=PAD)
    return LlamaForCausalLM(config).to(torch.float64)


def _turn(prompt, reply):
    return Turn("a", "", "a", "r", reply_prompt_ids=tuple(prompt), reply_ids=tuple(reply))


# Three groups of four. Group 0 has signal; group 1 has equal rewards (zero std); in group 2 one
# member is invalid (a dropped sample) and one episode has two turns (both carry its advantage).
SEED = Seed("s", "PLACEHOLDER request", "harmful")
EPISODES = [
    Episode(SEED, (_turn([3, 4, 5], [6, 7, 8, 9]),), group=0, member=0),
    Episode(SEED, (_turn([3, 4, 5], [10, 11]),), group=0, member=1),
    Episode(SEED, (_turn([3, 4, 5], [12, 13, 14]),), group=0, member=2),
    Episode(SEED, (_turn([3, 4, 5], [15]),), group=0, member=3),
    Episode(SEED, (_turn([7, 8], [16, 17, 18]),), group=1, member=0),
    Episode(SEED, (_turn([7, 8], [19, 20]),), group=1, member=1),
    Episode(SEED, (_turn([7, 8], [21, 22, 23, 24]),), group=1, member=2),
    Episode(SEED, (_turn([7, 8], [25]),), group=1, member=3),
    Episode(SEED, (_turn([9], [26, 27]), _turn([9, 26, 27, 5], [28, 29, 30])), group=2, member=0),
    Episode(SEED, (_turn([9], [31, 2]),), group=2, member=1),
    Episode(SEED, (_turn([9], [3, 3, 3]),), group=2, member=2),
    Episode(SEED, (_turn([9], [4]),), group=2, member=3),
]
TOTALS = [1.0, -1.0, 0.5, -0.5, 0.5, 0.5, 0.5, 0.5, 1.5, -1.5, 0.0, 9.0]
VALID = [True] * 11 + [False]
REWARDS = [RewardBreakdown(t, valid=v) for t, v in zip(TOTALS, VALID, strict=True)]


def _hand_advantages(drop_zero_std: bool) -> list[float | None]:
    """A_i = (r_i - mean_g) / (stdev_g + 1e-6) over valid members; None = not in the update."""
    out: list[float | None] = [None] * len(EPISODES)
    for g in {ep.group for ep in EPISODES}:
        idx = [i for i, ep in enumerate(EPISODES) if ep.group == g and VALID[i]]
        r = [TOTALS[i] for i in idx]
        sd = statistics.stdev(r)
        if drop_zero_std and sd == 0:
            continue
        for i in idx:
            out[i] = (TOTALS[i] - statistics.mean(r)) / (sd + 1e-6)
    return out


def _samples(drop_zero_std: bool) -> list[tuple[list[int], list[int], float]]:
    """(prompt, completion, advantage) of every defender turn in the update."""
    adv = _hand_advantages(drop_zero_std)
    return [
        (list(t.reply_prompt_ids), list(t.reply_ids), a)
        for ep, a in zip(EPISODES, adv, strict=True)
        if a is not None
        for t in ep.turns
    ]


def _logp(model, prompt: list[int], completion: list[int]) -> torch.Tensor:
    """log pi(c_t | prompt, c_<t) from one unpadded forward: [T]."""
    ids = torch.tensor([prompt + completion])
    logits = model(input_ids=ids).logits[0].log_softmax(-1)
    p = len(prompt)
    return torch.stack([logits[p - 1 + t, c] for t, c in enumerate(completion)])


def _reference_grads(
    model, samples, *, mode: str, beta: float = 0.0, ref_model=None, old_model=None, eps=0.2
) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    n_tokens = sum(len(c) for _, c, _ in samples)
    total = torch.zeros((), dtype=torch.float64)
    for prompt, completion, a in samples:
        logp = _logp(model, prompt, completion)
        terms = []
        for t in range(len(completion)):
            if old_model is None:  # on-policy: grad of -A * ratio at ratio = 1 is -A * grad logp
                pg = -a * logp[t]
            else:
                with torch.no_grad():
                    old = _logp(old_model, prompt, completion)[t]
                ratio = torch.exp(logp[t] - old)
                r = float(ratio.detach())
                if (a > 0 and r > 1 + eps) or (a < 0 and r < 1 - eps):
                    pg = torch.tensor(-a * (1 + eps if a > 0 else 1 - eps), dtype=torch.float64)
                else:
                    pg = -a * ratio
            if beta:
                with torch.no_grad():
                    ref = _logp(ref_model, prompt, completion)[t]
                d = ref - logp[t]
                pg = pg + beta * (torch.exp(d) - d - 1)
            terms.append(pg)
        seq = torch.stack(terms).sum()
        total = total + (seq / n_tokens if mode == "token_mean" else seq / len(completion))
    loss = total if mode == "token_mean" else total / len(samples)
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _run_update(*, lr=1e-3, ref_model=None, **grpo):
    """One trainer update; returns (model before, [(grads, params) at each optimiser step], stats)."""
    model = _tiny_model()
    before = copy.deepcopy(model)
    trainer = GRPOTrainer(
        Role.DEFENDER,
        SimpleNamespace(model=model, pad_id=PAD),
        PolicyConfig(model="tiny", lr=lr),
        GRPOConfig(grad_clip=1e9, micro_batch_size=3, **grpo),
        ref_model=ref_model,
    )
    seen = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append(
            (
                {n: p.grad.detach().clone() for n, p in model.named_parameters()},
                {n: p.detach().clone() for n, p in model.named_parameters()},
            )
        )
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    stats = trainer.update(EPISODES, REWARDS)
    return before, seen, stats


def _assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    worst = max(float((got[k] - want[k]).abs().max()) for k in got)
    scale = max(float(want[k].abs().max()) for k in want)
    assert scale > 1e-3, "the reference gradient is ~0: the check would be vacuous"
    # the trainer holds advantages in float32 (relative error ~1e-7); any real bug is far larger
    assert worst <= 1e-6 * scale, f"max |grad - reference| = {worst:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("mode", ["token_mean", "seq_mean"])
@pytest.mark.parametrize("drop_zero_std", [False, True])
@pytest.mark.parametrize("share", [False, True], ids=["per-sample", "shared-prompts"])
def test_one_epoch_gradient_equals_the_hand_written_loss(mode, drop_zero_std, share):
    before, seen, stats = _run_update(
        loss_agg=mode, drop_zero_std_groups=drop_zero_std, share_prompts=share
    )
    ((grads, params),) = seen
    assert all(params[n].equal(p) for n, p in before.named_parameters())
    want = _reference_grads(before, _samples(drop_zero_std), mode=mode)
    _assert_same(grads, want)
    n_samples = len(_samples(drop_zero_std))
    assert stats["defender/update/samples"] == n_samples == (8 if drop_zero_std else 12)
    assert stats["defender/update/grad_norm"] > 0


def test_drop_zero_std_groups_only_changes_the_token_normaliser():
    # Group 1 has zero advantages: dropping it removes no signal, only its 10 tokens from N_tokens.
    _, keep, _ = _run_update(drop_zero_std_groups=False)
    _, drop, _ = _run_update(drop_zero_std_groups=True)
    n_keep = sum(len(c) for _, c, _ in _samples(False))
    n_drop = sum(len(c) for _, c, _ in _samples(True))
    assert (n_keep, n_drop) == (30, 20)
    _assert_same({name: g * n_drop / n_keep for name, g in drop[0][0].items()}, keep[0][0])


def test_advantage_sign_decides_the_direction_of_the_step():
    # Descending the loss raises log-probs of positive-advantage samples: after one small step the
    # best sample of group 2 (A > 0) is more likely and the worst (A < 0) less likely.
    best, worst = EPISODES[9 - 1].turns[0], EPISODES[9].turns[0]
    model = _tiny_model()
    trainer = GRPOTrainer(
        Role.DEFENDER,
        SimpleNamespace(model=model, pad_id=PAD),
        PolicyConfig(model="tiny", lr=1e-3),
        GRPOConfig(micro_batch_size=3),
    )

    def logps():
        with torch.no_grad():
            return [
                float(_logp(model, list(t.reply_prompt_ids), list(t.reply_ids)).sum())
                for t in (best, worst)
            ]

    lp0 = logps()
    trainer.update(EPISODES, REWARDS)
    lp1 = logps()
    assert lp1[0] > lp0[0] and lp1[1] < lp0[1]


def test_kl_term_gradient_equals_beta_k3():
    ref_model = _tiny_model(seed=1)  # a different reference, so the KL gradient is not zero
    ref_model.requires_grad_(False)
    before, seen, stats = _run_update(kl_beta=0.5, ref_model=ref_model)
    want = _reference_grads(
        before, _samples(False), mode="token_mean", beta=0.5, ref_model=ref_model
    )
    _assert_same(seen[0][0], want)
    # the logged KL is the token mean of k3 under the policy before the step
    k3 = []
    for prompt, completion, _ in _samples(False):
        with torch.no_grad():
            d = _logp(ref_model, prompt, completion) - _logp(before, prompt, completion)
        k3 += (torch.exp(d) - d - 1).tolist()
    assert stats["defender/update/kl"] == pytest.approx(sum(k3) / len(k3), rel=1e-9)
    assert stats["defender/update/kl"] > 1e-3


def test_second_ppo_epoch_clips_where_the_table_says():
    # lr is large enough that after the first step some ratios leave [0.8, 1.2].
    before, seen, stats = _run_update(lr=0.05, ppo_epochs=2)
    assert len(seen) == 2
    (g1, p1), (g2, p2) = seen
    _assert_same(g1, _reference_grads(before, _samples(False), mode="token_mean"))
    moved = copy.deepcopy(before)
    moved.load_state_dict(p2)
    want = _reference_grads(moved, _samples(False), mode="token_mean", old_model=before)
    _assert_same(g2, want)
    # the clip table: A > 0 clipped above 1 + eps, A < 0 clipped below 1 - eps
    clipped = total = 0
    for prompt, completion, a in _samples(False):
        with torch.no_grad():
            ratio = torch.exp(_logp(moved, prompt, completion) - _logp(before, prompt, completion))
        for r in ratio.tolist():
            total += 1
            clipped += (a > 0 and r > 1.2) or (a < 0 and r < 0.8)
    assert 0 < clipped < total, f"{clipped}/{total} tokens clipped: the test needs some of each"
    # epoch 1 is on-policy (nothing clipped); the logged fraction is the mean over both epochs
    assert stats["defender/update/clip_frac"] == pytest.approx(clipped / total / 2, rel=1e-6)
    assert math.isfinite(stats["defender/update/grad_norm"])
