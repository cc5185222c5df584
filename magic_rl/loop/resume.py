"""Resume safety: check a run directory as a whole before anything is loaded, written or cut.

`magic train --resume RUN` continues from `RUN/state/` (saved atomically at every switch and every
`train.checkpoint_every` steps). Before one byte is written, `check_resume` reads every part of it —
`state/meta.json`, `state/optim.pt` (its zip directory), each trained role's model files (config and
safetensors headers against the file size) — and the logs `metrics.jsonl` and `replay.jsonl`. A
missing, empty or truncated part stops the resume with a `ResumeError` naming the file and the last
whole checkpoint to start a new run from. Rules:

- no `state/` at all is a run that never saved one whole (it starts again from step 0; a kill
  during the first save leaves a checkpoint but no state), unless a step was logged after the
  first save (`_lost_state`): then the state was lost, and nothing is touched;
- the logs are cut only back to the saved step (records of later steps, replayed identically),
  by `Run` with the resume's first write, so a resume that fails before leaves them as they were;
  a log that lacks records before the saved step, or holds an unreadable line other than a torn
  last one, is refused;
- the run's `config.yaml` is never rewritten: settings that differ on resume (command-line
  overrides) are recorded in `overrides/resume-step-NNNNNN-<time>.yaml` beside it.

Run: `python -m pytest -q tests/test_resume_faults.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import yaml

from magic_rl.config import RunConfig, config_diff, dump_config, trained_roles
from magic_rl.data.files import get_path
from magic_rl.data.model_files import file_problem, model_dir_problem, run_checkpoint_dirs

LOGS = ("metrics.jsonl", "replay.jsonl")


class ResumeError(ValueError):
    """A run directory that cannot be resumed safely; the message names the file."""


class _BadLog(ResumeError):
    """An unreadable line inside a log (not a torn last line)."""


def repair_state(run_dir: Path) -> None:
    """A kill between the two renames of `Run.save_state` leaves no `state/` and a whole
    `state.old/`: put it back. Run on the main process before anything reads state/."""
    state, old = run_dir / "state", run_dir / "state.old"
    if not state.exists() and (old / "meta.json").is_file():
        old.rename(state)


def last_good_checkpoint(run_dir: Path) -> str:
    """A sentence pointing at the last whole checkpoint (what a new run can start from)."""
    good = [p for p, problem in run_checkpoint_dirs(run_dir) if problem is None]
    if not good:
        return "no whole checkpoint to start from: start a new run"
    ckpt = good[-1]
    roles = " ".join(
        f"{r}.model={ckpt / r}" for r in ("attacker", "defender") if (ckpt / r).is_dir()
    )
    return (
        f"the last whole checkpoint is {ckpt}: start a new run from it with "
        f"`magic train --config {run_dir / 'config.yaml'} name=NEW {roles}`"
    )


def _refuse(run_dir: Path, problem: str) -> ResumeError:
    return ResumeError(f"{problem}; nothing was changed; {last_good_checkpoint(run_dir)}")


def _read_log(path: Path) -> list[dict]:
    """Records of a JSONL log; a torn last line (a kill mid-write) is left out, any other
    unreadable line is an error."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for i, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
                raise ValueError("no integer 'step'")
        except ValueError as e:
            if i == len(lines):
                break
            raise _BadLog(f"{path}:{i}: unreadable record ({e}): repair or remove it") from None
        records.append(rec)
    return records


def _saved_step(run_dir: Path, cfg: RunConfig) -> int:
    """The step `state/` resumes at (0 when the run never saved one); raises ResumeError."""
    state = run_dir / "state"
    if not state.exists():
        if lost := _lost_state(run_dir, cfg):
            raise _refuse(run_dir, f"{state}: missing, but {lost}: the saved state was lost")
        return 0
    meta_path = state / "meta.json"
    if problem := file_problem(meta_path):
        raise _refuse(run_dir, problem)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    step = meta.get("next_step") if isinstance(meta, dict) else None
    if not isinstance(step, int) or step < 0 or not isinstance(meta.get("scheduler"), dict):
        raise _refuse(run_dir, f"{meta_path}: next_step/scheduler: missing or malformed")
    if problem := file_problem(state / "optim.pt"):
        raise _refuse(run_dir, problem)
    for role in trained_roles(cfg.schedule):
        if problem := model_dir_problem(state / role.value):
            raise _refuse(run_dir, problem)
    return step


def _lost_state(run_dir: Path, cfg: RunConfig) -> str | None:
    """Why a run without `state/` must once have had one, or None when it never saved one whole.

    The first state is saved at a switch (after that switch's checkpoint is written: a checkpoint
    step, or a change of `schedule/role` between two logged steps), every
    `train.checkpoint_every` steps, or after the last step, and always before the next step is
    logged. So a checkpoint after step 0, or the logged steps reaching `checkpoint_every`, are not
    proof on their own (a kill during that first save leaves both); a logged step at or past the
    first of them is.
    """
    saves = [int(p.name.split("-")[1]) for p, _ in run_checkpoint_dirs(run_dir)]
    rows = _read_log(run_dir / "metrics.jsonl")
    roles = [r.get("schedule/role") for r in rows]
    saves += [
        r["step"]
        for r, before in zip(rows[1:], roles, strict=False)
        if r.get("schedule/role") != before
    ]
    if cfg.schedule.protocol == "concurrent":
        saves.append(cfg.schedule.freq)
    saves += [cfg.train.checkpoint_every or cfg.train.steps, cfg.train.steps]
    first = min(s for s in saves if s > 0)
    logged = max((r["step"] for r in rows), default=-1)
    if logged >= first:
        return f"metrics.jsonl holds step {logged}, logged after a state save (at step {first})"
    return None


def check_resume(run_dir: Path, cfg: RunConfig) -> int:
    """Validate `run_dir` for resume without changing it; returns the step it resumes at."""
    try:
        step = _saved_step(run_dir, cfg)
        logged = {name: {r["step"] for r in _read_log(run_dir / name)} for name in LOGS}
    except _BadLog as e:
        raise _refuse(run_dir, str(e)) from None
    for name, steps in logged.items():
        path = run_dir / name
        gap = sorted(set(range(step)) - steps)
        if gap:
            raise _refuse(
                run_dir,
                f"{path}: no records of step {gap[0]}"
                + (f" (and {len(gap) - 1} more)" if len(gap) > 1 else "")
                + f", though state/ was saved after step {step - 1}: the log was cut or lost",
            )
    return step


# Live cross-play rows carry the step of the switch they were computed at, written before the state
# saved at that switch: rows of step == next_step are kept too.
LATE_LOGS = {"crossplay.jsonl": 1}


def truncate_logs(run_dir: Path, next_step: int) -> None:
    """Keep records of steps < next_step (checked by `check_resume`), and of steps <= next_step
    in crossplay.jsonl; written atomically."""
    for name in (*LOGS, *LATE_LOGS):
        path = run_dir / name
        if not path.exists():
            continue
        end = next_step + LATE_LOGS.get(name, 0)
        kept = [json.dumps(r) for r in _read_log(path) if r["step"] < end]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept))
        os.replace(tmp, path)


def record_overrides(run_dir: Path, cfg: RunConfig, next_step: int) -> Path | None:
    """Settings of this resume that differ from config.yaml, in overrides/ (config.yaml stays)."""
    path = run_dir / "config.yaml"
    if not path.exists():  # resumed through the API with no saved config: keep this one
        path.write_text(dump_config(cfg))
        return None
    new = cfg.model_dump(mode="json")
    keys = config_diff(yaml.safe_load(path.read_text(encoding="utf-8")), new)
    if not keys:
        return None
    changed = {key: get_path(new, key) for key in keys}
    out = (
        run_dir / "overrides" / f"resume-step-{next_step:06d}-{time.strftime('%Y%m%d-%H%M%S')}.yaml"
    )
    out.parent.mkdir(exist_ok=True)
    doc = {"resumed_at_step": next_step, "overrides": changed}
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def replace_dir(tmp: Path, final: Path, old: Path | None = None) -> None:
    """Put a fully written `tmp` folder at `final`: a kill at any moment leaves a whole folder at
    `final` or at `old` (the previous one is moved aside, never deleted first)."""
    old = old or final.with_name(f".old-{final.name}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
