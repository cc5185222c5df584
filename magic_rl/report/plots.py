"""The report's plots as PNG `Figure`s: training curves with the trained role shaded, the
cross-play ASR heatmap, and the attack-pattern distribution per stage. matplotlib is imported
only inside the functions that draw."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from magic_rl.evaluate.analyze import TAXONOMY
from magic_rl.loop.summary import metric, nan_mean
from magic_rl.report.runs import RunData, _num

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
