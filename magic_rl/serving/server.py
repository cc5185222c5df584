"""The HTTP base of `magic serve judge` and `magic serve policy`: uvicorn + Starlette with limits.

`Server` binds a socket (127.0.0.1 by default; port 0 picks a free one) and serves a Starlette app
of OpenAI-style routes on uvicorn's h11 protocol. What it promises (docs/serving.md, "Reliability";
tests/test_serving.py):

- Request size: a body over `Limits.max_body_bytes` gets 413 (a `Content-Length` over twice the cap
  before a byte of the body is read; a smaller excess is read and dropped first); the connection
  then closes with a lingering close (`LINGER_S`), so the client sees the 413 rather than a reset;
  h11 refuses (400) a request head still incomplete past `max_header_bytes` (one that arrives
  whole in a single 64 KiB read may be larger).
- Slow clients: a connection has `read_timeout_s` to deliver its request headers (from connect or
  from the previous response), and the app `read_timeout_s` to receive the body (408); idle
  keep-alive connections close after `keep_alive_s`. A slow client costs a socket, never a thread.
- Bounded work: one event-loop thread parses and answers; model work runs on one `Batcher` thread.
  Past `max_connections` open connections (or running requests) uvicorn answers 503 at once; but
  a request arriving at the limit first closes the connections idle longest (no request in
  flight for `IDLE_EVICT_S`), so idle or half-open sockets cannot hold the server at 503 until
  their read timeout. A queued request whose client has left is dropped before it reaches the
  model (`wait_for_model`).
- Malformed requests: every one gets a JSON 4xx in the OpenAI/vLLM error shape
  `{"error": {"message", "type", "param", "code"}}`, including the ones h11 rejects before the app
  sees them (a bad `Content-Length`: uvicorn's plain-text 400 is replaced here).
- Auth: with `api_key`, every `/v1/...` route needs `Authorization: Bearer <key>` (401; compared
  in constant time). `/health` stays open, as in vLLM.

Run: a subclass (`JudgeServer`, `PolicyServer`) adds its routes; `server.serve_forever()` in the
foreground (Ctrl-C stops), or `server.start()` in a daemon thread, then `server.shutdown();
server.server_close()`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one server accepts. The defaults fit guard and policy requests with room to spare."""

    max_body_bytes: int = 1 << 20
    """Largest request body (413 above it). 1 MiB is ~250k tokens of text."""
    max_header_bytes: int = 16 << 10
    """Largest incomplete request head (request line + headers) h11 buffers; 400 above it."""
    read_timeout_s: float = 10.0
    """Time a connection has to send its request headers, and then again its body (408)."""
    keep_alive_s: int = 5
    """Idle keep-alive connections close after this many seconds."""
    max_connections: int = 512
    """Open connections / running requests past which new requests get 503 at once."""

    def __post_init__(self) -> None:
        if min(self.max_body_bytes, self.max_header_bytes, self.max_connections) < 1 or not (
            0 < self.read_timeout_s < math.inf and self.keep_alive_s >= 1
        ):
            raise ValueError(f"Limits: every limit must be positive and finite; got {self}")


class HTTPError(Exception):
    """An error answered as JSON in the OpenAI/vLLM shape."""

    TYPES = {
        400: "BadRequestError",
        401: "AuthenticationError",
        404: "NotFoundError",
        405: "MethodNotAllowedError",
        408: "RequestTimeoutError",
        413: "RequestTooLargeError",
        499: "ClientClosedRequest",
        500: "InternalServerError",
        503: "ServiceUnavailableError",
        504: "GatewayTimeoutError",
    }

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    kind = HTTPError.TYPES.get(status, "BadRequestError")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    # A request answered before its body was read leaves unread bytes on the socket: close it.
    headers = {"Connection": "close"} if status in (408, 413) else None
    return JSONResponse(error_body(status, message, param), status_code=status, headers=headers)


def snippet(text: Any, n: int = 200) -> str:
    """A bounded repr for error messages (a 1 MB body is never echoed back)."""
    s = repr(text)
    return s if len(s) <= n else s[:n] + "...'"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_body(request: Request, limits: Limits) -> bytes:
    """The request body, read within the size cap (413) and the read timeout (408)."""
    declared = request.headers.get("content-length")
    cap = limits.max_body_bytes
    # Over the cap by at most as much again, the body is still read (and dropped) before the 413:
    # a socket closed with unread bytes sends a reset, which a client may see instead of the 413.
    if declared is not None and int(declared) > 2 * cap:  # h11 checked the syntax
        raise HTTPError(413, f"request body of {declared} bytes > {cap}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(limits.read_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > 2 * cap:
                    break
                chunks.append(chunk)
    except TimeoutError:
        if size <= cap:
            raise HTTPError(
                408, f"request body not received within {limits.read_timeout_s} s"
            ) from None
    if size > cap:
        raise HTTPError(413, f"request body of {declared or 'over ' + str(cap)} bytes > {cap}")
    return b"".join(chunks)


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON object (400 otherwise; NaN/Infinity and nesting too deep for the parser included)."""
    try:
        payload = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # RecursionError: "[[[[..." nested too deep
        raise HTTPError(400, f"body is not valid JSON: {snippet(str(e))}") from None
    if not isinstance(payload, dict):
        raise HTTPError(400, f"body must be a JSON object, got {type(payload).__name__}")
    return payload


async def read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """`parse_json(await read_body(...))`."""
    return parse_json(await read_body(request, limits))


async def wait_for_model(request: Request, future: Future, poll_s: float = 1.0) -> Any:
    """The result of a `Batcher` future; if the client leaves while the request is still queued,
    the request is dropped (a batch already running finishes). Without this, a client that times
    out and retries leaves its abandoned requests queued, and a slow server falls ever further
    behind (docs/LOG.md, 2026-12-01)."""
    wrapped = asyncio.wrap_future(future)
    while not wrapped.done():
        await asyncio.wait([wrapped], timeout=poll_s)
        if not wrapped.done() and await request.is_disconnected():
            future.cancel()
            raise HTTPError(499, "client disconnected")
    return wrapped.result()


Handler = Callable[[Request], Awaitable[Response]]


class Server:
    """A bound (not yet serving) uvicorn server for `routes()`, with the limits above.

    Subclasses implement `routes()` (their `/v1/...` POST routes; `/health` and `/v1/models` are
    here) and may override `close()` to stop their workers.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        model_name: str,
        api_key: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.host, self.model_name, self.api_key = host, model_name, api_key
        self.limits = limits or Limits()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as e:
            self.socket.close()
            raise OSError(f"cannot bind {host}:{port}: {e.strerror or e}") from None
        self.socket.listen(2048)
        self.server_port: int = self.socket.getsockname()[1]
        routes = [
            Route("/health", self._health, methods=["GET"]),
            Route("/v1/health", self._health, methods=["GET"]),
            Route("/v1/models", self._guard(self._models), methods=["GET"]),
            *(Route(p, self._guard(h), methods=["POST"]) for p, h in self.routes().items()),
        ]
        app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})
        config = uvicorn.Config(
            app,
            http=_protocol(self.limits.read_timeout_s),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            limit_concurrency=self.limits.max_connections,
            timeout_keep_alive=self.limits.keep_alive_s,
            h11_max_incomplete_event_size=self.limits.max_header_bytes,
        )
        self.uvicorn = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server_port}/v1"

    def routes(self) -> dict[str, Handler]:
        raise NotImplementedError

    def check_model(self, payload: dict[str, Any]) -> None:
        """A request naming another model gets vLLM's 404 (a missing name means the served one)."""
        model = payload.get("model")
        if model is not None and not isinstance(model, str):
            raise HTTPError(400, "'model' must be a string", "model")
        if model is not None and model != self.model_name:
            raise HTTPError(404, f"The model `{model}` does not exist.", "model")

    # --- running -------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C (SIGINT/SIGTERM in the main thread) or `shutdown()`."""
        try:
            self.uvicorn.run(sockets=[self.socket])
        except KeyboardInterrupt:
            pass
        finally:
            self.server_close()

    def start(self, timeout_s: float = 30.0) -> Server:
        """Serve in a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(
            target=self.uvicorn.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self._thread.start()
        for _ in range(int(timeout_s / 0.01)):
            if self.uvicorn.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not self.uvicorn.started:
            raise RuntimeError(f"server on {self.url} did not start")
        return self

    def shutdown(self) -> None:
        """Stop serving (open connections are closed) and wait for the serving thread."""
        self.uvicorn.should_exit = True
        self.uvicorn.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def server_close(self) -> None:
        self.socket.close()
        self.close()

    def close(self) -> None:
        """Subclasses stop their workers here."""

    # --- common routes -------------------------------------------------------------------------

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if self.api_key is not None:
                got = request.headers.get("authorization", "")
                if not hmac.compare_digest(got.encode(), f"Bearer {self.api_key}".encode()):
                    return error_response(401, "missing or wrong API key")
            try:
                return await handler(request)
            except HTTPError as e:
                return error_response(e.status, e.message, e.param)
            except Exception as e:  # a bug or a model failure: a JSON 500, the server stays up
                log.exception("request to %s failed", request.url.path)
                return error_response(500, f"internal error: {type(e).__name__}: {snippet(str(e))}")

        return guarded

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _models(self, request: Request) -> Response:
        model = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "magic-rl"}
        return JSONResponse({"object": "list", "data": [model]})


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, f"no route {request.method} {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(405, f"method {request.method} not allowed on {request.url.path}")


IDLE_EVICT_S = 1.0
"""At the connection limit, a new request closes connections idle (no request in flight) this long."""

LINGER_S = 2.0
"""How long a closing connection keeps reading (and dropping) what its client still sends."""


class _LingeringTransport:
    """A transport whose `close()`, while the client may still be sending (`unread()`), is a
    lingering close: it half-closes (FIN after the response), reads and drops what the client
    still sends, and closes when the client does or after `linger_s`. Closing a socket with unread
    bytes in it sends a reset, which a client still sending its body (a 413 answered before the
    body was read) may see instead of the response. Other closes are immediate."""

    def __init__(
        self,
        transport: Any,
        loop: asyncio.AbstractEventLoop,
        linger_s: float,
        unread: Callable[[], bool],
    ):
        self._transport = transport
        self._loop = loop
        self._linger_s = linger_s
        self._unread = unread
        self.lingering = False
        self._timer: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        t = self._transport
        if self.lingering or t.is_closing() or not t.can_write_eof() or not self._unread():
            t.close()
            return
        self.lingering = True
        t.write_eof()  # the response is flushed, then FIN
        t.resume_reading()  # flow control may have paused it while the app ignored the body
        self._timer = self._loop.call_later(self._linger_s, t.close)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _protocol(read_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for request headers, JSON 400s and lingering close.

    uvicorn times out idle keep-alive connections only after a response, so a client that connects
    and trickles its headers would hold the socket forever; here a connection that has no request
    in flight `read_timeout_s` after it connected (or after its last response) is closed. A close
    while the client may still be sending lingers (`_LingeringTransport`), so a response sent
    before the request's body was read reaches the client.
    """

    # A connection that just connected may be a moment from sending its request: never evicted.
    evict_after = min(IDLE_EVICT_S, read_timeout_s / 2)

    class TimedH11Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            linger = min(LINGER_S, read_timeout_s)
            super().connection_made(
                _LingeringTransport(transport, self.loop, linger, self._client_may_be_sending)
            )
            self._idle_since = self.loop.time()
            self._deadline = self.loop.call_later(read_timeout_s, self._check_deadline)

        def _client_may_be_sending(self) -> bool:
            """Mid-body (answered before the body was read), or after a malformed request."""
            return self.conn.their_state in (h11.SEND_BODY, h11.ERROR)

        def data_received(self, data: bytes) -> None:
            if self.transport.lingering:
                return  # closing: what the client still sends is dropped
            if self.limit_concurrency and len(self.connections) >= self.limit_concurrency:
                self._evict_idle()  # before uvicorn counts connections for its 503
            super().data_received(data)

        def _idle_for(self, now: float) -> float:
            busy = self.cycle is not None and not self.cycle.response_complete
            return -math.inf if busy else now - self._idle_since

        def _evict_idle(self) -> None:
            """Make room for this request by closing the connections idle longest (no request in
            flight for `evict_after` s): idle sockets cost a slot each, and 600 of them held every
            request at 503 until the read timeout closed them (docs/serving.md)."""
            now = self.loop.time()
            idle = [
                c for c in self.connections
                if c is not self and getattr(c, "_idle_for", None) and c._idle_for(now) >= evict_after
            ]  # fmt: skip
            idle.sort(key=lambda c: c._idle_since)
            for c in idle[: len(self.connections) - self.limit_concurrency + 1]:
                self.connections.discard(c)  # uvicorn's own discard at connection_lost is a no-op
                c.transport.close()

        def eof_received(self) -> None:
            if self.transport.lingering:
                self.transport.close()  # the client is done: close now, not at the linger deadline
                return
            super().eof_received()

        def on_response_complete(self) -> None:
            self._idle_since = self.loop.time()
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline.cancel()
            self.transport.cancel()
            super().connection_lost(exc)

        def _check_deadline(self) -> None:
            if self.transport.is_closing():
                return
            busy = self.cycle is not None and not self.cycle.response_complete
            waited = self.loop.time() - self._idle_since
            if not busy and waited >= read_timeout_s:
                self.transport.close()
                return
            delay = read_timeout_s if busy else read_timeout_s - waited
            self._deadline = self.loop.call_later(delay, self._check_deadline)

        def send_400_response(self, msg: str) -> None:
            body = json.dumps(error_body(400, f"malformed HTTP request: {msg}")).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"connection", b"close"),
                (b"content-length", str(len(body)).encode()),
            ]
            try:
                for event in (
                    h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                    h11.Data(data=body),
                    h11.EndOfMessage(),
                ):
                    self.transport.write(self.conn.send(event))
            except h11.LocalProtocolError:
                pass  # h11 cannot answer in this state (e.g. mid-response): just close
            self.transport.close()

    return TimedH11Protocol
