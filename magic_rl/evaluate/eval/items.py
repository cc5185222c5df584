"""What `magic eval` passes around: eval sets, one item's result, and the sandbox set names.

`EvalSet` is a named list of `EvalItem`s with the files (path -> sha256) they were read from;
`ItemResult` is one item's exchange (the defender's reply, the judge's verdict) and its items.jsonl
line. `SANDBOX_SETS` names the six sandbox sets (`data.benchmarks.sandbox`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from magic_rl.data.benchmarks import (  # noqa: F401 (the sandbox's names, re-exported)
    REWRITES_PER_SEED,
    SANDBOX,
    SANDBOX_SETS,
    SEEDS_DIR,
    EvalItem,
)
from magic_rl.evaluate.metrics import outcome_flag
from magic_rl.records import Verdict

REPO = Path(__file__).resolve().parents[3]

Log = Callable[..., None]


@dataclass(frozen=True)
class EvalSet:
    """A named list of items and the files (path -> sha256) they were read from."""

    name: str
    items: list[EvalItem]
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemResult:
    """One item's exchange: the defender's raw reply and the judge's verdict on it."""

    item: EvalItem
    reply: str
    finish: str
    verdict: Verdict

    @property
    def outcome(self) -> bool | None:
        return outcome_flag(self.item, self.verdict)

    def to_dict(self, model: str) -> dict[str, Any]:
        i = self.item
        return {
            "model": model,
            "id": i.id,
            "source": i.source,
            "subset": i.subset,
            "metric": i.metric,
            "label": i.label,
            "category": i.category,
            "prompt": i.prompt,
            "judge_request": i.judge_request,
            "reply": self.reply,
            "finish": self.finish,
            "verdict": verdict_dict(self.verdict),
            "outcome": self.outcome,
        }


def verdict_dict(v: Verdict) -> dict[str, Any]:
    """The judge's labels of a verdict (not the training judge stage's `reply_carries_request`
    and `rewrite_carries_request`)."""
    d = asdict(v)
    d["categories"] = list(v.categories)
    del d["reply_carries_request"], d["rewrite_carries_request"]
    return d
