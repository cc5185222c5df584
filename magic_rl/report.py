"""A run's report: one self-contained HTML file (inline CSS, inline PNG plots, a few lines of
inline JS; no network, no CDN) and a markdown twin.

    render_report(run_dirs, out=None, ablation=None) -> (html_path, md_path)

Sections, each present when its input is: run summary (config highlights, steps, switches,
first/last-window means); curves over steps of the defender and attacker rewards, ASR and the
refusal rates on harmful and benign seeds, with the training role shaded behind them (from
`schedule/role`; several runs overlay their curves, the shading is the first run's); the cross-play
ASR heatmap (RUN_DIR/crossplay/crossplay.json); the attack-pattern distribution per training stage
(RUN_DIR/analysis/strategy.json, else computed with the rule tagger); the evaluation table
(RUN_DIR/eval/results.json, shown generically: every metric row with its value and CI); an ablation
table with CIs (`ablation`: {variant: {metric: {mean, lo, hi, n}}}); sample exchanges from early
and late steps. Attack and reply text is hidden behind a checkbox, unticked by default (it is in
the file, hidden by CSS: a view switch, not a redaction of the file); the markdown twin leaves it
out unless `show_text=True`.

The markdown twin links its plots as PNG files in `<out stem>_files/` next to it.

Run: `magic report runs/sandbox` (writes runs/sandbox/report.html and report.md);
`magic report runs/a runs/b --out cmp.html --ablation ablation.json`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magic_rl.data.files import read_jsonl_rows

CURVES: tuple[tuple[str, str], ...] = (
    ("defender/reward/total", "defender reward (R_D)"),
    ("attacker/reward/total", "attacker reward (R_A)"),
    ("game/asr", "attack success rate"),
    ("defender/refusal_rate/harmful", "refusal rate, harmful seeds"),
    ("defender/refusal_rate/benign", "refusal rate, benign seeds"),
)
SUMMARY_KEYS = (
    "game/asr", "defender/refusal_rate/harmful", "defender/refusal_rate/benign",
    "defender/reward/total", "attacker/reward/total", "attacker/format_rate", "judge/unknown",
    "time/step",
)  # fmt: skip
CONFIG_KEYS = (
    "name", "seed", "attacker.model", "defender.model", "judge.backend", "game.max_turns",
    "game.attacker", "schedule.mode", "schedule.train_roles", "schedule.start_agent",
    "schedule.freq", "grpo.group_size", "train.steps", "train.seeds_per_step",
)  # fmt: skip
ROLE_COLORS = {"defender": "#dbe9f6", "attacker": "#fbe3d0"}
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


@dataclass
class RunData:
    """Everything the report reads from one run directory (absent parts are None/empty)."""

    path: Path
    label: str
    metrics: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    replay: list[dict] = field(default_factory=list)
    crossplay: dict[str, Any] | None = None
    eval_results: Any = None
    analysis: dict[str, Any] | None = None


# --- reading --------------------------------------------------------------------------------------


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of metrics.jsonl; NaN/null values are kept as NaN. Raises ValueError naming the file
    and line of a bad row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (runs write metrics.jsonl)")
    rows = []
    for lineno, row in read_jsonl_rows(path):
        step = row.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise ValueError(f"{path}:{lineno}: field 'step' missing or not an integer")
        rows.append({k: (math.nan if v is None else v) for k, v in row.items()})
    return rows


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def load_run(run_dir: str | Path, label: str | None = None) -> RunData:
    """Read a run directory; only metrics.jsonl is required."""
    from magic_rl.evaluate.strategy import analyze_replay, read_replay

    path = Path(run_dir)
    if not (path / "metrics.jsonl").exists():
        raise FileNotFoundError(f"{path}: no metrics.jsonl: not a run directory")
    run = RunData(path=path, label=label or path.name, metrics=read_metrics(path / "metrics.jsonl"))
    if (path / "config.yaml").exists():
        import yaml

        run.config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
    if (path / "replay.jsonl").exists():
        run.replay = read_replay(path / "replay.jsonl")
    if (path / "crossplay" / "crossplay.json").exists():
        run.crossplay = _check_crossplay(
            _read_json(path / "crossplay" / "crossplay.json"), path / "crossplay" / "crossplay.json"
        )
    if (path / "eval" / "results.json").exists():
        run.eval_results = _read_json(path / "eval" / "results.json")
    if (path / "analysis" / "strategy.json").exists():
        run.analysis = _read_json(path / "analysis" / "strategy.json")
    elif run.replay:
        run.analysis = analyze_replay(path)
    return run


def _check_crossplay(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected an object with attackers, defenders, asr")
    for key in ("attackers", "defenders", "asr"):
        if not isinstance(obj.get(key), list):
            raise ValueError(f"{path}: field {key!r} missing or not a list")
    rows, cols = len(obj["attackers"]), len(obj["defenders"])
    if len(obj["asr"]) != rows or any(
        not isinstance(r, list) or len(r) != cols for r in obj["asr"]
    ):
        raise ValueError(f"{path}: field 'asr' must be {rows} rows (attackers) x {cols} columns")
    return obj


def _dotted(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def run_summary(run: RunData, window: int = 5) -> dict[str, Any]:
    roles = [r.get("schedule/role") for r in run.metrics]
    return {
        "steps": len(run.metrics),
        "last_step": max((r["step"] for r in run.metrics), default=None),
        "switches": sum(1 for a, b in zip(roles, roles[1:], strict=False) if a != b),
        "steps_per_role": {role: roles.count(role) for role in ("defender", "attacker")},
        "config": {
            k: _dotted(run.config, k) for k in CONFIG_KEYS if _dotted(run.config, k) is not None
        },
        "first": {k: _mean([_num(r.get(k)) for r in run.metrics[:window]]) for k in SUMMARY_KEYS},
        "last": {k: _mean([_num(r.get(k)) for r in run.metrics[-window:]]) for k in SUMMARY_KEYS},
    }


# --- plots ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    name: str
    png: bytes
    alt: str

    def img(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return (
            f'<img class="plot" id="fig-{self.name}" alt="{html.escape(self.alt)}" '
            f'src="data:image/png;base64,{data}">'
        )


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def role_spans(metrics: Sequence[dict]) -> list[tuple[str, float, float]]:
    """(role, first step - 0.5, last step + 0.5) of each contiguous block of `schedule/role`."""
    spans: list[tuple[str, float, float]] = []
    for row in sorted(metrics, key=lambda r: r["step"]):
        role = row.get("schedule/role")
        if not isinstance(role, str):
            continue
        if spans and spans[-1][0] == role:
            spans[-1] = (role, spans[-1][1], row["step"] + 0.5)
        else:
            spans.append((role, row["step"] - 0.5, row["step"] + 0.5))
    return spans


def _smooth(values: list[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        out.append(_mean(values[max(0, i - window + 1) : i + 1]))
    return out


def curves_figure(runs: Sequence[RunData]) -> Figure | None:
    keys = [
        (k, t)
        for k, t in CURVES
        if any(not math.isnan(_num(r.get(k))) for run in runs for r in run.metrics)
    ]
    if not keys:
        return None
    from matplotlib.patches import Patch

    plt = _pyplot()
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 2.1 * len(keys)), sharex=True, squeeze=False)
    spans = role_spans(runs[0].metrics)
    for ax, (key, title) in zip(axes[:, 0], keys, strict=True):
        for role, lo, hi in spans:
            ax.axvspan(lo, hi, color=ROLE_COLORS.get(role, "#eeeeee"), lw=0, zorder=0)
        for i, run in enumerate(runs):
            rows = sorted(run.metrics, key=lambda r: r["step"])
            steps = [r["step"] for r in rows]
            values = [_num(r.get(key)) for r in rows]
            color = RUN_COLORS[i % len(RUN_COLORS)]
            ax.plot(steps, values, color=color, alpha=0.3, lw=0.8)
            window = max(1, len(steps) // 30)
            ax.plot(
                steps,
                _smooth(values, window),
                color=color,
                lw=1.6,
                label=run.label if len(runs) > 1 else None,
            )
        ax.set_title(f"{title}  ({key})", fontsize=9, loc="left")
        ax.grid(alpha=0.3, lw=0.5)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("step")
    handles = [Patch(color=c, label=f"training {r}") for r, c in ROLE_COLORS.items()]
    if len(runs) > 1:
        handles += [
            plt.Line2D([], [], color=RUN_COLORS[i % len(RUN_COLORS)], label=run.label)
            for i, run in enumerate(runs)
        ]
    axes[0, 0].legend(
        handles=handles,
        fontsize=7,
        loc="lower right",
        ncol=len(handles),
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
    )
    fig.tight_layout()
    return Figure("curves", _png(fig), "training curves over steps, role shaded")


def crossplay_figure(run: RunData, index: int) -> Figure | None:
    if run.crossplay is None:
        return None
    import numpy as np

    plt = _pyplot()
    cp = run.crossplay
    asr = np.array([[_num(v) for v in row] for row in cp["asr"]], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * asr.shape[1], 1.0 + 0.5 * asr.shape[0]))
    im = ax.imshow(asr, cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(
        range(asr.shape[1]), [str(d) for d in cp["defenders"]], rotation=45, ha="right", fontsize=7
    )
    ax.set_yticks(range(asr.shape[0]), [str(a) for a in cp["attackers"]], fontsize=7)
    ax.set_xlabel("defender checkpoint")
    ax.set_ylabel("attacker checkpoint")
    for (i, j), v in np.ndenumerate(asr):
        if not math.isnan(v):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if v > 0.6 else "black",
            )
    fig.colorbar(im, ax=ax, label="ASR")
    ax.set_title(f"cross-play ASR: {run.label}", fontsize=9)
    return Figure(f"crossplay-{index}", _png(fig), f"cross-play ASR heatmap of {run.label}")


def strategy_figure(run: RunData, index: int) -> Figure | None:
    from magic_rl.evaluate.strategy import TAXONOMY

    stages = (run.analysis or {}).get("stages") or []
    if not stages:
        return None
    plt = _pyplot()
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(9, 3.6))
    labels = [f"steps {s['steps'][0]}–{s['steps'][1]}" for s in stages]
    bottom = [0.0] * len(stages)
    for cls, name in TAXONOMY.items():
        shares = [_num(s.get("classes", {}).get(str(cls), 0.0)) for s in stages]
        shares = [0.0 if math.isnan(v) else v for v in shares]
        if not any(shares):
            continue
        ax.bar(
            labels, shares, bottom=bottom, color=cmap(cls % 20), label=f"{cls} {name}", width=0.6
        )
        bottom = [b + v for b, v in zip(bottom, shares, strict=True)]
    ax.set_ylabel("share of rewrites")
    ax.set_ylim(0, 1)
    ax.set_title(
        f"attack patterns per stage ({run.analysis.get('label', 'harmful')} seeds): {run.label}",
        fontsize=9,
    )
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    return Figure(f"strategy-{index}", _png(fig), f"attack-pattern distribution of {run.label}")


# --- tables ---------------------------------------------------------------------------------------


def metric_rows(obj: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Flatten an evaluation results JSON into {name, value, lo, hi, n} rows: any object with a
    numeric `value` (or `mean`) is a row (its CI from `ci: [lo, hi]` or `lo`/`hi`); other numbers
    are rows without a CI; strings are provenance and skipped."""
    rows: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        value = obj.get("value", obj.get("mean"))
        if isinstance(value, int | float) and not isinstance(value, bool):
            ci = obj.get("ci") if isinstance(obj.get("ci"), list | tuple) else None
            lo, hi = (ci[0], ci[1]) if ci and len(ci) == 2 else (obj.get("lo"), obj.get("hi"))
            parts = [str(obj[k]) for k in ("source", "subset", "name") if obj.get(k)]
            name = "/".join(parts) if parts and not prefix.endswith("/".join(parts)) else prefix
            rows.append(
                {"name": name or prefix, "value": value, "lo": lo, "hi": hi, "n": obj.get("n")}
            )
            return rows
        for key, sub in obj.items():
            rows += metric_rows(sub, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(obj, list):
        for i, sub in enumerate(obj):
            rows += metric_rows(sub, f"{prefix}[{i}]" if prefix else f"[{i}]")
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        rows.append({"name": prefix, "value": obj, "lo": None, "hi": None, "n": None})
    return rows


def ablation_table(obj: Any, source: str = "ablation") -> tuple[list[str], list[str], dict]:
    """(variants, metrics, cells) of an ablation JSON {variant: {metric: {mean, lo, hi, n}}}
    (optionally under a top-level "variants" or "rows" key). A cell may be a bare number."""
    if isinstance(obj, dict) and set(obj) <= {"variants", "rows", "title"} and obj:
        obj = obj.get("variants", obj.get("rows"))
    if not isinstance(obj, dict) or not obj:
        raise ValueError(
            f"{source}: expected an object {{variant: {{metric: {{mean, lo, hi, n}}}}}}"
        )
    metrics: list[str] = []
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for variant, row in obj.items():
        if not isinstance(row, dict):
            raise ValueError(f"{source}: variant {variant!r}: expected an object of metrics")
        for metric, cell in row.items():
            if isinstance(cell, int | float) and not isinstance(cell, bool):
                cell = {"mean": cell}
            if not isinstance(cell, dict) or not isinstance(cell.get("mean"), int | float | None):
                raise ValueError(
                    f"{source}: variant {variant!r}, metric {metric!r}: expected "
                    "{mean, lo, hi, n}"
                )
            if metric not in metrics:
                metrics.append(metric)
            cells[(variant, metric)] = cell
    return list(obj), metrics, cells


def _ci_text(value: Any, lo: Any, hi: Any, n: Any = None) -> str:
    text = _fmt(value)
    if not math.isnan(_num(lo)) and not math.isnan(_num(hi)):
        text += f" [{_fmt(lo)}, {_fmt(hi)}]"
    if isinstance(n, int) and not isinstance(n, bool):
        text += f" (n={n})"
    return text


def sample_exchanges(replay: Sequence[dict], per_period: int = 3) -> list[tuple[str, dict]]:
    """A few exchanges from the earliest and the latest step: harmful seeds first, then benign,
    one per seed, preferring different verdicts."""
    if not replay:
        return []
    steps = sorted({r["step"] for r in replay})
    out: list[tuple[str, dict]] = []
    for period, step in (("early", steps[0]), ("late", steps[-1])):
        if period == "late" and step == steps[0]:
            break
        rows = [r for r in replay if r["step"] == step]
        picked: list[dict] = []
        seen_seeds: set[str] = set()
        seen_verdicts: set[tuple] = set()
        for want_new_verdict in (True, False):
            for label in ("harmful", "benign", "harmful"):
                for r in rows:
                    if len(picked) >= per_period:
                        break
                    v = r.get("verdict") or {}
                    key = (v.get("response_harmful"), v.get("response_refusal"))
                    sid = r["seed"].get("id", r["seed"]["text"])
                    if r["seed"]["label"] != label or sid in seen_seeds:
                        continue
                    if want_new_verdict and key in seen_verdicts:
                        continue
                    picked.append(r)
                    seen_seeds.add(sid)
                    seen_verdicts.add(key)
                    break
        out += [(period, r) for r in picked]
    return out


# --- HTML -----------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px 28px 60px;background:#fff}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px;
margin-top:1.8em}h3{font-size:1em;margin:1.2em 0 .4em}
nav a{margin-right:12px;font-size:.9em}
table{border-collapse:collapse;margin:8px 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
img.plot{max-width:100%;height:auto;display:block;margin:8px 0}
.muted{color:#777;font-size:.85em}
.exchange{border:1px solid #e3e3e3;border-radius:6px;padding:8px 12px;margin:10px 0}
.exchange .meta{font-size:.8em;color:#555}
.exchange pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:6px;
margin:4px 0;font-size:.82em;max-height:16em;overflow:auto}
.sensitive{display:none}body.reveal .sensitive{display:block}
body.reveal .redacted{display:none}.redacted{color:#999;font-style:italic;font-size:.85em}
.switch{background:#fff7e6;border:1px solid #f0d9a8;padding:6px 10px;border-radius:4px;
display:inline-block}
"""

JS = """
document.addEventListener('DOMContentLoaded', function () {
  var box = document.getElementById('show-sensitive');
  if (!box) return;
  function apply() {
    document.body.classList.toggle('reveal', box.checked);
    document.body.setAttribute('data-redaction', box.checked ? 'shown' : 'hidden');
  }
  box.addEventListener('change', apply);
  apply();
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass
class Report:
    """The report as HTML sections and their markdown twins, built together."""

    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    def section(self, anchor: str, title: str) -> None:
        self.html.append(f'<h2 id="{anchor}">{_e(title)}</h2>')
        self.md.append(f"\n## {title}\n")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1):
        self.html.append(_table(header, rows, numeric_from))
        self.md.append(_md_table(header, rows))

    def figure(self, fig: Figure | None, files_dir: str) -> None:
        if fig is None:
            return
        self.figures.append(fig)
        self.html.append(fig.img())
        self.md.append(f"![{fig.alt}]({files_dir}/{fig.name}.png)\n")

    def note(self, text: str) -> None:
        self.html.append(f'<p class="muted">{_e(text)}</p>')
        self.md.append(f"_{text}_\n")


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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
    from magic_rl.evaluate.strategy import TAXONOMY

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
                "hybrid ratio",
                "distinct codes",
                "self-BLEU",
                "embedding diversity",
                "unknown",
                "top codes",
            ],
            rows,
        )


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
        )
        for i, run in enumerate(runs):
            rep.figure(crossplay_figure(run, i), files_dir)

    _strategy_section(rep, runs, files_dir)

    if any(run.eval_results is not None for run in runs):
        rep.section("eval", "Evaluation")
        for run in runs:
            if run.eval_results is None:
                continue
            rows = metric_rows(run.eval_results)
            rep.html.append(f"<h3>{_e(run.label)}</h3>")
            rep.md.append(f"\n### {run.label}\n")
            rep.table(
                ["metric", "value", "95% CI", "n"],
                [
                    [
                        r["name"],
                        _fmt(r["value"]),
                        "–" if math.isnan(_num(r["lo"])) else f"[{_fmt(r['lo'])}, {_fmt(r['hi'])}]",
                        r["n"] if r["n"] is not None else "–",
                    ]
                    for r in rows[:300]
                ],
            )

    if ablation is not None:
        variants, metrics, cells = ablation_table(ablation, ablation_source)
        rep.section("ablation", "Ablation")
        rep.note("Mean [95% CI] (n runs) per variant and metric.")
        rows = []
        for variant in variants:
            row = [variant]
            for metric in metrics:
                c = cells.get((variant, metric))
                row.append(
                    "–"
                    if c is None
                    else _ci_text(c.get("mean"), c.get("lo"), c.get("hi"), c.get("n"))
                )
            rows.append(row)
        rep.table(["variant", *metrics], rows)

    _sample_section(rep, runs, show_text)
    return rep


def render_report(
    run_dirs: Sequence[str | Path],
    out: str | Path | None = None,
    ablation: str | Path | dict | None = None,
    *,
    show_text: bool = False,
) -> tuple[Path, Path]:
    """Write the HTML report and its markdown twin (+ `<stem>_files/*.png`); returns both paths.
    Default `out`: RUN_DIR/report.html of the first run."""
    if not run_dirs:
        raise ValueError("render_report: no run directories")
    paths = [Path(p) for p in run_dirs]
    names = [p.name for p in paths]
    labels = [p.name if names.count(p.name) == 1 else f"{p.parent.name}/{p.name}" for p in paths]
    runs = [load_run(p, label) for p, label in zip(paths, labels, strict=True)]
    out = Path(out) if out is not None else paths[0] / "report.html"
    ablation_source = "ablation"
    if isinstance(ablation, str | Path):
        ablation_source = str(ablation)
        ablation = _read_json(Path(ablation))
    files_dir = f"{out.stem}_files"
    rep = build_report(
        runs, ablation, files_dir=files_dir, show_text=show_text, ablation_source=ablation_source
    )

    title = "MAGIC run report: " + ", ".join(run.label for run in runs)
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("summary", "summary"),
            ("curves", "curves"),
            ("crossplay", "cross-play"),
            ("strategy", "attack patterns"),
            ("eval", "evaluation"),
            ("ablation", "ablation"),
            ("samples", "samples"),
        )
        if f'id="{a}"' in "".join(rep.html)
    )
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style><script>{JS}</script></head>\n"
        f"<body><main><h1>{_e(title)}</h1><nav>{nav}</nav>\n"
        + "\n".join(rep.html)
        + "\n</main></body></html>\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    md_path = out.with_suffix(".md")
    md_path.write_text(f"# {title}\n" + "\n".join(rep.md), encoding="utf-8")
    if rep.figures:
        fdir = out.parent / files_dir
        fdir.mkdir(exist_ok=True)
        for fig in rep.figures:
            (fdir / f"{fig.name}.png").write_bytes(fig.png)
    return out, md_path
