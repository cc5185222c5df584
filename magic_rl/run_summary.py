"""What a run's logs say: the headline metrics' means over its first and last steps (one NaN rule),
and the live cross-play matrix with its forgetting measure. Reads the run directory through
`rundir`; training writes it, `magic report` and `magic experiment` read it here, not in `loop`.

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

from magic_rl.rundir import checkpoint_names, read_metrics

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
        "checkpoints": checkpoint_names(run_dir),
    }


# --- live cross-play (crossplay.jsonl) ------------------------------------------------------------


def matrix(rows: Sequence[dict]) -> dict:
    """{attackers, defenders, asr} (rows: attackers, columns: defenders, NaN where not played),
    the shape `magic crossplay` writes and the report draws."""
    attackers = sorted({r["attacker"] for r in rows})
    defenders = sorted({r["defender"] for r in rows})
    cell = {(r["attacker"], r["defender"]): r["asr"] for r in rows}
    return {
        "attackers": attackers,
        "defenders": defenders,
        "asr": [[_float(cell.get((a, d))) for d in defenders] for a in attackers],
    }


def _float(x) -> float:
    return math.nan if x is None else float(x)


def forgetting(rows: Sequence[dict]) -> float:
    """Mean over the earlier attacker snapshots (all but the last) of ASR(a, last defender) minus
    a's lowest ASR against any defender snapshot: how much of what some defender once blocked the
    final defender lets through again (0 = nothing forgotten). NaN without such cells."""
    m = matrix(rows)
    if len(m["attackers"]) < 2 or not m["defenders"]:
        return math.nan
    last = len(m["defenders"]) - 1
    gaps = []
    for row in m["asr"][:-1]:
        known = [v for v in row if not math.isnan(v)]
        if known and not math.isnan(row[last]):
            gaps.append(row[last] - min(known))
    return sum(gaps) / len(gaps) if gaps else math.nan
