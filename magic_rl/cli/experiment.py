"""Multi-run experiments: `magic experiment ablation`, `attacker` and `arms-race` (magic_rl.experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import ConfigOpt, _console, _fail, _load, experiment_app, overrides


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
    out: Annotated[
        Path,
        typer.Option(help="Parent directory of the runs; gets ablation.json/.md.", metavar="DIR"),
    ] = Path("runs/ablation"),
    limit: Annotated[
        int | None, typer.Option(help="Prompts per sandbox eval set (smoke runs).", min=1)
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print the plan and its time estimate, run nothing.")
    ] = False,
    overrides: overrides("game.max_turns=3") = None,
) -> None:
    """The ablation table: each variant x seed trained for the same steps, its last defender
    evaluated on the sandbox sets; mean [95% t-interval] over seeds. Resumable (reruns skip what
    is done). Overrides apply to every run.

    The plan (runs, steps, a time estimate) is printed first; --dry-run stops there.

    Examples:
        magic experiment ablation --dry-run
        magic experiment ablation --seeds 0,1 --steps 30 --variants base,no_game,magic --out runs/abl
    """
    from magic_rl.config import ConfigError
    from magic_rl.experiment.ablation import parse_seeds, parse_variants, run_ablation

    console = _console()
    try:
        chosen, seed_list = parse_variants(variants), parse_seeds(seeds)
        _print_plan(console, config, overrides or [], chosen, seed_list, steps, out)
        if dry_run:
            return
        path = run_ablation(
            config,
            overrides or [],
            variants=chosen,
            seeds=seed_list,
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


# `magic experiment ablation` with its defaults (26 runs, 1800 steps with evaluation) took 17 min 49 s
# on 2 idle CPU cores (docs/ablation.md); the estimate scales that by the planned steps.
MEASURED_STEPS, MEASURED_S = 1800, 1069.0


def _print_plan(console, config, overrides, variants, seeds, steps, out: Path) -> None:
    """Runs, steps and a time estimate before an ablation starts (docs/ablation.md's timing)."""
    from magic_rl.experiment.ablation import run_specs
    from magic_rl.experiment.design import STEPS_FACTOR
    from magic_rl.rundir import SUMMARY

    steps = steps or _load(config, overrides).train.steps
    specs = run_specs(variants, seeds)
    trained = [s for s in specs if s.trained]
    todo = [s for s in trained if not (out / s.name / SUMMARY).is_file()]
    total = sum(steps * STEPS_FACTOR.get(s.variant, 1) for s in todo)
    estimate = (
        f"about {max(1, round(total * MEASURED_S / MEASURED_STEPS / 60))} min on 2 CPU cores "
        "(scaled from docs/ablation.md's timing)"
        if config == "sandbox"
        else "no estimate (timed only for the sandbox preset)"
    )
    longer = [f"{v} {k}x" for v, k in STEPS_FACTOR.items() if v in variants]
    console.print(
        f"[bold]plan[/] {len(variants)} variants x {len(seeds)} seeds: {len(specs)} runs "
        f"({len(trained) - len(todo)} already complete in {out}), {total} training steps to go "
        f"({steps} per run{''.join(f', {x}' for x in longer)}); {estimate}",
        highlight=False,
    )


@experiment_app.command("attacker")
def experiment_attacker(
    config: ConfigOpt = "sandbox",
    seeds: Annotated[str, typer.Option(help="Training seeds (top-level `seed`).")] = "0,1,2",
    steps: Annotated[int, typer.Option(help="Attacker-only steps per run.", min=2)] = 45,
    defenders: Annotated[
        str, typer.Option(help="Comma-separated frozen defenders: base,trained.")
    ] = "base,trained",
    defender_steps: Annotated[
        int,
        typer.Option(help="Steps of the Defender-only run that gives `trained` (seed 0).", min=1),
    ] = 15,
    trained: Annotated[
        str | None,
        typer.Option(
            "--trained-defender",
            help="The `trained` defender: a checkpoint's defender directory or a run directory "
            "(its last checkpoint), instead of training one.",
            metavar="PATH",
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(help="Parent directory of the runs; gets attacker.json/.md.", metavar="DIR"),
    ] = Path("runs/attacker"),
    overrides: overrides("game.replies_per_attack=4") = None,
) -> None:
    """Attacker-only GRPO against frozen defenders: does the attacker learn? Per defender, mean
    [95% t-interval] over seeds of the sampled ASR of the first and last 5 steps (and the paired
    gain), the greedy ASR on test-split harmful seeds before and after, format and faithful
    rates; the ASR curve (mean over seeds with a band) in attacker_curve.png. Resumable.
    Overrides apply to every run (the levers: game.replies_per_attack, reward.reply_score,
    attacker.lr, defender.sampling.temperature, ...).

    Examples:
        magic experiment attacker --seeds 0,1,2
        magic experiment attacker --seeds 0 --defenders trained --defender-steps 2 --out runs/att
    """
    from magic_rl.config import ConfigError
    from magic_rl.experiment.ablation import parse_seeds
    from magic_rl.experiment.attacker import parse_defenders, run_attacker_experiment

    console = _console()
    try:
        path = run_attacker_experiment(
            config,
            overrides or [],
            defenders=parse_defenders(defenders),
            seeds=parse_seeds(seeds),
            steps=steps,
            defender_steps=defender_steps,
            trained=trained,
            out=out,
            log=console.print,
        )
    except (ConfigError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    console.print(
        f"[bold green]attacker experiment[/] {path}  ({path.with_suffix('.md')}, "
        f"{path.parent / 'attacker_curve.png'})"
    )


@experiment_app.command("arms-race")
def experiment_arms_race(
    config: ConfigOpt = "sandbox",
    seeds: Annotated[str, typer.Option(help="Training seeds (top-level `seed`).")] = "0,1,2",
    steps: Annotated[
        int, typer.Option(help="Steps per run (90: six role phases at schedule.freq=15).", min=1)
    ] = 90,
    out: Annotated[
        Path,
        typer.Option(help="Parent directory of the runs; gets arms_race.json/.md.", metavar="DIR"),
    ] = Path("runs/arms_race"),
    limit: Annotated[
        int | None, typer.Option(help="Test-split harmful seeds per cross-play cell.", min=1)
    ] = 40,
    samples: Annotated[
        int,
        typer.Option(
            help="Rewrites per seed in cross-play: 1 = greedy; K > 1 = K sampled at the "
            "attacker's temperature, each scored (its distribution, not its mode).",
            min=1,
        ),
    ] = 1,
    allow_short: Annotated[
        bool, typer.Option(help="Run a plan with fewer than six role phases anyway.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Print the plan (and whether it would be refused), run nothing.")
    ] = False,
    overrides: overrides("schedule.freq=10") = None,
) -> None:
    """Fig. 3 over seeds: a MAGIC run per seed (reused when finished, as the ablation's are), its
    attacker x defender cross-play, the mean matrix, the two Fig. 3 contrasts and each attacker
    phase's gain, with 95% t-intervals over seeds. A plan with fewer than six role phases is
    refused (no earlier and later players to compare) unless --allow-short.

    The plan (runs, steps, phases) is printed first; --dry-run stops there.

    Examples:
        magic experiment arms-race --dry-run
        magic experiment arms-race --seeds 0,1 --steps 40 --allow-short --samples 4 \
            --out runs/arms schedule.freq=10
    """
    from magic_rl.config import ConfigError
    from magic_rl.experiment.ablation import parse_seeds
    from magic_rl.experiment.arms_race import describe_plan, run_arms_race

    console = _console()
    try:
        seed_list = parse_seeds(seeds)
        plan = describe_plan(
            config,
            overrides or [],
            seed_list,
            steps,
            out,
            limit,
            samples=samples,
            allow_short=allow_short,
        )
        console.print(f"[bold]plan[/] {plan}", highlight=False)
        if dry_run:
            return
        path = run_arms_race(
            config,
            overrides or [],
            seeds=seed_list,
            steps=steps,
            out=out,
            limit=limit,
            samples=samples,
            allow_short=allow_short,
            log=console.print,
        )
    except (ConfigError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    console.print(
        f"[bold green]arms race[/] {path}  ({path.with_suffix('.md')}, "
        f"{path.parent / 'arms_race_heatmap.png'}, {path.parent / 'arms_race_gains.png'})"
    )
