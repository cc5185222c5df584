"""Evaluation of trained models and runs: `magic eval`, `attack`, `crossplay`, `analyze`, `report`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import _console, _fail, _load, app, overrides, renamed

EvalOverrides = overrides("eval.max_new_tokens=64")


def _eval_config(config: str | None, model_specs: list[str], overrides: list[str] | None):
    """--config, else the config.yaml of the run a model argument points into, else `sandbox`."""
    from magic_rl.evaluate.eval import run_dir_of
    from magic_rl.rundir import CONFIG

    if config is None:
        for spec in model_specs:
            run_dir = run_dir_of(spec)
            if run_dir is not None and (run_dir / CONFIG).is_file():
                return _load(str(run_dir / CONFIG), overrides, complete=True)
        config = "sandbox"
    return _load(config, overrides)


EvalConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config", "-c", help="Preset or YAML (default: the run's config.yaml, else sandbox)."
    ),
]


@app.command("eval")
def eval_cmd(
    model: Annotated[
        list[str],
        typer.Option(
            help="Defender: RUN_DIR (its last checkpoint), RUN_DIR/checkpoints/step-N, a model "
            "directory, sandbox:base, models:NAME or a Hub id ORG/NAME; repeat for a "
            "side-by-side table."
        ),
    ],
    benchmarks: Annotated[
        str,
        typer.Option(help="Comma-separated: benchmark names, files, `sandbox` or sandbox/<set>."),
    ] = "sandbox",
    config: EvalConfigOpt = None,
    limit: Annotated[
        int | None, typer.Option(help="First N items of each benchmark.", min=1)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output dir, refused if it holds results (default: a new RUN_DIR/eval/<time>_<sets> "
            "or runs/eval-<time>_<sets>)."
        ),
    ] = None,
    data_root: Annotated[Path | None, typer.Option(help="Benchmark data root.")] = None,
    overrides: EvalOverrides = None,
) -> None:
    """Evaluate defenders (greedy, training chat view) -> results.json, items.jsonl, results.md in
    a new directory per evaluation (never overwritten); several --model: one side-by-side table.

    Examples:
        magic eval --model runs/demo --benchmarks sandbox,xstest --limit 50
        magic eval --model runs/demo/checkpoints/step-000000 --model runs/demo --limit 20
    """
    from magic_rl.data.benchmarks import DatasetError
    from magic_rl.data.outputs import check_out_dir
    from magic_rl.evaluate.eval import evaluate, load_sets, rich_table
    from magic_rl.sandbox.resolve import model_dir, resolve_judge, resolve_model, sandbox_pool

    cfg = _eval_config(config, model, overrides)
    console = _console()
    names = [b.strip() for b in benchmarks.split(",") if b.strip()]
    if out is not None:
        check_out_dir(out)  # before the evaluation, not after it
    try:
        sets = load_sets(  # a bad benchmark fails before any model is built or loaded
            names,
            cfg,
            limit=limit,
            data_root=data_root,
            sandbox_pool=sandbox_pool(cfg),
            log=console.print,
        )
        if not sets:
            raise ValueError(f"no items to evaluate in {names}")
        specs = [resolve_model(m, cfg, log=console.print) for m in model]
        for spec in specs:  # a bad model fails before the judge's build
            model_dir(spec, "defender", cfg, log=console.print)
        cfg = resolve_judge(cfg, log=console.print)
        out_dir, models = evaluate(cfg, specs, sets, out=out, limit=limit, log=console.print)
    except (DatasetError, FileNotFoundError, FileExistsError, ValueError) as err:
        _fail(str(err))
    title = models[0].path if len(models) == 1 else f"{len(models)} defenders side by side"
    console.print(rich_table(models, title=title))
    console.print(f"[bold green]results[/] {out_dir}/results.json  (items.jsonl, results.md)")


@app.command()
def attack(
    attacker: Annotated[
        str,
        typer.Option(
            help="Attacker: RUN_DIR (its last checkpoint), RUN_DIR/checkpoints/step-N, a model "
            "directory, sandbox:attacker, models:NAME or a Hub id."
        ),
    ],
    target: Annotated[
        str, typer.Option(help="Target defender: the same forms as --attacker (sandbox:base).")
    ],
    prompts: Annotated[
        str,
        typer.Option(
            help="The harmful seed prompts: `sandbox` (its test split) or a seed file (its harmful "
            "rows)."
        ),
    ] = "sandbox",
    old_seeds: Annotated[
        str | None, typer.Option("--seeds", hidden=True, help="Old name of --prompts.")
    ] = None,
    best_of: Annotated[
        int, typer.Option(help="K sampled rewrites per seed (1 = one greedy).", min=1)
    ] = 1,
    limit: Annotated[int | None, typer.Option(help="First N seeds.", min=1)] = None,
    config: EvalConfigOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory (default runs/attack-<time>).", metavar="DIR"),
    ] = None,
    overrides: EvalOverrides = None,
) -> None:
    """Attacker transfer: rewrite harmful seeds, the target answers greedily -> ASR, format rate.

    Example: magic attack --attacker runs/demo --target sandbox:base --best-of 4 --limit 20
    """
    from magic_rl.data.outputs import check_out_dir
    from magic_rl.evaluate.transfer import attack_transfer, claim_attack_dir, harmful_seeds
    from magic_rl.sandbox.resolve import model_dir, resolve_judge

    seeds = renamed("--seeds", "--prompts", old_seeds, prompts, "sandbox")
    cfg = _eval_config(config, [attacker, target], overrides)
    log = _console().print
    try:
        harmful_seeds(cfg, seeds, limit)  # a bad seed file fails before any model is built
        if out is not None:
            claim_attack_dir(check_out_dir(out))  # and a results.json in the way
        attacker = model_dir(attacker, "attacker", cfg, log=log)  # fail before the judge's build
        target = model_dir(target, "defender", cfg, log=log)
        cfg = resolve_judge(cfg, log=log)
        attack_transfer(
            cfg,
            attacker,
            target,
            seeds=seeds,
            best_of=best_of,
            limit=limit,
            out=out,
            log=_console().print,
        )
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))


@app.command("crossplay")
def crossplay_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A training run directory.")],
    limit: Annotated[
        int | None, typer.Option(help="First N test-split harmful seeds.", min=1)
    ] = None,
    samples: Annotated[
        int,
        typer.Option(
            help="Rewrites per seed: 1 = the attacker's greedy rewrite; K > 1 = K sampled at its "
            "temperature (the same streams for every checkpoint), each scored on its own.",
            min=1,
        ),
    ] = 1,
    config: EvalConfigOpt = None,
    overrides: EvalOverrides = None,
) -> None:
    """Every attacker checkpoint x every defender checkpoint -> ASR matrix and heatmap.

    Examples:
        magic crossplay runs/demo --limit 40
        magic crossplay runs/demo --limit 40 --samples 4
    """
    from magic_rl.evaluate.eval import run_checkpoints
    from magic_rl.evaluate.transfer import crossplay
    from magic_rl.sandbox.resolve import resolve_judge

    cfg = _eval_config(config, [str(run_dir)], overrides)
    console = _console()
    try:
        run_checkpoints(run_dir, log=lambda *a: None)  # not a run: fails before the judge is built
        cfg = resolve_judge(cfg, log=console.print)
        path = crossplay(cfg, run_dir, limit=limit, samples=samples, log=console.print)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    console.print(f"[bold green]cross-play[/] {path}  ({path.parent / 'heatmap.png'})")


@app.command()
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A training run directory (its replay.jsonl).")],
    stages: Annotated[int, typer.Option(help="Training stages the steps are split into.")] = 4,
    label: Annotated[str, typer.Option(help="Seed label whose rewrites are analysed.")] = "harmful",
    llm_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible base URL of the paper's LLM classifier "
            "(default: the rule tagger)."
        ),
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="Model name at --llm-url.")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the --llm-url API key.")
    ] = None,
) -> None:
    """Attack-pattern analysis: taxonomy distribution, hybrid ratio, distinct codes and diversity
    of the attacker's rewrites per training stage -> RUN_DIR/analysis/strategy.json.

    Example: magic analyze runs/demo --stages 4
    """
    from magic_rl.evaluate.analyze import LLMTagger, analyze_replay, write_analysis

    tagger = None
    if llm_url is not None:
        if not llm_model:
            _fail("--llm-url needs --llm-model")
        try:
            tagger = LLMTagger(llm_url, llm_model, api_key_env)
        except ValueError as err:
            _fail(str(err))
    try:
        analysis = analyze_replay(run_dir, stages, tagger=tagger, label=label)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        _fail(str(err))
    path = write_analysis(run_dir, analysis)
    from magic_rl.evaluate.analyze import code_name
    from magic_rl.tables import key_table

    cols = (
        "steps",
        "rewrites",
        "faithful",
        "hybrid",
        "codes",
        "self-BLEU",
        "emb. div.",
        "top code",
    )
    rows = []
    for s in analysis["stages"]:
        top = max(s["codes"].items(), key=lambda kv: kv[1]) if s["codes"] else ("-", 0.0)
        rows.append(
            [
                f"{s['steps'][0]}-{s['steps'][1]}",
                str(s["n_rewrites"]),
                f"{s.get('faithful_rate', math.nan):.2f}",
                f"{s['hybrid_ratio']:.2f}",
                str(s["distinct_codes"]),
                f"{s['self_bleu']:.3f}",
                f"{s['embedding_diversity']:.3f}",
                f"{code_name(top[0])} {top[1]:.0%}",
            ]
        )
    title = f"{run_dir}: {analysis['n_rewrites']} {label} rewrites (tagger: {analysis['tagger']})"
    console = _console()
    console.print(key_table(title, cols, rows, text=["top code"]))
    console.print(f"[bold green]analysis[/] {path}")


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (several: overlaid).")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output X.html (default RUN_DIR/report.html); also writes its markdown twin X.md "
            "and plots X_files/*.png beside it, never over a file an earlier report did not write.",
            metavar="FILE",
        ),
    ] = None,
    ablation: Annotated[
        Path | None,
        typer.Option(help="Ablation table JSON {variant: {metric: {mean, lo, hi, n}}}."),
    ] = None,
    attacker_experiment: Annotated[
        Path | None,
        typer.Option(
            "--attacker-experiment",
            help="A `magic experiment attacker` --out directory: its table and ASR curve.",
            metavar="DIR",
        ),
    ] = None,
    arms_race: Annotated[
        Path | None,
        typer.Option(
            "--arms-race",
            help="A `magic experiment arms-race` --out directory: its contrasts, gains, matrix.",
            metavar="DIR",
        ),
    ] = None,
    show_text: Annotated[
        bool, typer.Option(help="Also write attack/reply text into the markdown twin.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(help="Replace X.html / X.md / X_files/ even if a report did not write them."),
    ] = False,
) -> None:
    """One self-contained HTML report (and a markdown twin) of one or more runs.

    Examples:
        magic report runs/demo
        magic report runs/demo runs/abl/no_game-s0 --out cmp.html --ablation runs/abl/ablation.json
        magic report runs/attacker/trained-s0 --attacker-experiment runs/attacker
        magic report runs/arms/magic-s0 --arms-race runs/arms
    """
    from magic_rl.report import render_report

    try:
        html_path, md_path = render_report(
            run_dirs,
            out,
            ablation,
            attacker=attacker_experiment,
            arms_race=arms_race,
            show_text=show_text,
            force=force,
        )
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    plots = html_path.parent / f"{html_path.stem}_files"
    beside = f"markdown twin {md_path}" + (f", plots {plots}/" if plots.is_dir() else "")
    _console().print(f"[bold green]report[/] {html_path}  ({beside})")
