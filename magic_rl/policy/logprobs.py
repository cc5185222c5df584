"""`sequence_logprobs`: token log-probs of given completions under a model, with grad (the GRPO
trainer calls it), in the same left-padded layout as `generate`.

Completions that share their prompt (the G samples of a GRPO group) share its forward
(`share_prompts`): each distinct prompt of a micro-batch goes through the model once, with grad,
filling a KV cache; the cache is gathered to the completions' rows and the completions are forwarded
against it. The gather's backward sums the G rows' gradients into the prompt's keys and values, so
the log-probs and the gradient are those of one forward per sample, up to float rounding (the
attention sums over the prompt and the completion in two pieces instead of one);
`tests/test_prefix_share.py` checks both on a float64 model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from magic_rl.policy.sampling import cache_kwarg, left_pad, positions, unique_rows

if TYPE_CHECKING:
    import torch


def sequence_logprobs(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    pad_id: int,
    *,
    temperature: float = 1.0,
    micro_batch_size: int | None = None,
    share_prompts: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each completion token given its prompt: ([B, T] log-probs, [B, T] float mask).

    T is the longest completion; both outputs are right-padded (log-prob 0, mask 0). Each micro-batch
    is one forward over `[left-padded prompt | right-padded completion]`, the layout `generate` uses,
    with logits computed only for the completion positions (`logits_to_keep`). `temperature` divides
    the logits as the sampler did. Runs with grad unless the caller disables it. With
    `share_prompts`, a micro-batch whose prompts repeat is two forwards instead: its distinct prompts,
    then the completions against their KV cache (module docstring).
    """
    import torch

    if len(prompt_ids) != len(completion_ids):
        raise ValueError(
            f"sequence_logprobs: {len(prompt_ids)} prompts but {len(completion_ids)} completions"
        )
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("sequence_logprobs: every prompt needs at least one token")
    device = next(model.parameters()).device
    width = max((len(c) for c in completion_ids), default=0)
    n = len(prompt_ids)
    if n == 0 or width == 0:
        return torch.zeros((n, width), device=device), torch.zeros((n, width), device=device)
    step = micro_batch_size or n
    parts = [
        _completion_logprobs(
            model,
            prompt_ids[i : i + step],
            completion_ids[i : i + step],
            pad_id,
            width,
            temperature,
            device,
            share_prompts,
        )
        for i in range(0, n, step)
    ]
    logprobs = torch.cat([lp for lp, _ in parts])
    mask = torch.cat([m for _, m in parts])
    return logprobs, mask


def _completion_logprobs(
    model: Any,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    pad_id: int,
    width: int,
    temperature: float,
    device: Any,
    share: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    comp = torch.full((len(completions), width), pad_id, dtype=torch.long)
    comp_mask = torch.zeros((len(completions), width), dtype=torch.bool)
    for i, c in enumerate(completions):
        comp[i, : len(c)] = torch.as_tensor(list(c), dtype=torch.long)
        comp_mask[i, : len(c)] = True
    comp, comp_mask = comp.to(device), comp_mask.to(device)
    shared = unique_rows(prompts) if share else None
    if shared is None:
        logits = _joint_logits(model, left_pad(prompts, pad_id, device), comp, comp_mask)
    else:
        keep, inverse = shared
        prompt = left_pad([prompts[i] for i in keep], pad_id, device)
        index = torch.as_tensor(inverse, device=device)
        logits = _shared_prompt_logits(model, prompt, index, comp, comp_mask)
    if temperature != 1.0:
        logits = logits / temperature
    logprobs = _token_logprobs(logits, comp)
    fmask = comp_mask.to(logprobs.dtype)
    return logprobs * fmask, fmask


def _joint_logits(
    model: Any,
    prompt: tuple[torch.Tensor, torch.Tensor],
    comp: torch.Tensor,
    comp_mask: torch.Tensor,
) -> torch.Tensor:
    """[B, T, V] logits predicting the T completion tokens: one forward of `[prompt | completion]`."""
    import torch

    ids = torch.cat([prompt[0], comp], 1)
    mask = torch.cat([prompt[1], comp_mask], 1)
    # Positions p-1 .. p+T-2 predict the T completion tokens: the last T+1 logits minus the final.
    return model(
        input_ids=ids,
        attention_mask=_model_mask(model, mask, ids.shape[1]),
        position_ids=positions(mask),
        use_cache=False,
        logits_to_keep=comp.shape[1] + 1,
    ).logits[:, :-1, :]


def _shared_prompt_logits(
    model: Any,
    prompt: tuple[torch.Tensor, torch.Tensor],
    index: torch.Tensor,
    comp: torch.Tensor,
    comp_mask: torch.Tensor,
) -> torch.Tensor:
    """The same [B, T, V] logits from U distinct prompts ([U, P] ids and mask) and `index` ([B]: the
    prompt of each completion row): the prompts' forward fills a KV cache and gives the logits of
    the last prompt position (the first completion token's); the cache is gathered to B rows and
    the completion minus its last token (whose prediction nobody scores) is forwarded against it."""
    import torch
    from transformers import DynamicCache

    ids, mask = prompt
    # A DynamicLayer concatenates (differentiable); sampling's growing buffers write in place.
    cache = DynamicCache(config=model.config)
    kwarg = {cache_kwarg(model): cache}
    first = model(
        input_ids=ids,
        attention_mask=_model_mask(model, mask, ids.shape[1]),
        position_ids=positions(mask),
        **kwarg,
        use_cache=True,
        logits_to_keep=1,
    ).logits[index]
    if comp.shape[1] == 1:
        return first
    cache.batch_select_indices(index)
    full_mask = torch.cat([mask[index], comp_mask[:, :-1]], 1)
    rest = model(
        input_ids=comp[:, :-1],
        attention_mask=_model_mask(model, full_mask, comp.shape[1] - 1),
        position_ids=positions(full_mask)[:, ids.shape[1] :],
        **kwarg,
        use_cache=True,
    ).logits
    return torch.cat([first, rest], 1)


def _model_mask(model: Any, mask: torch.Tensor, queries: int) -> torch.Tensor:
    """The attention mask to hand the model for the last `queries` positions of [B, K] `mask`.

    The 2D mask itself, except under eager attention: transformers' eager softmax runs in float32,
    so a float64 model's additive mask (float64's min) becomes -inf there, a left pad's query row
    (every key masked) turns to NaN, and the NaN reaches the real rows through the pad's keys and
    values in the next layer (0 x NaN). There each query also sees its own position: a pad row
    gets a finite (unused) output, and real rows, whose own position is real, are unchanged."""
    import torch

    if getattr(getattr(model, "config", None), "_attn_implementation", None) != "eager":
        return mask
    k = mask.shape[1]
    first = k - queries
    causal = torch.ones((queries, k), dtype=torch.bool, device=mask.device).tril(first)
    allowed = causal[None] & mask[:, None, :]
    idx = torch.arange(queries, device=mask.device)
    allowed[:, idx, first + idx] = True
    dtype = next(model.parameters()).dtype
    bias = torch.zeros(allowed.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def _token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[tokens] in float32, one row at a time for half-precision logits.

    The row loop keeps peak memory at one row's float32 copy of [T, V] (V is ~150k for 7B models).
    """
    import torch

    if logits.dtype in (torch.float32, torch.float64):
        return logits.gather(-1, tokens[..., None])[..., 0] - logits.logsumexp(-1)
    rows = []
    for row_logits, row_tokens in zip(logits, tokens, strict=True):
        row = row_logits.float()
        rows.append(row.gather(-1, row_tokens[:, None])[:, 0] - row.logsumexp(-1))
    return torch.stack(rows)
