"""`magic ...`: one subcommand per job. Heavy libraries are imported inside the command that needs them.

Examples:
    magic config show sandbox
    magic validate configs/paper-qwen2.5-7b.yaml
    magic sandbox build
    magic pool build --out pool.jsonl
    magic sft --config configs/sandbox.yaml
    magic train --config configs/sandbox.yaml game.max_turns=3 name=mt
    magic train --resume runs/sandbox

Config overrides are dotted `key=value` arguments after the options; they beat the YAML file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="MAGIC: co-evolving attacker and defender LLMs for robust safety (arXiv 2602.01539).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect configurations.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The self-contained CPU sandbox world.", no_args_is_help=True)
pool_app = typer.Typer(help="The attack pool (phase-1 SFT data).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(pool_app, name="pool")

ConfigOpt = Annotated[
    str, typer.Option("--config", "-c", help="Preset name (sandbox) or YAML file.")
]
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Dotted overrides, e.g. schedule.freq=15.", show_default=False),
]


def _fail(message: str, code: int = 2) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load(config: str | None, overrides: list[str] | None):
    from magic_rl.config import ConfigError, load_config

    try:
        return load_config(config, overrides or [])
    except ConfigError as err:
        _fail(str(err))


def _console():
    from rich.console import Console

    return Console()


@config_app.command("show")
def config_show(
    preset_or_file: Annotated[str, typer.Argument(help="Preset name or YAML file.")],
    overrides: Overrides = None,
) -> None:
    """Print the fully resolved configuration (defaults <- YAML <- overrides)."""
    from magic_rl.config import dump_config

    typer.echo(dump_config(_load(preset_or_file, overrides)), nl=False)


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="YAML config to check.")],
    overrides: Overrides = None,
) -> None:
    """Check a config without running anything; exits non-zero naming the bad field."""
    cfg = _load(file, overrides)
    typer.echo(
        f"ok: {file} ({cfg.name}: attacker={cfg.attacker.model}, defender="
        f"{cfg.defender.model}, judge={cfg.judge.backend})"
    )


@sandbox_app.command("build")
def sandbox_build(
    config: ConfigOpt = "sandbox",
    force: Annotated[bool, typer.Option(help="Rebuild even if cached.")] = False,
    attacker: Annotated[bool, typer.Option(help="Also run phase-1 SFT of the attacker.")] = True,
    overrides: Overrides = None,
) -> None:
    """Build the sandbox world (seeds, pool, tokenizer, base model, judge, SFT'd attacker)."""
    import json
    import time

    from magic_rl.sandbox.world import build_attacker, build_world, world_for

    cfg = _load(config, overrides)
    console = _console()
    t = time.perf_counter()
    expected = world_for(cfg)
    cached = not force and expected.built
    cached = cached and (not attacker or (expected.attacker(cfg) / "sft.json").exists())
    world = build_world(cfg, force=force, log=console.print)
    stages = dict(world.info["timings_s"])
    if attacker:
        sft_summary = build_attacker(cfg, world, force=force, log=console.print) / "sft.json"
        stages["attacker_sft"] = json.loads(sft_summary.read_text()).get("seconds")
    info = world.info
    took = f"{time.perf_counter() - t:.0f}s" + (", reused from the cache" if cached else "")
    acc = info["judge_accuracy"]
    signals = ("prompt_harmful", "response_refusal", "response_harmful")
    console.print(f"[bold green]sandbox world[/] {world.root}  ({took})")
    console.print(f"  base model: {world.base}  ({info['parameters']:,} parameters)")
    console.print(
        f"  judge:      {world.judge}  held-out accuracy "
        + ", ".join(f"{k} {acc[k]:.3f}" for k in signals if k in acc)
    )
    console.print(f"  pool:       {world.pool}  ({info['pool_records']} records)")
    if attacker:
        console.print(f"  attacker:   {world.attacker(cfg)}")
    console.print("  built in:   " + ", ".join(f"{k} {v}s" for k, v in stages.items()))


@sandbox_app.command("probe")
def sandbox_probe(
    config: ConfigOpt = "sandbox",
    model: Annotated[
        str | None, typer.Option(help="Defender to probe (default: the base model).")
    ] = None,
    sampled: Annotated[
        bool, typer.Option(help="Sample at the rollout temperature, not greedy.")
    ] = False,
    per_strategy: Annotated[int, typer.Option(help="Rewrites per strategy.")] = 60,
    split: Annotated[str, typer.Option(help="Seed split to probe (train/val/test).")] = "test",
    overrides: Overrides = None,
) -> None:
    """Per-strategy vulnerability of a sandbox defender (ASR, refusal, CIs) on test-split seeds."""
    from magic_rl.sandbox.probe import markdown_table, probe_defender

    cfg = _load(config, overrides)
    console = _console()
    rows = probe_defender(
        cfg, model, sampled=sampled, per_strategy=per_strategy, split=split, log=console.print
    )
    console.print(markdown_table(rows), highlight=False)


@pool_app.command("build")
def pool_build(
    out: Annotated[Path, typer.Option(help="Output JSONL.")] = Path("pool.jsonl"),
    config: ConfigOpt = "sandbox",
    strategies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated strategies or family:NAME (default: all 15 programmatic ones)."
        ),
    ] = None,
    exclude: Annotated[
        str, typer.Option(help="Comma-separated strategies/families to leave out.")
    ] = "",
    split: Annotated[
        str | None, typer.Option(help="Seed split (train/val/test); default all.")
    ] = None,
    overrides: Overrides = None,
) -> None:
    """Write the attack pool: every seed x every strategy, with reasoning and provenance."""
    from magic_rl.data.seeds import load_seed_file, sandbox_seeds
    from magic_rl.strategies import build_pool, resolve_strategies, write_pool

    cfg = _load(config, overrides)
    try:
        seeds = (
            sandbox_seeds(split=split, fraction=cfg.sandbox.fraction)
            if cfg.data.seeds == "sandbox"
            else load_seed_file(cfg.data.seeds)
        )
        names = resolve_strategies(strategies.split(",")) if strategies else None
        excl = [e for e in exclude.split(",") if e]
        records = build_pool(seeds, names, rng_seed=cfg.seed, exclude=excl)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    write_pool(records, out)
    _console().print(f"[bold green]pool[/] {out}: {len(records)} records from {len(seeds)} seeds")


@app.command()
def sft(
    config: ConfigOpt = "sandbox",
    force: Annotated[bool, typer.Option(help="Retrain even if cached (sandbox).")] = False,
    overrides: Overrides = None,
) -> None:
    """Phase 1: SFT the attacker on the attack pool (loss on the target only)."""
    cfg = _load(config, overrides)
    console = _console()
    if cfg.sft.pool is None:
        from magic_rl.sandbox.world import build_attacker, build_world

        out = build_attacker(
            cfg, build_world(cfg, log=console.print), force=force, log=console.print
        )
    else:
        from magic_rl.sandbox.world import resolve_model
        from magic_rl.strategies import read_pool
        from magic_rl.trainer import attacker_sft

        out = Path(cfg.sft.output or Path(cfg.output_dir) / cfg.name / "attacker-sft")
        base = resolve_model(cfg.sft.model, cfg, log=console.print)
        attacker_sft(cfg, read_pool(cfg.sft.pool), base, out, log=console.print)
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
    from magic_rl.loop import summarize_run
    from magic_rl.loop import train as run_training

    if resume is not None:
        if not (resume / "config.yaml").exists():
            _fail(f"{resume}: no config.yaml: not a run directory")
        cfg = _load(str(resume / "config.yaml"), overrides)
    else:
        cfg = _load(config, overrides)
    console = _console()
    try:
        run_dir = run_training(cfg, resume=resume, log=console.print)
    except FileExistsError as err:
        _fail(str(err))
    from accelerate import PartialState

    if PartialState().is_main_process:  # once, not once per data-parallel rank
        print_summary(summarize_run(run_dir), run_dir)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_summary(summary: dict, run_dir: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{run_dir}  ({summary['steps']} steps, {summary['switches']} switches)")
    table.add_column("metric")
    table.add_column("first 5 steps", justify="right")
    table.add_column("last 5 steps", justify="right")
    for key, first in summary["first"].items():
        table.add_row(key, _fmt(first), _fmt(summary["last"][key]))
    _console().print(table)


# --- evaluation (magic_rl.evaluate) -------------------------------------------------------------


def _eval_config(config: str | None, model_specs: list[str], overrides: list[str] | None):
    """--config, else the config.yaml of the run a model argument points into, else `sandbox`."""
    from magic_rl.evaluate.run import run_dir_of

    if config is None:
        for spec in model_specs:
            run_dir = run_dir_of(spec)
            if run_dir is not None and (run_dir / "config.yaml").is_file():
                return _load(str(run_dir / "config.yaml"), overrides)
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
        str,
        typer.Option(
            help="Defender: HF path/id, RUN_DIR (its last checkpoint), "
            "RUN_DIR/checkpoints/step-N or sandbox:base."
        ),
    ],
    benchmarks: Annotated[
        str,
        typer.Option(help="Comma-separated: benchmark names, files, `sandbox` or sandbox/<set>."),
    ] = "sandbox",
    config: EvalConfigOpt = None,
    limit: Annotated[int | None, typer.Option(help="First N items of each benchmark.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default runs/eval-<time> or RUN_DIR/eval).")
    ] = None,
    data_root: Annotated[Path | None, typer.Option(help="Benchmark data root.")] = None,
    overrides: Overrides = None,
) -> None:
    """Evaluate a defender (greedy, training chat view) -> results.json, items.jsonl, results.md.

    Examples:
        magic eval --model runs/sandbox --benchmarks sandbox,xstest --limit 50
        magic eval --model runs/sandbox/checkpoints/step-000000 --benchmarks sandbox/vanilla_harmful
    """
    from magic_rl.data.benchmarks import DatasetError
    from magic_rl.evaluate.run import evaluate, rich_table

    cfg = _eval_config(config, [model], overrides)
    console = _console()
    names = [b.strip() for b in benchmarks.split(",") if b.strip()]
    try:
        out_dir, models = evaluate(
            cfg, model, names, out=out, limit=limit, data_root=data_root, log=console.print
        )
    except (DatasetError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    console.print(rich_table(models, title=f"{models[0].path}"))
    console.print(f"[bold green]results[/] {out_dir}/results.json  (items.jsonl, results.md)")


@app.command()
def attack(
    attacker: Annotated[
        str,
        typer.Option(
            help="Attacker: HF path, RUN_DIR (last checkpoint), "
            "RUN_DIR/checkpoints/step-N or sandbox:attacker."
        ),
    ],
    target: Annotated[
        str, typer.Option(help="Target defender: HF path, RUN_DIR, step dir or sandbox:base.")
    ],
    seeds: Annotated[
        str,
        typer.Option(
            help="`sandbox` (test-split harmful seeds) or a seed file (its harmful rows)."
        ),
    ] = "sandbox",
    best_of: Annotated[
        int, typer.Option(help="K sampled rewrites per seed (1 = one greedy).", min=1)
    ] = 1,
    limit: Annotated[int | None, typer.Option(help="First N seeds.")] = None,
    config: EvalConfigOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default runs/attack-<time>).")
    ] = None,
    overrides: Overrides = None,
) -> None:
    """Attacker transfer: rewrite harmful seeds, the target answers greedily -> ASR, format rate.

    Example: magic attack --attacker runs/sandbox --target sandbox:base --best-of 4
    """
    from magic_rl.evaluate.crossplay import attack_transfer

    cfg = _eval_config(config, [attacker, target], overrides)
    try:
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
    limit: Annotated[int | None, typer.Option(help="First N test-split harmful seeds.")] = None,
    config: EvalConfigOpt = None,
    overrides: Overrides = None,
) -> None:
    """Every attacker checkpoint x every defender checkpoint -> ASR matrix and heatmap.

    Example: magic crossplay runs/sandbox --limit 40
    """
    from magic_rl.evaluate.crossplay import crossplay

    cfg = _eval_config(config, [str(run_dir)], overrides)
    console = _console()
    try:
        path = crossplay(cfg, run_dir, limit=limit, log=console.print)
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

    Example: magic analyze runs/sandbox --stages 4
    """
    from magic_rl.evaluate.strategy import LLMTagger, analyze_replay, write_analysis

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
    from rich.table import Table

    table = Table(
        title=f"{run_dir}: {analysis['n_rewrites']} {label} rewrites (tagger: {analysis['tagger']})"
    )
    for col in ("steps", "rewrites", "hybrid", "codes", "self-BLEU", "emb. div.", "top code"):
        table.add_column(col, justify="right")
    for s in analysis["stages"]:
        top = max(s["codes"].items(), key=lambda kv: kv[1]) if s["codes"] else ("-", 0.0)
        table.add_row(
            f"{s['steps'][0]}-{s['steps'][1]}",
            str(s["n_rewrites"]),
            f"{s['hybrid_ratio']:.2f}",
            str(s["distinct_codes"]),
            f"{s['self_bleu']:.3f}",
            f"{s['embedding_diversity']:.3f}",
            f"{top[0]} ({top[1]:.0%})",
        )
    console = _console()
    console.print(table)
    console.print(f"[bold green]analysis[/] {path}")


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (several: overlaid).")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output HTML (default RUN_DIR/report.html); the markdown twin goes next to it."
        ),
    ] = None,
    ablation: Annotated[
        Path | None,
        typer.Option(help="Ablation table JSON {variant: {metric: {mean, lo, hi, n}}}."),
    ] = None,
    show_text: Annotated[
        bool, typer.Option(help="Also write attack/reply text into the markdown twin.")
    ] = False,
) -> None:
    """One self-contained HTML report (and a markdown twin) of one or more runs.

    Example: magic report runs/sandbox runs/no-game --out cmp.html --ablation ablation.json
    """
    from magic_rl.report import render_report

    try:
        html_path, md_path = render_report(run_dirs, out, ablation, show_text=show_text)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    _console().print(f"[bold green]report[/] {html_path}  ({md_path})")


# --- serve -------------------------------------------------------------------------------------

serve_app = typer.Typer(
    help="Serve models behind OpenAI-compatible endpoints.", no_args_is_help=True
)
app.add_typer(serve_app, name="serve")


def served_judge(cfg, log=print):
    """The judge a config names, built locally to be served (never a client of another endpoint)."""
    from magic_rl.judge import make_judge

    if cfg.judge.endpoint:
        raise ValueError(
            f"judge.endpoint={cfg.judge.endpoint!r}: this config's judge is already a client of an "
            "endpoint; serve a local judge (judge.endpoint=null)"
        )
    kw = {}
    if cfg.judge.backend == "embedded":
        from magic_rl.sandbox.world import resolve_model

        kw["embedded_path"] = resolve_model(cfg.judge.model, cfg, log=log)
    return make_judge(cfg.judge, **kw)


@serve_app.command("judge")
def serve_judge_cmd(
    config: ConfigOpt = "sandbox",
    host: Annotated[
        str, typer.Option(help="Interface to bind (0.0.0.0 exposes it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 8000,
    fmt: Annotated[
        str, typer.Option("--format", help="Answer format: wildguard, qwen3guard or llamaguard.")
    ] = "wildguard",
    fault_rate: Annotated[
        float, typer.Option(help="Share of requests that get an injected fault (testing).")
    ] = 0.0,
    faults: Annotated[
        str, typer.Option(help="Comma-separated faults to draw from: timeout,500,garbage,slow.")
    ] = "timeout,500,garbage,slow",
    model_name: Annotated[
        str | None, typer.Option(help="Model name to report and accept (default: the judge's).")
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Require `Authorization: Bearer $VAR` (the key is read from this "
            "environment variable, never from the command line)."
        ),
    ] = None,
    overrides: Overrides = None,
) -> None:
    """Serve the config's judge (the sandbox's embedded one by default) as a guard-model endpoint.

    Example: magic serve judge --port 8000, then train with judge.backend=wildguard
    judge.endpoint=http://127.0.0.1:8000/v1 judge.model=<the printed model name>
    """
    import logging
    import os

    from magic_rl.judge.serve import FAULTS, serve_judge

    cfg = _load(config, overrides)
    console = _console()
    chosen = tuple(f.strip() for f in faults.split(",") if f.strip())
    if set(chosen) - set(FAULTS):
        _fail(f"--faults {faults!r}: choose from {','.join(FAULTS)}")
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            _fail(f"--api-key-env {api_key_env}: the environment variable is unset or empty")
    try:
        judge = served_judge(cfg, log=console.print)
    except (ValueError, FileNotFoundError, OSError) as err:
        _fail(str(err))
    name = model_name or judge.name
    logging.basicConfig(level=logging.WARNING)
    try:
        server = serve_judge(
            judge,
            host,
            port,
            backend_format=fmt,
            fault_rate=fault_rate,
            faults=chosen,
            seed=cfg.seed,
            model_name=name,
            api_key=key,
        )
    except (ValueError, OSError) as err:
        _fail(str(err))
    url = f"http://{host}:{server.server_port}/v1"
    console.print(f"[bold green]judge[/] {name} ({fmt}) at {url}", highlight=False)
    console.print(
        f"train against it: judge.backend={fmt} judge.endpoint={url} judge.model={name}"
        "   (Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# --- experiments (magic_rl.experiment) ----------------------------------------------------------

experiment_app = typer.Typer(help="Multi-run experiments with seeds and CIs.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("ablation")
def experiment_ablation(
    config: ConfigOpt = "sandbox",
    seeds: Annotated[str, typer.Option(help="Training seeds (top-level `seed`).")] = "0,1,2",
    steps: Annotated[
        int | None, typer.Option(help="Steps per run (default: the config's train.steps).", min=1)
    ] = None,
    variants: Annotated[
        str, typer.Option(help="Comma-separated: base,no_game,defender_only,static,magic.")
    ] = "base,no_game,defender_only,static,magic",
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
    from magic_rl.experiment import parse_seeds, parse_variants, run_ablation

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


def main() -> None:
    app(prog_name="magic")


if __name__ == "__main__":
    sys.exit(main())
