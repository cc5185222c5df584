"""What the ablation compares: its variants (each one config away from the preset), its metric
columns (spelled once in `magic_rl.ablation_metrics`, which the report reads too), the aggregation
over training seeds (mean and Student-t 95% interval) and the paired differences against
Defender-only. Pure data and arithmetic: `ablation.py` runs the design, `render.py` writes it out."""

from __future__ import annotations

import math

from magic_rl.ablation_metrics import METRICS, RUN_METRICS, Metric
from magic_rl.evaluate.metrics import mean_ci

UNTRAINED = "base"


VARIANTS: dict[str, tuple[str, ...]] = {
    UNTRAINED: (),
    "no_game": ("game.attacker=none", "schedule.train_roles=defender"),
    "defender_only": ("schedule.train_roles=defender",),
    "static": (
        "game.attacker=static",
        "game.static_attacks=sandbox",
        "schedule.train_roles=defender",
    ),
    "magic": (),
    "magic_eq": (),
    # beyond latest-only play (docs/deviations.md "Beyond latest-only play"); run with
    # `crossplay.probe=N` to get the forgetting column
    "league": ("league.enabled=true",),
    "hard_replay": ("replay.share=0.25",),
}


# Variants that train for this many times the experiment's steps (equal defender updates).
STEPS_FACTOR = {"magic_eq": 2}


DEFAULT_SEEDS = (0, 1, 2, 3, 4)


# Keys the experiment sets itself; an override of one would break the seed/variant layout.
RESERVED = ("seed", "name", "output_dir", "train.steps")


def columns(table: dict[str, dict[str, dict]]) -> tuple[Metric, ...]:
    """The evaluation metrics, then the run metrics some variant has a value of."""
    extra = tuple(m for m in RUN_METRICS if any(m.key in row for row in table.values()))
    return METRICS + extra


def _number(x: float | None, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    return None if x is None or math.isnan(x) else min(max(x, lo), hi)


def aggregate(values: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, dict]]:
    """{variant: [one {eval metric key: value} per run]} -> {variant: {metric key: {mean, lo, hi,
    n, sd, values}}}: mean and Student-t 95% interval over runs, clipped to [0, 1] (every metric
    is a rate); null when undefined (lo/hi when n < 2)."""
    table: dict[str, dict[str, dict]] = {}
    present = [m for m in RUN_METRICS if any(m.eval_key in r for rs in values.values() for r in rs)]
    for variant, runs in values.items():
        row = {}
        for m in (*METRICS, *present):
            xs = [r.get(m.eval_key, math.nan) for r in runs]
            ci = mean_ci(xs)
            row[m.key] = {
                "mean": _number(ci.mean),
                "lo": _number(ci.lo, 0.0, 1.0),
                "hi": _number(ci.hi, 0.0, 1.0),
                "n": ci.n,
                "sd": _number(ci.sd),
                "values": [_number(x) for x in xs],
            }
        table[variant] = row
    return table


PAIRED_REFERENCE = "defender_only"


PAIRED_KEYS = (
    "held_out_asr",
    "held_out_asr_other",  # the part of held-out ASR that tests generalisation (not ciphers)
    "benign_compliance",
    "adversarial_benign_compliance",
)


def paired(
    table: dict[str, dict[str, dict]], reference: str = PAIRED_REFERENCE
) -> dict[str, dict[str, dict]]:
    """{variant: {metric key: {mean, lo, hi, n}}}: each trained variant minus `reference`, run by
    run with the same training seed (the runs of a variant are in seed order), mean and Student-t
    95% interval of the differences (not clipped). Pairing removes what a seed does to every
    variant alike (its seed draws, its world), so it separates variants that overlapping
    per-variant intervals cannot. Empty without the reference."""
    if reference not in table:
        return {}
    out: dict[str, dict[str, dict]] = {}
    for variant, row in table.items():
        if variant in (reference, UNTRAINED):
            continue
        cells = {}
        for key in PAIRED_KEYS:
            mine, ref = row[key]["values"], table[reference][key]["values"]
            diffs = [
                a - b for a, b in zip(mine, ref, strict=False) if a is not None and b is not None
            ]
            ci = mean_ci(diffs)
            cells[key] = {
                "mean": _number(ci.mean),
                "lo": _number(ci.lo),
                "hi": _number(ci.hi),
                "n": ci.n,
            }
        out[variant] = cells
    return out
