"""One worker thread that runs a model on batches of concurrent requests.

`Batcher(fn).submit(item)` returns a `concurrent.futures.Future`; the worker takes the first
waiting item, gathers up to `max_batch` (waiting at most `max_wait_s` for more), calls
`fn(items) -> results` once and resolves each future. A local model is not thread-safe and a batch
is cheaper than its rows one by one, so this is the only thread that touches the model. Past
`max_queue` waiting items `submit` raises `Overloaded` (the server answers 503) rather than letting
the queue, and the clients' wait, grow without bound. If `fn` raises, every future of that batch
gets the exception.

Run: `python -m pytest -q tests/test_serving.py -k batch`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_STOP = object()


class Overloaded(RuntimeError):
    """More requests are waiting than the server will queue."""


class Batcher(Generic[T, R]):
    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.01,
        max_queue: int = 1024,
        name: str = "batcher",
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("Batcher: need max_batch >= 1, max_queue >= 1, max_wait_s >= 0")
        self.fn, self.max_batch, self.max_wait_s = fn, max_batch, max_wait_s
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self.batch_sizes: list[int] = []  # one entry per fn call, for tests and logs
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> Future[R]:
        future: Future[R] = Future()
        try:
            self.queue.put_nowait((item, future))
        except queue.Full:
            raise Overloaded(f"{self.queue.maxsize} requests already waiting") from None
        return future

    def close(self) -> None:
        """Finish what is queued, then stop the worker."""
        if self._thread.is_alive():
            self.queue.put(_STOP)
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is _STOP:
                return
            batch, stop = [first], False
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._call(batch)
            if stop:
                return

    def _call(self, batch: list[tuple[T, Future[R]]]) -> None:
        live = [(item, f) for item, f in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        self.batch_sizes.append(len(live))
        try:
            results = self.fn([item for item, _ in live])
            if len(results) != len(live):
                raise RuntimeError(f"batch function gave {len(results)} results for {len(live)}")
        except BaseException as e:  # noqa: BLE001 (handed to every waiting request)
            for _, f in live:
                f.set_exception(e)
            return
        for (_, f), r in zip(live, results, strict=True):
            f.set_result(r)
