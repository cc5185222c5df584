"""Decode-step attention over a KV cache kept in segments, each read once by all the rows sharing it.

After a shared prefill (`sampling._prefill`, `share_prompts`) the G rows of a group hold G copies
of their prompt's keys and values, and every attacker prompt a copy of the template head; a decode
step then reads all those copies, and transformers repeats the model's KV heads to its query heads
(SmolLM2: 3 -> 9) before SDPA whenever a mask is passed: per step, 3 x G reads of each prompt's
cache, more bytes than the weights for the attacker's ~370-token prompts.

Here the cache is segments instead: the common head (one row), each distinct prompt's rest (one
row per prompt, its own left padding) and each row's generated tokens (a pre-allocated buffer
written one slot a step). A decode step's query attends to each segment separately: the queries of
the rows that share a segment row are stacked on its KV heads (grouped-query attention without the
repeat), so a segment's keys are read once per step whatever G is. The segments' softmax pieces
are combined exactly by their log-sum-exp (the max and the sum of each piece). The result is the
same attention up to float rounding (sums in pieces): ulps, like the shared prefill itself, so only
the `share_prompts` path uses it (`tests/test_prefix_share.py` checks the draws and log-probs).

Used for causal-LM attention that is plain scaled dot-product with grouped KV heads and no sliding
window (`supported`); the decode loop switches the model's attention implementation to `NAME` for
its decode steps and back after (the prefill runs on the model's own).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

NAME = "magic_segments"
# Model families whose attention is softmax(q k^T * scaling + mask) v over GQA heads, with the
# rotary embedding applied before the attention function (nothing inside it that this would skip).
FAMILIES = {"llama", "mistral", "qwen2", "qwen3"}


def supported(model: Any) -> bool:
    """A float32 / float64 model of `FAMILIES` on full attention, SDPA or eager (half precision
    would sum the pieces in half precision, where SDPA accumulates in float32)."""
    import torch

    config = getattr(model, "config", None)
    if next(model.parameters()).dtype not in (torch.float32, torch.float64):
        return False
    if getattr(config, "model_type", None) not in FAMILIES:
        return False
    if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    sliding = getattr(config, "sliding_window", None) if config.model_type != "llama" else None
    layer_types = getattr(config, "layer_types", None) or []
    if sliding and getattr(config, "use_sliding_window", True):
        return False
    return all(t == "full_attention" for t in layer_types)


@dataclass
class Level:
    """One segment's rows: `slots` [N, C] the batch rows reading each of its N rows (C the most of
    any; empty slots point at a zero row past the batch) and `where` [B] each batch row's place
    in the flattened [N * C] slots. `mask` [N, L] marks its real positions (None: all real)."""

    mask: torch.Tensor | None
    slots: torch.Tensor
    where: torch.Tensor


def level(row_of: torch.Tensor, n: int, mask: torch.Tensor | None) -> Level:
    """The `Level` of a segment with `n` rows read by batch rows `row_of` ([B]: each one's row)."""
    import torch

    b = row_of.shape[0]
    counts = torch.bincount(row_of, minlength=n)
    c = max(int(counts.max()), 1)
    order = torch.argsort(row_of, stable=True)
    sorted_rows = row_of[order]
    rank = torch.arange(b, device=row_of.device) - (counts.cumsum(0) - counts)[sorted_rows]
    slots = torch.full((n, c), b, dtype=torch.long, device=row_of.device)
    slots[sorted_rows, rank] = order
    where = torch.empty(b, dtype=torch.long, device=row_of.device)
    where[order] = sorted_rows * c + rank
    return Level(mask, slots, where)


class SegmentLayer:
    """One decoder layer's cache: the prompt segments' keys and values (fixed after the prefill)
    and the rows' generated ones, in a buffer of `capacity` slots written one a step."""

    def __init__(
        self, prompt_kv: list[tuple[torch.Tensor, torch.Tensor]], rows: int, capacity: int
    ):
        k0 = prompt_kv[0][0]
        self.prompt_kv = prompt_kv
        self.prompt_len = sum(k.shape[-2] for k, _ in prompt_kv)
        shape = (rows, k0.shape[1], capacity, k0.shape[-1])
        self.buf_k, self.buf_v = k0.new_empty(shape), k0.new_empty(shape)
        self.length = 0
        self.is_initialized = True
        self.is_sliding = False

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
        start, self.length = self.length, self.length + key_states.shape[-2]
        self.buf_k[:, :, start : self.length] = key_states
        self.buf_v[:, :, start : self.length] = value_states
        return self.buf_k[:, :, : self.length], self.buf_v[:, :, : self.length]

    def get_seq_length(self, *args: Any, **kwargs: Any) -> int:
        return self.prompt_len + self.length

    def get_mask_sizes(self, query_length: int, *args: Any, **kwargs: Any) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def batch_select_indices(self, indices: Any) -> None:
        self.buf_k, self.buf_v = self.buf_k[indices], self.buf_v[indices]


class Segments:
    """The decode loop's segmented cache: `levels` (shared by all layers) and a `SegmentLayer` per
    decoder layer, installed into `cache.layers`. Passed to the model as `segments=` so that the
    attention function (`attention`) finds them."""

    def __init__(self, cache: Any, prompt_kv: list, levels: list[Level], row_of: list, cap: int):
        self.cache = cache
        self.levels = levels
        self.row_of = row_of  # per prompt level: [B] the segment row each batch row reads
        rows = levels[0].where.shape[0]
        cache.layers = [SegmentLayer(kv, rows, cap) for kv in prompt_kv]

    def select(self, keep: torch.Tensor) -> None:
        """Keep the batch rows `keep` (finished rows dropped): their buffers and slot tables."""
        for layer in self.cache.layers:
            layer.batch_select_indices(keep)
        self.row_of = [r[keep] for r in self.row_of]
        self.levels = [
            level(r, lv.slots.shape[0], lv.mask)
            for r, lv in zip(self.row_of, self.levels, strict=True)
        ]

    def decode(self, length: int) -> None:
        """No mask: each segment carries its own (`Level.mask`), the generated slots are all real."""
        return None


@contextmanager
def attending(model: Any, on: bool) -> Iterator[None]:
    """While on, the model's attention is `attention` (registered as `NAME`); restored after."""
    if not on:
        yield
        return
    register()
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before


def attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    segments: Segments | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """softmax(q k^T * scaling) v of one new token per row over the prompt segments and the row's
    own generated keys (`key`, `value`: [B, Hkv, S, D] from `SegmentLayer.update`), combined by
    log-sum-exp. Returns [B, 1, H, D] like transformers' SDPA function."""
    import torch

    assert segments is not None and query.shape[2] == 1, "segment attention decodes one token"
    b, h, _, d = query.shape
    hkv = key.shape[1]
    g = h // hkv
    scaling = d**-0.5 if scaling is None else scaling
    # Query head j * g + i reads KV head j (transformers' repeat_kv order).
    q = query.reshape(b, hkv, g, d) * scaling
    q_pad = torch.cat([q, q.new_zeros((1, hkv, g, d))])
    layer = segments.cache.layers[module.layer_idx]
    outs, maxes, sums = [], [], []
    for lv, (k, v) in zip(segments.levels, layer.prompt_kv, strict=True):
        n, c = lv.slots.shape
        qs = q_pad[lv.slots].permute(0, 2, 1, 3, 4).reshape(n, hkv, c * g, d)
        scores = qs @ k.transpose(-1, -2)  # [N, Hkv, C * g, L]
        if lv.mask is not None:
            scores.masked_fill_(~lv.mask[:, None, None, :], -math.inf)
        o, m, s = _piece(scores, v)
        # back to batch rows: [N, Hkv, C, g, .] -> [N * C, Hkv, g, .] -> [B, Hkv, g, .]
        outs.append(_rows(o, n, hkv, c, g, lv.where))
        maxes.append(_rows(m, n, hkv, c, g, lv.where))
        sums.append(_rows(s, n, hkv, c, g, lv.where))
    o, m, s = _piece(q @ key.transpose(-1, -2), value)
    outs.append(o)
    maxes.append(m)
    sums.append(s)
    top = torch.stack(maxes).amax(0)
    num = den = None
    for o, m, s in zip(outs, maxes, sums, strict=True):
        w = (m - top).exp_()
        num = o * w if num is None else num.addcmul_(o, w)
        den = s * w if den is None else den.addcmul_(s, w)
    out = num / den  # [B, Hkv, g, D]
    return out.reshape(b, h, 1, d).transpose(1, 2), None


def _piece(scores: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(unnormalised exp(scores - max) @ v, max, sum of exp) of one segment's scores."""
    m = scores.amax(-1, keepdim=True)
    p = (scores - m).exp_()
    return p @ v, m, p.sum(-1, keepdim=True)


def _rows(x: torch.Tensor, n: int, hkv: int, c: int, g: int, where: torch.Tensor) -> torch.Tensor:
    x = x.reshape(n, hkv, c, g, x.shape[-1]).transpose(1, 2).reshape(n * c, hkv, g, x.shape[-1])
    return x[where]


def register() -> None:
    """Make `NAME` an attention implementation transformers can dispatch to (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, attention)
