"""SIGTERM and SIGINT during training: finish the current step, save the state, stop with a message.

`GracefulStop` installs handlers for SIGTERM and SIGINT (Ctrl-C) while `loop.train` runs its steps.
The first signal only raises a flag; `train` reads it at the end of each step (a safe point: the
step's records are logged whole), saves the state resume needs (unless that step saved it already)
and raises `Interrupted`: `interrupted at step N; resume with: magic train --resume RUN`, exit code
130 (SIGINT) or 143 (SIGTERM), the shell's convention of 128 + the signal's number. A signal during
the last step lets the run finish whole and still raises `Interrupted`, so that a command training
several runs (an ablation) or doing more after the run (the demo) stops there too. A second signal
stops at once: the handler raises `Interrupted` inside the step, and the run resumes from its last
saved state (state/ and checkpoints are written to a temporary folder and renamed, so a stop in the
middle of a save keeps the previous one).

Before the steps (phase 1, the sandbox world build, loading models) there is nothing of the run to
save: `sigterm_stops` makes SIGTERM stop at once there, with a message, as Ctrl-C does.

Data-parallel: the flag is summed over the ranks after every step, so every rank stops after the
same step even when only one was signalled. Handlers can only be installed from the main thread;
elsewhere (a training run in a worker thread) signals keep Python's defaults.

Run: `python -m pytest -q tests/test_interrupts.py`.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal; `code` is the process exit code (128 + signal number). A
    KeyboardInterrupt, as Ctrl-C's own: no `except Exception` on the way (a loader's, a retry
    loop's) takes a stop for an error."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.code = 128 + signum


class GracefulStop:
    """`with GracefulStop(run_dir, log) as stop:` — `stop.signum` is set by the first signal."""

    def __init__(self, run_dir, *, log=print) -> None:
        self.run_dir, self.log = run_dir, log
        self.signum: int | None = None
        self.step: int | None = None  # the step being run, for the messages
        self._previous: dict[int, object] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:  # the second signal: stop now
            raise Interrupted(
                f"{name} again: stopped at once during step {self.step}; resume with: "
                f"magic train --resume {self.run_dir} (from its last saved state)",
                signum,
            )
        self.signum = signum
        # os.write, not print or the log: the handler may run while the step prints to them
        where = "before the first step" if self.step is None else f"after step {self.step}"
        os.write(
            2,
            f"{name}: stopping {where} and saving the state (send it again to stop at once)\n".encode(),
        )

    def finished(self, steps: int) -> Interrupted:
        """What `train` raises when the flag went up during the last step: the run is complete
        (nothing to resume), and whatever called `train` (an ablation's next run, the demo's
        evaluation) stops too."""
        assert self.signum is not None
        return Interrupted(
            f"{signal.Signals(self.signum).name} during the last step: the run is complete "
            f"({steps} steps, {self.run_dir}); stopped before anything else",
            self.signum,
        )

    def stopped(self, step: int) -> Interrupted:
        """The exception `train` raises before step `step` (0-based) once the flag is up."""
        assert self.signum is not None
        return Interrupted(
            f"interrupted at step {step}; resume with: magic train --resume {self.run_dir}",
            self.signum,
        )


@contextmanager
def sigterm_stops(message: str) -> Iterator[None]:
    """SIGTERM raises `Interrupted(message)` (exit 143) while the block runs, instead of killing
    the process without a word; `GracefulStop` takes over inside it for the training steps."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame) -> None:
        raise Interrupted(message, signum)

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
