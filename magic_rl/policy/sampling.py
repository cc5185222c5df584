"""The decoding loop behind `HFPolicy.generate_ids`: one left-padded batch, one prefill, then one
token per step through a growing KV cache, temperature + top-p sampling from a seeded generator, and
finished rows dropped from the batch (`COMPACT_AT`).

Rows with the same prompt (the G samples of a GRPO group) can share its prefill (`share_prompts`,
`grpo.share_prompts`): each distinct prompt is prefilled once and its KV cache copied to its rows,
and a head common to the distinct prompts (the attacker template) once for all of them. A
row keeps its width, left padding and positions, so it computes the same function as in the full
batch. On Llama-family models (`segments.supported`) the cache is not copied to the rows at all:
it stays in segments (head, distinct prompts, each row's own tokens) that a decode step's
attention reads once each (policy/segments.py); other models get the copies. Either way the prefill's matmuls have fewer rows (and the
segments sum the attention in pieces), and CPU kernels block (and so round) differently by
shape: logits can move by an ulp (a tiny Llama: 4e-8). The same seeded generator then draws the
same tokens unless a uniform lands within that distance of a CDF step, and their log-probs agree
to ~1e-7, not bit for bit; hence a switch, off where runs must repeat exactly (the sandbox)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from magic_rl.policy import segments

if TYPE_CHECKING:
    import torch


def left_pad(
    rows: Sequence[Sequence[int]], pad_id: int, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, L] ids and bool mask, left-padded to the longest row."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.as_tensor(r, dtype=torch.long)
            mask[i, width - len(r) :] = True
    return ids.to(device), mask.to(device)


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids for a left-padded [B, L] mask: 0 at each row's first real token (pads get 0)."""
    return (mask.long().cumsum(-1) - 1).clamp_(min=0)


class _StepMask:
    """The attention mask handed to the model at each decode step.

    For SDPA / eager attention over full (non-sliding) layers the 4D mask is built here and sliced
    per step: HF takes a ready 4D mask as is and skips its own per-step mask construction. Other
    attention kinds (flash, sliding windows) get the 2D mask and build their own.
    """

    def __init__(self, model: Any, prompt_mask: torch.Tensor, max_new_tokens: int):
        import torch

        b, p = prompt_mask.shape
        self.mask2d = torch.ones(
            (b, p + max_new_tokens), dtype=torch.bool, device=prompt_mask.device
        )
        self.mask2d[:, :p] = prompt_mask
        config = getattr(model, "config", None)
        self.impl = getattr(config, "_attn_implementation", None)
        sliding = getattr(config, "sliding_window", None) or getattr(config, "layer_types", None)
        self.fast = self.impl in ("sdpa", "eager") and not sliding
        self.dtype = next(model.parameters()).dtype
        self._build4d()

    def _build4d(self) -> None:
        import torch

        if not self.fast:
            return
        # The query is always the newest token, so a decode step's mask has no causal part.
        allowed = self.mask2d[:, None, None, :]
        if self.impl == "sdpa":
            self.mask4d = allowed
        else:
            self.mask4d = torch.zeros(allowed.shape, dtype=self.dtype, device=allowed.device)
            self.mask4d.masked_fill_(~allowed, torch.finfo(self.dtype).min)

    def select(self, keep: torch.Tensor) -> None:
        self.mask2d = self.mask2d[keep]
        self._build4d()

    def decode(self, length: int) -> torch.Tensor:
        """Mask for a decode step when the sequence (cache + new token) has `length` positions."""
        return self.mask4d[..., :length] if self.fast else self.mask2d[:, :length]


# Drop finished rows from the batch once the live ones are at most this share of it: each drop
# copies the KV cache, so it pays only when it removes a good part of the per-step work.
COMPACT_AT = 0.75


def _decode(
    model: Any,
    prompts: Sequence[Sequence[int]],
    pad_id: int,
    eos_ids: Sequence[int],
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    generator: torch.Generator,
    device: Any,
    share_prompts: bool = False,
) -> tuple[list[list[int]], list[list[float]], list[bool]]:
    """Sample up to `max_new_tokens` per prompt (fewer where the model's positions run out); rows
    are cut after their first EOS. `share_prompts=False` prefills every row, repeats included (the
    old loop, kept for `benchmarks/smollm2.py` and the tests that compare the two)."""
    import torch

    ids, mask = left_pad(prompts, pad_id, device)
    b, p = ids.shape
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if limit:
        if p >= limit:
            raise ValueError(
                f"generate: a prompt of {p} tokens fills the model's {limit} positions; "
                "lower max_prompt_tokens"
            )
        # Past its trained length a model's output is noise; such rows end as "length".
        max_new_tokens = min(max_new_tokens, limit - p)
    eos = torch.as_tensor(list(eos_ids), device=device)
    cache = _kv_cache(model)
    cache_arg = {cache_kwarg(model): cache}
    out_tokens = torch.full((b, max_new_tokens), pad_id, dtype=torch.long, device=device)
    out_lps = torch.zeros((b, max_new_tokens), dtype=torch.float, device=device)
    rows = torch.arange(b, device=device)  # original row of each live batch entry
    done = torch.zeros(b, dtype=torch.bool, device=device)

    pos = positions(mask)[:, -1:]
    if share_prompts and segments.supported(model):
        logits, seg = _prefill_segments(
            model, prompts, ids, mask, pad_id, cache_arg, max_new_tokens
        )
        step_mask, step_kwargs = seg, {"segments": seg}
    else:
        logits, mask = _prefill(model, prompts, ids, mask, pad_id, cache_arg, share_prompts)
        step_mask, step_kwargs = _StepMask(model, mask, max_new_tokens), {}
    with segments.attending(model, bool(step_kwargs)):
        for t in range(max_new_tokens):
            token, lp = _sample(logits, temperature, top_p, generator)
            out_tokens[rows, t] = token
            out_lps[rows, t] = lp
            done |= torch.isin(token, eos)
            live = len(done) - int(done.sum())
            if live == 0 or t == max_new_tokens - 1:
                break
            if live <= COMPACT_AT * len(done):
                keep = (~done).nonzero()[:, 0]
                if not step_kwargs:
                    cache.batch_select_indices(keep)
                step_mask.select(keep)
                rows, token, pos, done = rows[keep], token[keep], pos[keep], done[keep]
            pos = pos + 1
            logits = model(
                input_ids=token[:, None],
                attention_mask=step_mask.decode(p + t + 1),
                position_ids=pos,
                **cache_arg,
                **step_kwargs,
                use_cache=True,
            ).logits[:, -1, :]

    eos_set = set(eos_ids)
    tokens, row_lps, stopped = [], [], []
    for tok_row, lp_row in zip(out_tokens.tolist(), out_lps.tolist(), strict=True):
        n = next((i + 1 for i, x in enumerate(tok_row) if x in eos_set), None)
        stopped.append(n is not None)
        n = n or max_new_tokens
        tokens.append(tok_row[:n])
        row_lps.append(lp_row[:n])
    return tokens, row_lps, stopped


# Distinct prompts that open with this many common tokens (the attacker template: 349 of ~370 for
# SmolLM2) prefill that head once; shorter heads are not worth the extra forward.
SHARED_HEAD_MIN = 32


def _prefill(
    model: Any,
    prompts: Sequence[Sequence[int]],
    ids: torch.Tensor,
    mask: torch.Tensor,
    pad_id: int,
    cache_arg: dict[str, Any],
    share: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, V] next-token logits after the prompts, the cache filled for all B rows, and the [B, L]
    mask of the cache's layout. Shared: `_prefill_distinct`, then the cache's rows and the logits
    gathered back to the batch's order."""
    import torch

    if not share:
        return _last_logits(model, ids, mask, None, cache_arg), mask
    logits, mask, inverse, _ = _prefill_distinct(model, prompts, ids, mask, pad_id, cache_arg)
    if inverse is None:
        return logits, mask
    index = torch.as_tensor(inverse, device=logits.device)
    next(iter(cache_arg.values())).batch_select_indices(index)
    return logits[index], mask[index]


def _prefill_distinct(
    model: Any,
    prompts: Sequence[Sequence[int]],
    ids: torch.Tensor,
    mask: torch.Tensor,
    pad_id: int,
    cache_arg: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor, list[int] | None, int]:
    """One row per distinct prompt through the model: ([U, V] logits, [U, L] mask of the cache's
    layout, each batch row's distinct row (None: every row distinct and no head, the plain
    prefill), tokens of the common head (0: none)).

    The distinct rows keep the batch's width (the longest prompt is among them). When they also
    open with a common head (`SHARED_HEAD_MIN`), the head is prefilled once, its cache copied to
    each distinct row, and the rest of each prompt follows it left-padded: the layout is
    [head | pads | rest], positions still count real tokens only, so each row computes the same
    function with its pads moved after the head.
    """
    import torch

    first = unique_rows(prompts)
    keep, inverse = first or (list(range(len(prompts))), list(range(len(prompts))))
    rows = [prompts[i] for i in keep]
    head = common_head(rows)
    if len(rows) > 1 and head >= SHARED_HEAD_MIN:
        ones = mask.new_ones((1, head))
        _last_logits(model, ids.new_tensor([list(rows[0][:head])]), ones, None, cache_arg)
        next(iter(cache_arg.values())).batch_select_indices(
            torch.zeros(len(rows), dtype=torch.long, device=ids.device)
        )
        rest, rest_mask = left_pad([r[head:] for r in rows], pad_id, ids.device)
        mask = torch.cat([ones.expand(len(rows), head), rest_mask], 1)
        return _last_logits(model, rest, mask, head, cache_arg), mask, inverse, head
    if first is None:
        return _last_logits(model, ids, mask, None, cache_arg), mask, None, 0
    return _last_logits(model, ids[keep], mask[keep], None, cache_arg), mask[keep], inverse, 0


def _prefill_segments(
    model: Any,
    prompts: Sequence[Sequence[int]],
    ids: torch.Tensor,
    mask: torch.Tensor,
    pad_id: int,
    cache_arg: dict[str, Any],
    max_new_tokens: int,
) -> tuple[torch.Tensor, segments.Segments]:
    """`_prefill_distinct`, its cache left as segments instead of gathered to the B rows: [B, V]
    next-token logits and the decode loop's `segments.Segments` (policy/segments.py): the head
    (one row, if any), the distinct prompts' rest (U rows), and room for `max_new_tokens` per row."""
    import torch

    logits, mask, inverse, head = _prefill_distinct(model, prompts, ids, mask, pad_id, cache_arg)
    u = logits.shape[0]
    index = torch.as_tensor(inverse if inverse is not None else range(u), device=logits.device)
    if head:
        cuts, masks = [(0, 1, 0, head), (0, u, head, None)], [None, mask[:, head:]]
        row_of = [torch.zeros_like(index), index]
    else:
        cuts, masks, row_of = [(0, u, 0, None)], [mask], [index]
    # Contiguous copies of each segment's keys and values: read every step, written never.
    prompt_kv = [
        [
            (layer.keys[r0:r1, :, c0:c1].contiguous(), layer.values[r0:r1, :, c0:c1].contiguous())
            for r0, r1, c0, c1 in cuts
        ]
        for layer in next(iter(cache_arg.values())).layers
    ]
    levels = [
        segments.level(r, c[1] - c[0], None if m is None or bool(m.all()) else m)
        for r, c, m in zip(row_of, cuts, masks, strict=True)
    ]
    return logits[index], segments.Segments(
        next(iter(cache_arg.values())), prompt_kv, levels, row_of, max_new_tokens
    )


def _last_logits(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, start: int | None, cache_arg: dict
) -> torch.Tensor:
    """[N, V] logits of the last position; `mask` covers the cache too, the ids from `start`."""
    pos = positions(mask)
    return model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos if start is None else pos[:, start:],
        **cache_arg,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1, :]


def common_head(rows: Sequence[Sequence[int]]) -> int:
    """Tokens every row opens with, leaving each row at least one token of its own."""
    n = min(len(r) for r in rows) - 1
    for i in range(max(n, 0)):
        if any(r[i] != rows[0][i] for r in rows):
            return i
    return max(n, 0)


def unique_rows(rows: Sequence[Sequence[int]]) -> tuple[list[int], list[int]] | None:
    """(index of each distinct row's first occurrence, each row's distinct-row number), or None when
    every row is distinct (nothing to share)."""
    number: dict[tuple[int, ...], int] = {}
    keep, inverse = [], []
    for i, row in enumerate(rows):
        k = number.setdefault(tuple(row), len(number))
        if k == len(keep):
            keep.append(i)
        inverse.append(k)
    return (keep, inverse) if len(keep) < len(rows) else None


def cache_kwarg(model: Any) -> str:
    """`cache` (transformers >= 5.2x) or `past_key_values` (older and remote-code models)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    params = inspect.signature(base.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _kv_cache(model: Any) -> Any:
    """A `DynamicCache` whose full-attention layers write into buffers that grow by doubling.

    HF's `DynamicLayer` concatenates the new key/value onto the old ones at every step: a copy of the
    whole cache per token, quadratic in length. Here a step writes one slot; the buffer is copied only
    when it doubles. Sliding-window and other special layers keep their own classes.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            self.device = key_states.device
            self.buf_k, self.buf_v = key_states[:, :, :0], value_states[:, :, :0]
            self.length = 0
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            start, self.length = self.length, self.length + key_states.shape[-2]
            if self.length > self.buf_k.shape[-2]:
                self.buf_k = _grow(self.buf_k, start, max(2 * start, self.length, 64))
                self.buf_v = _grow(self.buf_v, start, max(2 * start, self.length, 64))
            self.buf_k[:, :, start : self.length] = key_states
            self.buf_v[:, :, start : self.length] = value_states
            self.keys, self.values = (
                self.buf_k[:, :, : self.length],
                self.buf_v[:, :, : self.length],
            )
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length if self.is_initialized else 0

        def batch_select_indices(self, indices: Any) -> None:
            if self.is_initialized:
                self.buf_k, self.buf_v = self.buf_k[indices], self.buf_v[indices]
                self.keys, self.values = (
                    self.buf_k[:, :, : self.length],
                    self.buf_v[:, :, : self.length],
                )

    cache = DynamicCache(config=model.config)
    cache.layers = [
        GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers
    ]
    return cache


def _grow(buf: torch.Tensor, used: int, capacity: int) -> torch.Tensor:
    new = buf.new_empty((*buf.shape[:2], capacity, buf.shape[-1]))
    new[:, :, :used] = buf[:, :, :used]
    return new


def _sample(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row from [B, V] logits, and its log-prob under the distribution it came from.

    Draws by inverting the CDF with one uniform per row: on CPU, `torch.multinomial` and the
    exponential-race trick both draw V random numbers per row and cost ~50x more than the model's
    per-token work on the sandbox's vocabulary.
    """
    import torch

    logits = logits.float()
    if temperature == 0:
        token = logits.argmax(-1)
        return token, _pick(torch.log_softmax(logits, -1), token)
    logp = torch.log_softmax(logits / temperature, -1)
    if top_p < 1.0:
        logp = _top_p(logp, top_p)
    cdf = logp.exp().cumsum_(-1)
    # u in (0, 1]: a zero-probability token (top-p cut) is never the first index with cdf >= u.
    u = 1.0 - torch.rand((logp.shape[0], 1), generator=generator, device=logp.device)
    token = torch.searchsorted(cdf, u * cdf[:, -1:]).clamp_(max=logp.shape[-1] - 1)[:, 0]
    return token, _pick(logp, token)


def _top_p(logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """Renormalised log-probs of the smallest top set with mass >= top_p (always >= 1 token)."""
    import torch

    sorted_lp, order = logp.sort(-1, descending=True)
    sorted_p = sorted_lp.exp()
    drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= top_p
    drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
    return torch.log_softmax(logp.masked_fill(drop, -math.inf), -1)


def _pick(logp: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    return logp.gather(-1, token[:, None])[:, 0]
