"""The entry points: `evaluate` (`magic eval`, one defender) and `evaluate_run` (a run's first and
last defender side by side, used by `make demo`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from magic_rl.config import RunConfig
from magic_rl.evaluate.eval.items import SANDBOX, EvalSet, Log
from magic_rl.evaluate.eval.model_args import (
    resolve_role_model,
    run_checkpoints,
    run_dir_of,
)
from magic_rl.evaluate.eval.outputs import provenance, rich_table, show, write_results
from magic_rl.evaluate.eval.protocol import ModelEval, evaluate_models
from magic_rl.evaluate.eval.sets import load_sets
from magic_rl.judge import make_judge
from magic_rl.records import Role


def evaluate(
    cfg: RunConfig,
    model: str,
    sets: Sequence[EvalSet],
    *,
    out: str | Path | None = None,
    limit: int | None = None,
    log: Log = print,
) -> tuple[Path, list[ModelEval]]:
    """`magic eval`: one defender on `sets` (`load_sets`: the entry point reads them first, so a
    malformed benchmark file fails before any model is built or loaded). `cfg`'s judge and `model`
    are resolved (paths, run dirs, Hub ids). Returns (output dir, [its ModelEval])."""
    path = resolve_role_model(model, Role.DEFENDER, cfg, log=log)  # a bad path fails first
    judge = make_judge(cfg.judge)
    run_dir = run_dir_of(model)
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = run_dir / "eval" if run_dir else Path(cfg.output_dir) / f"eval-{stamp}"
    label = Path(path).parent.name if run_dir else Path(path).name or path
    models = evaluate_models([(label, path)], sets, cfg, judge, log=log)
    files = {k: v for s in sets for k, v in s.files.items()}
    prov = provenance(cfg, judge, files, model=path, benchmarks=[s.name for s in sets], limit=limit)
    write_results(Path(out), models, prov)
    return Path(out), models


def evaluate_run(
    cfg: RunConfig,
    run_dir: str | Path,
    log: Log = print,
    *,
    limit: int | None = None,
    sandbox_pool: Path | None = None,
) -> Path:
    """The FIRST (step-000000, the base defender) and LAST defender checkpoints of a run on the
    sandbox sets (`limit` prompts per set), side by side in run_dir/eval/. Returns results.md.
    `cfg`'s judge is resolved; `sandbox_pool` as in `load_sets`."""
    run_dir = Path(run_dir)
    ckpts = run_checkpoints(run_dir, log=log)
    chosen = list(dict.fromkeys([ckpts[0], ckpts[-1]]))
    sets = load_sets([SANDBOX], cfg, limit=limit, sandbox_pool=sandbox_pool, log=log)
    judge = make_judge(cfg.judge)
    models = evaluate_models(
        [(c.name, str(c / Role.DEFENDER.value)) for c in chosen], sets, cfg, judge, log=log
    )
    files = {k: v for s in sets for k, v in s.files.items()}
    prov = provenance(cfg, judge, files, run_dir=str(run_dir), benchmarks=[s.name for s in sets])
    md = write_results(run_dir / "eval", models, prov)
    show(rich_table(models, title=f"{run_dir}: first vs last defender"), log)
    return md
