"""OpenAI wire shapes for `/v1/chat/completions` and `/v1/completions`: request checks, responses.

`chat_request` / `completion_request` turn a JSON body into typed requests or raise `HTTPError`
(400, naming the field): messages must be a non-empty list of `{"role": "system"|"user"|
"assistant", "content": str}` (content may also be a list of `{"type": "text", "text": str}`
parts), numbers must be finite numbers of the right kind (a JSON `true` is not a number), `stream`
is refused (not implemented). Unknown fields are ignored, as OpenAI-compatible servers do.
`completion_body` / `chat_body` write the answers with `usage`.

Run: `python -m pytest -q tests/test_serving.py`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from magic_rl.serving.server import HTTPError, snippet

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Sampling:
    """The sampling parameters a request carries (OpenAI names, vLLM's defaults)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Caps:
    """What a server allows per request."""

    max_tokens: int = 1024
    """Largest `max_tokens` (400 above it); also the default for chat requests, as in vLLM."""
    max_n: int = 8
    max_prompts: int = 64
    """Largest list of prompts in one `/v1/completions` request."""


def _number(payload: dict, name: str, default: float, lo: float, hi: float) -> float:
    value = payload.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HTTPError(400, f"'{name}' must be a number, got {snippet(value, 60)}", name)
    if not lo <= value <= hi:
        raise HTTPError(400, f"'{name}' must be in [{lo}, {hi}], got {value}", name)
    return float(value)


def _integer(payload: dict, name: str, default: int | None, lo: int, hi: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise HTTPError(400, f"'{name}' must be an integer, got {snippet(value, 60)}", name)
    if not lo <= value <= hi:
        raise HTTPError(400, f"'{name}' must be in [{lo}, {hi}], got {value}", name)
    return value


def sampling(payload: dict[str, Any], caps: Caps, default_max_tokens: int) -> Sampling:
    """The request's sampling parameters, checked."""
    if payload.get("stream"):
        raise HTTPError(400, "'stream' is not supported by this server", "stream")
    for name in ("max_completion_tokens", "max_tokens"):  # the newer OpenAI name wins
        if payload.get(name) is not None:
            max_tokens = _integer(payload, name, None, 1, caps.max_tokens)
            break
    else:
        max_tokens = default_max_tokens
    stop = payload.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not (
        isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) and s for s in stop)
    ):
        raise HTTPError(400, "'stop' must be a non-empty string or a list of at most 4", "stop")
    return Sampling(
        temperature=_number(payload, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(payload, "top_p", 1.0, 1e-6, 1.0),
        max_tokens=max_tokens,
        n=_integer(payload, "n", 1, 1, caps.max_n),
        seed=_integer(payload, "seed", None, -(2**63), 2**63 - 1),
        stop=tuple(stop),
    )


def messages(payload: dict[str, Any]) -> list[dict[str, str]]:
    """`messages`, checked: a non-empty list of {role, content} with text content."""
    raw = payload.get("messages")
    if not isinstance(raw, list) or not raw:
        raise HTTPError(400, "'messages' must be a non-empty list of {role, content}", "messages")
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise HTTPError(400, f"{where} must be an object, got {snippet(m, 60)}", "messages")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise HTTPError(
                400, f"{where}.role must be one of {ROLES}, got {snippet(role, 60)}", "messages"
            )
        if isinstance(content, list):
            content = _text_parts(content, where)
        if not isinstance(content, str):
            raise HTTPError(
                400, f"{where}.content must be a string, got {snippet(content, 60)}", "messages"
            )
        out.append({"role": role, "content": content})
    return out


def _text_parts(parts: list, where: str) -> str:
    texts = []
    for p in parts:
        if not (isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)):
            raise HTTPError(400, f"{where}.content: only text parts are supported", "messages")
        texts.append(p["text"])
    return "".join(texts)


def prompts(payload: dict[str, Any], caps: Caps) -> list[str]:
    """`prompt`: a string or a non-empty list of strings."""
    raw = payload.get("prompt")
    if isinstance(raw, str):
        return [raw]
    if (
        isinstance(raw, list)
        and 0 < len(raw) <= caps.max_prompts
        and all(isinstance(p, str) for p in raw)
    ):
        return raw
    raise HTTPError(
        400, f"'prompt' must be a string or a list of 1-{caps.max_prompts} strings", "prompt"
    )


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_body(model: str, choices: list[tuple[str, str]], use: dict[str, int]) -> dict[str, Any]:
    """A chat.completion; `choices` are (text, finish_reason) in index order."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish,
            }
            for i, (text, finish) in enumerate(choices)
        ],
        "usage": use,
    }


def completion_body(
    model: str, choices: list[tuple[str, str]], use: dict[str, int]
) -> dict[str, Any]:
    """A text_completion; `choices` are (text, finish_reason) in index order."""
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "text": text, "logprobs": None, "finish_reason": finish}
            for i, (text, finish) in enumerate(choices)
        ],
        "usage": use,
    }
