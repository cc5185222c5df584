"""Table data for the report: a run's evaluations merged into one benchmark x model table
(`eval_table`), other results flattened to metric rows, provenance flattened at full precision,
the ablation table with readable metric names, CI text, and the sample exchanges picked from a
replay."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magic_rl.ablation_metrics import NAMES
from magic_rl.report.runs import _fmt, _num

_LOWER_WORDS = ("asr", "forgetting", "refusal_rate/benign", "over_refusal", "unknown")
_HIGHER_WORDS = ("compliance", "rta", "faithful", "accuracy", "f1", "refusal_rate/harmful")


def metric_name(key: str) -> tuple[str, bool | None]:
    """(readable name, higher is better or None when unknown) of an ablation metric key: the
    ablation's own columns by name (`ablation_metrics.NAMES`); any other key as written, its
    direction guessed from its name."""
    if key in NAMES:
        return NAMES[key]
    low = key.lower()
    if any(w in low for w in _LOWER_WORDS):
        return key, False
    if any(w in low for w in _HIGHER_WORDS):
        return key, True
    return key, None


@dataclass
class EvalTable:
    """A run's evaluations as one table: one row per (benchmark, metric), one column per model.

    `cells[key][model]` is the metric dict of results.json (value, ci, n, n_unknown, ...) from the
    newest evaluation that has it; `origin[key][model]` names that evaluation's directory."""

    models: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> benchmark, metric, up
    cells: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    origin: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, key: str, model: str) -> float:
        return _num((self.cells[key].get(model) or {}).get("value"))

    def metrics_of(self, model: str) -> dict[str, dict[str, Any]]:
        return {k: c[model] for k, c in self.cells.items() if model in c}


def is_model_results(results: Any) -> bool:
    """A `magic eval` results.json ({"models": {label: {"metrics": {...}}}})."""
    models = results.get("models") if isinstance(results, dict) else None
    return isinstance(models, dict) and all(
        isinstance(m, dict) and isinstance(m.get("metrics"), dict) for m in models.values()
    )


def _split_key(key: str, metric: dict[str, Any]) -> tuple[str, str]:
    """(benchmark, metric name) of a results.json metric key, as results.md shows them."""
    name = str(metric.get("name") or key.rsplit("/", 1)[-1])
    if name.startswith("f1/"):
        return key.rsplit("/", 2)[0], name
    bench = key.rsplit("/", 1)[0] if "/" in key else key
    return bench, {"asr": "ASR", "rta": "RTA"}.get(name, name.replace("_", " "))


def eval_table(evaluations: Sequence[tuple[Path, Any]]) -> EvalTable:
    """Merge evaluations (oldest first: (dir, results.json)) of `magic eval`'s format into one
    table; where two have the same model and metric, the newer one's cell is shown."""
    table = EvalTable()
    for path, results in evaluations:
        if not is_model_results(results):
            continue
        for label, model in results["models"].items():
            if label not in table.models:
                table.models.append(label)
            for key, metric in model["metrics"].items():
                if not isinstance(metric, dict):
                    continue
                if key not in table.cells:
                    bench, name = _split_key(key, metric)
                    up = metric.get("higher_is_better")
                    table.keys.append(key)
                    table.meta[key] = {
                        "benchmark": bench,
                        "metric": name,
                        "up": up if isinstance(up, bool) else None,
                    }
                    table.cells[key], table.origin[key] = {}, {}
                table.cells[key][label] = metric
                table.origin[key][label] = Path(path).name
    return table


def flat_items(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, value) of every leaf of a JSON object, numbers at full precision (as JSON
    writes them: a learning rate 1e-06 stays 1e-06)."""
    if isinstance(obj, dict):
        out: list[tuple[str, str]] = []
        for key, sub in obj.items():
            out += flat_items(sub, f"{prefix}.{key}" if prefix else str(key))
        return out or [(prefix, "{}")]
    if isinstance(obj, list) and any(isinstance(v, dict | list) for v in obj):
        out = []
        for i, sub in enumerate(obj):
            out += flat_items(sub, f"{prefix}[{i}]")
        return out
    if isinstance(obj, str):
        return [(prefix, obj)]
    return [(prefix, json.dumps(obj))]


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


def ci_part(lo: Any, hi: Any, digits: int = 3) -> str:
    """ "[lo, hi]", or "" when either end is not a number."""
    if math.isnan(_num(lo)) or math.isnan(_num(hi)):
        return ""
    return f"[{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def common_n(cells: Sequence[dict[str, Any]]) -> int | None:
    """The n most cells share (ties: the largest), or None when no cell has one."""
    ns = [c.get("n") for c in cells if isinstance(c.get("n"), int) and not isinstance(c["n"], bool)]
    if not ns:
        return None
    return max(set(ns), key=lambda n: (ns.count(n), n))


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
