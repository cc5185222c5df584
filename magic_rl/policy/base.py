"""The `Policy` edge: the protocol, the `Generation` it returns, prompt encoding, and
`ScriptedPolicy`, the fake: a Python function writes each reply; no torch, no model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from magic_rl.records import FinishReason

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
    if max_prompt_tokens is not None:
        chats = clip_chats(policy, chats, max_prompt_tokens)
    prompts = [policy.encode_chat(chat) for chat in chats]
    if max_prompt_tokens is not None:
        prompts = [p[-max_prompt_tokens:] for p in prompts]
    return prompts


def clip_chats(policy: Policy, chats: Sequence[Chat], max_prompt_tokens: int) -> list[Chat]:
    """Each message cut to its last `max_prompt_tokens` x (longest vocabulary entry) characters
    before encoding. Left truncation keeps only the last `max_prompt_tokens` ids, and those fit in
    that many characters, so the kept ids are the same (tokenization is local: only the token at
    the cut, beyond the kept window, can change). Without the cut, a fast tokenizer holds ~500
    bytes per token of a 10 MB benchmark prompt: 2 GB to keep 8192 tokens (docs/reliability.md)."""
    tokenizer = getattr(policy, "tokenizer", None)
    if tokenizer is None:
        return list(chats)
    widest = getattr(tokenizer, "_magic_widest_token", None)
    if (
        widest is None
    ):  # byte-level vocabularies spell a token in >= as many characters as it covers
        widest = max(map(len, tokenizer.get_vocab()), default=1)
        tokenizer._magic_widest_token = widest
    keep = max_prompt_tokens * widest
    return [
        [
            {**m, "content": m["content"][-keep:]}
            if isinstance(m.get("content"), str) and len(m["content"]) > keep
            else m
            for m in chat
        ]
        for chat in chats
    ]
