"""The `Policy` edge: chats in, sampled completions (`Generation`s) out; plus token log-probs.

- `HFPolicy` wraps a Hugging Face causal LM and its tokenizer with its own decoding loop: one
  left-padded batch, one prefill, then one token per step through the KV cache, temperature + top-p
  sampling from a seeded `torch.Generator`, per-row EOS tracking and an early stop once every row has
  finished. The same class serves the sandbox's tiny models on CPU and 7B models on GPU.
- `sequence_logprobs` scores given completions under a model (with grad: the GRPO trainer calls it)
  using the same left-padded layout as `generate`, so greedy tokens are the argmax of its log-probs.
- Rows that repeat a prompt (a GRPO group's G samples) can share its computation (`share_prompts`,
  set from `grpo.share_prompts`): `generate` prefills it once and, on Llama-family models, its
  decode steps read that cache once for all the rows (`segments.py`; other models get copies);
  `sequence_logprobs` forwards it once and the completions against its cache (the same gradient).
- `ScriptedPolicy` is the fake: a Python function writes each reply; no torch, no model.

Departures from the reference (which samples with vLLM): sampling is a plain PyTorch loop over
HF models. Against `model.generate` it saves, per step: drawing V random numbers per row (one
uniform per row, inverse CDF, see `_sample`), copying the whole KV cache (`_kv_cache` writes into a
growing buffer), the 4D mask construction (`_StepMask`), and the rows that already finished (they
are dropped from the batch, `COMPACT_AT`). `benchmarks/sampling.py` measures it (1.2-1.3x with no
early stops, ~1.6-1.8x when rows stop at different lengths, sandbox size, 1 CPU thread).

Importing this module is light: torch and transformers load inside the functions that need them.

Run: `python -m pytest tests/test_policy.py`; speed: `python benchmarks/sampling.py`.
"""

from magic_rl.policy.base import Chat, Generation, Policy, ScriptedPolicy, encode_prompts
from magic_rl.policy.hf import HFPolicy, check_model_path, quiet_transformers, resolve_device
from magic_rl.policy.logprobs import sequence_logprobs
from magic_rl.policy.sampling import left_pad, positions

__all__ = [
    "Chat",
    "Generation",
    "HFPolicy",
    "Policy",
    "ScriptedPolicy",
    "check_model_path",
    "encode_prompts",
    "left_pad",
    "positions",
    "quiet_transformers",
    "resolve_device",
    "sequence_logprobs",
]
