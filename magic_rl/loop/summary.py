"""A run's summary: the headline metrics' means over its first and last steps, with one NaN rule.

`headline(rows)` is what `summary.json`, the end-of-run table (`magic train`, `make demo`) and the
report's summary section show. The NaN rule, the same as the metric schedule's window
(`schedule.py`): a step without a number for a metric (the key absent, NaN or null: no valid sample
that step) is left out of that metric's mean; a window where no step has one gives None.

Run: `python -m pytest -q tests/test_loop.py tests/test_report.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from magic_rl.data.files import DatasetError, read_jsonl_rows

SUMMARY_KEYS = (
    "defender/refusal_rate/harmful",
    "defender/refusal_rate/benign",
    "game/refusal_gap",
    "game/asr",
    "defender/reward/total",
    "attacker/reward/total",
    "attacker/format_rate",
    "attacker/faithful_rate",
    "judge/unknown",
    "time/step",
)


def nan_mean(values: Iterable[Any]) -> float | None:
    """Mean of the numbers among `values` (NaN, None and non-numbers skipped); None if none."""
    nums = [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v)
    ]
    return sum(nums) / len(nums) if nums else None


def metric(row: Mapping[str, Any], key: str) -> Any:
    """`row[key]`, with `game/refusal_gap` derived from the two refusal rates in rows logged before
    the gap was (None when either is missing)."""
    if key in row or key != "game/refusal_gap":
        return row.get(key)
    harmful = nan_mean([row.get("defender/refusal_rate/harmful")])
    benign = nan_mean([row.get("defender/refusal_rate/benign")])
    return None if harmful is None or benign is None else harmful - benign


def headline(rows: Sequence[Mapping[str, Any]], window: int = 5) -> dict[str, Any]:
    """Steps, role switches, and the first and last `window` steps' means of `SUMMARY_KEYS`."""
    roles = [r.get("schedule/role") for r in rows]
    return {
        "steps": len(rows),
        "switches": sum(1 for a, b in zip(roles, roles[1:], strict=False) if a != b),
        "first": {k: nan_mean(metric(r, k) for r in rows[:window]) for k in SUMMARY_KEYS},
        "last": {k: nan_mean(metric(r, k) for r in rows[-window:]) for k in SUMMARY_KEYS},
    }


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of RUN_DIR/metrics.jsonl as written (a null stays None: the NaN rule above reads
    it). The one reader of that file (summary, experiments, report); raises ValueError naming the
    file and line of a bad row, FileNotFoundError when there is none. A torn last line (a run
    killed mid-write) is left out, as resume leaves it out (`loop.resume`): it is the step the
    resume runs again."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl: not a run directory")
    rows = []
    try:
        for lineno, row in read_jsonl_rows(path):
            step = row.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                raise DatasetError(path, "field 'step' missing or not an integer", line=lineno)
            rows.append(row)
    except DatasetError as err:
        if err.line != _last_line(path):
            raise
    return rows


def _last_line(path: Path) -> int:
    """The number of the last non-blank line of a file."""
    last = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if raw.strip():
                last = lineno
    return last


def summarize_run(run_dir: Path, window: int = 5) -> dict:
    """summary.json: `headline`, the time spent in steps and in live cross-play, the checkpoints."""
    rows = read_metrics(run_dir)
    step_s = sum(r.get("time/step", 0.0) for r in rows)
    crossplay_s = sum(r.get("time/crossplay", 0.0) for r in rows)
    head = headline(rows, window)
    return {
        "steps": head["steps"],
        "time": {
            "steps_s": round(step_s, 2),
            "crossplay_s": round(crossplay_s, 2),
            # live cross-play's cost as a share of the run's step + cross-play time
            "crossplay_share": round(crossplay_s / (step_s + crossplay_s), 4)
            if step_s + crossplay_s
            else None,
        },
        "switches": head["switches"],
        "first": head["first"],
        "last": head["last"],
        "checkpoints": sorted(p.name for p in (Path(run_dir) / "checkpoints").glob("step-*")),
    }
