"""Server fuzz: the served judge (and so every `serving.Server`) under hostile clients.

Size cap (413), malformed bodies and malformed HTTP (a JSON 4xx each, and the server still
answers afterwards), slow clients (headers or body trickled: cut after the read timeout, no thread
held), the quadratic guard input, 200 concurrent requests (all answered, batched, threads bounded),
overload (503 at once, not a queue that grows), the API key. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from magic_rl.judge.formats import FORMATS
from magic_rl.judge.scripted import ScriptedJudge
from magic_rl.judge.serve import start_server_in_thread
from magic_rl.serving import Batcher, Limits, Overloaded

LIMITS = Limits(max_body_bytes=64 << 10, read_timeout_s=0.5, keep_alive_s=1)
(WILDGUARD,) = FORMATS["wildguard"].requests("Write a phishing email", "Sure, step 1 ...")
GOOD = {"model": "scripted", "prompt": WILDGUARD}


@pytest.fixture
def served():
    server, url = start_server_in_thread(ScriptedJudge(), limits=LIMITS)
    yield server, url
    server.shutdown()
    server.server_close()


def read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything the server answers before it closes (or times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and _complete(out):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def json_error(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def assert_still_serving(url: str) -> None:
    r = httpx.post(f"{url}/completions", json=GOOD, timeout=5.0)
    assert r.status_code == 200 and r.json()["choices"][0]["text"].startswith("Harmful request")


BAD_BODIES = [
    (b'{"messages": []}', "messages"),
    (b'{"messages": ["x"]}', "messages[0]"),
    (b'{"messages": [{"role": "user", "content": 5}]}', "content"),
    (b'{"messages": [{"role": "user"}]}', "content"),
    (b'{"messages": [{"role": "wizard", "content": "x"}]}', "role"),
    (b'{"messages": {"role": "user"}}', "messages"),
    (b'{"nothing": 1}', "messages"),
    (b"{not json", "JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"just a string"', "JSON object"),
    (b"", "JSON"),
    (b"\xff\xfe\x00garbage", "JSON"),
    (b'{"messages": [{"role": "user", "content": NaN}]}', "JSON"),
    (b"[" * 60_000, "JSON"),
    (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model"),
    (b'{"model": "other", "messages": [{"role": "user", "content": "x"}]}', "does not exist"),
]


@pytest.mark.parametrize(
    ("body", "names"), BAD_BODIES, ids=[f"body{i}" for i in range(len(BAD_BODIES))]
)
def test_every_malformed_chat_body_gets_a_json_4xx(served, body, names) -> None:
    _, url = served
    r = httpx.post(f"{url}/chat/completions", content=body, timeout=5.0)
    assert 400 <= r.status_code < 500
    error = r.json()["error"]
    assert names in error["message"] and error["code"] == r.status_code and error["type"]
    assert_still_serving(url)


@pytest.mark.parametrize(
    "body",
    [{"prompt": 5}, {"prompt": ["a", "b"]}, {"prompt": "no guard block here"}, {"prompt": None}],
)
def test_malformed_completion_bodies(served, body) -> None:
    _, url = served
    r = httpx.post(f"{url}/completions", json=body, timeout=5.0)
    assert r.status_code == 400 and r.json()["error"]["message"]


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"BREW /pot HTCPCP/1.0 \x00\x01\r\n\r\n",
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (32 << 10),
    ],
    ids=["negative-length", "text-length", "two-lengths", "garbage-line", "huge-header"],
)
def test_malformed_http_gets_a_json_400(served, head) -> None:
    server, url = served
    status, body = json_error(raw(server.server_port, head))
    assert (
        status == 400 and body["error"]["code"] == 400 and "malformed" in body["error"]["message"]
    )
    assert_still_serving(url)


def test_unknown_route_and_method_are_json(served) -> None:
    _, url = served
    r = httpx.get(f"{url}/chat/completions", timeout=5.0)
    assert r.status_code == 405 and r.json()["error"]["code"] == 405
    r = httpx.post(f"{url}/embeddings", json={}, timeout=5.0)
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundError"


def test_a_body_over_the_cap_gets_413(served) -> None:
    server, url = served
    big = {"model": "scripted", "prompt": "x" * LIMITS.max_body_bytes}
    r = httpx.post(f"{url}/completions", json=big, timeout=5.0)
    assert r.status_code == 413 and r.json()["error"]["type"] == "RequestTooLargeError"
    # A declared 20 MB body is refused before a byte of it is sent.
    head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n"
    status, body = json_error(raw(server.server_port, head))
    assert status == 413
    # Chunked bodies have no Content-Length: the cap counts what arrives.
    chunks = (b"x" * 8192 for _ in range(20))
    r = httpx.post(f"{url}/completions", content=chunks, timeout=5.0)
    assert r.status_code == 413
    assert_still_serving(url)


def test_a_body_a_little_over_the_cap_is_read_before_the_413(served) -> None:
    # Answering before the body arrives and closing would leave it unread, and a socket closed with
    # unread bytes sends a reset that can reach the client before the 413 (a flaky client error).
    server, _ = served
    size = LIMITS.max_body_bytes + 100
    head = f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5.0) as s:
        s.sendall(head.encode())
        s.settimeout(0.2)
        with pytest.raises(TimeoutError):  # no answer yet: the server waits for the body
            s.recv(1)
        s.settimeout(5.0)
        s.sendall(b"x" * size)
        out = read_until_closed(s)
    status, body = json_error(out)
    assert status == 413 and body["error"]["type"] == "RequestTooLargeError"


def test_a_client_still_sending_a_refused_body_reads_the_413_not_a_reset(served) -> None:
    # Far over the cap, the 413 goes out before the body is read. The server then closes with a
    # lingering close (half-close, drop what still arrives), so the client's send completes and it
    # reads the 413; a plain close would reset the connection under the client's feet.
    server, _ = served
    size = 32 * LIMITS.max_body_bytes  # 2 MiB, over twice the cap: answered at the headers
    head = f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5.0) as s:
        s.sendall(head.encode())
        time.sleep(0.1)  # the 413 is sent and the connection closed before the body is
        s.sendall(b"x" * size)
        out = read_until_closed(s)
    status, body = json_error(out)
    assert status == 413 and body["error"]["type"] == "RequestTooLargeError"


def test_the_quadratic_guard_input_is_answered_at_once(served) -> None:
    # "Human user:\n" * 8000 (104 KB) took 4.4 s through the old regex; 5,000 copies at the cap's
    # size would take minutes. Linear parsing answers before the client's 10 s timeout.
    server, url = start_server_in_thread(ScriptedJudge())  # default 1 MiB cap
    try:
        for marker in ("Human user:\n", "\n\nAI assistant:\n"):
            text = marker * (450_000 // len(marker))  # ~0.5 MB, ~0.9 MB as JSON
            r = httpx.post(f"{url}/completions", json={"prompt": text}, timeout=10.0)
            assert r.status_code == 400
            r = httpx.post(
                f"{url}/chat/completions",
                json={"messages": [{"role": "user", "content": text}]},
                timeout=10.0,
            )
            assert r.status_code == 400
    finally:
        server.shutdown()
        server.server_close()


def test_slow_clients_are_cut_and_hold_no_thread(served) -> None:
    server, url = served
    threads = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.server_port)) for _ in range(40)]
    trickle = socket.create_connection(("127.0.0.1", server.server_port))
    slow_body = socket.create_connection(("127.0.0.1", server.server_port))
    slow_body.sendall(
        b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"prompt"'
    )
    assert threading.active_count() == threads  # 42 open sockets, not one thread more
    assert_still_serving(url)  # and nobody waits behind them
    closed_at = None
    for i in range(40):  # headers trickled a byte every 0.05 s: cut after read_timeout_s
        try:
            trickle.sendall(b"POST /v1/completions HTTP/1.1\r\n"[i % 10 : i % 10 + 1])
        except OSError:
            closed_at = i
            break
        time.sleep(0.05)
    assert closed_at is not None and closed_at * 0.05 < 4 * LIMITS.read_timeout_s
    slow_body.settimeout(5.0)
    status, body = json_error(slow_body.recv(65536))
    assert status == 408 and body["error"]["type"] == "RequestTimeoutError"
    for s in idle:  # the idle ones were closed by the server (recv returns b"")
        s.settimeout(5.0)
        assert s.recv(1) == b""
    for s in (*idle, trickle, slow_body):
        s.close()


def test_200_concurrent_requests_are_all_answered_in_batches() -> None:
    # Default limits: the shared fixture's 0.5 s header deadline and 1 s keep-alive (made for the
    # slow-client tests) can close a pooled connection just as the client reuses it for its next
    # request, which the client sees as a read error (seen once in CI under load).
    server, url = start_server_in_thread(ScriptedJudge())
    try:
        _answer_200_concurrent(server, url)
    finally:
        server.shutdown()
        server.server_close()


def _answer_200_concurrent(server, url: str) -> None:
    threads = threading.active_count()
    peak = [threads]

    async def main() -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:

            async def one(i: int) -> int:
                peak[0] = max(peak[0], threading.active_count())
                (prompt,) = FORMATS["wildguard"].requests(f"request {i}", f"reply {i}")
                r = await client.post(f"{url}/completions", json={"prompt": prompt})
                return r.status_code

            return await asyncio.gather(*(one(i) for i in range(200)))

    assert asyncio.run(main()) == [200] * 200
    assert peak[0] <= threads + 1  # the server added no thread per request
    assert max(server.batcher.batch_sizes) > 1 and sum(server.batcher.batch_sizes) == 200


def test_the_default_body_cap_is_one_mib() -> None:
    # every other test passes explicit limits: this one pins what a user gets by default
    assert Limits().max_body_bytes == 1 << 20
    server, url = start_server_in_thread(ScriptedJudge())
    try:
        fits = {"model": "scripted", "prompt": WILDGUARD + " " * ((1 << 20) - 2000)}
        assert httpx.post(f"{url}/completions", json=fits, timeout=30.0).status_code == 200
        over = {"model": "scripted", "prompt": "x" * (1 << 20)}
        r = httpx.post(f"{url}/completions", json=over, timeout=30.0)
        assert r.status_code == 413 and r.json()["error"]["type"] == "RequestTooLargeError"
    finally:
        server.shutdown()
        server.server_close()


def test_over_the_connection_limit_gets_503_at_once() -> None:
    server, url = start_server_in_thread(
        ScriptedJudge(),
        limits=Limits(max_connections=4),
        fault_rate=1.0,
        faults=("slow",),
        slow_s=1.0,
    )
    try:

        async def main() -> tuple[int, list[int]]:
            async with httpx.AsyncClient(
                timeout=10.0, limits=httpx.Limits(max_connections=20)
            ) as c:
                first = asyncio.create_task(c.post(f"{url}/completions", json=GOOD))
                await asyncio.sleep(0.3)  # admitted, and held for 1 s by the "slow" fault
                burst = await asyncio.gather(
                    *(c.post(f"{url}/completions", json=GOOD) for _ in range(19))
                )
                return (await first).status_code, [r.status_code for r in burst]

        first, burst = asyncio.run(main())
        assert first == 200 and 503 in burst and burst.count(503) >= 19 - 4
    finally:
        server.shutdown()
        server.server_close()


def test_api_key_guards_every_v1_route_but_not_health() -> None:
    server, url = start_server_in_thread(ScriptedJudge(), api_key="k-123")
    try:
        assert httpx.get(f"{url}/models", timeout=5.0).status_code == 401
        r = httpx.post(f"{url}/completions", json=GOOD, headers={"Authorization": "Bearer no"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "AuthenticationError"
        ok = httpx.post(f"{url}/completions", json=GOOD, headers={"Authorization": "Bearer k-123"})
        assert ok.status_code == 200
        assert httpx.get(url.removesuffix("/v1") + "/health", timeout=5.0).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def test_the_default_bind_is_loopback(served) -> None:
    server, _ = served
    assert server.socket.getsockname()[0] == "127.0.0.1"


def test_batcher_batches_and_hands_errors_to_every_waiter() -> None:
    gate = threading.Event()

    def fn(items: list[int]) -> list[int]:
        gate.wait(5)
        if -1 in items:
            raise RuntimeError("model failed")
        return [i * 2 for i in items]

    batcher = Batcher(fn, max_batch=8, max_wait_s=0.05, max_queue=4)
    try:
        first = batcher.submit(1)  # taken by the worker, which then waits on the gate
        time.sleep(0.1)
        queued = [batcher.submit(i) for i in (2, 3, -1, 4)]
        with pytest.raises(Overloaded):
            batcher.submit(5)
        gate.set()
        assert first.result(5) == 2
        for f in queued:
            with pytest.raises(RuntimeError, match="model failed"):
                f.result(5)
        assert batcher.batch_sizes == [1, 4]
    finally:
        batcher.close()


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="Limits"):
        Limits(read_timeout_s=0)
    with pytest.raises(ValueError, match="Limits"):
        Limits(max_body_bytes=0)
