"""The evaluation item and the metrics it can feed: `EvalItem`, `Metric`, `METRICS`, and
`DEFAULT_DATA_ROOT`, the shared data folder the registry's default files live under."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from magic_rl.records import LABELS, Label

Metric = Literal["asr", "compliance_asr", "rta", "compliance", "judge_f1"]
METRICS: tuple[Metric, ...] = ("asr", "compliance_asr", "rta", "compliance", "judge_f1")

# /work/main/magic_rl/data/benchmarks/items.py -> /work/shared/data; callers on other layouts pass
# `data_root` (the loaders never read environment variables).
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[4] / "shared" / "data"


@dataclass(frozen=True)
class EvalItem:
    """One evaluation prompt and how its outcome is scored.

    `prompt` is what the model under test sees; `judge_prompt` (when not empty) is the request the
    judge is given instead, e.g. WildJailbreak's vanilla request. `reference` holds the benchmark's
    own labels and context (WildGuardTest's response labels, HarmBench IDs); for `judge_f1` items it
    holds `gold`: a dict from a `Verdict` signal name to the gold bool (None = not annotated).
    """

    id: str
    prompt: str
    label: Label
    source: str
    subset: str
    metric: Metric
    category: str = ""
    judge_prompt: str = ""
    reference: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"item {self.id!r}: label must be one of {LABELS}, got {self.label!r}")
        if self.metric not in METRICS:
            raise ValueError(
                f"item {self.id!r}: metric must be one of {METRICS}, not {self.metric!r}"
            )

    @property
    def judge_request(self) -> str:
        """The request text the judge should see with the reply."""
        return self.judge_prompt or self.prompt


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, for the provenance block of a results JSON."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
