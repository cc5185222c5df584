"""Two build stages at once on a small machine: `alongside(fn, *args)` runs `fn(*args)` in a second
process while the `with` block runs in this one, each process on one torch thread for the block's
length (three threads on two cores slowed every stage: docs/LOG.md), and hands back its result.

    with alongside(judge_stage, cfg, world.root) as judge:
        ...                      # the base model trains here meanwhile
        accuracy, sizes, seconds = judge()

Why a process: the sandbox's models are too small for their matmuls to fill two cores (a
two-thread SFT step is about 1.4x a one-thread one here), and the judge's featurisation is Python
that holds the GIL. A stage run this way shares nothing with the block but files on disk, and gives
the same result on one thread as on two (the world's stages do: docs/LOG.md). An error in the
stage is raised where its result is asked for; leaving the block early (an error, Ctrl-C) stops
the second process.

Floor: beside `sandbox.world`, which uses it (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@contextmanager
def alongside(fn: Callable[..., Any], *args: Any) -> Iterator[Callable[[], Any]]:
    """Start `fn(*args)` in a spawned process (`fn` importable, `args` picklable); the block gets a
    callable that waits for and returns its result."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two processes, one thread each: more threads than cores spin
    try:
        with multiprocessing.get_context("spawn").Pool(1, initializer=_one_thread) as pool:
            job = pool.apply_async(fn, args)
            yield job.get  # Pool's exit terminates the process, finished or not
    finally:
        torch.set_num_threads(threads)
