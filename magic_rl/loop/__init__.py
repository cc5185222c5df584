"""Phase 2: alternating GRPO for attacker and defender — the step program, run directory and resume.

Each step is a short program of timed stages (docs/DESIGN.md §4; docs/ARCHITECTURE.md, "One training
step"):

    0. seeds     the step's batch, a pure function of (run seed, step): resume needs no sampler state
    1. rollout   game.play: attacker -> defender, batched across all seeds of the step
    2. judge     <= 2 judge calls per exchange, de-duplicated and memoised within the step
    3. rewards   per-role rewards with their components
    4. update    GRPO for the scheduled role only; the other role is frozen
    5. schedule  next role; checkpoints of both roles at every switch
    6. log       metrics.jsonl, replay.jsonl, tracker; the state resume needs

All seven are in `Run.step` (`loop/run.py`); `train` prepares the run directory, resumes, and runs
the steps under the progress bar.

Run directory (runs/<name>/): config.yaml (every field, as the user gave it), metrics.jsonl,
replay.jsonl, checkpoints/step-NNNNNN/{attacker,defender}/ (Hugging Face format), state/ (weights,
optimisers, schedule, league snapshots and statistics, hard-case buffers: what resume needs),
summary.json, and with `crossplay.probe` crossplay.jsonl (live cross-play, `loop.crossplay`).

Beyond latest-only play, in this same step program (`loop.league`, `loop.hardcases`,
`loop.crossplay`, `Run.roles_at`; docs/deviations.md): an opponent league, hard-case replay, live
cross-play, shared-weight self-play, concurrent updates and victim hardening, each one override.

Resume (`magic train --resume RUN_DIR`) restarts from the last saved state (every switch, and every
`train.checkpoint_every` steps) and cuts metrics and replay records of later steps, so a run killed at
any point continues without lost or duplicated records; per-step randomness derives from (seed, step),
so the replayed steps are the same steps. `resume.py` checks the whole run directory before anything
is written (a missing or torn part is refused, naming the file), keeps config.yaml as it was and
records changed settings in overrides/. One train holds a run directory at a time (`lock.py`);
SIGTERM and SIGINT stop a run after the current step with its state saved (`interrupt.py`); a
non-finite loss, gradient or weight stops it before the update (`trainer.Diverged`). Checkpoints and state/ are written to a temporary folder
and renamed. A step whose judge labels are mostly unknown stops the run (`judge.max_unknown_fraction`)
before its update and before anything of it is logged.

Data-parallel (`accelerate launch --multi_gpu --num_processes N`; on CPU with no GPU visible, gloo —
note that `accelerate launch --cpu` ignores --num_processes): each process plays a shard of the step's
seeds, the trained role's gradients are summed across ranks with a whole-step loss denominator (the
step equals the single-process step), metrics are reduced, and only the main process writes files.
Build the sandbox world before launching (`magic sandbox build`: a launch never builds it).
"""

from __future__ import annotations

import json
from pathlib import Path

from magic_rl import rundir
from magic_rl.config import RunConfig, dump_config
from magic_rl.cpu import tune_for_cpu
from magic_rl.loop.interrupt import GracefulStop, Interrupted
from magic_rl.loop.lock import RunLock, RunLocked
from magic_rl.loop.resume import (
    ResumeError,
    check_resume,
    record_overrides,
    repair_state,
)
from magic_rl.loop.run import (
    JudgeUnusable,
    Run,
    load_rl_seeds,
    load_static_attacks,
    use_cpu,
)
from magic_rl.loop.stages import SeedSampler, StepJudge, game_metrics, is_count, replay_records
from magic_rl.progress import TrainProgress
from magic_rl.records import Seed
from magic_rl.run_summary import read_metrics, summarize_run

__all__ = [
    "Interrupted",
    "JudgeUnusable",
    "ResumeError",
    "Run",
    "RunLocked",
    "SeedSampler",
    "StepJudge",
    "check_resume",
    "game_metrics",
    "is_count",
    "load_rl_seeds",
    "load_static_attacks",
    "preflight",
    "read_metrics",
    "replay_records",
    "summarize_run",
    "tracker_config",
    "train",
    "use_cpu",
]


def train(
    cfg: RunConfig, *, resume: Path | None = None, log=print, recorded: RunConfig | None = None
) -> Path:
    """Run phase 2 to `train.steps`. Returns the run directory.

    `cfg` names its models and files by path (the entry point resolved any sandbox or catalog
    name: `magic_rl.sandbox.resolve.resolve_world`); `recorded` is the config as the user gave it
    (default `cfg`), which config.yaml keeps and a resume compares against. The run directory is
    locked for the whole run (`loop.lock`); SIGTERM and SIGINT stop it after the current step with
    its state saved (`loop.interrupt`), raising `Interrupted`.
    """
    from accelerate import PartialState

    run_dir = resume or Path(cfg.output_dir) / cfg.name
    main = PartialState(cpu=use_cpu(cfg)).is_main_process
    created = not run_dir.exists()
    if resume is None:
        run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with RunLock(run_dir, log=log, enabled=main), GracefulStop(run_dir, log=log) as stop:
            return _train(cfg, resume, recorded or cfg, stop, log)
    finally:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # a run that could not start leaves no empty directory behind


def _train(cfg: RunConfig, resume: Path | None, recorded: RunConfig, stop, log) -> Path:
    """`train` under the run directory's lock and the signal handlers."""
    from accelerate import PartialState

    from magic_rl.trainer import Diverged

    run_dir, seeds = preflight(cfg, resume=resume)  # again, under the lock
    tune_for_cpu()
    if resume is not None:
        state = PartialState(cpu=use_cpu(cfg))
        if state.is_main_process:
            repair_state(run_dir)
        state.wait_for_everyone()
        next_step = check_resume(run_dir, cfg)  # every rank: all refuse alike, none hangs
    run = Run(cfg, run_dir, seeds=seeds, log=log)
    if resume is None and run.main:
        (run_dir / rundir.CONFIG).write_text(dump_config(recorded))
    if resume is not None:
        run.load_state(next_step)
        if run.main and (path := record_overrides(run_dir, recorded, next_step)):
            log(f"settings changed on resume recorded in {path} (config.yaml is unchanged)")
    if cfg.train.tracker != "none":
        # TensorBoard writes under project_dir/<this name>: RUN_DIR/tensorboard, not RUN_DIR/<name>
        project = TENSORBOARD_DIR if cfg.train.tracker == "tensorboard" else cfg.name
        run.accelerator.init_trackers(project, config=tracker_config(recorded))
        if cfg.train.tracker == "tensorboard" and run.main:
            log(f"TensorBoard: tensorboard --logdir {run_dir / TENSORBOARD_DIR}")
    run.begin()  # the logs are cut back to run.start_step with the first records written

    try:
        with TrainProgress(
            cfg.train.steps, run.start_step, enabled=cfg.train.progress and run.main
        ) as bar:
            for step in range(run.start_step, cfg.train.steps):
                if run.shards.sum(stop.signum is not None)[0]:  # every rank stops at one step
                    run.save_state_at(step)
                    raise stop.stopped(step)
                stop.step = step
                try:
                    bar.update(run.step(step))
                except Diverged as err:
                    raise Diverged(run.diverged_message(step, err)) from None
    finally:  # a stopped or diverged run closes its tracker's run too (W&B marks it finished)
        if cfg.train.tracker != "none":
            run.accelerator.end_training()
    if run.main:
        rundir.write_summary(run_dir, summarize_run(run_dir))
    if stop.signum is not None:  # signalled during the last step: the run is whole, the caller
        raise stop.finished(cfg.train.steps)  # (an ablation, the demo) must stop all the same
    return run_dir


TENSORBOARD_DIR = "tensorboard"  # RUN_DIR/tensorboard holds the event files


def preflight(cfg: RunConfig, *, resume: Path | None = None) -> tuple[Path, list[Seed]]:
    """(run directory, RL seeds), or the error a run would stop on before anything is written or
    built: a new run over an existing one, a bad seed file. Entry points call it before they
    resolve (and maybe build) the sandbox world; `train` calls it again."""
    run_dir = resume or Path(cfg.output_dir) / cfg.name
    if resume is None and (run_dir / rundir.METRICS).exists():
        raise FileExistsError(
            f"{run_dir} already holds a run: pass --resume {run_dir} to continue "
            "it, or choose another name (name=...)"
        )
    seeds = load_rl_seeds(cfg)
    try:
        SeedSampler.per_role(cfg, seeds)
    except ValueError as e:
        raise ValueError(f"{cfg.data.seeds}: {e}") from None
    return run_dir, seeds


def tracker_config(cfg: RunConfig) -> dict[str, bool | int | float | str]:
    """The run config as flat `section.field` scalars: TensorBoard's hparams refuse nested values,
    lists and None (W&B takes the flat form too). Lists and None become their JSON text."""
    flat: dict[str, bool | int | float | str] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        elif isinstance(value, bool | int | float | str):
            flat[prefix] = value
        else:
            flat[prefix] = json.dumps(value)

    walk("", cfg.model_dump(mode="json"))
    return flat
