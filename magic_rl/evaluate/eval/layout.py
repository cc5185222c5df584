"""Where evaluations are written and found: one directory per evaluation, never overwritten.

Each `magic eval` (and `make demo`'s evaluation) writes its own time-stamped directory, as lm-eval
does, so a second evaluation never replaces the first:

    RUN_DIR/eval/<YYYYmmdd-HHMMSS>_<sets>/      the models evaluated are a run's checkpoints
    <output_dir>/eval-<YYYYmmdd-HHMMSS>_<sets>/ anything else (an HF path or id, sandbox:base)
    --out DIR                                   as given, refused when it already holds results

`<sets>` names the benchmark sets (`sandbox`, `harmbench+xstest`, ...). Two evaluations in the same
second get `-2`, `-3`, ... (the directory is created here, atomically, so two processes never share
one). `find_evaluations(RUN_DIR)` lists a run's evaluations oldest first: a results.json directly in
RUN_DIR/eval/ (written before this layout, or by `magic experiment`) first, then RUN_DIR/eval/*/ by
the time stamp in the name, then by when results.json was written (two in one second). `magic report` merges them (the newest result per model and metric wins
a cell); `magic export` exports every one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from magic_rl import rundir
from magic_rl.rundir import RESULTS

MAX_SETS_CHARS = 48


def sets_slug(benchmarks: Sequence[str]) -> str:
    """A file-name-safe short name of the evaluated sets: `sandbox`, `harmbench+xstest`."""
    names = [Path(b).stem if b.endswith((".json", ".jsonl", ".csv")) else b for b in benchmarks]
    text = re.sub(r"[^A-Za-z0-9+._-]+", "-", "+".join(names)).strip("-") or "eval"
    return text if len(text) <= MAX_SETS_CHARS else text[: MAX_SETS_CHARS - 3].rstrip("+-") + "..."


def new_eval_dir(parent: Path, benchmarks: Sequence[str], *, prefix: str = "") -> Path:
    """Create and return parent/<prefix><YYYYmmdd-HHMMSS>_<sets>, a fresh directory (a suffix -2,
    -3, ... when one of that name exists)."""
    base = f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}_{sets_slug(benchmarks)}"
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        path = parent / (base if k == 1 else f"{base}-{k}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{parent}: 999 evaluations named {base}; remove some")


def claim_out_dir(out: Path) -> Path:
    """A user's `--out` directory, refused when it already holds an evaluation's results."""
    if (out / RESULTS).exists():
        raise FileExistsError(
            f"{out} already holds an evaluation ({out / RESULTS}); nothing was overwritten: "
            "choose another --out, or leave it out for a new time-stamped directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def find_evaluations(run_dir: str | Path) -> list[Path]:
    """A run's evaluation directories, oldest first (see the module docstring)."""
    root = Path(run_dir) / rundir.EVAL
    if not root.is_dir():
        return []
    legacy = [root] if (root / RESULTS).is_file() else []
    found = [p for p in root.iterdir() if p.is_dir() and (p / RESULTS).is_file()]
    return legacy + sorted(found, key=_written)


def _written(path: Path) -> tuple[str, int]:
    """(the name's time stamp, or "" for a directory named otherwise; results.json's mtime): two
    evaluations started in the same second keep the order they were written in."""
    stamp = re.match(r"(?:eval-)?(\d{8}-\d{6})", path.name)
    return (stamp.group(1) if stamp else "", (path / RESULTS).stat().st_mtime_ns)
