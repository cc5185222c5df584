"""Table data for the report: evaluation results flattened to metric rows, the ablation
table, CI text, and the sample exchanges picked from a replay."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from magic_rl.report.runs import _fmt, _num


def metric_rows(obj: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Flatten an evaluation results JSON into {name, value, lo, hi, n, n_unknown} rows: any object with a
    numeric `value` (or `mean`) is a row (its CI from `ci: [lo, hi]` or `lo`/`hi`); other numbers
    are rows without a CI; strings are provenance and skipped."""
    rows: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        value = obj.get("value", obj.get("mean"))
        if isinstance(value, int | float) and not isinstance(value, bool):
            ci = obj.get("ci") if isinstance(obj.get("ci"), list | tuple) else None
            lo, hi = (ci[0], ci[1]) if ci and len(ci) == 2 else (obj.get("lo"), obj.get("hi"))
            parts = [str(obj[k]) for k in ("source", "subset", "name") if obj.get(k)]
            name = "/".join(parts) if parts and not prefix.endswith("/".join(parts)) else prefix
            rows.append(
                {
                    "name": name or prefix,
                    "value": value,
                    "lo": lo,
                    "hi": hi,
                    "n": obj.get("n"),
                    "n_unknown": obj.get("n_unknown"),
                }
            )
            return rows
        for key, sub in obj.items():
            rows += metric_rows(sub, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(obj, list):
        for i, sub in enumerate(obj):
            rows += metric_rows(sub, f"{prefix}[{i}]" if prefix else f"[{i}]")
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        rows.append(
            {"name": prefix, "value": obj, "lo": None, "hi": None, "n": None, "n_unknown": None}
        )
    return rows


def ablation_table(obj: Any, source: str = "ablation") -> tuple[list[str], list[str], dict]:
    """(variants, metrics, cells) of an ablation JSON {variant: {metric: {mean, lo, hi, n}}}
    (optionally under a top-level "variants" or "rows" key). A cell may be a bare number."""
    if isinstance(obj, dict) and set(obj) <= {"variants", "rows", "title"} and obj:
        obj = obj.get("variants", obj.get("rows"))
    if not isinstance(obj, dict) or not obj:
        raise ValueError(
            f"{source}: expected an object {{variant: {{metric: {{mean, lo, hi, n}}}}}}"
        )
    metrics: list[str] = []
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for variant, row in obj.items():
        if not isinstance(row, dict):
            raise ValueError(f"{source}: variant {variant!r}: expected an object of metrics")
        for metric, cell in row.items():
            if isinstance(cell, int | float) and not isinstance(cell, bool):
                cell = {"mean": cell}
            if not isinstance(cell, dict) or not isinstance(cell.get("mean"), int | float | None):
                raise ValueError(
                    f"{source}: variant {variant!r}, metric {metric!r}: expected "
                    "{mean, lo, hi, n}"
                )
            if metric not in metrics:
                metrics.append(metric)
            cells[(variant, metric)] = cell
    return list(obj), metrics, cells


def _ci_text(value: Any, lo: Any, hi: Any, n: Any = None) -> str:
    text = _fmt(value)
    if not math.isnan(_num(lo)) and not math.isnan(_num(hi)):
        text += f" [{_fmt(lo)}, {_fmt(hi)}]"
    if isinstance(n, int) and not isinstance(n, bool):
        text += f" (n={n})"
    return text


def sample_exchanges(replay: Sequence[dict], per_period: int = 3) -> list[tuple[str, dict]]:
    """A few exchanges from the earliest and the latest step: harmful seeds first, then benign,
    one per seed, preferring different verdicts."""
    if not replay:
        return []
    steps = sorted({r["step"] for r in replay})
    out: list[tuple[str, dict]] = []
    for period, step in (("early", steps[0]), ("late", steps[-1])):
        if period == "late" and step == steps[0]:
            break
        rows = [r for r in replay if r["step"] == step]
        picked: list[dict] = []
        seen_seeds: set[str] = set()
        seen_verdicts: set[tuple] = set()
        for want_new_verdict in (True, False):
            for label in ("harmful", "benign", "harmful"):
                for r in rows:
                    if len(picked) >= per_period:
                        break
                    v = r.get("verdict") or {}
                    key = (v.get("response_harmful"), v.get("response_refusal"))
                    sid = r["seed"].get("id", r["seed"]["text"])
                    if r["seed"]["label"] != label or sid in seen_seeds:
                        continue
                    if want_new_verdict and key in seen_verdicts:
                        continue
                    picked.append(r)
                    seen_seeds.add(sid)
                    seen_verdicts.add(key)
                    break
        out += [(period, r) for r in picked]
    return out
