"""Where `magic eval`'s models come from: run directories, their checkpoints, the defender, the judge.

A model argument is an HF path/id, RUN_DIR (its last checkpoint) or RUN_DIR/checkpoints/step-N (the
entry point turned a `sandbox:*` or `models:*` name into a path); torch loads inside the functions.

A torn checkpoint (a kill while it was written: a 0-byte config.json, a truncated safetensors file)
is skipped with a warning when a run's checkpoints are listed, and named when asked for directly;
checkpoints written by the training loop since are atomic (a temporary folder, then a rename).
"""

from __future__ import annotations

from pathlib import Path

from magic_rl.config import RunConfig
from magic_rl.data.model_files import model_dir_problem, run_checkpoint_dirs
from magic_rl.evaluate.eval.items import Log
from magic_rl.records import Role


def is_run_dir(path: Path) -> bool:
    return (path / "checkpoints").is_dir() or (path / "config.yaml").is_file()


def run_checkpoints(run_dir: str | Path, *, log: Log = print) -> list[Path]:
    """Whole `checkpoints/step-NNNNNN` directories of a run, by step; torn ones are skipped with a
    warning naming the bad file."""
    found = run_checkpoint_dirs(run_dir)
    ckpts = []
    for ckpt, problem in found:
        if problem:
            log(f"warning: skipping incomplete checkpoint {ckpt.name}: {problem}")
        else:
            ckpts.append(ckpt)
    if not ckpts:
        torn = f" ({len(found)} incomplete)" if found else ""
        raise FileNotFoundError(f"{run_dir}: no whole checkpoints/step-* directories{torn}")
    return ckpts


def is_local(spec: str) -> bool:
    """A path rather than a Hub id (`org/name`)."""
    return spec.startswith((".", "/", "~")) or spec.count("/") != 1


def run_dir_of(spec: str) -> Path | None:
    """The run directory a model argument points into (RUN_DIR or RUN_DIR/checkpoints/step-N)."""
    path = Path(spec)
    if path.parent.name == "checkpoints" and path.name.startswith("step-"):
        return path.parent.parent
    return path if is_run_dir(path) else None


def resolve_role_model(spec: str, role: Role, cfg: RunConfig, *, log: Log = print) -> str:
    """An HF path/id, RUN_DIR (its LAST checkpoint) or RUN_DIR/checkpoints/step-N -> the path of
    `role`'s model."""
    path = Path(spec)
    if path.parent.name == "checkpoints" and path.name.startswith("step-"):
        ckpt = path
    elif is_run_dir(path):
        ckpt = run_checkpoints(path, log=log)[-1]
    elif (path.exists() or is_local(spec)) and (problem := model_dir_problem(path)):
        raise FileNotFoundError(f"{role.value} model: {problem}")
    else:
        return spec
    if not (ckpt / role.value).is_dir():
        raise FileNotFoundError(f"{ckpt}: no {role.value}/ checkpoint")
    if problem := model_dir_problem(ckpt / role.value):
        raise FileNotFoundError(f"{problem} (an incomplete checkpoint: choose another step)")
    return str(ckpt / role.value)
