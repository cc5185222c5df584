"""Training: `magic sft` (phase 1) and `magic train` (phase 2), plus the end-of-run summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import ConfigOpt, Overrides, _console, _fail, _load, app


@app.command()
def sft(
    config: ConfigOpt = "sandbox",
    force: Annotated[bool, typer.Option(help="Retrain even if cached (sandbox).")] = False,
    overrides: Overrides = None,
) -> None:
    """Phase 1: SFT the attacker on the attack pool (loss on the target only).

    `sft.pool` unset: the sandbox's pool for a `sandbox:*` model, else the pool built from the run's
    own RL seeds (`data.seeds`, `data.split`) with the programmatic strategies.
    """
    cfg = _load(config, overrides)
    console = _console()
    out = run_phase1(cfg, force=force, log=console.print)
    console.print(f"[bold green]attacker[/] {out}")


def sft_output(cfg) -> Path:
    """Where `magic sft` writes the phase-1 attacker of a real-model config."""
    return Path(cfg.sft.output or Path(cfg.output_dir) / cfg.name / "attacker-sft")


def run_phase1(cfg, *, force: bool = False, log=print) -> Path:
    """Phase 1 (`magic sft`): the SFT'd attacker's directory."""
    if cfg.sft.pool is None and cfg.sft.model.startswith("sandbox:"):
        from magic_rl.sandbox.world import build_attacker, build_world

        return build_attacker(cfg, build_world(cfg, log=log), force=force, log=log)
    from magic_rl.loop.run import load_rl_seeds
    from magic_rl.sandbox.resolve import resolve_model
    from magic_rl.strategies import build_pool, read_pool
    from magic_rl.trainer import attacker_sft

    out = sft_output(cfg)
    base = resolve_model(cfg.sft.model, cfg, log=log)
    if cfg.sft.pool:
        records = read_pool(cfg.sft.pool)
    else:
        seeds = load_rl_seeds(cfg)
        records = build_pool(seeds, rng_seed=cfg.seed, exclude=cfg.sft.exclude_families)
        log(f"pool: {len(records)} records from {len(seeds)} {cfg.data.split} seeds")
    attacker_sft(cfg, records, base, out, log=log)
    return out


def phase1_pending(cfg) -> bool:
    """True when the attacker is this config's phase-1 output and that output is not complete yet
    (no `sft.json`, which `magic sft` writes last)."""
    model = cfg.attacker.model
    if cfg.game.attacker != "policy":
        return False  # no attacker model plays (No-Game, static attacks)
    if ":" in model or cfg.sft.model.startswith("sandbox:"):
        return False  # a named model (models:, sandbox:) is resolved, never trained, here
    out = sft_output(cfg)
    return Path(model).resolve() == out.resolve() and not (out / "sft.json").exists()


@app.command()
def train(
    config: ConfigOpt = "sandbox",
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this directory (its config.yaml).")
    ] = None,
    overrides: Overrides = None,
) -> None:
    """Phase 2: alternating GRPO of attacker and defender. Writes runs/<name>/."""
    from magic_rl.loop import Interrupted, preflight, summarize_run
    from magic_rl.loop import train as run_training
    from magic_rl.loop.interrupt import sigterm_stops
    from magic_rl.sandbox.resolve import resolve_world

    if resume is not None:
        if not (resume / "config.yaml").exists():
            _fail(f"{resume}: no config.yaml: not a run directory")
        cfg = _load(str(resume / "config.yaml"), overrides, complete=True)
    else:
        cfg = _load(config, overrides)
    console = _console()
    again = (
        f"resume with: magic train --resume {resume}"
        if resume is not None
        else "run the same command again (a finished phase 1 or sandbox world is kept)"
    )
    try:
        with sigterm_stops(f"SIGTERM before training started: stopped; {again}"):
            # A taken run name or a bad seed file fails here, before phase 1 or a world build.
            preflight(cfg, resume=resume)
            if phase1_pending(cfg):
                from accelerate import PartialState

                if PartialState().num_processes > 1:
                    _fail(
                        f"attacker.model {cfg.attacker.model} does not exist yet: "
                        "run `magic sft` first"
                    )
                console.print(
                    f"[bold]phase 1[/]: attacker.model is this config's sft.output "
                    f"({cfg.attacker.model}), not trained yet: running `magic sft` first"
                )
                run_phase1(cfg, log=console.print)
            resolved = resolve_world(cfg, log=console.print)
            run_dir = run_training(resolved, resume=resume, log=console.print, recorded=cfg)
    except FileExistsError as err:
        _fail(str(err))
    except Interrupted as err:  # SIGTERM / SIGINT: not an error, the message says how to go on
        typer.echo(str(err), err=True)
        raise typer.Exit(err.code) from None
    from accelerate import PartialState

    if PartialState().is_main_process:  # once, not once per data-parallel rank
        print_summary(summarize_run(run_dir), run_dir)


def print_summary(summary: dict, run_dir: Path) -> None:
    from magic_rl.progress import summary_table

    _console().print(summary_table(summary, run_dir))
