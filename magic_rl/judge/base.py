"""The `Judge` protocol: exchanges in, three-valued `Verdict`s out (docs/DESIGN.md §2).

A backend gets parallel lists of prompts and responses and returns one `Verdict` per pair. A response
of `None` asks for the prompt label only (the prompt-only call). Every backend makes at most two model
calls per exchange (prompt-only and prompt+response) and never reports an unparsable answer as safe:
the signal is `None` and `Verdict.error` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from magic_rl.records import Verdict


@runtime_checkable
class Judge(Protocol):
    """Anything that labels exchanges. `name` identifies it in caches, metrics and provenance."""

    name: str

    def judge(self, prompts: Sequence[str], responses: Sequence[str | None]) -> list[Verdict]:
        """One verdict per (prompt, response) pair, in order. Batched; never raises on bad output."""
        ...
