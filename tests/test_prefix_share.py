"""Rows that share their prompt share its computation, and nothing else changes.

- The update's forward (`sequence_logprobs`, `share_prompts=True`: each distinct prompt once, the
  completions against its KV cache) gives the log-probs and the gradient of the unshared forward
  (one `[prompt | completion]` forward per sample) on a tiny float64 Llama, to 1e-10 of the largest
  entry. Llama's RMSNorm computes in float32 whatever the model's dtype, which alone puts the two
  gradients ~1e-8 apart (they sum the G rows' gradients in a different order before it), so the test
  swaps in a float64 RMSNorm: what is left is float64 rounding.
- The sampler (`_decode`) prefills each distinct prompt once and copies its KV cache to its rows;
  for one seeded generator it draws the same tokens as prefilling every row, with log-probs equal
  to 1e-6. Not bit for bit: the shorter prefill's matmuls round differently on CPU (an ulp of the
  logits on this model), which is why `grpo.share_prompts` is a switch.

Run: `python -m pytest -q tests/test_prefix_share.py` (a few seconds).
"""

from __future__ import annotations

import pytest
import torch
from tiny_models import S, tiny_llama_config

from magic_rl.policy import sequence_logprobs
from magic_rl.policy.sampling import _decode, common_head, unique_rows

PAD = 0
VOCAB = 40
# Three distinct prompts of different lengths (left padding), repeated out of order; ragged
# completions, one of a single token.
PROMPTS = [[3, 4, 5, 6]] * 3 + [[7, 8]] * 2 + [[9, 10, 11, 12, 13, 14]] + [[3, 4, 5, 6]]
COMPLETIONS = [[5, 6, 7], [8], [9, 10, 11, 12, 13], [14, 15], [16, 17, 18, 19], [20], [21, 22]]


@pytest.fixture
def float64_rmsnorm(monkeypatch):
    """Llama's RMSNorm in the input's dtype (transformers casts to float32 inside)."""
    from transformers.models.llama import modeling_llama

    def forward(self, h):
        return self.weight * (
            h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        )

    monkeypatch.setattr(modeling_llama.LlamaRMSNorm, "forward", forward)


def _model(dtype=torch.float64, seed: int = 0):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(tiny_llama_config(VOCAB, S, pad_token_id=PAD)).to(dtype)


def _logprobs_and_grads(model, share: bool, **kwargs):
    model.zero_grad()
    logp, mask = sequence_logprobs(model, PROMPTS, COMPLETIONS, PAD, share_prompts=share, **kwargs)
    # Distinct weights per row and token, so each sample's gradient counts separately.
    weights = torch.arange(1, logp.numel() + 1, dtype=logp.dtype).reshape(logp.shape)
    (logp * weights).sum().backward()
    return logp.detach(), mask, [p.grad.clone() for p in model.parameters()]


def _count_prompt_rows(model) -> list[int]:
    """Rows of each forward call (recorded through a pre-hook on the decoder)."""
    rows: list[int] = []
    model.model.register_forward_pre_hook(
        lambda _m, _a, kw: rows.append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    return rows


@pytest.mark.parametrize(
    "kwargs", [{}, {"temperature": 0.7}, {"micro_batch_size": 3}], ids=["plain", "temp", "micro"]
)
def test_shared_prompt_forward_matches_the_unshared_one(float64_rmsnorm, kwargs):
    model = _model()
    want_lp, want_mask, want_grads = _logprobs_and_grads(model, share=False, **kwargs)
    rows = _count_prompt_rows(model)
    got_lp, got_mask, got_grads = _logprobs_and_grads(model, share=True, **kwargs)
    if "micro_batch_size" not in kwargs:
        assert rows == [3, len(PROMPTS)]  # the 3 distinct prompts, then the 7 completions
    assert torch.equal(got_mask, want_mask)
    assert float((got_lp - want_lp).abs().max()) <= 1e-12
    scale = max(float(g.abs().max()) for g in want_grads)
    worst = max(float((a - b).abs().max()) for a, b in zip(got_grads, want_grads, strict=True))
    assert worst <= 1e-10 * scale, f"gradients differ by {worst:.3g} (largest entry {scale:.3g})"


def test_single_token_completions_use_the_prompt_forward_only(float64_rmsnorm):
    model = _model()
    comps = [[5], [6], [7], [8], [9], [10], [11]]
    want, _ = sequence_logprobs(model, PROMPTS, comps, PAD, share_prompts=False)
    rows = _count_prompt_rows(model)
    got, _ = sequence_logprobs(model, PROMPTS, comps, PAD, share_prompts=True)
    assert rows == [3]
    assert float((got - want).detach().abs().max()) <= 1e-12


@pytest.mark.parametrize(
    ("rows", "expected"),
    [([[1, 2, 3], [1, 2, 4]], 2), ([[1, 2], [1, 2, 3]], 1), ([[1, 2], [1, 2]], 1), ([[1], [2]], 0)],
)
def test_common_head_leaves_every_row_a_token(rows, expected):
    assert common_head(rows) == expected


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[1, 2], [1, 2], [3]], ([0, 2], [0, 0, 1])),
        ([[3], [1, 2], [3], [1, 2]], ([0, 1], [0, 1, 0, 1])),
        ([[1], [2]], None),  # nothing repeats: nothing to share
        ([[1, 2], [1]], None),  # a prefix is not the same prompt
    ],
)
def test_unique_rows(rows, expected):
    assert unique_rows(rows) == expected


# A template-like head of 40 tokens shared by every prompt (SHARED_HEAD_MIN is 32).
HEAD = [5 + (7 * i) % 30 for i in range(40)]


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.8, 0.9), (0.0, 1.0)])
@pytest.mark.parametrize("head", [[], HEAD], ids=["distinct", "common-head"])
def test_shared_prefill_draws_the_same_samples(temperature, top_p, head):
    model = _model(torch.float32).eval()
    prompts = [head + p for p in [[3, 4, 5, 6]] * 4 + [[7, 8]] * 4 + [[9, 10, 11, 12, 13, 14]] * 4]
    out = {}
    for share in (False, True):
        rows = _count_prompt_rows(model) if share else []
        generator = torch.Generator().manual_seed(7)
        with torch.inference_mode():
            out[share] = _decode(
                model, prompts, PAD, [2, 3], temperature, top_p, 24, generator, "cpu", share
            )
        model.model._forward_pre_hooks.clear()
    # the prefill saw each distinct prompt once (after the head, once for all)
    assert rows[:2] == ([1, 3] if head else [3, len(prompts)])
    tokens, logps, stopped = out[True]
    assert (tokens, stopped) == (out[False][0], out[False][2])
    if temperature:  # rows left the batch at different steps (compaction)
        assert any(stopped) and not all(stopped)
    for got, want in zip(logps, out[False][1], strict=True):
        assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("share", [False, True])
def test_the_trainer_forwards_a_groups_prompt_once_when_asked(share):
    from types import SimpleNamespace

    from magic_rl.config import GRPOConfig, PolicyConfig
    from magic_rl.records import Episode, RewardBreakdown, Role, Seed, Turn
    from magic_rl.trainer import GRPOTrainer

    model = _model()
    seed = Seed("s", "PLACEHOLDER request", "harmful")
    episodes = [
        Episode(
            seed, (Turn("a", "", "a", "r", reply_prompt_ids=tuple(p), reply_ids=tuple(c)),), g, k
        )
        for g, p in enumerate([[3, 4, 5], [7, 8]])
        for k, c in enumerate([[5, 6], [7], [8, 9, 10], [11]])
    ]
    rewards = [RewardBreakdown(r) for r in [1.0, -1.0, 0.5, 0.0] * 2]
    gcfg = GRPOConfig(micro_batch_size=8, share_prompts=share)
    trainer = GRPOTrainer(
        Role.DEFENDER, SimpleNamespace(model=model, pad_id=PAD), PolicyConfig(model="t"), gcfg
    )
    rows = _count_prompt_rows(model)
    trainer.update(episodes, rewards)
    assert rows == ([2, 8] if share else [8])


@pytest.mark.parametrize("share", [False, True])
def test_the_loop_hands_the_switch_to_its_policies(monkeypatch, tmp_path, share):
    from magic_rl.config import load_config
    from magic_rl.loop import run as loop_run
    from magic_rl.policy import HFPolicy

    monkeypatch.setattr(loop_run, "load_policy", lambda *a, **k: HFPolicy.__new__(HFPolicy))
    cfg = load_config("sandbox", [f"grpo.share_prompts={str(share).lower()}"])
    policies = loop_run.build_policies(cfg, tmp_path, "cpu")
    assert [p.share_prompts for p in policies.values()] == [share, share]


def _reference_attention(q, keys, values, masks):
    """softmax(q k^T / sqrt(d)) v over the concatenated keys, KV heads repeated (HF's repeat_kv)."""
    g = q.shape[1] // keys.shape[1]
    k, v = keys.repeat_interleave(g, 1), values.repeat_interleave(g, 1)
    scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~masks[:, None, None, :], float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2)


@pytest.mark.parametrize("keep", [None, [0, 2, 3, 6]], ids=["all-rows", "after-compaction"])
def test_segment_attention_is_the_attention_over_the_whole_cache(keep):
    """Three segments (a one-row head, 3 distinct prompts with left pads, 7 rows' own tokens) give
    what one attention over each row's concatenated [head | prompt | generated] cache gives."""
    from types import SimpleNamespace

    from magic_rl.policy import segments

    torch.manual_seed(0)
    hkv, g, d, head, width, gen = 2, 3, 8, 5, 4, 3
    row_prompt = torch.tensor([0, 0, 1, 2, 1, 0, 2])  # uneven groups, out of order
    b = len(row_prompt)
    head_kv = [torch.randn(1, hkv, head, d, dtype=torch.float64) for _ in range(2)]
    prompt_kv = [torch.randn(3, hkv, width, d, dtype=torch.float64) for _ in range(2)]
    prompt_mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1]], dtype=torch.bool)
    gen_kv = [torch.randn(b, hkv, gen, d, dtype=torch.float64) for _ in range(2)]
    q = torch.randn(b, hkv * g, 1, d, dtype=torch.float64)
    row_of = [torch.zeros(b, dtype=torch.long), row_prompt]
    levels = [segments.level(row_of[0], 1, None), segments.level(row_prompt, 3, prompt_mask)]
    cache = SimpleNamespace(layers=None)
    seg = segments.Segments(cache, [[tuple(head_kv), tuple(prompt_kv)]], levels, row_of, 4)
    seg.cache.layers[0].update(*gen_kv)
    if keep is not None:
        keep_t = torch.tensor(keep)
        seg.select(keep_t)
        q, row_prompt = q[keep_t], row_prompt[keep_t]
        gen_kv = [x[keep_t] for x in gen_kv]
    n = len(row_prompt)
    layer = seg.cache.layers[0]
    got, _ = segments.attention(
        SimpleNamespace(layer_idx=0), q, layer.buf_k[:, :, :gen], layer.buf_v[:, :, :gen],
        None, segments=seg,
    )  # fmt: skip
    keys, values = (
        torch.cat([h.expand(n, -1, -1, -1), p[row_prompt], x], 2)
        for h, p, x in zip(head_kv, prompt_kv, gen_kv, strict=True)
    )
    masks = torch.cat(
        [
            torch.ones(n, head, dtype=torch.bool),
            prompt_mask[row_prompt],
            torch.ones(n, gen, dtype=torch.bool),
        ],
        1,
    )
    want = _reference_attention(q, keys, values, masks)
    assert got.shape == want.shape == (n, 1, hkv * g, d)
    assert float((got - want).abs().max()) <= 1e-12


def test_the_shared_sampler_decodes_through_the_segments(monkeypatch):
    """share_prompts on a Llama: decode steps run the segment attention (not SDPA over G copies),
    and the model's attention implementation is restored after."""
    from magic_rl.policy import segments

    calls = []
    real = segments.attention
    monkeypatch.setattr(segments, "attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = _model(torch.float32).eval()
    prompts = [[3, 4, 5, 6]] * 3 + [[7, 8]] * 3
    with torch.inference_mode():
        _decode(
            model, prompts, PAD, [-1], 1.0, 1.0, 4, torch.Generator().manual_seed(0), "cpu", True
        )
    assert len(calls) == 3 * model.config.num_hidden_layers  # 3 decode steps after the prefill
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("share", [False, True])
def test_eager_attention_with_left_padding_gives_the_sdpa_logprobs(share):
    """`sequence_logprobs` under attn_implementation="eager" with left-padded prompts gave NaN on a
    float64 model (transformers' eager softmax runs in float32, where float64's mask minimum is
    -inf: a pad's query row is all -inf). Eager's softmax in float32 also sets the tolerance."""
    want, mask = sequence_logprobs(_model(), PROMPTS, COMPLETIONS, PAD)
    eager = _model()
    eager.config._attn_implementation = "eager"
    with torch.no_grad():
        got, _ = sequence_logprobs(eager, PROMPTS, COMPLETIONS, PAD, share_prompts=share)
    assert bool(torch.isfinite(got).all())
    assert float(((got - want.detach()) * mask).abs().max()) <= 1e-6
