"""Training: `magic sft` (phase 1) and `magic train` (phase 2), plus the end-of-run summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import ConfigOpt, Overrides, _console, _fail, _load, app, overrides


@app.command()
def sft(
    config: ConfigOpt = "sandbox",
    force: Annotated[bool, typer.Option(help="Retrain even if cached (sandbox).")] = False,
    overrides: overrides("sft.max_steps=100") = None,
) -> None:
    """Phase 1: SFT the attacker on the attack pool (loss on the target only).

    `sft.pool` unset: the sandbox's pool for a `sandbox:*` model, else the pool built from the run's
    own RL seeds (`data.seeds`, `data.split`) with the programmatic strategies.
    """
    from magic_rl.phase1 import run_phase1

    cfg = _load(config, overrides)
    console = _console()
    out = run_phase1(cfg, force=force, log=console.print)
    console.print(f"[bold green]attacker[/] {out}")


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
    from magic_rl.phase1 import ensure_attacker
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
            ensure_attacker(cfg, log=console.print)  # phase 1 first when its output is missing
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
