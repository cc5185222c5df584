"""A run's report: one self-contained HTML file (inline CSS, inline PNG plots, a few lines of
inline JS; no network, no CDN) and a markdown twin.

    render_report(run_dirs, out=None, ablation=None) -> (html_path, md_path)

Sections, each present when its input is: run summary (config highlights, steps, switches,
first/last-window means); curves over steps of the defender and attacker rewards, ASR and the
refusal rates on harmful and benign seeds, with the training role shaded behind them (from
`schedule/role`; several runs overlay their curves, the shading is the first run's); the cross-play
ASR heatmap (RUN_DIR/crossplay/crossplay.json, else the live RUN_DIR/crossplay.jsonl as it stands);
the attack-pattern distribution per training stage (RUN_DIR/analysis/strategy.json, else computed
with the rule tagger); the evaluation (every evaluation of the run, `evaluate.eval.find_evaluations`,
merged into one table: a row per benchmark set and metric with ↑/↓, a column per model/checkpoint
with value, 95% interval and n, Δ last - first; the newest evaluation wins a cell both have; before/
after dots with intervals; `make demo`'s two-sided verdict when the first and last columns have the
sandbox sets; a judge warning in red; each evaluation's provenance folded in <details>, every number
at full precision); the ablation (`ablation`: {variant: {metric: {mean, lo, hi, n}}}, readable
metric names with ↑/↓, n said once unless a cell differs, a bar per variant and metric with its
interval); sample exchanges from early and late steps. Attack and reply text is hidden behind a
checkbox, unticked by default (it is in the file, hidden by CSS: a view switch, not a redaction of
the file); the markdown twin leaves it out unless `show_text=True`.

The markdown twin links its plots as PNG files in `<out stem>_files/` next to it. The cross-play
heatmap is drawn as `magic crossplay`'s heatmap.png is (`evaluate.transfer.draw_heatmap`: step 0
at the top). A screenshot of the Evaluation and Ablation sections in headless Chromium, to look at:
`REPORT_SCREENSHOTS=/tmp/shots pytest tests/test_report.py -k chromium` (/tmp/shots/eval-ablation.png).

Run: `magic report runs/sandbox` (writes runs/sandbox/report.html and report.md);
`magic report runs/a runs/b --out cmp.html --ablation ablation.json`.

Layout: `runs` reads run directories, `plots` draws the figures, `tables` shapes evaluation,
ablation and sample data, `markup` holds the HTML/markdown building blocks, `sections` builds the
sections and `page` writes the page.
"""

from magic_rl.report.markup import Report
from magic_rl.report.page import CSS, JS, render_report
from magic_rl.report.plots import (
    CURVES,
    ROLE_COLORS,
    RUN_COLORS,
    Figure,
    crossplay_figure,
    curves_figure,
    role_spans,
    strategy_figure,
)
from magic_rl.report.runs import (
    CONFIG_KEYS,
    RunData,
    load_run,
    read_metrics,
    run_summary,
)
from magic_rl.report.sections import build_report
from magic_rl.report.tables import ablation_table, metric_rows, sample_exchanges
from magic_rl.run_summary import SUMMARY_KEYS

__all__ = [
    "CONFIG_KEYS",
    "CSS",
    "CURVES",
    "JS",
    "ROLE_COLORS",
    "RUN_COLORS",
    "SUMMARY_KEYS",
    "Figure",
    "Report",
    "RunData",
    "ablation_table",
    "build_report",
    "crossplay_figure",
    "curves_figure",
    "load_run",
    "metric_rows",
    "read_metrics",
    "render_report",
    "role_spans",
    "run_summary",
    "sample_exchanges",
    "strategy_figure",
]
