"""The served judge under hostile clients: the figures behind docs/serving.md "Reliability".

Starts `magic serve judge`'s server in this process (a `ScriptedJudge`, loopback, ephemeral port)
and measures: (1) parsing the quadratic guard input `"Human user:\\n" * N` with the old regex and
with the linear `WildGuardFormat.unpack` (seconds, ratio); (2) the process's peak RSS before and after a
client declares and starts sending a 20 MB body (413); (3) threads while 120 sockets stay open
doing nothing or trickling headers, and whether they are closed after the read timeout; (4) 200
concurrent requests from one asyncio client: all answered?, wall seconds, requests/s, batches;
(5) the 19 malformed requests of the hostile review (plus a few more): how many get a JSON 4xx.

Run: `.venv/bin/python benchmarks/serving.py [--markers 8000]`. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import resource
import socket
import threading
import time

import httpx

from magic_rl.judge.formats import FORMATS
from magic_rl.judge.scripted import ScriptedJudge
from magic_rl.judge.serve import start_server_in_thread
from magic_rl.serving import Limits

OLD_WILDGUARD = re.compile(r"Human user:\n(.*)\n\nAI assistant:\n(.*)\n\n---\n\nAnswers:", re.S)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def quadratic(markers: int) -> dict:
    text = "Human user:\n" * markers
    t = time.perf_counter()
    OLD_WILDGUARD.search(text)
    old = time.perf_counter() - t
    t = time.perf_counter()
    with contextlib.suppress(ValueError):
        FORMATS["wildguard"].unpack(text)
    new = time.perf_counter() - t
    return {"bytes": len(text), "old_regex_s": old, "linear_s": new, "ratio": old / max(new, 1e-9)}


def big_body(port: int) -> dict:
    before = peak_rss_mb()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n")
        try:
            for _ in range(20):  # keep sending 1 MB chunks until the server answers or closes
                s.sendall(b"x" * (1 << 20))
        except OSError:
            pass
        head = s.recv(200).split(b"\r\n", 1)[0].decode()
    return {"answer": head, "peak_rss_before_mb": before, "peak_rss_after_mb": peak_rss_mb()}


def slow_sockets(port: int, timeout_s: float) -> dict:
    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(120)]
    for s in socks[::2]:
        s.sendall(b"POST /v1/comp")  # half trickle a partial request line
    during = threading.active_count()
    time.sleep(timeout_s * 3)
    closed = 0
    for s in socks:
        s.settimeout(2)
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    return {
        "threads_before": before,
        "threads_with_120_open": during,
        "closed_after_timeout": closed,
    }


def concurrent(url: str, server, n: int) -> dict:
    async def main() -> list[int]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as c:
            reqs = [
                FORMATS["wildguard"].requests(f"request {i}", f"reply {i}")[0] for i in range(n)
            ]
            rs = await asyncio.gather(
                *(c.post(f"{url}/completions", json={"prompt": p}) for p in reqs)
            )
            return [r.status_code for r in rs]

    before = len(server.batcher.batch_sizes)
    t = time.perf_counter()
    codes = asyncio.run(main())
    wall = time.perf_counter() - t
    batches = server.batcher.batch_sizes[before:]
    return {"requests": n, "ok": codes.count(200), "wall_s": wall, "requests_per_s": n / wall,
            "batches": len(batches), "largest_batch": max(batches)}  # fmt: skip


def malformed(url: str, port: int) -> dict:
    bodies = [b'{"messages": []}', b'{"messages": ["x"]}', b'{"messages": [{"role": "user", "content": 5}]}',
              b'{"messages": [{"role": "user"}]}', b'{"messages": {"a": 1}}', b"{not json", b"[1]",
              b"", b"\xff\xfe", b'{"messages": [{"role": "user", "content": NaN}]}', b"[" * 50_000,
              b'{"model": "other", "messages": [{"role": "user", "content": "x"}]}',
              b'{"prompt": 5}', b'{"prompt": "no guard block"}']  # fmt: skip
    ok = 0
    for b in bodies:
        for path in ("/chat/completions", "/completions"):
            r = httpx.post(f"{url}{path}", content=b, timeout=10)
            ok += 400 <= r.status_code < 500 and "error" in r.json()
    heads = [
        b"Content-Length: -5\r\n",
        b"Content-Length: abc\r\n",
        b"Content-Length: 1\r\nContent-Length: 2\r\n",
    ]
    for h in heads:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + h + b"\r\n")
            data = s.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        ok += head.startswith(b"HTTP/1.1 400") and b'"error"' in body
    return {"malformed_requests": 2 * len(bodies) + len(heads), "json_4xx": ok}


def run(markers: int) -> dict:
    limits = Limits(read_timeout_s=1.0)
    server, url = start_server_in_thread(ScriptedJudge(), limits=limits)
    try:
        return {
            "quadratic": quadratic(markers),
            "body_20mb": big_body(server.server_port),
            "slow_sockets": slow_sockets(server.server_port, limits.read_timeout_s),
            "concurrent": concurrent(url, server, 200),
            "malformed": malformed(url, server.server_port),
        }
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--markers", type=int, default=8000, help="copies of 'Human user:\\n'")
    print(json.dumps(run(p.parse_args().markers), indent=2))
