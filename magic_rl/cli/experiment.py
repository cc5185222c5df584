"""Multi-run experiments: `magic experiment ablation` (magic_rl.experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import ConfigOpt, Overrides, _console, _fail, experiment_app


@experiment_app.command("ablation")
def experiment_ablation(
    config: ConfigOpt = "sandbox",
    seeds: Annotated[str, typer.Option(help="Training seeds (top-level `seed`).")] = "0,1,2,3,4",
    steps: Annotated[
        int | None, typer.Option(help="Steps per run (default: the config's train.steps).", min=1)
    ] = None,
    variants: Annotated[
        str,
        typer.Option(
            help="Comma-separated: base,no_game,defender_only,static,magic,magic_eq,league,"
            "hard_replay."
        ),
    ] = "base,no_game,defender_only,static,magic,magic_eq",
    out: Annotated[Path, typer.Option(help="Parent of the runs; gets ablation.json/.md.")] = Path(
        "runs/ablation"
    ),
    limit: Annotated[
        int | None, typer.Option(help="Prompts per sandbox eval set (smoke runs).", min=1)
    ] = None,
    overrides: Overrides = None,
) -> None:
    """The ablation table: each variant x seed trained for the same steps, its last defender
    evaluated on the sandbox sets; mean [95% t-interval] over seeds. Resumable (reruns skip what
    is done). Overrides apply to every run.

    Examples:
        magic experiment ablation
        magic experiment ablation --seeds 0,1 --steps 30 --variants base,no_game,magic --out runs/abl
    """
    from magic_rl.config import ConfigError
    from magic_rl.experiment.ablation import parse_seeds, parse_variants, run_ablation

    console = _console()
    try:
        path = run_ablation(
            config,
            overrides or [],
            variants=parse_variants(variants),
            seeds=parse_seeds(seeds),
            steps=steps,
            out=out,
            limit=limit,
            log=console.print,
        )
    except (ConfigError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    console.print(
        f"[bold green]ablation[/] {path}  ({path.with_suffix('.md')}, "
        f"{path.parent / 'provenance.json'})"
    )
