"""Before/after table of two `magic eval` outputs on the items they share, with paired differences.

For every (benchmark, subset, metric) present in both `items.jsonl` files: the rate before and after
over the common items (each item's `outcome` flag: harmful for asr, refused for rta, compliance and
compliance_asr, the two latter counting the items NOT refused, as `magic eval` does), and the paired difference after - before with a 95% paired bootstrap interval (items resampled with
their before and after outcome together; `magic_rl.evaluate.metrics.bootstrap_ci`, 1000 resamples,
seed 0). Items with an unknown outcome on either side are
left out. Prints a markdown table.

Several `after` outputs (one model trained with several seeds, evaluated on the same items): an
item's after outcome is its mean over them, and only items all of them scored are kept; the
interval still resamples items only, so it leaves out the spread between training seeds (read the
per-seed tables beside it). `before` may name several outputs too, joined by commas (one arm's
seeds against another's).

Run: python benchmarks/eval_diff.py runs/eval-before[,runs/eval-before-seed1 ...] runs/eval-after
    [runs/eval-after-seed1 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from magic_rl.evaluate.metrics import bootstrap_ci

# which outcome flag a metric counts (magic_rl.evaluate.metrics: asr, rta, compliance, compliance_asr)
COUNTS = {"asr": True, "rta": True, "compliance": False, "compliance_asr": False}


def outcomes(out_dir: Path) -> dict[tuple[str, str, str], dict[str, bool]]:
    table: dict[tuple[str, str, str], dict[str, bool]] = {}
    for line in (out_dir / "items.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("outcome") is None:
            continue
        hit = bool(row["outcome"]) is COUNTS[row["metric"]]
        table.setdefault((row["source"], row["subset"], row["metric"]), {})[row["id"]] = hit
    return table


def mean_outcomes(runs: list[dict]) -> dict[tuple[str, str, str], dict[str, float]]:
    """Per (benchmark, subset, metric), each item's outcome averaged over `runs`, for the items
    every run scored."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    for key in set.intersection(*(set(r) for r in runs)):
        ids = set.intersection(*(set(r[key]) for r in runs))
        out[key] = {i: sum(float(r[key][i]) for r in runs) / len(runs) for i in ids}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", help="one output, or several joined by commas")
    ap.add_argument("after", type=Path, nargs="+")
    args = ap.parse_args()
    before = mean_outcomes([outcomes(Path(b)) for b in args.before.split(",")])
    after = mean_outcomes([outcomes(a) for a in args.after])
    print("| benchmark / metric | n | before | after | after - before [95% paired CI] |")
    print("|---|---|---|---|---|")
    for key in sorted(before.keys() & after.keys()):
        ids = sorted(before[key].keys() & after[key].keys())
        if not ids:
            continue
        b = [float(before[key][i]) for i in ids]
        a = [float(after[key][i]) for i in ids]
        diff = np.array(a) - np.array(b)
        lo, hi = bootstrap_ci(diff, 1000, 0.05, 0)
        print(
            f"| {'/'.join(key)} | {len(ids)} | {sum(b) / len(b):.3f} | {sum(a) / len(a):.3f} | "
            f"{diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] |"
        )


if __name__ == "__main__":
    main()
