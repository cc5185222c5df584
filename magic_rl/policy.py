"""The `Policy` edge: chats in, sampled completions (`Generation`s) out; plus token log-probs.

- `HFPolicy` wraps a Hugging Face causal LM and its tokenizer with its own decoding loop: one
  left-padded batch, one prefill, then one token per step through the KV cache, temperature + top-p
  sampling from a seeded `torch.Generator`, per-row EOS tracking and an early stop once every row has
  finished. The same class serves the sandbox's tiny models on CPU and 7B models on GPU.
- `sequence_logprobs` scores given completions under a model (with grad: the GRPO trainer calls it)
  using the same left-padded layout as `generate`, so greedy tokens are the argmax of its log-probs.
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

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from magic_rl.records import FinishReason

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Generation:
    """One sampled completion.

    `text` is the decoded completion with special tokens removed (the `<think>`/`<answer>` tags are
    ordinary added tokens and stay). `prompt_ids` is what the model saw (after left truncation);
    `completion_ids` includes the final EOS when `finish == "stop"`. `logprobs[i]` is the log-prob of
    `completion_ids[i]` under the distribution it was drawn from (after temperature and top-p; under
    the plain model distribution when greedy): a diagnostic, the trainer recomputes its own.
    """

    text: str
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    finish: FinishReason
    logprobs: tuple[float, ...] = ()


@runtime_checkable
class Policy(Protocol):
    """Anything that answers chats. `temperature == 0` means greedy."""

    def generate(
        self,
        chats: Sequence[Chat],
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        max_prompt_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[Generation]: ...

    def encode_chat(self, messages: Chat) -> list[int]: ...


# ---------------------------------------------------------------------------------------------
# The fake


class ScriptedPolicy:
    """A policy whose replies come from `fn(messages) -> str`; ids are fake (code points mod 256).

    The reply is reported as finished ("stop") unless it is longer than `max_new_tokens` characters,
    in which case it is cut there and reported as "length", like a real policy.
    """

    VOCAB = 256
    EOS = 0

    def __init__(self, fn: Callable[[Chat], str]):
        self.fn = fn

    def encode_chat(self, messages: Chat) -> list[int]:
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"
        return self._ids(text)

    def _ids(self, text: str) -> list[int]:
        return [1 + ord(c) % (self.VOCAB - 1) for c in text]

    def generate(
        self,
        chats: Sequence[Chat],
        *,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        max_prompt_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[Generation]:
        out = []
        for chat in chats:
            prompt = self.encode_chat(chat)
            if max_prompt_tokens is not None:
                prompt = prompt[-max_prompt_tokens:]
            text = self.fn(chat)
            if not isinstance(text, str):
                raise TypeError(f"ScriptedPolicy fn must return str, got {type(text).__name__}")
            if len(text) >= max_new_tokens:
                text, ids, finish = (
                    text[:max_new_tokens],
                    self._ids(text[:max_new_tokens]),
                    "length",
                )
            else:
                ids, finish = [*self._ids(text), self.EOS], "stop"
            out.append(Generation(text, tuple(prompt), tuple(ids), finish, tuple(0.0 for _ in ids)))
        return out


# ---------------------------------------------------------------------------------------------
# Hugging Face causal LMs


def encode_prompts(
    policy: Policy,
    chats: Sequence[Chat],
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    max_prompt_tokens: int | None,
) -> list[list[int]]:
    """Check sampling arguments and encode chats, keeping the last `max_prompt_tokens` ids."""
    if temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1:
        raise ValueError(
            f"generate: need temperature >= 0, 0 < top_p <= 1, max_new_tokens >= 1; got "
            f"{temperature}, {top_p}, {max_new_tokens}"
        )
    prompts = [policy.encode_chat(chat) for chat in chats]
    if max_prompt_tokens is not None:
        prompts = [p[-max_prompt_tokens:] for p in prompts]
    return prompts


def quiet_transformers() -> None:
    """Per-file load/save progress bars of transformers drown our own progress display."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def check_model_path(path: str | Path) -> None:
    """Fail clearly on a local model directory that is missing: without this, transformers takes the
    path for a Hub id and reports a repo-id format error. `org/name` stays a Hub id."""
    text = str(path)
    local = Path(text).is_absolute() or text.startswith((".", "~")) or text.count("/") > 1
    if local and not Path(text).expanduser().is_dir():
        raise FileNotFoundError(
            f"model directory not found: {text} (a local path; Hub ids look like org/name)"
        )


def resolve_device(device: str) -> str:
    """`auto` -> cuda when available, else cpu."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class HFPolicy:
    """A Hugging Face causal LM + tokenizer behind the `Policy` protocol.

    `model` may be a peft-wrapped model; `generate` puts it in eval mode for the call and restores the
    previous mode afterwards. `max_batch_size` caps how many rows are decoded together (KV-cache
    memory on large models); None decodes every chat of a call in one batch.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch_size: int | None = None,
    ):
        if tokenizer.eos_token_id is None:
            raise ValueError("HFPolicy: the tokenizer has no eos_token")
        self.model = model
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = tokenizer.eos_token_id
        self.eos_ids = _eos_ids(model, tokenizer)
        # Rows decoded together; None = all at once. Bounds KV-cache memory for large models.
        self.max_batch_size = max_batch_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        trust_remote_code: bool = False,
    ) -> HFPolicy:
        """Load model (safetensors only) and tokenizer from a directory or Hub id."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_transformers()
        check_model_path(path)
        tokenizer = AutoTokenizer.from_pretrained(
            str(path), trust_remote_code=trust_remote_code, padding_side="left"
        )
        model = AutoModelForCausalLM.from_pretrained(
            str(path),
            dtype=getattr(torch, dtype),
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            device_map=resolve_device(device),
        )
        return cls(model, tokenizer)

    def save_pretrained(self, path: str | Path) -> None:
        quiet_transformers()
        Path(path).mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(path), safe_serialization=True)
        self.tokenizer.save_pretrained(str(path))

    def encode_chat(self, messages: Chat) -> list[int]:
        return self.encode_chats([messages])[0]

    def encode_chats(self, chats: Sequence[Chat]) -> list[list[int]]:
        """Prompt ids of many chats: the templates are rendered one by one, tokenized in one call."""
        if not chats:
            return []
        texts = self.tokenizer.apply_chat_template(
            [list(chat) for chat in chats], tokenize=False, add_generation_prompt=True
        )
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def generate(
        self,
        chats: Sequence[Chat],
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        max_prompt_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[Generation]:
        prompts = encode_prompts(
            self,
            chats,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            max_prompt_tokens=max_prompt_tokens,
        )
        if not prompts:
            return []
        tokens, logprobs, finished = self.generate_ids(
            prompts, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed
        )
        texts = self.tokenizer.batch_decode(
            [t[:-1] if f else t for t, f in zip(tokens, finished, strict=True)],
            skip_special_tokens=True,
        )
        return [
            Generation(text, tuple(p), tuple(t), "stop" if f else "length", tuple(lp))
            for text, p, t, lp, f in zip(texts, prompts, tokens, logprobs, finished, strict=True)
        ]

    def generate_ids(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        seed: int | None = None,
    ) -> tuple[list[list[int]], list[list[float]], list[bool]]:
        """The decoding loop on token ids: (completion ids, their log-probs, stopped-at-EOS) per row.

        With `max_batch_size`, prompts are sorted by length and decoded in chunks of similar length
        (less padding); results come back in the input order.
        """
        import torch

        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        order = list(range(len(prompts)))
        step = self.max_batch_size or len(prompts)
        if step < len(prompts):
            order.sort(key=lambda i: len(prompts[i]))
        results: list[Any] = [None] * len(prompts)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), step):
                    chunk = order[start : start + step]
                    out = _decode(
                        self.model,
                        [prompts[i] for i in chunk],
                        self.pad_id,
                        self.eos_ids,
                        temperature,
                        top_p,
                        max_new_tokens,
                        generator,
                        self.device,
                    )
                    for i, row in zip(chunk, zip(*out, strict=True), strict=True):
                        results[i] = row
        finally:
            self.model.train(was_training)
        tokens, logprobs, stopped = (list(col) for col in zip(*results, strict=True))
        return tokens, logprobs, stopped


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS of the tokenizer plus any the model's generation config names (e.g. Qwen's <|im_end|>)."""
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        ids.update([gen_eos] if isinstance(gen_eos, int) else gen_eos)
    return sorted(ids)


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
) -> tuple[list[list[int]], list[list[float]], list[bool]]:
    """Sample up to `max_new_tokens` per prompt (fewer where the model's positions run out); rows
    are cut after their first EOS."""
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
    step_mask = _StepMask(model, mask, max_new_tokens)
    pos = positions(mask)[:, -1:]
    eos = torch.as_tensor(list(eos_ids), device=device)
    cache = _kv_cache(model)
    cache_arg = {_cache_kwarg(model): cache}
    out_tokens = torch.full((b, max_new_tokens), pad_id, dtype=torch.long, device=device)
    out_lps = torch.zeros((b, max_new_tokens), dtype=torch.float, device=device)
    rows = torch.arange(b, device=device)  # original row of each live batch entry
    done = torch.zeros(b, dtype=torch.bool, device=device)

    logits = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions(mask),
        **cache_arg,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1, :]
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
            cache.batch_select_indices(keep)
            step_mask.select(keep)
            rows, token, pos, done = rows[keep], token[keep], pos[keep], done[keep]
        pos = pos + 1
        logits = model(
            input_ids=token[:, None],
            attention_mask=step_mask.decode(p + t + 1),
            position_ids=pos,
            **cache_arg,
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


def _cache_kwarg(model: Any) -> str:
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


# ---------------------------------------------------------------------------------------------
# Scoring


def sequence_logprobs(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    pad_id: int,
    *,
    temperature: float = 1.0,
    micro_batch_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each completion token given its prompt: ([B, T] log-probs, [B, T] float mask).

    T is the longest completion; both outputs are right-padded (log-prob 0, mask 0). Each micro-batch
    is one forward over `[left-padded prompt | right-padded completion]`, the layout `generate` uses,
    with logits computed only for the completion positions (`logits_to_keep`). `temperature` divides
    the logits as the sampler did. Runs with grad unless the caller disables it.
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
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    prompt, prompt_mask = left_pad(prompts, pad_id, device)
    comp = torch.full((len(completions), width), pad_id, dtype=torch.long)
    comp_mask = torch.zeros((len(completions), width), dtype=torch.bool)
    for i, c in enumerate(completions):
        comp[i, : len(c)] = torch.as_tensor(list(c), dtype=torch.long)
        comp_mask[i, : len(c)] = True
    comp, comp_mask = comp.to(device), comp_mask.to(device)
    ids = torch.cat([prompt, comp], 1)
    mask = torch.cat([prompt_mask, comp_mask], 1)
    # Positions p-1 .. p+T-2 predict the T completion tokens: the last T+1 logits minus the final.
    logits = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions(mask),
        use_cache=False,
        logits_to_keep=width + 1,
    ).logits[:, :-1, :]
    if temperature != 1.0:
        logits = logits / temperature
    logprobs = _token_logprobs(logits, comp)
    fmask = comp_mask.to(logprobs.dtype)
    return logprobs * fmask, fmask


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
