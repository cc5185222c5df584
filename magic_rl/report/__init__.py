"""A run's report: one self-contained HTML file (inline CSS, inline PNG plots, a few lines of
inline JS; no network, no CDN) and a markdown twin.

    render_report(run_dirs, out=None, ablation=None) -> (html_path, md_path)

Sections, each present when its input is: run summary (config highlights, steps, switches,
first/last-window means); curves over steps of the defender and attacker rewards, ASR and the
refusal rates on harmful and benign seeds, with the training role shaded behind them (from
`schedule/role`; several runs overlay their curves, the shading is the first run's); the cross-play
ASR heatmap (RUN_DIR/crossplay/crossplay.json, else the live RUN_DIR/crossplay.jsonl as it stands);
the attack-pattern distribution per training stage (RUN_DIR/analysis/strategy.json, else computed
with the rule tagger); the evaluation table (RUN_DIR/eval/results.json, shown generically: every
metric row with its value and CI); an ablation table with CIs (`ablation`: {variant: {metric: {mean,
lo, hi, n}}}); sample exchanges from early and late steps. Attack and reply text is hidden behind a
checkbox, unticked by default (it is in the file, hidden by CSS: a view switch, not a redaction of
the file); the markdown twin leaves it out unless `show_text=True`.

The markdown twin links its plots as PNG files in `<out stem>_files/` next to it.

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
