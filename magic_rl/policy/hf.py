"""`HFPolicy`: a Hugging Face causal LM and its tokenizer behind the `Policy` protocol, loading,
saving, chat encoding and batched generation (the decoding loop is in `policy/sampling.py`)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magic_rl.data.outputs import writing
from magic_rl.policy.base import Chat, Generation, encode_prompts
from magic_rl.policy.sampling import _decode

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


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
        # Rows with one prompt share its prefill (`grpo.share_prompts`; the training loop sets it).
        # Off by default: the same samples up to float rounding, but not bit for bit.
        self.share_prompts = False

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
        with writing(path):  # a full disk names the directory, not only safetensors' IoError
            Path(path).mkdir(parents=True, exist_ok=True)
            self.model.save_pretrained(str(path), safe_serialization=True)
            self.tokenizer.save_pretrained(str(path))

    def encode_chat(self, messages: Chat) -> list[int]:
        return self.encode_chats([messages])[0]

    def encode_chats(self, chats: Sequence[Chat]) -> list[list[int]]:
        """Prompt ids of many chats in one call (the tokenizer encodes the rendered batch at once).

        Control tokens spelled inside a message (an attacker's rewrite that writes `<|im_end|>`, a
        reply that writes a role header) are encoded as ordinary text: only the chat template's own
        control tokens are tokens. Otherwise a rewrite could forge turn boundaries, and the game
        would reward a tokenizer exploit rather than persuasion (docs/deviations.md).
        """
        if not chats:
            return []
        ids = self.tokenizer.apply_chat_template(
            [list(chat) for chat in chats],
            tokenize=True,
            add_generation_prompt=True,
            return_dict=False,
            **sanitize_kwarg(self.tokenizer),
        )
        return [list(row) for row in ids]

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
        (less padding); results come back in the input order. Repeated prompts are prefilled once
        unless `share_prompts` is off (policy/sampling.py).
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
                        self.share_prompts,
                    )
                    for i, row in zip(chunk, zip(*out, strict=True), strict=True):
                        results[i] = row
        finally:
            self.model.train(was_training)
        tokens, logprobs, stopped = (list(col) for col in zip(*results, strict=True))
        return tokens, logprobs, stopped


def sanitize_kwarg(tokenizer: Any) -> dict[str, bool]:
    """`sanitize_control_tokens=True` where the tokenizer's `apply_chat_template` takes it (recent
    transformers 5 releases); older ones would pass the unknown argument to the template unused."""
    return {"sanitize_control_tokens": True} if _can_sanitize(type(tokenizer)) else {}


@functools.cache
def _can_sanitize(tokenizer_class: type) -> bool:
    """Checked once per tokenizer class: encoding runs on every rollout and every judge call."""
    import inspect

    if (
        "sanitize_control_tokens"
        in inspect.signature(tokenizer_class.apply_chat_template).parameters
    ):
        return True
    warnings.warn(
        "this transformers version cannot keep control tokens inside chat messages as text "
        "(apply_chat_template has no sanitize_control_tokens): upgrade transformers",
        stacklevel=4,
    )
    return False


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS of the tokenizer plus any the model's generation config names (e.g. Qwen's <|im_end|>)."""
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        ids.update([gen_eos] if isinstance(gen_eos, int) else gen_eos)
    return sorted(ids)
