"""CPU speed: keep freed tensor memory mapped instead of giving it back to the OS after every step.

A training step on CPU allocates activation and logit tensors of tens to hundreds of megabytes.
glibc's malloc serves every block above its mmap threshold (32 MB at most) with a fresh `mmap` and
unmaps it on `free`, so each step faults all those pages in again: the sandbox's attacker SFT took
about 5 million minor page faults and a third of its wall time that way. `keep_freed_memory()` turns
malloc's use of mmap off and raises its trim threshold, so freed blocks stay in the heap and the next
step reuses them. `python benchmarks/cpu_alloc.py` measures the ratio (1.30x on 60 SFT steps).

Applied only where it helps: on glibc, and only when no CUDA device is visible (a GPU run moves
multi-GB checkpoints through host memory and should hand it back). Elsewhere it does nothing.
The cost: the process keeps its peak heap until it exits (about 1 GB for the sandbox).
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt accepts: never trim

_applied = False


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory (idempotent). True when it is in effect."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    return _applied


def tune_for_cpu() -> bool:
    """`keep_freed_memory()` when this process computes on CPU (no CUDA device visible)."""
    import torch

    if torch.cuda.is_available():
        return False
    return keep_freed_memory()
