"""Training: `magic align` (phase 0), `magic sft` (phase 1) and `magic train` (phase 2), plus the
end-of-run summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import ConfigOpt, Overrides, _console, _fail, _load, app, overrides


@app.command()
def align(
    config: ConfigOpt = "smollm2-cpu",
    model: Annotated[
        str | None,
        typer.Option(
            help="Base model to align (default: the config's defender.model, its "
            "aligned: prefix dropped)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Retrain even if cached.")] = False,
    overrides: overrides("align.max_steps=40") = None,
) -> None:
    """Phase 0: safety-tune the defender's base model before co-evolution (the aligned start).

    Harmful train seeds -> `align.refusal`; benign and contrast seeds -> the base model's own
    greedy answers. Cached under sandbox.cache_dir/aligned by a key over the base model, the seeds
    and the settings; `aligned:<model>` names the result in a config or `magic eval --model`.
    """
    from magic_rl.align import PREFIX
    from magic_rl.sandbox.resolve import resolve_aligned

    cfg = _load(config, overrides)
    console = _console()
    base = model or cfg.defender.model.removeprefix(PREFIX)
    out = resolve_aligned(PREFIX + base, cfg, force=force, log=console.print)
    console.print(
        f"[bold green]aligned defender[/] {out}  (in a config: defender.model={PREFIX}{base})"
    )


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
    from magic_rl.phases import run_phase1

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
    """Phase 2: alternating GRPO of attacker and defender (phase 1 first when the attacker is this
    config's own, not yet trained, SFT output). Writes runs/<name>/."""
    from magic_rl import phases
    from magic_rl.loop import Interrupted
    from magic_rl.loop.interrupt import sigterm_stops
    from magic_rl.run_summary import summarize_run
    from magic_rl.rundir import CONFIG

    if resume is not None:
        if not (resume / CONFIG).exists():
            _fail(f"{resume}: no {CONFIG}: not a run directory")
        cfg = _load(str(resume / CONFIG), overrides, complete=True)
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
            # A taken run name or a bad seed file fails before phase 1 or a world build.
            run_dir = phases.train(cfg, resume=resume, log=console.print)
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
