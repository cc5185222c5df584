"""Results that travel and judges you can audit: `magic export` and `magic judge audit`.

Examples:
    magic export runs/demo                                     # eval/ (and attack dirs) -> export/
    magic export runs/demo/eval --format eee,safety-eval --out exports/
    magic judge audit --judge keyword --judge embedded --data-root ../shared/data
    magic judge audit --judge config --config configs/paper-qwen2.5-7b.yaml judge.endpoint=...
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import _console, _fail, _load, app, overrides

judge_app = typer.Typer(
    help="Judge quality: regression against labelled sets.", no_args_is_help=True
)
app.add_typer(judge_app, name="judge")

AUDIT_JUDGES = ("keyword", "embedded", "config")


@app.command("export")
def export_cmd(
    path: Annotated[
        Path,
        typer.Argument(help="A `magic eval`/`magic attack` output dir, or a run dir (its eval/)."),
    ],
    format: Annotated[
        str,
        typer.Option("--format", "-f", help="Comma-separated: eee, safety-eval, harmbench, jbb."),
    ] = "eee,safety-eval,harmbench,jbb",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output directory (default PATH/export); one subdirectory per format.",
            metavar="DIR",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace files under --out that an earlier export did not write.")
    ] = False,
) -> None:
    """Write eval/attack results as Every Eval Ever, safety-eval metrics.json, HarmBench results
    and JailbreakBench artifacts (docs/comparing.md maps them to published tables).

    Nothing to export (no results a format can hold) is an error, never an empty success.

    Example: magic export runs/demo --format eee,jbb
    """
    from magic_rl.data.benchmarks import DatasetError
    from magic_rl.evaluate.export import export

    console = _console()
    formats = [f.strip() for f in format.split(",") if f.strip()]
    try:
        written = export(path, formats, out, log=console.print, force=force)
    except (DatasetError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    if not any(written.values()):
        _fail(
            f"{path}: nothing exported: no result there is one that {', '.join(formats)} can hold "
            "(docs/comparing.md says which format holds what; eee holds every `magic eval`)"
        )
    for fmt, files in written.items():
        for f in files:
            console.print(f"[bold green]{fmt}[/] {f}")


@judge_app.command("audit")
def audit_cmd(
    judge: Annotated[
        list[str] | None,
        typer.Option(
            "--judge",
            "-j",
            help="keyword (refusal detector), embedded (the sandbox judge), config (the judge "
            "section of --config); repeat to compare.",
        ),
    ] = None,
    benchmarks: Annotated[
        str, typer.Option(help="Comma-separated labelled sets (judge_f1 benchmarks) or files.")
    ] = "jailbreakbench_artifacts,wildguardtest_judge",
    data_root: Annotated[Path | None, typer.Option(help="Benchmark data root.")] = None,
    limit: Annotated[int | None, typer.Option(help="First N items of each set.", min=1)] = None,
    config: Annotated[
        str, typer.Option("--config", "-c", help="Preset or YAML (judge section, bootstrap).")
    ] = "sandbox",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output directory for audit.json and audit.md (default runs/judge-audit-<time>).",
            metavar="DIR",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace audit.json/audit.md under --out not written by an audit.")
    ] = False,
    overrides: overrides("judge.max_response_tokens=256") = None,
) -> None:
    """Score judges against labelled exchanges: accuracy, F1, confusion and unknown verdicts per
    signal, with 95% bootstrap CIs.

    Example: magic judge audit --judge keyword --judge embedded --limit 200
    """
    from magic_rl.data.benchmarks import DatasetError, load_benchmark
    from magic_rl.data.outputs import claim, write_output
    from magic_rl.evaluate.audit import AUDIT_HEADER, audit, audit_rows, markdown
    from magic_rl.evaluate.eval import progress_bar
    from magic_rl.judge import make_judge
    from magic_rl.sandbox.resolve import resolve_judge
    from magic_rl.tables import key_table

    cfg = _load(config, overrides)
    names = judge or ["keyword"]
    bad = [n for n in names if n not in AUDIT_JUDGES]
    if bad:
        _fail(f"unknown --judge {bad}; choose from {list(AUDIT_JUDGES)}")
    console = _console()
    if out is None:
        out = Path("runs") / time.strftime("judge-audit-%Y%m%d-%H%M%S")
    # Checked before the (long) audit, and again when writing.
    targets = {out / "audit.json": '"judges"', out / "audit.md": "| " + " | ".join(AUDIT_HEADER)}
    for path, mark in targets.items():
        claim(path, mark, writer="magic judge audit", force=force)
    try:
        items = [
            i
            for name in benchmarks.split(",")
            if name.strip()
            for i in load_benchmark(name.strip(), limit=limit, data_root=data_root)
        ]
    except (DatasetError, FileNotFoundError, KeyError, ValueError) as err:
        _fail(str(err))
    if not items:
        _fail(f"no items in {benchmarks}")
    results = []
    for name in names:
        if name == "keyword":
            from magic_rl.judge.keyword import KeywordRefusalJudge

            j = KeywordRefusalJudge()
        else:
            jcfg = cfg
            if name == "embedded":
                embedded = cfg.judge.model_copy(
                    update={"backend": "embedded", "model": "sandbox:judge", "endpoint": None}
                )
                jcfg = cfg.model_copy(update={"judge": embedded})
            try:
                j = make_judge(resolve_judge(jcfg, log=console.print).judge)
            except (FileNotFoundError, ValueError) as err:
                _fail(f"--judge {name}: {err}")
        t0 = time.perf_counter()
        with progress_bar(cfg.train.progress) as task:
            result = audit(
                j,
                items,
                max_words=cfg.judge.max_response_tokens,
                n_resamples=cfg.eval.bootstrap,
                seed=cfg.seed,
                game=cfg.game,
                advance=task(f"audit {name}", len(items)),
            )
        title = (
            f"judge {name} ({result.judge}): {len(items)} items, {time.perf_counter() - t0:.0f}s"
        )
        console.print(key_table(title, AUDIT_HEADER, audit_rows(result), keys=2))
        results.append((name, result))
    # always saved: the table alone is lost with the terminal
    doc = {
        "benchmarks": benchmarks,
        "limit": limit,
        "judges": {name: r.to_dict() for name, r in results},
    }
    texts = [
        json.dumps(doc, indent=2) + "\n",
        "\n".join(f"## {n}\n\n{markdown(r)}" for n, r in results),
    ]
    for (path, mark), text in zip(targets.items(), texts, strict=True):
        write_output(path, text, mark=mark, writer="magic judge audit", force=force)
    console.print(f"[bold green]audit[/] {out / 'audit.json'}  ({out / 'audit.md'})")
