"""The report's plots as PNG `Figure`s: training curves with the trained role shaded, the
cross-play ASR heatmap (drawn as `magic crossplay` draws it), the attack-pattern distribution per
stage, the evaluation's before/after dots and the ablation's bars, both with their intervals.
matplotlib is imported only inside the functions that draw."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from magic_rl.ablation_metrics import arrow
from magic_rl.evaluate.analyze import TAXONOMY
from magic_rl.report.runs import RunData, _num
from magic_rl.report.tables import EvalTable, metric_name
from magic_rl.run_summary import metric, nan_mean

CURVES: tuple[tuple[str, str], ...] = (
    ("defender/reward/total", "defender reward (R_D)"),
    ("attacker/reward/total", "attacker reward (R_A)"),
    ("game/asr", "attack success rate"),
    ("defender/refusal_rate/harmful", "refusal rate, harmful seeds"),
    ("defender/refusal_rate/benign", "refusal rate, benign seeds"),
    ("game/refusal_gap", "refusal gap, harmful minus benign (intent, not a refusal rate)"),
)
ROLE_COLORS = {"defender": "#dbe9f6", "attacker": "#fbe3d0"}
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


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
        mean = nan_mean(values[max(0, i - window + 1) : i + 1])  # the summary's NaN rule
        out.append(math.nan if mean is None else mean)
    return out


def curves_figure(runs: Sequence[RunData]) -> Figure | None:
    keys = [
        (k, t)
        for k, t in CURVES
        if any(not math.isnan(_num(metric(r, k))) for run in runs for r in run.metrics)
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
            values = [_num(metric(r, key)) for r in rows]
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
    """The run's cross-play heatmap, drawn as `magic crossplay`'s heatmap.png is (step 0 at the
    top)."""
    if run.crossplay is None:
        return None
    from magic_rl.evaluate.transfer import draw_heatmap

    plt = _pyplot()
    cp = run.crossplay
    asr = [[_num(v) for v in row] for row in cp["asr"]]
    rows, cols = len(asr), len(asr[0]) if asr else 0
    fig, ax = plt.subplots(figsize=(1.8 + 0.7 * cols, 1.2 + 0.5 * rows))
    image = draw_heatmap(
        ax, asr, [str(a) for a in cp["attackers"]], [str(d) for d in cp["defenders"]], fontsize=6
    )
    ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=ax, label="ASR")
    samples = cp.get("samples", 1)  # sampled cross-play: K rewrites per seed
    how = "" if samples == 1 else f" ({samples} sampled rewrites per seed)"
    ax.set_title(f"cross-play ASR: {run.label}{how}", fontsize=9)
    return Figure(f"crossplay-{index}", _png(fig), f"cross-play ASR heatmap of {run.label}")


def arms_race_figure(doc: dict) -> Figure | None:
    """`magic experiment arms-race`'s mean cross-play matrix over seeds (arms_race.json), drawn as
    `magic crossplay`'s heatmap is."""
    if not doc.get("mean"):
        return None
    from magic_rl.evaluate.transfer import draw_heatmap

    plt = _pyplot()
    asr = [[_num(v) for v in row] for row in doc["mean"]]
    rows, cols = len(asr), len(asr[0])
    fig, ax = plt.subplots(figsize=(1.8 + 0.7 * cols, 1.2 + 0.5 * rows))
    image = draw_heatmap(ax, asr, doc["attackers"], doc["defenders"], fontsize=6)
    ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=ax, label="ASR")
    ax.set_title(f"cross-play ASR, mean of {len(doc.get('seeds', []))} seeds", fontsize=9)
    return Figure("arms-race", _png(fig), "arms race: mean cross-play ASR over seeds")


def _is_rate(values: Sequence[float]) -> bool:
    return all(math.isnan(v) or -1e-9 <= v <= 1 + 1e-9 for v in values)


def eval_figure(table: EvalTable, index: int = 0) -> Figure | None:
    """Before/after dots: one line per (benchmark, metric) that is a rate, one dot per model with
    its 95% interval, the models' dots joined left to right in column order."""
    keys = [
        k
        for k in table.keys
        if any(not math.isnan(table.value(k, m)) for m in table.models)
        and _is_rate([table.value(k, m) for m in table.models])
    ]
    if not keys:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.38 * len(keys) * max(1, len(table.models) / 2)))
    n = len(table.models)
    offsets = [(i - (n - 1) / 2) * 0.22 for i in range(n)]
    for row, key in enumerate(keys):
        y = len(keys) - 1 - row  # the first row at the top, as in the table
        values = [table.value(key, m) for m in table.models]
        points = [(v, y + o) for v, o in zip(values, offsets, strict=True) if not math.isnan(v)]
        if len(points) > 1:
            ax.plot(*zip(*points, strict=True), color="#999999", lw=0.8, zorder=1)
        for i, model in enumerate(table.models):
            cell = table.cells[key].get(model) or {}
            v = _num(cell.get("value"))
            if math.isnan(v):
                continue
            ci = cell.get("ci") if isinstance(cell.get("ci"), list | tuple) else None
            lo, hi = (_num(ci[0]), _num(ci[1])) if ci and len(ci) == 2 else (v, v)
            xerr = [[max(0.0, v - lo)], [max(0.0, hi - v)]] if not math.isnan(lo + hi) else None
            ax.errorbar(
                v,
                y + offsets[i],
                xerr=xerr,
                fmt="o",
                ms=5,
                color=RUN_COLORS[i % len(RUN_COLORS)],
                ecolor=RUN_COLORS[i % len(RUN_COLORS)],
                elinewidth=1.2,
                capsize=2,
                zorder=2,
                label=model if row == 0 else None,
            )
    labels = [
        f"{table.meta[k]['benchmark']} · {table.meta[k]['metric']}{arrow(table.meta[k]['up'])}"
        for k in keys
    ]
    ax.set_yticks(range(len(keys)), labels[::-1], fontsize=8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.7, len(keys) - 0.3)
    ax.set_xlabel("rate (dot: value; bar: 95% bootstrap interval)", fontsize=8)
    ax.grid(axis="x", alpha=0.3, lw=0.5)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=n, frameon=False)
    fig.tight_layout()
    return Figure(
        f"eval-{index}", _png(fig), "evaluation: each model's rate with its 95% interval per set"
    )


def ablation_figure(
    variants: Sequence[str], metrics: Sequence[str], cells: dict[tuple[str, str], dict]
) -> Figure | None:
    """One small bar chart per metric: a bar per variant (its mean) with its interval."""
    import numpy as np

    shown = [
        m
        for m in metrics
        if any(not math.isnan(_num((cells.get((v, m)) or {}).get("mean"))) for v in variants)
    ]
    if not shown:
        return None
    plt = _pyplot()
    ncols = min(4, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(2.6 * ncols, 0.6 + 0.28 * len(variants) * nrows + 0.6 * nrows),
        squeeze=False,
    )
    for ax in axes.flat[len(shown) :]:
        ax.axis("off")
    colors = [RUN_COLORS[i % len(RUN_COLORS)] for i in range(len(variants))]
    for ax, key in zip(axes.flat, shown, strict=False):
        name, up = metric_name(key)
        means = np.array([_num((cells.get((v, key)) or {}).get("mean")) for v in variants])
        lo = np.array([_num((cells.get((v, key)) or {}).get("lo")) for v in variants])
        hi = np.array([_num((cells.get((v, key)) or {}).get("hi")) for v in variants])
        ys = np.arange(len(variants))[::-1]  # the first variant at the top, as in the table
        ax.barh(ys, np.nan_to_num(means), color=colors, height=0.7)
        has = ~np.isnan(lo) & ~np.isnan(hi) & ~np.isnan(means)
        if has.any():
            ax.errorbar(
                means[has],
                ys[has],
                xerr=[
                    np.clip(means[has] - lo[has], 0, None),
                    np.clip(hi[has] - means[has], 0, None),
                ],
                fmt="none",
                ecolor="#333333",
                elinewidth=1,
                capsize=2,
            )
        ax.set_yticks(ys, list(variants), fontsize=7)
        if _is_rate(list(means) + list(lo) + list(hi)):
            ax.set_xlim(0, 1)
        ax.set_title(f"{name}{arrow(up)}", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3, lw=0.5)
    fig.tight_layout()
    return Figure("ablation", _png(fig), "ablation: each variant's mean with its interval")


def attacker_curve_figure(bands: dict[str, list[dict]]) -> Figure | None:
    """`magic experiment attacker`'s curve: one panel per frozen defender, the sampled ASR per
    step as the mean over training seeds, its 95% interval as a band (curve.json's `band`)."""
    if not any(bands.values()):
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(bands), figsize=(4.2 * len(bands), 3.0), squeeze=False)
    for ax, (defender, band) in zip(axes[0], bands.items(), strict=True):
        steps = [b["step"] for b in band]
        mean, lo, hi = ([_num(b.get(k)) for b in band] for k in ("mean", "lo", "hi"))
        ax.fill_between(steps, lo, hi, alpha=0.25, color=RUN_COLORS[1], lw=0)
        ax.plot(steps, mean, color=RUN_COLORS[1], lw=1.5)
        n = max((b.get("n") or 0 for b in band), default=0)
        ax.set_title(f"against {defender} (n = {n} seeds)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("sampled ASR (game/asr)", fontsize=8)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3, lw=0.5)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return Figure(
        "attacker-curve", _png(fig), "attacker: sampled ASR per step, mean over seeds with its band"
    )


def strategy_figure(run: RunData, index: int) -> Figure | None:
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
