"""Reading runs: a run directory (metrics.jsonl, config.yaml, replay.jsonl, cross-play (the
post-hoc crossplay/crossplay.json, else the live crossplay.jsonl as it stands), every evaluation
(`evaluate.eval.find_evaluations`, oldest first) and strategy-analysis JSON) into a `RunData`, its
summary, and the small number helpers the rest of the report shares."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magic_rl import rundir
from magic_rl.data.files import get_path
from magic_rl.evaluate.analyze import analyze_replay
from magic_rl.evaluate.eval.layout import find_evaluations
from magic_rl.run_summary import headline, matrix
from magic_rl.rundir import read_crossplay, read_metrics, read_replay

CONFIG_KEYS = (
    "name", "seed", "attacker.model", "defender.model", "judge.backend", "game.max_turns",
    "game.attacker", "schedule.mode", "schedule.train_roles", "schedule.start_agent",
    "schedule.freq", "grpo.group_size", "train.steps", "train.seeds_per_step",
)  # fmt: skip


@dataclass
class RunData:
    """Everything the report reads from one run directory (absent parts are None/empty)."""

    path: Path
    label: str
    metrics: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    replay: list[dict] = field(default_factory=list)
    crossplay: dict[str, Any] | None = None
    evaluations: list[tuple[Path, Any]] = field(default_factory=list)  # (dir, results.json)
    analysis: dict[str, Any] | None = None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def load_run(run_dir: str | Path, label: str | None = None) -> RunData:
    """Read a run directory; only metrics.jsonl is required."""
    path = Path(run_dir)
    metrics = [
        {k: (math.nan if v is None else v) for k, v in row.items()} for row in read_metrics(path)
    ]  # the report's plots and tables read NaN for "no number this step"
    run = RunData(path=path, label=label or path.name, metrics=metrics)
    config = path / rundir.CONFIG
    if config.exists():
        import yaml

        try:
            run.config = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            problem = " ".join(str(e).split())
            raise ValueError(f"{config}: unreadable ({problem})") from None
    if (path / rundir.REPLAY).exists():
        run.replay = read_replay(path / rundir.REPLAY)
    if (crossplay := rundir.crossplay_matrix(path)).exists():
        run.crossplay = _check_crossplay(_read_json(crossplay), crossplay)
    elif (path / rundir.CROSSPLAY).exists():  # live cross-play, drawn as it stands
        run.crossplay = {**matrix(read_crossplay(path)), "live": True}
    run.evaluations = [(d, _read_json(d / rundir.RESULTS)) for d in find_evaluations(path)]
    if (analysis := rundir.strategy_analysis(path)).exists():
        run.analysis = _read_json(analysis)
    elif run.replay:
        run.analysis = analyze_replay(path)
    return run


def _check_crossplay(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected an object with attackers, defenders, asr")
    for key in ("attackers", "defenders", "asr"):
        if not isinstance(obj.get(key), list):
            raise ValueError(f"{path}: field {key!r} missing or not a list")
    rows, cols = len(obj["attackers"]), len(obj["defenders"])
    if len(obj["asr"]) != rows or any(
        not isinstance(r, list) or len(r) != cols for r in obj["asr"]
    ):
        raise ValueError(f"{path}: field 'asr' must be {rows} rows (attackers) x {cols} columns")
    return obj


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def run_summary(run: RunData, window: int = 5) -> dict[str, Any]:
    """The run's `run_summary.headline` (the same means, NaN rule and keys as summary.json) with
    its last step, steps per role and the config keys the report shows."""
    roles = [r.get("schedule/role") for r in run.metrics]
    head = headline(run.metrics, window)
    return {
        "steps": head["steps"],
        "last_step": max((r["step"] for r in run.metrics), default=None),
        "switches": head["switches"],
        "steps_per_role": {role: roles.count(role) for role in ("defender", "attacker")},
        "config": {k: v for k in CONFIG_KEYS if (v := get_path(run.config, k)) is not None},
        "first": head["first"],
        "last": head["last"],
    }
