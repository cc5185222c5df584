"""The tests' tiny random Llama shapes, in one place.

`XS` (one layer, 16 wide) is for plumbing tests that only need some model; `S` (two layers, 32
wide) is for tests that decode, train or adapt one. A test passes its vocabulary and token ids,
and any field it depends on (a context length, a head count), as keyword overrides.

Imported by test modules (`from tiny_models import tiny_llama_config`) and by the scripts the
tests start (`distributed_train.py`): pytest and `python tests/<script>.py` both put this folder
on the path.
"""

from __future__ import annotations

XS = dict(
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=2,
)
S = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
)


def tiny_llama_config(vocab_size: int, shape: dict = S, **overrides):
    """A LlamaConfig of `shape` (XS or S) with `vocab_size`; `overrides` set any other field."""
    from transformers import LlamaConfig  # heavy: loaded by the tests that build a model

    return LlamaConfig(vocab_size=vocab_size, **{**shape, **overrides})
