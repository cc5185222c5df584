"""What the exporters read: a `magic eval` output (results.json + items.jsonl) or a `magic attack`
output, as typed rows.

`read_sources(path)` accepts an eval or attack output directory, or a run directory: every
evaluation of it (`evaluate.eval.layout.find_evaluations`: RUN_DIR/eval/results.json of older runs,
then each RUN_DIR/eval/<time>_<sets>/, oldest first) and every other child directory holding a
results.json (e.g. `magic attack --out RUN_DIR/attack`). Each items.jsonl line of an eval becomes an
`EvalRow` (the `EvalItem`, the reply, the `Verdict`, and `turns` when a multi-turn evaluation wrote
them); each attack line stays a dict (`magic attack`'s own fields: seed, attack, reply, verdict...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magic_rl.data.benchmarks import EvalItem
from magic_rl.data.files import DatasetError, read_json, read_jsonl_rows
from magic_rl.evaluate.eval.layout import find_evaluations
from magic_rl.evaluate.metrics import outcome_flag
from magic_rl.records import Verdict

# The value an item's outcome flag must have to count towards its metric's rate.
COUNTS = {"asr": True, "compliance_asr": False, "rta": True, "compliance": False}
LOWER_IS_BETTER = {"asr": True, "compliance_asr": True, "rta": False, "compliance": False}


def slug(text: str) -> str:
    """A file-name-safe form of a model label or set name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def verdict_of(d: dict[str, Any]) -> Verdict:
    """The inverse of `evaluate.eval.verdict_dict`."""
    return Verdict(
        d.get("prompt_harmful"),
        d.get("response_refusal"),
        d.get("response_harmful"),
        tuple(d.get("categories") or ()),
        d.get("score"),
        d.get("error") or "",
    )


@dataclass(frozen=True)
class EvalRow:
    """One items.jsonl line of `magic eval`: one model's exchange on one item."""

    model: str
    item: EvalItem
    reply: str
    finish: str
    verdict: Verdict
    turns: list[dict[str, str]] | None = None  # [{"attack", "reply"}] of a multi-turn evaluation

    @property
    def set_name(self) -> str:
        return f"{self.item.source}/{self.item.subset}"

    @property
    def flag(self) -> bool | None:
        return None if self.item.metric == "judge_f1" else outcome_flag(self.item, self.verdict)

    @property
    def counted(self) -> bool | None:
        """Whether the item counts towards its metric's rate (e.g. harmful for ASR); None = unknown."""
        flag = self.flag
        return None if flag is None else flag is COUNTS[self.item.metric]


@dataclass(frozen=True)
class EvalOutput:
    """A `magic eval` output directory."""

    dir: Path
    results: dict[str, Any]
    rows: list[EvalRow]

    @property
    def models(self) -> list[str]:
        return list(self.results["models"])

    def rows_of(self, model: str) -> list[EvalRow]:
        return [r for r in self.rows if r.model == model]


@dataclass(frozen=True)
class AttackOutput:
    """A `magic attack` output directory."""

    dir: Path
    results: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)


Output = EvalOutput | AttackOutput


def _eval_row(path: Path, lineno: int, row: dict[str, Any]) -> EvalRow:
    try:
        item = EvalItem(
            id=str(row["id"]),
            prompt=row["prompt"],
            label=row["label"],
            source=row["source"],
            subset=row["subset"],
            metric=row["metric"],
            category=row.get("category") or "",
            judge_prompt=""
            if row.get("judge_request") in (None, row["prompt"])
            else row["judge_request"],
        )
        return EvalRow(
            str(row["model"]),
            item,
            row["reply"],
            row.get("finish") or "stop",
            verdict_of(row["verdict"]),
            row.get("turns"),
        )
    except KeyError as e:
        raise DatasetError(path, "missing", line=lineno, field=e.args[0]) from None
    except (TypeError, ValueError, AttributeError) as e:
        raise DatasetError(path, f"bad eval row ({e})", line=lineno) from None


def read_output(path: str | Path) -> Output:
    """One eval or attack output directory (told apart by its results.json)."""
    path = Path(path)
    results_path = path / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(f"{path}: no results.json (not a `magic eval`/`magic attack` dir)")
    results = read_json(results_path)
    items = path / "items.jsonl"
    if not items.is_file():
        raise FileNotFoundError(f"{path}: no items.jsonl next to results.json")
    if isinstance(results, dict) and "models" in results:
        rows = [_eval_row(items, n, r) for n, r in read_jsonl_rows(items)]
        return EvalOutput(path, results, rows)
    if isinstance(results, dict) and "attacker" in results and "target" in results:
        return AttackOutput(path, results, [r for _, r in read_jsonl_rows(items)])
    raise DatasetError(results_path, "neither a `magic eval` nor a `magic attack` results file")


def read_sources(path: str | Path) -> list[Output]:
    """An eval/attack output dir, or a run dir: each of its evaluations (oldest first), then every
    other child dir with a results.json (e.g. `magic attack --out RUN_DIR/attack`)."""
    path = Path(path)
    if (path / "results.json").is_file():
        return [read_output(path)]
    found: list[Output] = [read_output(d) for d in find_evaluations(path)]
    for child in sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []:
        if child.name == "eval":
            continue  # read above, evaluation by evaluation
        if (child / "results.json").is_file() and (child / "items.jsonl").is_file():
            found.append(read_output(child))
    if not found:
        raise FileNotFoundError(
            f"{path}: no results.json here or in a child directory; run `magic eval` first"
        )
    return found
