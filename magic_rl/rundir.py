"""The run directory: the one place its file and folder names are spelled, with its readers and
writers. Training writes it (`loop`); `magic eval|crossplay|analyze|report|experiment` read it
through this module, never through `loop`.

    RUN_DIR/
      config.yaml                     the config as the user gave it (sandbox names and all)
      .lock                           the training process that holds the run (`loop.lock`)
      overrides/resume-step-NNNNNN-<time>.yaml   settings a resume changed (config.yaml stays)
      metrics.jsonl                   one row per step (docs/metrics.md): `read_metrics`
      replay.jsonl                    every episode of every step: `read_replay`
      crossplay.jsonl                 live cross-play rows (`crossplay.probe`): `read_crossplay`
      summary.json                    the run summary, written after the last step
      checkpoints/step-NNNNNN/{attacker,defender}/   Hugging Face format: `checkpoint_dir`
      state/                          what resume needs (trained roles, optim.pt, meta.json);
                                      state.tmp/ while written, state.old/ while replaced
      eval/results.json               `magic eval RUN_DIR`
      crossplay/crossplay.json        `magic crossplay RUN_DIR`
      analysis/strategy.json          `magic analyze RUN_DIR`

Writers append synced JSON lines (`append_jsonl`: a kill loses no logged step); readers name the
file, line and field of a bad row (`data.files.read_jsonl_rows`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magic_rl.data.files import DatasetError, read_jsonl_rows

CONFIG = "config.yaml"
LOCK = ".lock"  # held by the one `magic train` writing the run (`loop.lock`)
OVERRIDES = "overrides"
METRICS = "metrics.jsonl"
REPLAY = "replay.jsonl"
CROSSPLAY = "crossplay.jsonl"
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoints"
STATE = "state"
STATE_TMP = "state.tmp"
STATE_OLD = "state.old"
META = "meta.json"  # in state/: next step, scheduler, league, hard cases
OPTIM = "optim.pt"  # in state/: the trained roles' optimisers
EVAL = "eval"
RESULTS = "results.json"  # in eval/
CROSSPLAY_DIR = "crossplay"  # magic crossplay's outputs: crossplay.json, heatmap.png
CROSSPLAY_MATRIX = "crossplay.json"  # in crossplay/
ANALYSIS = "analysis"
STRATEGY = "strategy.json"  # in analysis/
ROLES = ("attacker", "defender")  # a checkpoint's role folders (`Role.value`)
LOGS = (METRICS, REPLAY)  # the per-step logs, cut back to the saved step on resume

CHECKPOINT_PREFIX = "step-"


# --- checkpoints ----------------------------------------------------------------------------------


def checkpoint_name(step: int) -> str:
    """`step-NNNNNN`: the checkpoint saved before step `step` (step-000000: the starting models)."""
    return f"{CHECKPOINT_PREFIX}{step:06d}"


def checkpoint_step(name: str) -> int | None:
    """The step of a checkpoint name (`step-000010` -> 10); None for any other name."""
    digits = name.removeprefix(CHECKPOINT_PREFIX)
    return int(digits) if name.startswith(CHECKPOINT_PREFIX) and digits.isdigit() else None


def checkpoint_dir(run_dir: str | Path, step: int | str, role: str | None = None) -> Path:
    """RUN_DIR/checkpoints/step-NNNNNN[/role]; `step` is a step number or a checkpoint name."""
    name = checkpoint_name(step) if isinstance(step, int) else step
    path = Path(run_dir) / CHECKPOINTS / name
    return path / role if role else path


def is_checkpoint_dir(path: str | Path) -> bool:
    """Does `path` name a checkpoint, RUN_DIR/checkpoints/step-N (not necessarily existing)?"""
    path = Path(path)
    return path.parent.name == CHECKPOINTS and path.name.startswith(CHECKPOINT_PREFIX)


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """A run's `checkpoints/step-NNNNNN` folders, by step (hidden `.tmp-*` ones are not listed)."""
    found = [
        p
        for p in (Path(run_dir) / CHECKPOINTS).glob(f"{CHECKPOINT_PREFIX}*")
        if p.is_dir() and checkpoint_step(p.name) is not None
    ]
    return sorted(found, key=lambda p: checkpoint_step(p.name))


def checkpoint_names(run_dir: str | Path) -> list[str]:
    """The names of every `checkpoints/step-*` entry, sorted (summary.json's list)."""
    return sorted(p.name for p in (Path(run_dir) / CHECKPOINTS).glob(f"{CHECKPOINT_PREFIX}*"))


def is_run_dir(path: str | Path) -> bool:
    """A training run's directory: it has checkpoints/ or a config.yaml."""
    path = Path(path)
    return (path / CHECKPOINTS).is_dir() or (path / CONFIG).is_file()


def eval_results(run_dir: str | Path) -> Path:
    """RUN_DIR/eval/results.json: the ablation's evaluation of a run (`magic eval` writes a new
    RUN_DIR/eval/<time>_<sets>/ each time; `evaluate.eval.layout.find_evaluations` lists both)."""
    return Path(run_dir) / EVAL / RESULTS


def crossplay_matrix(run_dir: str | Path) -> Path:
    """RUN_DIR/crossplay/crossplay.json (`magic crossplay RUN_DIR`)."""
    return Path(run_dir) / CROSSPLAY_DIR / CROSSPLAY_MATRIX


def strategy_analysis(run_dir: str | Path) -> Path:
    """RUN_DIR/analysis/strategy.json (`magic analyze RUN_DIR`)."""
    return Path(run_dir) / ANALYSIS / STRATEGY


def overrides_file(run_dir: str | Path, next_step: int, stamp: str) -> Path:
    """overrides/resume-step-NNNNNN-<stamp>.yaml: the settings a resume at `next_step` changed."""
    return Path(run_dir) / OVERRIDES / f"resume-step-{next_step:06d}-{stamp}.yaml"


# --- readers and writers --------------------------------------------------------------------------


def append_jsonl(path: Path, records: Sequence[dict]) -> None:
    """Append records as JSON lines, synced to disk (a kill loses no logged step)."""
    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of RUN_DIR/metrics.jsonl as written (a null stays None: `run_summary`'s NaN rule
    reads it). The one reader of that file (summary, experiments, report); raises ValueError naming
    the file and line of a bad row, FileNotFoundError when there is none. A torn last line (a run
    killed mid-write) is left out, as resume leaves it out (`loop.resume`): it is the step the
    resume runs again."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {METRICS}: not a run directory")
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


def read_replay(path: str | Path) -> list[dict]:
    """Records of a replay.jsonl; raises ValueError naming the file, line and field of a bad row."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no replay buffer (runs write {REPLAY})")
    rows = []
    for lineno, row in read_jsonl_rows(path):
        where = f"{path}:{lineno}"
        for key, kind in (("step", int), ("seed", dict), ("turns", list)):
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                raise ValueError(f"{where}: field {key!r} missing or not {kind.__name__}")
        for key in ("label", "text"):
            if not isinstance(row["seed"].get(key), str):
                raise ValueError(f"{where}: field 'seed.{key}' missing or not a string")
        for k, turn in enumerate(row["turns"]):
            if not isinstance(turn, dict) or not isinstance(turn.get("attack"), str):
                raise ValueError(f"{where}: field 'turns[{k}].attack' missing or not a string")
        rows.append(row)
    return rows


def read_rows(path: Path) -> list[dict]:
    """The JSON lines of `path` ([] when absent); an unreadable line is a ValueError naming it."""
    if not path.is_file():
        return []
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
    return rows


def read_crossplay(run_dir: str | Path) -> list[dict]:
    """The live cross-play rows of RUN_DIR/crossplay.jsonl ([] when the run played none)."""
    return read_rows(Path(run_dir) / CROSSPLAY)


def write_summary(run_dir: str | Path, summary: dict) -> Path:
    """RUN_DIR/summary.json."""
    path = Path(run_dir) / SUMMARY
    path.write_text(json.dumps(summary, indent=2))
    return path
