"""Agreement of a Judge with WildGuardTest's human labels, for all three signals.

WildGuardTest (Han et al., 2024; `wildguardtest/wildguardtest_data.csv` under the shared data
folder) labels each (prompt, response) row with `prompt_harm_label` (harmful | unharmful),
`response_refusal_label` (refusal | compliance) and `response_harm_label` (harmful | unharmful).
Each row is judged once, prompt+response; each signal is compared with its label. A row whose label
for a signal is missing is skipped for that signal and counted (`skipped`); a verdict of `None`
counts as `unknown` and as a disagreement (never silently as "safe").

This is a calibration figure, not a target: the sandbox's embedded judge was trained only on the
sandbox world and is not expected to be a general safety classifier.

Run:
    .venv/bin/python -m magic_rl.judge.calibrate --judge-dir /tmp/judge [--limit 200]
Prints one JSON object: per signal accuracy, precision, recall, F1, tp/fp/tn/fn, n, skipped, unknown.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magic_rl.judge.base import Judge

SIGNALS: tuple[str, ...] = ("prompt_harmful", "response_refusal", "response_harmful")
# column -> (signal, value meaning True, value meaning False)
_COLUMNS: dict[str, tuple[str, str, str]] = {
    "prompt_harm_label": ("prompt_harmful", "harmful", "unharmful"),
    "response_refusal_label": ("response_refusal", "refusal", "compliance"),
    "response_harm_label": ("response_harmful", "harmful", "unharmful"),
}
_MISSING = {"", "nan", "none", "null"}


@dataclass(frozen=True)
class CalibrationRow:
    """One labeled exchange; a label is None where the reference has none."""

    prompt: str
    response: str
    prompt_harmful: bool | None
    response_refusal: bool | None
    response_harmful: bool | None


def default_path() -> Path:
    """WildGuardTest's CSV under MAGIC_SHARED_DATA, or ../shared/data next to the repository."""
    env = os.environ.get("MAGIC_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return root / "wildguardtest" / "wildguardtest_data.csv"


def _label(value: str, column: str, where: str) -> bool | None:
    _, yes, no = _COLUMNS[column]
    v = (value or "").strip().lower()
    if v in _MISSING:
        return None
    if v in (yes, no):
        return v == yes
    raise ValueError(f"{where}: field {column!r}: expected {yes!r}, {no!r} or empty, got {value!r}")


def load_wildguardtest(path: str | Path | None = None) -> list[CalibrationRow]:
    """Rows of WildGuardTest. Raises naming the file, row and field on malformed input."""
    path = Path(path) if path else default_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: WildGuardTest CSV not found")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"prompt", "response", *_COLUMNS} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        rows = []
        for i, rec in enumerate(reader, start=2):  # line 1 is the header
            where = f"{path}: row {i}"
            labels = {_COLUMNS[c][0]: _label(rec[c], c, where) for c in _COLUMNS}
            rows.append(CalibrationRow(rec["prompt"] or "", rec["response"] or "", **labels))
    return rows


def _binary_stats(pairs: Sequence[tuple[bool | None, bool]]) -> dict[str, float]:
    """Confusion counts and scores of (predicted, reference) pairs; predicted None = unknown."""
    tp = sum(p is True and r for p, r in pairs)
    fp = sum(p is True and not r for p, r in pairs)
    tn = sum(p is False and not r for p, r in pairs)
    fn = sum(p is False and r for p, r in pairs)
    unknown = sum(p is None for p, _ in pairs)
    n = len(pairs)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn + sum(p is None and r for p, r in pairs)) if n else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": n,
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "unknown": unknown,
    }


def agreement(
    judge: Judge, rows: Sequence[CalibrationRow], *, batch_size: int = 256
) -> dict[str, dict[str, Any]]:
    """Per signal: accuracy, precision, recall, F1 (positive = harmful / refusal), confusion
    counts, `n` rows scored, `skipped` rows without a reference label, `unknown` None verdicts."""
    verdicts = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        verdicts.extend(judge.judge([r.prompt for r in chunk], [r.response for r in chunk]))
    if len(verdicts) != len(rows):
        raise ValueError(f"judge {judge.name!r} gave {len(verdicts)} verdicts for {len(rows)} rows")
    out: dict[str, dict[str, Any]] = {}
    for signal in SIGNALS:
        pairs = [
            (getattr(v, signal), getattr(r, signal))
            for r, v in zip(rows, verdicts, strict=True)
            if getattr(r, signal) is not None
        ]
        out[signal] = {**_binary_stats(pairs), "skipped": len(rows) - len(pairs)}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Agreement of a judge with WildGuardTest labels.")
    ap.add_argument("--judge-dir", required=True, help="an embedded judge saved by save_pretrained")
    ap.add_argument("--data", default=None, help="WildGuardTest CSV (default: shared data)")
    ap.add_argument("--limit", type=int, default=None, help="first N rows only (smoke runs)")
    args = ap.parse_args(argv)
    from magic_rl.judge.embedded import EmbeddedJudge

    judge = EmbeddedJudge.from_pretrained(args.judge_dir)
    rows = load_wildguardtest(args.data)[: args.limit]
    result = {"judge": judge.name, "rows": len(rows), "signals": agreement(judge, rows)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
