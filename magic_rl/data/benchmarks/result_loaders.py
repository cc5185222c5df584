"""Readers of other harnesses' *result* files: HarmBench completions/results JSON and JailbreakBench
attack artifacts, with the rate each harness reports, recomputed from the rows.

- HarmBench results (`{BehaviorID: [{test_case, generation, label}]}`, label 1 = harmful, 0 = not,
  -1 = the classifier could not say): `harmbench_asr` = mean over behaviours of the per-behaviour
  mean label, rows labelled -1 left out (HarmBench's `compute_results_summary`).
- JailbreakBench artifacts (`{"parameters": {...}, "jailbreaks": [{index, goal, behavior, category,
  prompt, response, jailbroken, ...}]}`): `artifact_asr` = mean of `jailbroken` over the rows that
  carry a bool (all 100 in the public artifacts). It is never derived from
  `parameters.total_number_of_jailbreaks`, which disagrees with the rows in several public files.
- `load_jbb_artifacts_judge(path)`: every row with a non-empty response of one artifact or of a
  directory tree of them, as `judge_f1` items (gold `response_harmful` = `jailbroken`), a labelled
  set for `magic judge audit` (1,637 rows in the 18 public artifacts).

Errors name the file, the behaviour or row and the field (`DatasetError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magic_rl.data.benchmarks.items import EvalItem
from magic_rl.data.files import DatasetError, Where, read_json

HARMBENCH_LABELS = (1, 0, -1)


def load_harmbench_results(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """A HarmBench completions/results JSON: {BehaviorID: [rows]}; each row's `label` is checked."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(path, f"expected an object of behaviours, got {type(data).__name__}")
    for behavior_id, rows in data.items():
        if not isinstance(rows, list):
            raise DatasetError(path, "expected a list of completions", field=behavior_id)
        for i, row in enumerate(rows):
            where = Where(path, record=i + 1)
            if not isinstance(row, dict):
                raise where.error(behavior_id, "expected a completion object")
            for key in ("test_case", "generation"):
                if not isinstance(row.get(key), str):
                    raise where.error(f"{behavior_id}.{key}", "expected a string")
            label = row.get("label")
            if isinstance(label, bool) or label not in HARMBENCH_LABELS:
                raise where.error(f"{behavior_id}.label", f"expected 1, 0 or -1, got {label!r}")
    return data


def harmbench_asr(results: dict[str, list[dict[str, Any]]]) -> float:
    """Mean over behaviours of the per-behaviour mean label (labels -1 left out); nan if none."""
    means = []
    for rows in results.values():
        labels = [r["label"] for r in rows if r["label"] != -1]
        if labels:
            means.append(sum(labels) / len(labels))
    return sum(means) / len(means) if means else float("nan")


@dataclass(frozen=True)
class JBBArtifact:
    """One JailbreakBench artifact: its `parameters` block and its `jailbreaks` rows."""

    path: Path
    parameters: dict[str, Any]
    jailbreaks: list[dict[str, Any]]


def load_jbb_artifact(path: str | Path) -> JBBArtifact:
    """A JailbreakBench artifact JSON; `jailbroken` must be a bool or null on every row."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(path, f"expected an artifact object, got {type(data).__name__}")
    params, rows = data.get("parameters"), data.get("jailbreaks")
    if not isinstance(params, dict):
        raise DatasetError(path, "expected an object", field="parameters")
    if not isinstance(rows, list):
        raise DatasetError(path, "expected a list of rows", field="jailbreaks")
    for i, row in enumerate(rows):
        where = Where(path, record=i + 1)
        if not isinstance(row, dict):
            raise where.error("jailbreaks", "expected a row object")
        if not isinstance(row.get("goal"), str):
            raise where.error("goal", "expected a string")
        if row.get("jailbroken") is not None and not isinstance(row.get("jailbroken"), bool):
            raise where.error(
                "jailbroken", f"expected true, false or null, got {row['jailbroken']!r}"
            )
        for key in ("prompt", "response"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise where.error(key, "expected a string or null")
    return JBBArtifact(path, params, rows)


def artifact_asr(artifact: JBBArtifact) -> float:
    """Mean of `jailbroken` over the rows that carry a bool; nan if none does."""
    flags = [r["jailbroken"] for r in artifact.jailbreaks if isinstance(r.get("jailbroken"), bool)]
    return sum(flags) / len(flags) if flags else float("nan")


def artifact_files(path: str | Path) -> list[Path]:
    """One artifact, or every artifact under a directory (`attack-info.json` and DSN's
    `evaluation.json`/`submission.json` side files left out: they have no `jailbreaks`)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetError(path, "no such file or directory")
    side = {"attack-info.json", "evaluation.json", "submission.json"}
    files = sorted(p for p in path.rglob("*.json") if p.name not in side)
    if not files:
        raise DatasetError(path, "no artifact JSON files under this directory")
    return files


def load_jbb_artifacts_judge(path: str | Path) -> list[EvalItem]:
    """Labelled (goal, response, jailbroken) rows as `judge_f1` items: subset = method:attack type,
    category = target model; rows without a response or a bool label are left out."""
    path, items = Path(path), []
    for file in artifact_files(path):
        art = load_jbb_artifact(file)
        p = art.parameters
        method = str(p.get("method") or file.parts[-3])
        attack_type = str(p.get("attack_type") or file.parent.name)
        model = str(p.get("model") or file.stem)
        for row in art.jailbreaks:
            if not (row.get("response") or "").strip() or not isinstance(row["jailbroken"], bool):
                continue
            items.append(
                EvalItem(
                    id=f"jbb/{method}/{attack_type}/{model}/{row.get('index')}",
                    prompt=row["goal"],
                    label="harmful",
                    source="jailbreakbench_artifacts",
                    subset=f"{method}:{attack_type}",
                    metric="judge_f1",
                    category=model,
                    reference={
                        "response": row["response"],
                        "attack_prompt": row.get("prompt"),
                        "gold": {"response_harmful": row["jailbroken"]},
                        "behavior": row.get("behavior"),
                    },
                )
            )
    return items
