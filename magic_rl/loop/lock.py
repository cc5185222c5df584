"""The run-directory lock: one `magic train` (new run or `--resume`) writes a run directory at a time.

`RUN/.lock` holds `{"pid", "host", "since"}` of the process that trains the run. It is created whole
(written to a private file, then hard-linked into place, which fails if a lock exists), held for the
whole of `loop.train`, and removed on any exit that runs Python's `finally` (return, exception,
SIGTERM and SIGINT, which `loop.interrupt` turns into exceptions). A lock left by a process that
died without cleaning up (SIGKILL, a power cut) is stale: when its host is this host and its pid is
not alive, the next train takes it over and says so. A lock held by a live process, or by another
host (whose pids cannot be checked from here), is refused with `RunLocked`, naming the holder.

Data-parallel: only the main process takes the lock (`RunLock(..., enabled=False)` elsewhere).

Run: `python -m pytest -q tests/test_interrupts.py`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".lock"


class RunLocked(RuntimeError):
    """Another live process trains this run directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def _describe(holder: dict) -> str:
    since = holder.get("since")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
        if isinstance(since, int | float)
        else "an unknown time"
    )
    return f"pid {holder.get('pid')} on host {holder.get('host')} since {when}"


def _read(path: Path) -> dict | None:
    """The holder recorded in a lock file; None when it is gone; {} when unreadable."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


class RunLock:
    """`with RunLock(run_dir, log=print):` — hold `run_dir/.lock` for the block (module docstring)."""

    def __init__(self, run_dir: Path, *, log=print, enabled: bool = True) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.log, self.enabled = log, enabled
        self.me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        self.held = False

    def __enter__(self) -> RunLock:
        if self.enabled:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        mine = self.path.with_name(f"{LOCK_NAME}.{self.me['pid']}")
        mine.write_text(json.dumps(self.me), encoding="utf-8")
        try:
            for _ in range(3):  # a stale lock taken over, then a race lost: give up
                try:
                    os.link(mine, self.path)  # atomic, and fails when a lock exists
                    self.held = True
                    return
                except FileExistsError:
                    pass
                holder = _read(self.path)
                if holder is None:
                    continue  # released meanwhile: try again
                self._take_over_if_stale(holder)
            raise RunLocked(f"{self.path}: could not take the run directory's lock (a race)")
        finally:
            mine.unlink(missing_ok=True)

    def _take_over_if_stale(self, holder: dict) -> None:
        """Remove a stale lock (dead pid on this host); raise RunLocked for a live holder."""
        pid, host = holder.get("pid"), holder.get("host")
        here = socket.gethostname()
        run_dir = self.path.parent
        if not isinstance(pid, int) or not isinstance(host, str):
            raise RunLocked(
                f"{self.path}: an unreadable lock (no pid/host): if no `magic train` runs on "
                f"{run_dir}, remove {self.path} and try again"
            )
        if host != here:
            raise RunLocked(
                f"{run_dir} is being trained by {_describe(holder)} (the lock {self.path}); "
                f"its pid cannot be checked from {here}: if that process is gone, remove "
                f"{self.path} and try again"
            )
        if _alive(pid) and pid != os.getpid():
            raise RunLocked(
                f"{run_dir} is being trained by {_describe(holder)} (the lock {self.path}): "
                "wait for it to finish, or stop it (kill -TERM "
                f"{pid} saves its state) and resume then; nothing was changed"
            )
        if _read(self.path) == holder:  # still the stale one we judged (not a newer holder)
            self.path.unlink(missing_ok=True)
            self.log(f"took over a stale lock of {_describe(holder)} (that process is gone)")

    def release(self) -> None:
        if self.held and _read(self.path) == self.me:
            self.path.unlink(missing_ok=True)
        self.held = False
