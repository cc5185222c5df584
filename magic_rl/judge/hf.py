"""A local Hugging Face guard model (WildGuard, Qwen3Guard-Gen, Llama Guard 3): `HFGuardJudge`.

Same formats, parsers, cache and counters as `EndpointJudge`; the model runs in-process with batched
greedy generation (left padding, `cfg.batch_size` calls per forward). Chat formats go through the
tokenizer's chat template; a tokenizer without one falls back to the format's `raw_prompt` when it
has one (Llama Guard 3), else it is an error. Raw prompts (WildGuard) are tokenised without special
tokens because they spell out their own `<s>`. Control tokens spelled inside the judged prompt or
reply are encoded as text (`encode_call`): a defender cannot steer the guard by writing its turn
markers. Replies are truncated to `cfg.max_response_tokens`
tokens of the guard's own tokenizer (exact, unlike the endpoint's whitespace approximation).

Weights load from safetensors only; `trust_remote_code` stays off unless the caller turns it on.
transformers and torch are imported when the judge is built.

Run: `python -m pytest -q tests/test_judge_endpoint.py -k hf`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magic_rl.config import JudgeConfig
from magic_rl.judge.formats import Call, GuardFormat, get_format
from magic_rl.judge.score import CallCache, JudgeStats, assemble, plan_calls, split_cached
from magic_rl.policy.hf import sanitize_kwarg
from magic_rl.policy.sampling import left_pad
from magic_rl.records import Verdict

# Stand-ins for the exchange's text while the prompt is rendered, to find where it goes.
_PROMPT_SLOT, _RESPONSE_SLOT = "\x00magic-prompt\x00", "\x00magic-response\x00"


def encode_call(fmt: GuardFormat, tokenizer: Any, call: Call) -> list[int]:
    """The ids the guard model reads for one call.

    Control tokens spelled inside the judged prompt or reply (a reply that writes `<|im_end|>` or
    `<|assistant|>`) are encoded as text, so the judged text cannot forge the structure of the
    guard's own prompt; text without such strings encodes exactly as the plain rendering would.
    """
    request = fmt.request(*call)
    if not isinstance(request, str):
        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template(
                request,
                tokenize=True,
                add_generation_prompt=True,
                return_dict=False,
                **sanitize_kwarg(tokenizer),
            )
            return list(ids)
        raw = getattr(fmt, "raw_prompt", None)
        if raw is None:
            raise ValueError(
                f"{fmt.name}: the tokenizer has no chat template and the format has no raw prompt; "
                "load the guard model's own tokenizer"
            )
        request = raw(request)
    # Raw prompts (WildGuard) spell out their own special tokens: no tokenizer-added ones.
    if not _has_control_tokens(tokenizer, call):
        return tokenizer(request, add_special_tokens=False)["input_ids"]
    return _encode_with_literal_text(fmt, tokenizer, call)


def _has_control_tokens(tokenizer: Any, call: Call) -> bool:
    controls = [t.content for t in tokenizer.added_tokens_decoder.values()]
    return any(c in text for text in call if text for c in controls)


def _encode_with_literal_text(fmt: GuardFormat, tokenizer: Any, call: Call) -> list[int]:
    """Render with stand-ins for the prompt and reply, encode the template's pieces as usual and the
    exchange's text with its control tokens split into ordinary text."""
    slots = (_PROMPT_SLOT, None if call[1] is None else _RESPONSE_SLOT)
    template = fmt.request(*slots)
    if not isinstance(template, str):
        template = fmt.raw_prompt(template)
    pieces = re.split(f"({re.escape(_PROMPT_SLOT)}|{re.escape(_RESPONSE_SLOT)})", template)
    texts = {_PROMPT_SLOT: call[0], _RESPONSE_SLOT: call[1] or ""}
    ids: list[int] = []
    for piece in pieces:
        if piece in texts:
            literal = tokenizer(texts[piece], add_special_tokens=False, split_special_tokens=True)
            ids += literal["input_ids"]
        elif piece:
            ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
    return ids


class HFGuardJudge:
    """A guard model loaded with transformers (or passed in), judged with its format."""

    def __init__(
        self,
        cfg: JudgeConfig,
        *,
        model: Any = None,
        tokenizer: Any = None,
        device: str = "cpu",
        trust_remote_code: bool = False,
        cache_path: str | Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.fmt = get_format(cfg.backend, cfg.controversial)
        self.name = cfg.backend
        self.device = device
        self.stats = JudgeStats()
        self.cache = CallCache(cache_path) if cfg.cache else None
        if model is None or tokenizer is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = tokenizer or AutoTokenizer.from_pretrained(
                cfg.model, trust_remote_code=trust_remote_code
            )
            model = model or AutoModelForCausalLM.from_pretrained(
                cfg.model, dtype="auto", use_safetensors=True, trust_remote_code=trust_remote_code
            )
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"  # generation continues from the right edge
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def __repr__(self) -> str:
        return f"HFGuardJudge(backend={self.cfg.backend!r}, model={self.cfg.model!r})"

    def judge(self, prompts: Sequence[str], responses: Sequence[str | None]) -> list[Verdict]:
        exchanges, calls = plan_calls(
            self.fmt, prompts, responses, self.cfg.max_response_tokens, self.tokenizer
        )
        answers, todo = split_cached(calls, self.cache, self._key, self.stats)
        for start in range(0, len(todo), self.cfg.batch_size):
            batch = todo[start : start + self.cfg.batch_size]
            answers |= dict(zip(batch, self._generate(batch), strict=True))
        verdicts, clean = assemble(self.fmt, exchanges, answers, {}, self.stats)
        if self.cache is not None:
            self.cache.put_many({self._key(c): answers[c] for c in clean})
        return verdicts

    def _key(self, call: Call) -> tuple[str, str, str, str | None]:
        return (self.name, self.cfg.model, call[0], call[1])

    def _generate(self, calls: list[Call]) -> list[str]:
        import torch

        rows = [encode_call(self.fmt, self.tokenizer, c) for c in calls]
        input_ids, mask = left_pad(rows, self.tokenizer.pad_token_id, self.device)
        enc = {"input_ids": input_ids, "attention_mask": mask.long()}
        self.stats.requests += len(calls)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=self.fmt.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)
