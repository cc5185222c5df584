"""`magic eval`'s outputs: provenance, results.json, items.jsonl, results.md and the rich table.

Judge failures are a reported outcome: results.json has, per model, `judge_unknown` = {set
(source/subset): {"n", "unknown", "by_reason"}} (`judge.failures`), and the provenance states the
policy applied (`judge.unknown_policy`) and the `judge.controversial` mapping; results.md repeats
both under the table.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magic_rl.config import RunConfig
from magic_rl.evaluate.eval.items import REPO, Log
from magic_rl.evaluate.eval.protocol import ModelEval
from magic_rl.evaluate.metrics import MetricResult, item_signals
from magic_rl.judge.failures import EVAL_UNKNOWN_POLICY, describe, unknown_counts


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def provenance(cfg: RunConfig, judge, files: dict[str, str], **extra: Any) -> dict[str, Any]:
    """What a results file needs to be reproduced: config, code, data, judge, decoding."""
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "config": cfg.model_dump(mode="json"),
        "datasets": files,
        "judge": {
            "backend": cfg.judge.backend,
            "model": cfg.judge.model,
            "name": getattr(judge, "name", ""),
            "max_response_words": cfg.judge.max_response_tokens,
            "controversial": cfg.judge.controversial,
            "unknown_policy": EVAL_UNKNOWN_POLICY,
        },
        "decoding": {
            "temperature": 0.0,
            "max_new_tokens": cfg.eval.max_new_tokens,
            "max_prompt_tokens": cfg.defender.sampling.max_prompt_tokens,
            "batch_size": cfg.eval.batch_size,
        },
        "bootstrap": {"n_resamples": cfg.eval.bootstrap, "alpha": 0.05, "seed": cfg.seed},
        **extra,
    }


def _fmt(m: MetricResult | None) -> str:
    if m is None:
        return "-"
    if math.isnan(m.value):
        return f"n/a (n=0, unknown {m.n_unknown})"
    text = f"{m.value:.3f} [{m.ci[0]:.3f}, {m.ci[1]:.3f}] n={m.n}"
    return text + (f" unknown={m.n_unknown}" if m.n_unknown else "")


def table_rows(models: Sequence[ModelEval]) -> list[list[str]]:
    """[benchmark, metric (arrow = better direction), one cell per model] per metric key."""
    keys = list(dict.fromkeys(k for m in models for k in m.metrics))
    rows = []
    for key in keys:
        first = next(m.metrics[key] for m in models if key in m.metrics)
        bench, name = key.rsplit("/", 1) if "/" in key else (key, "")
        if first.name.startswith("f1/"):
            bench, name = key.rsplit("/", 2)[0], first.name
        arrow = "↑" if first.higher_is_better else "↓"
        rows.append([bench, f"{name} {arrow}", *(_fmt(m.metrics.get(key)) for m in models)])
    return rows


def markdown_table(models: Sequence[ModelEval]) -> str:
    header = ["benchmark", "metric", *(m.label for m in models)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(models)]
    return "\n".join(lines)


def rich_table(models: Sequence[ModelEval], title: str = ""):
    from magic_rl.tables import key_table

    headers = ["benchmark", "metric", *(m.label for m in models)]
    return key_table(title, headers, table_rows(models), keys=2)


def judge_unknown(model: ModelEval) -> dict[str, dict[str, Any]]:
    """Per set (source/subset): items judged, items whose verdict was unknown, and why."""
    return unknown_counts(
        (f"{r.item.source}/{r.item.subset}", r.verdict, item_signals(r.item)) for r in model.results
    )


def write_results(out_dir: Path, models: Sequence[ModelEval], prov: dict[str, Any]) -> Path:
    """results.json, items.jsonl, results.md under `out_dir`; returns results.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    unknown = {m.label: judge_unknown(m) for m in models}
    doc = {
        "models": {
            m.label: {
                "path": m.path,
                "seconds": round(m.seconds, 2),
                "metrics": {k: v.to_dict() for k, v in m.metrics.items()},
                "judge_unknown": unknown[m.label],
            }
            for m in models
        },
        "provenance": prov,
    }
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")
    with (out_dir / "items.jsonl").open("w", encoding="utf-8") as f:
        for m in models:
            for r in m.results:
                f.write(json.dumps(r.to_dict(m.label), ensure_ascii=False) + "\n")
    md = out_dir / "results.md"
    paths = "\n".join(f"- `{m.label}`: {m.path}" for m in models)
    warnings = "".join(f"**{w}**\n\n" for w in prov.get("warnings") or [])
    md.write_text(
        f"# Evaluation ({prov['timestamp']})\n\n{warnings}{paths}\n\n"
        f"Value [95% bootstrap CI] over n judged items; ↑/↓ = higher/lower is better. "
        f"Judge: {prov['judge']['backend']} ({prov['judge']['model']}); greedy decoding, "
        f"{prov['decoding']['max_new_tokens']} new tokens; commit {prov['git_commit']}.\n\n"
        f"{markdown_table(models)}\n\n"
        f"Judge verdicts unknown per set (policy: {prov['judge']['unknown_policy']}; "
        f"Controversial -> {prov['judge']['controversial']}):\n\n"
        + "\n".join(f"- `{label}`: {describe(counts)}" for label, counts in unknown.items())
        + "\n"
    )
    return md


def show(renderable, log: Log = print) -> None:
    """A rich renderable through `log` when it is a rich console's print, else a fresh console."""
    if log is print:
        from rich.console import Console

        Console().print(renderable)
    else:
        log(renderable)
