"""Serve any `Judge` as an OpenAI-compatible guard-model endpoint, with optional injected faults.

`magic serve judge` puts a judge (the sandbox's embedded one, a scripted one, a local HF guard)
behind `/v1/chat/completions` and `/v1/completions`, answering in a guard format's text (WildGuard by
default: "Harmful request: yes\\nResponse refusal: no\\nHarmful response: yes"), so `EndpointJudge`
with that backend talks to it exactly as it talks to vLLM serving the real guard model. The request
is unpacked with the format (`formats.*.unpack`), judged through `score.score_exchanges` (a reply
read as the served config's game reads it: the sandbox's `[request]` marker expanded under
`game.request_marker`), and rendered (`render`); a signal the
served judge leaves unknown is rendered as "unknown", which the client cannot parse, so unknown stays
unknown end to end. Concurrent requests are judged in batches by one worker thread (`Batcher`).

As vLLM does, a request naming another model than the served one gets HTTP 404 with
`{"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", ...}}`; a
request without `model` means the served one. Transport, limits and auth are `serving.Server`'s
(127.0.0.1, size cap, read timeouts, JSON 4xx, bounded threads; docs/serving.md).

Faults, for integration tests: with probability `fault_rate` a request gets one of `faults`:
"timeout" (hang `hang_s`, then HTTP 504), "500" (HTTP 500), "garbage" (HTTP 200 with text no parser
accepts), "slow" (answer correctly after `slow_s`). The draw is a hash of (seed, request body, how
many times this body was seen), so a run's faults do not depend on thread timing. A hang is an
`asyncio.sleep`: it holds no thread.

The embedded sandbox judge served in a guard's format is not that guard: it knows only the sandbox's
text (a real harmful exchange often gets "Safe"); `magic serve judge` says so loudly at start
(`impostor_warning`) and reports the judge's own name (`embedded-<digest>`) as the model.

Run: `magic serve judge --port 8000`; in tests `start_server_in_thread(judge)`.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from magic_rl.config import GameConfig
from magic_rl.judge.base import Judge
from magic_rl.judge.formats import FORMATS, Call, GuardFormat
from magic_rl.judge.score import score_exchanges
from magic_rl.serving import openai
from magic_rl.serving.batcher import Batcher, Overloaded
from magic_rl.serving.server import (
    HTTPError,
    Limits,
    Server,
    parse_json,
    read_body,
    snippet,
    wait_for_model,
)

FAULTS = ("timeout", "500", "garbage", "slow")
GARBAGE = ("I cannot help with classifying this.", "", "Safety? maybe\n\n", "yes no yes")


class JudgeServer(Server):
    """A `Server` that carries the judge, its format and the fault settings."""

    def __init__(
        self,
        address: tuple[str, int],
        judge: Judge,
        fmt: GuardFormat,
        model_name: str,
        fault_rate: float,
        faults: Sequence[str],
        seed: int,
        hang_s: float,
        slow_s: float,
        api_key: str | None,
        limits: Limits | None = None,
        max_batch: int = 32,
        game: GameConfig | None = None,
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown or not 0.0 <= fault_rate <= 1.0 or (fault_rate > 0 and not faults):
            raise ValueError(
                f"faults must be a non-empty subset of {FAULTS} and 0 <= fault_rate <= 1; "
                f"got faults={tuple(faults)}, fault_rate={fault_rate}"
            )
        self.judge, self.fmt, self.game = judge, fmt, game
        self.fault_rate, self.faults, self.seed = fault_rate, tuple(faults), seed
        self.hang_s, self.slow_s = hang_s, slow_s
        self.seen: Counter[str] = Counter()
        self.seen_lock = threading.Lock()
        self.fault_counts: Counter[str] = Counter()
        super().__init__(*address, model_name=model_name, api_key=api_key, limits=limits)
        self.batcher: Batcher[Call, str] = Batcher(
            self._judge_batch, max_batch=max_batch, name="judge"
        )

    def routes(self) -> dict:
        return {"/v1/chat/completions": self._chat, "/v1/completions": self._completion}

    def close(self) -> None:
        self.batcher.close()

    def draw_fault(self, body: bytes) -> str | None:
        digest = hashlib.sha256(body).hexdigest()
        with self.seen_lock:
            n = self.seen[digest]
            self.seen[digest] += 1
        h = hashlib.sha256(f"{self.seed}:{digest}:{n}".encode()).digest()
        if int.from_bytes(h[:8], "big") / 2**64 >= self.fault_rate:
            return None
        fault = self.faults[h[8] % len(self.faults)]
        with self.seen_lock:
            self.fault_counts[fault] += 1
        return fault

    def _judge_batch(self, calls: list[Call]) -> list[str]:
        prompts = [p for p, _ in calls]
        responses = [r for _, r in calls]
        verdicts = score_exchanges(self.judge, prompts, responses, game=self.game)
        return [self.fmt.render(v, r) for v, r in zip(verdicts, responses, strict=True)]

    async def _chat(self, request: Request) -> Response:
        return await self._answer(request, chat=True)

    async def _completion(self, request: Request) -> Response:
        return await self._answer(request, chat=False)

    async def _answer(self, request: Request, chat: bool) -> Response:
        body = await read_body(request, self.limits)
        payload = parse_json(body)
        self.check_model(payload)
        if chat:
            fmt_request: Any = openai.messages(payload)
        else:
            prompt = payload.get("prompt")
            if not isinstance(prompt, str):
                raise HTTPError(400, "'prompt' must be a string (one guard prompt)", "prompt")
            fmt_request = prompt
        try:
            call = self.fmt.unpack(fmt_request)
        except (ValueError, KeyError, TypeError) as e:
            raise HTTPError(400, f"not a {self.fmt.name} request: {snippet(str(e))}") from None
        fault = self.draw_fault(body)
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)
            raise HTTPError(504, "injected fault: timeout")
        if fault == "500":
            raise HTTPError(500, "injected fault: internal error")
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        try:
            text = await wait_for_model(request, self.batcher.submit(call))
        except Overloaded as e:
            raise HTTPError(503, f"judge busy: {e}") from None
        if fault == "garbage":
            text = GARBAGE[len(body) % len(GARBAGE)]
        use = openai.usage(0, 0)
        body = (openai.chat_body if chat else openai.completion_body)(
            self.model_name, [(text, "stop")], use
        )
        return JSONResponse(body)


GUARD_NAMES = {"wildguard": "WildGuard", "qwen3guard": "Qwen3Guard", "llamaguard": "Llama Guard"}


def impostor_warning(judge: Judge, backend_format: str) -> str | None:
    """What to say when a judge that is not the guard model answers in that guard's format: the
    embedded sandbox judge (the default of `magic serve judge`) knows only the sandbox's text, so
    a real harmful exchange often gets "Safe"; a client must not take it for the guard."""
    from magic_rl.judge.embedded import EmbeddedJudge

    if not isinstance(judge, EmbeddedJudge):
        return None
    guard = GUARD_NAMES.get(backend_format, backend_format)
    return (
        f"warning: this is the embedded sandbox judge ({judge.name}) answering in {guard}'s "
        f"format, NOT {guard}: it knows only the sandbox's own text and calls most real harmful "
        f"exchanges safe. To serve {guard} itself: judge.backend={backend_format} "
        "judge.model=<its HF path or id>"
    )


def serve_judge(
    judge: Judge,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend_format: str = "wildguard",
    fault_rate: float = 0.0,
    faults: Sequence[str] = FAULTS,
    seed: int = 0,
    *,
    model_name: str | None = None,
    hang_s: float = 30.0,
    slow_s: float = 0.5,
    api_key: str | None = None,
    limits: Limits | None = None,
    game: GameConfig | None = None,
) -> JudgeServer:
    """A bound (not yet serving) server; `port=0` picks a free port (see `server.server_port`).
    `game`: how replies are read before judging (the served config's `cfg.game`)."""
    if backend_format not in FORMATS:
        raise ValueError(f"backend_format {backend_format!r}: one of {sorted(FORMATS)}")
    return JudgeServer(
        (host, port),
        judge,
        FORMATS[backend_format],
        model_name or judge.name,
        fault_rate,
        faults,
        seed,
        hang_s,
        slow_s,
        api_key,
        limits,
        game=game,
    )


def serve_until_interrupted(server: Server) -> None:
    """Serve requests until Ctrl-C, then close the socket."""
    server.serve_forever()


def start_server_in_thread(
    judge: Judge, host: str = "127.0.0.1", port: int = 0, **kw: Any
) -> tuple[JudgeServer, str]:
    """Start serving in a daemon thread; returns (server, base URL ending in /v1).

    Stop it with `server.shutdown(); server.server_close()`.
    """
    server = serve_judge(judge, host, port, **kw)
    server.start()
    return server, server.url
