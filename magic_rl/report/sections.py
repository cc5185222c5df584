"""The report's sections (summary, curves, cross-play, attack patterns, evaluation, ablation,
sample exchanges) assembled into a `Report` by `build_report`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from magic_rl.ablation_metrics import arrow
from magic_rl.evaluate.analyze import TAXONOMY
from magic_rl.evaluate.eval.headline import has_headline, two_sided
from magic_rl.report.markup import Cell, Report, _e, _md_cell
from magic_rl.report.plots import (
    ablation_figure,
    arms_race_figure,
    attacker_curve_figure,
    crossplay_figure,
    curves_figure,
    eval_figure,
    strategy_figure,
)
from magic_rl.report.runs import CONFIG_KEYS, RunData, _fmt, run_summary
from magic_rl.report.tables import (
    EvalTable,
    ablation_table,
    ci_part,
    common_n,
    eval_table,
    flat_items,
    is_model_results,
    metric_name,
    metric_rows,
    sample_exchanges,
)
from magic_rl.run_summary import SUMMARY_KEYS


def _summary_section(rep: Report, runs: Sequence[RunData]) -> None:
    rep.section("summary", "Run summary")
    summaries = [run_summary(run) for run in runs]
    header = ["", *[run.label for run in runs]]
    rows = [
        ["directory", *[str(run.path) for run in runs]],
        ["steps (last step)", *[f"{s['steps']} ({s['last_step']})" for s in summaries]],
        ["role switches", *[s["switches"] for s in summaries]],
        [
            "steps defender / attacker",
            *[
                f"{s['steps_per_role']['defender']} / {s['steps_per_role']['attacker']}"
                for s in summaries
            ],
        ],
    ]
    for key in CONFIG_KEYS:
        if any(key in s["config"] for s in summaries):
            rows.append([key, *[s["config"].get(key, "–") for s in summaries]])
    rep.table(header, rows, numeric_from=99)
    rep.html.append("<h3>Headline metrics: mean of the first / last 5 steps</h3>")
    rep.md.append("\n### Headline metrics: mean of the first / last 5 steps\n")
    rows = [
        [key, *[f"{_fmt(s['first'][key])} → {_fmt(s['last'][key])}" for s in summaries]]
        for key in SUMMARY_KEYS
    ]
    rep.table(["metric", *[run.label for run in runs]], rows)


def _strategy_section(rep: Report, runs: Sequence[RunData], files_dir: str) -> None:
    if not any((run.analysis or {}).get("stages") for run in runs):
        return
    rep.section("strategy", "Attack patterns per training stage")
    rep.note(
        "Taxonomy of the paper (20 classes, 6 families); a hybrid code such as 0_3 has two "
        "or more high-confidence classes and is split evenly across them in the bars. "
        "Self-BLEU: higher = more repetitive; embedding diversity: mean pairwise cosine "
        "distance of character-n-gram TF-IDF vectors."
    )
    for i, run in enumerate(runs):
        stages = (run.analysis or {}).get("stages") or []
        if not stages:
            continue
        rep.html.append(f"<h3>{_e(run.label)} (tagger: {_e(run.analysis.get('tagger'))})</h3>")
        rep.md.append(f"\n### {run.label} (tagger: {run.analysis.get('tagger')})\n")
        rep.figure(strategy_figure(run, i), files_dir)
        rows = []
        for s in stages:
            top = sorted((s.get("codes") or {}).items(), key=lambda kv: -kv[1])[:3]
            top_text = ", ".join(
                f"{c} ({TAXONOMY.get(int(c), '?') if '_' not in c else 'hybrid'}) {v:.0%}"
                for c, v in top
            )
            rows.append(
                [
                    f"{s['steps'][0]}–{s['steps'][1]}",
                    s.get("n_rewrites"),
                    _fmt(s.get("faithful_rate")),
                    _fmt(s.get("hybrid_ratio")),
                    s.get("distinct_codes"),
                    _fmt(s.get("self_bleu")),
                    _fmt(s.get("embedding_diversity")),
                    s.get("n_unknown", 0),
                    top_text,
                ]
            )
        rep.table(
            [
                "steps",
                "rewrites",
                "faithful",
                "hybrid ratio",
                "distinct codes",
                "self-BLEU",
                "embedding diversity",
                "unknown",
                "top codes",
            ],
            rows,
        )


def _without_unknown_counts(results: Any) -> Any:
    """results.json without its per-set unknown counts, which `_unknown_table` shows."""
    if not isinstance(results, dict) or not isinstance(results.get("models"), dict):
        return results
    models = {
        label: {k: v for k, v in m.items() if k != "judge_unknown"} if isinstance(m, dict) else m
        for label, m in results["models"].items()
    }
    return {**results, "models": models}


def _unknown_table(rep: Report, results: Any) -> None:
    """Judge verdicts unknown per set and model, by reason, with the policy applied."""
    models = results.get("models") if isinstance(results, dict) else None
    if not isinstance(models, dict):
        return
    rows = [
        [
            label,
            name,
            c.get("n", "–"),
            c.get("unknown", "–"),
            ", ".join(f"{r} {k}" for r, k in sorted((c.get("by_reason") or {}).items())) or "–",
        ]
        for label, m in models.items()
        if isinstance(m, dict)
        for name, c in (m.get("judge_unknown") or {}).items()
    ]
    if not rows:
        return
    judge = (results.get("provenance") or {}).get("judge") or {}
    rep.note(
        f"Judge verdicts unknown per set: {judge.get('unknown_policy', 'policy not recorded')}; "
        f"Qwen3Guard Controversial -> {judge.get('controversial', 'not recorded')}."
    )
    rep.table(["model", "set", "items", "unknown", "why"], rows)


def _value_cell(value: Any, lo: Any, hi: Any, extra: str = "") -> Cell:
    """The value in bold, its interval (and `extra`) small beneath it."""
    ci = ci_part(lo, hi)
    small = " ".join(t for t in (ci, extra) if t)
    html_small = f'<br><span class="ci">{_e(small)}</span>' if small else ""
    return Cell(f"<b>{_e(_fmt(value))}</b>{html_small}", f"{_fmt(value)} {small}".strip())


def _eval_cell(cell: dict[str, Any] | None) -> Cell | str:
    if not cell:
        return "–"
    ci = cell.get("ci")
    lo, hi = ci if isinstance(ci, list | tuple) and len(ci) == 2 else (None, None)
    n, unknown = cell.get("n"), cell.get("n_unknown")
    extra = (f"n={n}" if isinstance(n, int) else "") + (f" unknown={unknown}" if unknown else "")
    return _value_cell(cell.get("value"), lo, hi, extra.strip())


def _delta(table: EvalTable, key: str) -> str:
    """last model - first model, signed."""
    first, last = table.value(key, table.models[0]), table.value(key, table.models[-1])
    return "–" if math.isnan(first) or math.isnan(last) else f"{last - first:+.3f}"


def _verdict(rep: Report, table: EvalTable) -> None:
    """make demo's two-sided headline, first column vs last, when both have the sandbox sets."""
    if len(table.models) < 2:
        return
    before, after = table.models[0], table.models[-1]
    first, last = table.metrics_of(before), table.metrics_of(after)
    if not (has_headline(first) and has_headline(last)):
        return
    _, verdict = two_sided(first, last)
    good = verdict.startswith("ASR down") and "NOT kept" not in verdict
    rep.callout(f"Robust without over-refusal? {before} → {after}: {verdict}", good)


def _eval_section(rep: Report, runs: Sequence[RunData], files_dir: str) -> None:
    if not any(run.evaluations for run in runs):
        return
    rep.section("eval", "Evaluation")
    rep.note(
        "One row per benchmark set and metric, one column per evaluated model: the value, its "
        "95% bootstrap interval and the items judged (n); ↑/↓: higher/lower is better; Δ: last "
        "column minus first. A run's evaluations (RUN_DIR/eval/*) are merged; "
        "where two evaluated the same model on the same set, the newer one is shown."
    )
    for index, run in enumerate(runs):
        if not run.evaluations:
            continue
        if len(runs) > 1:
            rep.heading(run.label)
        warned: dict[str, list[str]] = {}  # one callout per warning, naming its evaluations
        for path, results in run.evaluations:
            prov = _provenance_of(results)
            warnings = prov.get("warnings")
            for warning in warnings if isinstance(warnings, list) else []:
                warned.setdefault(str(warning), []).append(path.name)
        for warning, names in warned.items():
            rep.callout(f"{', '.join(names)}: {warning}", False)
        table = eval_table(run.evaluations)
        if table.keys:
            _verdict(rep, table)
            delta = len(table.models) > 1
            header = ["benchmark", "metric", *table.models, *(["Δ"] if delta else [])]
            rows = []
            for key in table.keys:
                meta = table.meta[key]
                rows.append(
                    [
                        meta["benchmark"],
                        f"{meta['metric']}{arrow(meta['up'])}",
                        *(_eval_cell(table.cells[key].get(m)) for m in table.models),
                        *([_delta(table, key)] if delta else []),
                    ]
                )
            rep.table(header, rows, numeric_from=2, cls="wide")
            rep.figure(eval_figure(table, index), files_dir)
        for path, results in run.evaluations:
            if is_model_results(results):
                continue  # in the table above
            rep.note(f"{path}: results in another format, every number as found:")
            rep.table(
                ["metric", "value", "95% CI", "n", "unknown"],
                [
                    [
                        r["name"],
                        _fmt(r["value"]),
                        ci_part(r["lo"], r["hi"]) or "–",
                        r["n"] if r["n"] is not None else "–",
                        r["n_unknown"] if r["n_unknown"] is not None else "–",
                    ]
                    for r in metric_rows(_without_unknown_counts(results))[:300]
                ],
            )
        _eval_provenance(rep, run)


def _provenance_of(results: Any) -> dict[str, Any]:
    prov = results.get("provenance") if isinstance(results, dict) else None
    return prov if isinstance(prov, dict) else {}


def _eval_provenance(rep: Report, run: RunData) -> None:
    """Each evaluation's directory, models, judge, decoding and config, folded away, every number
    at full precision; the judge's unknown verdicts per set."""
    for path, results in run.evaluations:
        if not isinstance(results, dict):
            continue
        prov = _provenance_of(results)
        models = results.get("models") if isinstance(results.get("models"), dict) else {}
        rep.open_details(
            f"Provenance: {path.name} ({prov.get('timestamp', 'no time stamp')}; "
            f"{', '.join(models) or 'no models'})"
        )
        rows = [["directory", str(path)]]
        rows += [[f"models.{label}.path", m.get("path", "–")] for label, m in models.items()]
        rows += [[k, v] for k, v in flat_items(prov)]
        rep.table(["field", "value"], rows, numeric_from=99)
        _unknown_table(rep, results)
        rep.close_details()


def _ablation_section(rep: Report, ablation: Any, source: str, files_dir: str) -> None:
    rep.section("ablation", "Ablation")
    variants, metrics, cells = _mean_table(rep, ablation, source, "variant")
    rep.figure(ablation_figure(variants, metrics, cells), files_dir)


def _attacker_section(rep: Report, attacker: dict, files_dir: str) -> None:
    """`magic experiment attacker`'s table (attacker.json, read as an ablation) and its curve."""
    rep.section("attacker", "Attacker against frozen defenders")
    rep.note(
        "Attacker-only GRPO against each frozen defender (rows); sampled ASR of the training "
        "rollouts over the first and last steps and the paired gain, greedy ASR on the test "
        "split's harmful seeds before (the SFT attacker) and after."
    )
    _mean_table(rep, attacker["table"], attacker["source"], "defender")
    rep.figure(attacker_curve_figure(attacker.get("bands") or {}), files_dir)


def _mean_text(cell: dict) -> str:
    """ "0.120 [0.050, 0.190]" of a {mean, lo, hi} cell."""
    return f"{_fmt(cell.get('mean'))} {ci_part(cell.get('lo'), cell.get('hi'))}".strip()


def _arms_race_section(rep: Report, arms: dict, files_dir: str) -> None:
    """`magic experiment arms-race`'s Fig. 3 contrasts, attacker phase gains and mean matrix."""
    rep.section("arms-race", "Arms race (Fig. 3 over seeds)")
    rep.note(
        f"MAGIC x seeds {arms.get('seeds')} ({arms.get('source')}); mean [95% Student-t interval] "
        "over seeds, positive = the figure's shape."
    )
    rows = [
        [key, c.get("n"), _mean_text(c), c.get("definition", "")]
        for key, c in arms.get("contrasts", {}).items()
    ]
    rep.table(["contrast", "seeds", "mean [95% CI]", "definition"], rows)
    rows = [
        [
            g["phase"],
            f"{g['steps'][0]}-{g['steps'][1]}",
            g.get("n"),
            _mean_text(g),
            _mean_text(g["crossplay"]) if g.get("crossplay") else "–",  # older arms_race.json
        ]
        for g in arms.get("phase_gains", [])
    ]
    header = ["attacker phase", "steps", "seeds", "game ASR gain [95% CI]"]
    rep.table([*header, "cross-play gain [95% CI]"], rows)
    rep.figure(arms_race_figure(arms), files_dir)


def _mean_table(
    rep: Report, obj: Any, source: str, row_name: str
) -> tuple[list[str], list[str], dict]:
    """A {row: {metric: {mean, lo, hi, n}}} table (an ablation's), each cell its mean with its
    interval; returns what `ablation_table` read."""
    variants, metrics, cells = ablation_table(obj, source)
    n = common_n(list(cells.values()))
    rep.note(
        "Mean [95% interval] per row and metric"
        + (f", over n = {n} runs per cell unless a cell says otherwise" if n is not None else "")
        + "; ↑/↓: higher/lower is better."
    )
    header = [row_name]
    for metric in metrics:
        name, up = metric_name(metric)
        header.append(Cell(f"{_e(name)}{arrow(up)}", f"{name}{arrow(up)}"))
    rows = []
    for variant in variants:
        row: list[Any] = [variant]
        for metric in metrics:
            c = cells.get((variant, metric))
            if c is None or c.get("mean") is None:  # not measured (e.g. no run: no training metric)
                row.append("–")
                continue
            cn = c.get("n")
            extra = f"n={cn}" if isinstance(cn, int) and cn != n else ""
            row.append(_value_cell(c.get("mean"), c.get("lo"), c.get("hi"), extra))
        rows.append(row)
    rep.table(header, rows, cls="wide")
    return variants, metrics, cells


def _sample_section(rep: Report, runs: Sequence[RunData], show_text: bool) -> None:
    samples = [(run, p, r) for run in runs for p, r in sample_exchanges(run.replay)]
    if not samples:
        return
    rep.section("samples", "Sample exchanges")
    rep.html.append(
        '<label class="switch"><input type="checkbox" id="show-sensitive"> Show attack '
        "and reply text (hidden by default)</label>"
    )
    if not show_text:
        rep.md.append("_Attack and reply text is left out of the markdown; see the HTML report._\n")
    for run, period, r in samples:
        v = r.get("verdict") or {}
        rewards = r.get("rewards") or {}
        meta = (
            f"{run.label} · {period} · step {r['step']} · trained {r.get('trained_role', '?')}"
            f" · seed {r['seed'].get('id', '')} ({r['seed']['label']}"
            f"{', ' + r['seed']['category'] if r['seed'].get('category') else ''})"
        )
        verdict = ", ".join(
            f"{k}={v.get(k)}" for k in ("prompt_harmful", "response_refusal", "response_harmful")
        )
        reward = ", ".join(
            f"{role} {_fmt((rw or {}).get('total'), 2)}" for role, rw in rewards.items()
        )
        parts = [
            f'<div class="exchange"><div class="meta">{_e(meta)}</div>',
            f"<div><b>seed</b>: {_e(r['seed']['text'])}</div>",
        ]
        md = [f"\n**{meta}**\n", f"- seed: {_md_cell(r['seed']['text'])}"]
        for k, turn in enumerate(r["turns"], 1):
            tag = f" (turn {k})" if len(r["turns"]) > 1 else ""
            parts.append(
                f"<div><b>attack{tag}</b>"
                f'<span class="redacted"> [hidden]</span>'
                f'<pre class="sensitive">{_e(turn.get("attack", ""))}</pre></div>'
            )
            parts.append(
                f"<div><b>reply{tag}</b>"
                f'<span class="redacted"> [hidden]</span>'
                f'<pre class="sensitive">{_e(turn.get("reply", ""))}</pre></div>'
            )
            if show_text:
                md.append(f"- attack{tag}: {_md_cell(turn.get('attack', ''))}")
                md.append(f"- reply{tag}: {_md_cell(turn.get('reply', ''))}")
            else:
                md.append(f"- attack{tag} / reply{tag}: [redacted]")
        parts.append(
            f"<div><b>verdict</b>: {_e(verdict)}"
            f"{(' · error: ' + _e(v['error'])) if v.get('error') else ''}</div>"
        )
        parts.append(f"<div><b>rewards</b>: {_e(reward)}</div></div>")
        md += [f"- verdict: {verdict}", f"- rewards: {reward}"]
        rep.html.append("".join(parts))
        rep.md.append("\n".join(md) + "\n")


def build_report(
    runs: Sequence[RunData],
    ablation: Any = None,
    *,
    files_dir: str = "report_files",
    show_text: bool = False,
    ablation_source: str = "ablation",
    attacker: dict | None = None,
    arms_race: dict | None = None,
) -> Report:
    rep = Report()
    _summary_section(rep, runs)

    rep.section("curves", "Training curves")
    rep.note(
        "Thin lines: per step; thick: moving average. Background: the role trained at that "
        "step (blue = defender, orange = attacker"
        + (f"; shading from {runs[0].label}" if len(runs) > 1 else "")
        + ")."
    )
    fig = curves_figure(runs)
    if fig is None:
        rep.note("No curve metrics in metrics.jsonl.")
    rep.figure(fig, files_dir)

    if any(run.crossplay for run in runs):
        rep.section("crossplay", "Cross-play")
        rep.note(
            "ASR of every attacker checkpoint (rows) against every defender checkpoint (columns)."
            + (
                " Live cross-play (RUN_DIR/crossplay.jsonl, grown at each switch on a fixed "
                "probe): the matrix as it stands, n/a where a pair was not played."
                if any((run.crossplay or {}).get("live") for run in runs)
                else ""
            )
        )
        for i, run in enumerate(runs):
            rep.figure(crossplay_figure(run, i), files_dir)

    _strategy_section(rep, runs, files_dir)

    _eval_section(rep, runs, files_dir)
    if ablation is not None:
        _ablation_section(rep, ablation, ablation_source, files_dir)
    if attacker is not None:
        _attacker_section(rep, attacker, files_dir)
    if arms_race is not None:
        _arms_race_section(rep, arms_race, files_dir)
    _sample_section(rep, runs, show_text)
    return rep
