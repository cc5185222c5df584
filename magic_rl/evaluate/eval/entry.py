"""The entry points: `evaluate` (`magic eval`, one or more defenders side by side) and
`evaluate_run` (a run's first and last defender side by side, used by `make demo`). Each writes a
new evaluation directory (`layout`): nothing written before is replaced."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from magic_rl import rundir
from magic_rl.config import RunConfig
from magic_rl.evaluate.eval.items import SANDBOX, EvalSet, Log
from magic_rl.evaluate.eval.layout import claim_out_dir, new_eval_dir
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


@contextmanager
def _removed_if_empty(out_dir: Path) -> Iterator[None]:
    """An evaluation that fails leaves no empty directory behind (a user's files stay)."""
    try:
        yield
    except BaseException:
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise


def judge_scope_warning(cfg: RunConfig, judge, sets: Sequence[EvalSet]) -> str | None:
    """The warning owed when the embedded judge scores sets outside the sandbox: it was trained on
    sandbox text only, so its verdicts there (often "safe", an ASR near 0) mean nothing."""
    if cfg.judge.backend != "embedded":
        return None
    outside = [s.name for s in sets if not s.name.startswith(f"{SANDBOX}/")]
    if not outside:
        return None
    return (
        f"warning: the embedded sandbox judge ({getattr(judge, 'name', 'embedded')}) is scoring "
        f"{', '.join(outside)}: it knows only the sandbox's own text, so its verdicts (and the "
        "ASR) there are not meaningful; judge real benchmarks with a guard model "
        "(judge.backend=wildguard|qwen3guard|llamaguard)"
    )


def model_labels(specs: Sequence[str], paths: Sequence[str]) -> list[str]:
    """One distinct column label per model: a checkpoint's step name (`step-000060`) or the model
    directory's name; the run directory is prepended where two would read the same, then a
    number."""
    labels = []
    for spec, path in zip(specs, paths, strict=True):
        run_dir = run_dir_of(spec)
        labels.append(Path(path).parent.name if run_dir else Path(path).name or path)
    twice = {label for label in labels if labels.count(label) > 1}
    for i, (spec, label) in enumerate(zip(specs, labels, strict=True)):
        if label in twice and (run_dir := run_dir_of(spec)) is not None:
            labels[i] = f"{run_dir.name}/{label}"
    twice = {label for label in labels if labels.count(label) > 1}
    seen: list[str] = []
    for i, label in enumerate(labels):
        seen.append(label)
        if label in twice and seen.count(label) > 1:
            labels[i] = f"{label} ({seen.count(label)})"
    return labels


def evaluate(
    cfg: RunConfig,
    model: str | Sequence[str],
    sets: Sequence[EvalSet],
    *,
    out: str | Path | None = None,
    limit: int | None = None,
    log: Log = print,
) -> tuple[Path, list[ModelEval]]:
    """`magic eval`: one or more defenders on `sets` (`load_sets`: the entry point reads them
    first, so a malformed benchmark file fails before any model is built or loaded), side by side
    in one results.json. `cfg`'s judge and each model are resolved (paths, run dirs, Hub ids).
    Output: `out` (refused if it already holds results), else a new time-stamped directory under
    the models' run (when they all come from one) or `cfg.output_dir` (`layout`). Returns (output
    dir, one ModelEval per model)."""
    specs = [model] if isinstance(model, str) else list(model)
    paths = [resolve_role_model(s, Role.DEFENDER, cfg, log=log) for s in specs]  # bad paths first
    names = [s.name for s in sets]
    run_dirs = {run_dir_of(s) for s in specs}
    if out is not None:
        out_dir = claim_out_dir(Path(out))  # a taken --out fails before the judge is built
    elif len(run_dirs) == 1 and (run_dir := next(iter(run_dirs))) is not None:
        out_dir = new_eval_dir(run_dir / rundir.EVAL, names)
    else:
        out_dir = new_eval_dir(Path(cfg.output_dir), names, prefix="eval-")
    labels = model_labels(specs, paths)
    with _removed_if_empty(out_dir):
        judge = make_judge(cfg.judge)
        if warning := judge_scope_warning(cfg, judge, sets):
            log(f"[bold yellow]{warning}[/]")
        models = evaluate_models(list(zip(labels, paths, strict=True)), sets, cfg, judge, log=log)
        files = {k: v for s in sets for k, v in s.files.items()}
        prov = provenance(
            cfg,
            judge,
            files,
            **({"model": paths[0]} if len(paths) == 1 else {"models": paths}),
            benchmarks=names,
            limit=limit,
            **({"warnings": [warning]} if warning else {}),
        )
        write_results(out_dir, models, prov)
    return out_dir, models


def evaluate_run(
    cfg: RunConfig,
    run_dir: str | Path,
    log: Log = print,
    *,
    limit: int | None = None,
    sandbox_pool: Path | None = None,
) -> Path:
    """The FIRST (step-000000, the base defender) and LAST defender checkpoints of a run on the
    sandbox sets (`limit` prompts per set), side by side in a new RUN_DIR/eval/<time>_sandbox/.
    Returns its results.md. `cfg`'s judge is resolved; `sandbox_pool` as in `load_sets`."""
    run_dir = Path(run_dir)
    ckpts = run_checkpoints(run_dir, log=log)
    chosen = list(dict.fromkeys([ckpts[0], ckpts[-1]]))
    sets = load_sets([SANDBOX], cfg, limit=limit, sandbox_pool=sandbox_pool, log=log)
    judge = make_judge(cfg.judge)
    out_dir = new_eval_dir(run_dir / rundir.EVAL, [SANDBOX])
    with _removed_if_empty(out_dir):
        models = evaluate_models(
            [(c.name, str(c / Role.DEFENDER.value)) for c in chosen], sets, cfg, judge, log=log
        )
        files = {k: v for s in sets for k, v in s.files.items()}
        prov = provenance(
            cfg, judge, files, run_dir=str(run_dir), benchmarks=[s.name for s in sets], limit=limit
        )
        md = write_results(out_dir, models, prov)
    show(rich_table(models, title=f"{run_dir}: first vs last defender"), log)
    return md
