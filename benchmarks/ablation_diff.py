"""Not speed: paired differences between two variants of two `magic experiment ablation` outputs,
run by run with the same training seed (the ablation's own paired table compares variants of one
output only).

For each evaluation metric: both variants' means over runs, and the mean of the per-seed
differences (A minus B) with its 95% Student-t interval, then each seed's difference. The two
outputs must hold the same seeds in the same order.

Run: `.venv/bin/python benchmarks/ablation_diff.py runs/ablation-d30 defender_only runs/ablation
magic` (OUT_A VARIANT_A OUT_B VARIANT_B; each OUT holds an ablation.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from magic_rl.ablation_metrics import METRICS
from magic_rl.evaluate.metrics import mean_ci


def runs_of(out: str, variant: str) -> dict:
    table = json.loads((Path(out) / "ablation.json").read_text())["variants"]
    if variant not in table:
        raise SystemExit(f"{out}: no variant {variant!r} (has {sorted(table)})")
    return table[variant]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_a")
    parser.add_argument("variant_a")
    parser.add_argument("out_b")
    parser.add_argument("variant_b")
    args = parser.parse_args()
    a, b = runs_of(args.out_a, args.variant_a), runs_of(args.out_b, args.variant_b)
    name_a, name_b = f"{args.variant_a} ({args.out_a})", f"{args.variant_b} ({args.out_b})"
    print(f"| metric | {name_a} | {name_b} | A - B [95% t-interval] | per seed |")
    print("|---|---|---|---|---|")
    for metric in METRICS:
        if metric.key not in a or metric.key not in b:
            continue
        xs, ys = a[metric.key]["values"], b[metric.key]["values"]
        if len(xs) != len(ys):
            raise SystemExit(f"{metric.key}: {len(xs)} runs against {len(ys)}: not paired")
        pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
        d = mean_ci([x - y for x, y in pairs])
        ma, mb = mean_ci([x for x, _ in pairs]).mean, mean_ci([y for _, y in pairs]).mean
        seeds = ", ".join(f"{x - y:+.2f}" for x, y in pairs)
        print(
            f"| {metric.name} | {ma:.2f} | {mb:.2f} | {d.mean:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}] "
            f"| {seeds} |"
        )


if __name__ == "__main__":
    main()
