"""Serve any `Judge` as an OpenAI-compatible guard-model endpoint, with optional injected faults.

`magic serve judge` puts a judge (the sandbox's embedded one, a scripted one, a local HF guard)
behind `/v1/chat/completions` and `/v1/completions`, answering in a guard format's text (WildGuard by
default: "Harmful request: yes\\nResponse refusal: no\\nHarmful response: yes"), so `EndpointJudge`
with that backend talks to it exactly as it talks to vLLM serving the real guard model. The request
is unpacked with the format (`formats.*.unpack`), judged, and rendered (`render`); a signal the
served judge leaves unknown is rendered as "unknown", which the client cannot parse, so unknown stays
unknown end to end.

Faults, for integration tests: with probability `fault_rate` a request gets one of `faults`:
"timeout" (hang `hang_s`, then HTTP 504), "500" (HTTP 500), "garbage" (HTTP 200 with text no parser
accepts), "slow" (answer correctly after `slow_s`). The draw is a hash of (seed, request body, how
many times this body was seen), so a run's faults do not depend on thread timing.

Also `GET /v1/models` and `GET /health`. Standard library only (`http.server`); judge calls are
serialised by a lock because a local model is not thread-safe. If `api_key` is set, requests must
carry `Authorization: Bearer <api_key>` (401 otherwise).

Run: `magic serve judge --port 8000`; in tests `start_server_in_thread(judge)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from magic_rl.judge.base import Judge
from magic_rl.judge.formats import FORMATS, GuardFormat, Request

log = logging.getLogger(__name__)

FAULTS = ("timeout", "500", "garbage", "slow")
GARBAGE = ("I cannot help with classifying this.", "", "Safety? maybe\n\n", "yes no yes")


class JudgeServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that carries the judge, its format and the fault settings."""

    daemon_threads = True
    request_queue_size = 128  # the default 5 drops bursts of concurrent connects (SYN retry = 1 s)

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
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown or not 0.0 <= fault_rate <= 1.0 or (fault_rate > 0 and not faults):
            raise ValueError(
                f"faults must be a non-empty subset of {FAULTS} and 0 <= fault_rate <= 1; "
                f"got faults={tuple(faults)}, fault_rate={fault_rate}"
            )
        super().__init__(address, _Handler)
        self.judge, self.fmt, self.model_name = judge, fmt, model_name
        self.fault_rate, self.faults, self.seed = fault_rate, tuple(faults), seed
        self.hang_s, self.slow_s, self.api_key = hang_s, slow_s, api_key
        self.judge_lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.seen_lock = threading.Lock()
        self.fault_counts: Counter[str] = Counter()

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

    def answer(self, request: Request) -> str:
        prompt, response = self.fmt.unpack(request)
        with self.judge_lock:
            (verdict,) = self.judge.judge([prompt], [response])
        return self.fmt.render(verdict, response)


class _Handler(BaseHTTPRequestHandler):
    server: JudgeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout); nothing to answer

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        if self.path.rstrip("/") in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        elif self.path.rstrip("/") == "/v1/models":
            model = {"id": self.server.model_name, "object": "model", "owned_by": "magic-rl"}
            self._send(200, {"object": "list", "data": [model]})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/completions"):
            self._error(404, f"no route {self.path}")
            return
        key = self.server.api_key
        if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
            self._error(401, "missing or wrong API key")
            return
        fault = self.server.draw_fault(body)
        if fault == "timeout":
            time.sleep(self.server.hang_s)
            self._error(504, "injected fault: timeout")
            return
        if fault == "500":
            self._error(500, "injected fault: internal error")
            return
        if fault == "slow":
            time.sleep(self.server.slow_s)
        chat = path.endswith("chat/completions")
        try:
            payload = json.loads(body)
            request = payload["messages"] if chat else payload["prompt"]
            text = self.server.answer(request)
        except (ValueError, KeyError, TypeError) as e:
            self._error(400, f"bad request: {e}")
            return
        if fault == "garbage":
            text = GARBAGE[len(body) % len(GARBAGE)]
        model = payload.get("model", self.server.model_name)
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text}
        self._send(
            200,
            {
                "id": f"judge-{hashlib.sha256(body).hexdigest()[:12]}",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice | {"finish_reason": "stop"}],
            },
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
) -> JudgeServer:
    """A bound (not yet serving) server; `port=0` picks a free port (see `server.server_port`)."""
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
    )


def serve_until_interrupted(server) -> None:
    """Serve requests until Ctrl-C, then close the socket."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def start_server_in_thread(
    judge: Judge, host: str = "127.0.0.1", port: int = 0, **kw: Any
) -> tuple[JudgeServer, str]:
    """Start serving in a daemon thread; returns (server, base URL ending in /v1).

    Stop it with `server.shutdown(); server.server_close()`.
    """
    server = serve_judge(judge, host, port, **kw)
    # a short poll interval makes shutdown() quick (tests start and stop many servers)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_port}/v1"
