"""`magic pool build`: the attack pool from the programmatic strategies or any OpenAI-compatible LLM.

Heavy work lives in `magic_rl.strategies.build` (resumable, counted); this file parses options,
draws the progress bar and prints the per-strategy report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import ConfigOpt, _console, _fail, _load, overrides, pool_app


@pool_app.command("build")
def pool_build(
    out: Annotated[
        Path,
        typer.Option(
            help="Output JSONL file (appended to: reruns add what is missing).", metavar="FILE"
        ),
    ] = Path("pool.jsonl"),
    config: ConfigOpt = "sandbox",
    strategies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated strategies or family:NAME (default: SORRY-Bench's 20 with "
            "--rewriter-url, else its 15 programmatic ones; family:novel adds the project's own)."
        ),
    ] = None,
    exclude: Annotated[
        str, typer.Option(help="Comma-separated strategies/families to leave out.")
    ] = "",
    split: Annotated[
        str | None, typer.Option(help="Seed split (train/val/test); default all.")
    ] = None,
    labels: Annotated[
        str,
        typer.Option(
            help="Seed labels to rewrite: harmful (jailbreaks), benign (harmless requests made to "
            "look alarming, the adversarial-benign branch), or both."
        ),
    ] = "harmful,benign",
    limit: Annotated[
        int | None, typer.Option(help="Only the first N seeds (after --split/--labels).", min=1)
    ] = None,
    rewriter_url: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible base URL (…/v1) of the LLM that writes rewrites and reasoning "
            "(vLLM, `magic serve policy`, an API). Without it: programmatic strategies."
        ),
    ] = None,
    rewriter_model: Annotated[
        str | None, typer.Option(help="Model name the endpoint serves (required with the URL).")
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the endpoint's API key (never the key)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Pairs in flight at once.", min=1)] = 8,
    retries: Annotated[
        int,
        typer.Option(help="Retries of a pair the LLM refuses or answers unusably.", min=0),
    ] = 2,
    temperature: Annotated[float, typer.Option(help="Rewriter sampling temperature.", min=0)] = 0.7,
    max_tokens: Annotated[int, typer.Option(help="Rewriter max_tokens per answer.", min=1)] = 1024,
    timeout: Annotated[
        float, typer.Option(help="Seconds per rewriter request.", min=0.001)
    ] = 120.0,
    report: Annotated[
        Path | None, typer.Option(help="Also write the per-strategy report as JSON here.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    overrides: overrides("data.seeds=my_seeds.jsonl") = None,
) -> None:
    """Write the attack pool: every seed x every strategy, with reasoning and provenance.

    Resumable: a rerun appends only the (seed, strategy) pairs missing from --out. With
    --rewriter-url an LLM writes every rewrite (translations included) and the first-person
    reasoning; its refusals and unusable answers are retried, counted per strategy and reported,
    never written. A build whose every pair failed exits non-zero (the table says why).

    Examples:
        magic pool build --out pool.jsonl
        magic pool build --rewriter-url http://127.0.0.1:8001/v1 --rewriter-model Qwen/Qwen2.5-7B-Instruct --limit 10 --out pool-llm.jsonl

    The rewriter must be an instruct LLM that follows the rewrite and reasoning prompts (~600
    tokens): vLLM or `magic serve policy --model DIR` with such a model; the sandbox's tiny models
    (512 positions) and SmolLM2-135M cannot (docs/LOG.md).
    """
    from magic_rl.data.outputs import claim, write_output
    from magic_rl.data.seeds import load_seed_file, sandbox_seeds
    from magic_rl.progress import new_bar
    from magic_rl.strategies import (
        DEFAULT_POOL,
        PROGRAMMATIC,
        SORRY_BENCH,
        EndpointRewriter,
        ProgrammaticRewriter,
        resolve_strategies,
    )
    from magic_rl.strategies.build import build_pool_file

    cfg = _load(config, overrides)
    console = _console()
    wanted = {x.strip() for x in labels.split(",") if x.strip()}
    if not wanted or wanted - {"harmful", "benign"}:
        _fail(f"--labels {labels!r}: choose harmful, benign or both (comma-separated)")
    if rewriter_url and not rewriter_model:
        _fail(
            "--rewriter-url needs --rewriter-model (the name the endpoint serves; see its /v1/models)"
        )
    if rewriter_model and not rewriter_url:
        _fail("--rewriter-model needs --rewriter-url")
    # Resuming appends to --out and may cut its last line: only a pool (its records' "family"
    # field) or an empty file, so `--out README.md` is refused rather than cut and appended to.
    claim(out, '"family"', writer="magic pool build", hint="use another --out")
    if report:  # a file in the way is refused before the build, not after it
        claim(report, '"examples"', writer="magic pool build", hint=_REPORT_HINT)
    try:
        seeds = (
            sandbox_seeds(split=split, fraction=cfg.sandbox.fraction)
            if cfg.data.seeds == "sandbox"
            else load_seed_file(cfg.data.seeds)
        )
        seeds = [s for s in seeds if s.label in wanted][:limit]
        default = list(SORRY_BENCH) if rewriter_url else list(DEFAULT_POOL)
        chosen = resolve_strategies(strategies.split(",") if strategies else default)
        dropped = set(resolve_strategies(e for e in exclude.split(",") if e))
        chosen = [s for s in chosen if s not in dropped]
        if not rewriter_url and set(chosen) - set(PROGRAMMATIC):
            bad = sorted(set(chosen) - set(PROGRAMMATIC))
            raise ValueError(
                f"strategies {bad} need an LLM: pass --rewriter-url and --rewriter-model"
            )
        if rewriter_url:
            rewriter = EndpointRewriter(
                rewriter_url, rewriter_model, api_key_env, timeout_s=timeout,
                concurrency=concurrency, temperature=temperature, max_tokens=max_tokens,
            )  # fmt: skip
        else:
            rewriter, concurrency = ProgrammaticRewriter(), 1
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    if not seeds or not chosen:
        _fail(f"nothing to build: {len(seeds)} seeds x {len(chosen)} strategies")
    console.print(
        f"[bold]pool[/] {len(seeds)} seeds x {len(chosen)} strategies -> {out}"
        + (f"  (rewriter {rewriter_model} at {rewriter_url})" if rewriter_url else ""),
        highlight=False,
    )
    bar = new_bar(_rate_column()) if progress else None
    task = bar.add_task("pairs", total=len(seeds) * len(chosen)) if bar else None
    try:
        if bar:
            bar.start()
        result = build_pool_file(
            seeds, chosen, rewriter, out, rng_seed=cfg.seed, concurrency=concurrency,
            retries=retries, on_pair=(lambda: bar.advance(task)) if bar else (lambda: None),
            log=console.print,
        )  # fmt: skip
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    finally:
        if bar:
            bar.stop()
        if rewriter_url:
            rewriter.close()
    _print_report(console, result)
    if report:
        text = json.dumps(result.to_json(), indent=2) + "\n"
        write_output(report, text, mark='"examples"', writer="magic pool build", hint=_REPORT_HINT)
    written = sum(c["written"] for c in result.counts.values())
    existing = sum(c["existing"] for c in result.counts.values())
    console.print(
        f"[bold green]pool[/] {out}: {written} records written, {existing} already there, "
        f"{result.missing} pairs missing",
        highlight=False,
    )
    if result.stopped:
        _fail(f"stopped early: {result.stopped}\nwhat was written is kept; fix it and rerun")
    if result.missing and not written:
        _fail(
            f"nothing written: all {result.missing} (seed, strategy) pairs failed (the table above "
            "says how: a rewriter that refuses, answers unusably or rejects the prompt, e.g. one "
            "longer than its context, cannot build a pool)"
        )
    if result.missing:
        console.print(
            f"[yellow]{result.missing} (seed, strategy) pairs have no record (see the table); "
            "rerun the same command to retry only those[/]",
            highlight=False,
        )


_REPORT_HINT = "choose another --report, or move it away"


def _rate_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.2f} pairs/s" if task.speed else "- pairs/s")

    return RateColumn()


_COLUMNS = {  # report key -> column header (short: the table must fit 80 columns)
    "written": "new",
    "existing": "had",
    "refused": "refused",
    "malformed": "malformed",
    "rejected": "rejected",
    "unavailable": "unreach",
    "retries": "retries",
}


def _print_report(console, result) -> None:
    from magic_rl.tables import key_table

    rows = [
        [
            row["strategy"],
            *(str(row[k]) for k in _COLUMNS),
            "-" if row["usable"] is None else f"{row['usable']:.0%}",
        ]
        for row in result.rows()
    ]
    title = "pool build: (seed, strategy) pairs per strategy"
    headers = ["strategy", *_COLUMNS.values(), "usable"]
    console.print(key_table(title, headers, rows, box=None))
    for outcome, messages in result.examples.items():
        for m in messages:
            console.print(f"  {outcome}: {m[:200]}", highlight=False, markup=False)
