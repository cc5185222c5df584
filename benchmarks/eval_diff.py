"""Before/after table of two `magic eval` outputs on the items they share, with paired differences.

For every (benchmark, subset, metric) present in both `items.jsonl` files: the rate before and after
over the common items (their `outcome`: attack success for asr, refusal for rta, compliance for
compliance), and the paired difference after - before with a 95% paired-t interval
(`magic_rl.evaluate.metrics.diff_ci(paired=True)`). Items with an unknown outcome on either side are
left out. Prints a markdown table.

Run: python benchmarks/eval_diff.py runs/eval-before runs/eval-after
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from magic_rl.evaluate.metrics import diff_ci


def outcomes(out_dir: Path) -> dict[tuple[str, str, str], dict[str, bool]]:
    table: dict[tuple[str, str, str], dict[str, bool]] = {}
    for line in (out_dir / "items.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("outcome") is None:
            continue
        table.setdefault((row["source"], row["subset"], row["metric"]), {})[row["id"]] = bool(
            row["outcome"]
        )
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args()
    before, after = outcomes(args.before), outcomes(args.after)
    print("| benchmark / metric | n | before | after | after - before [95% paired CI] |")
    print("|---|---|---|---|---|")
    for key in sorted(before.keys() & after.keys()):
        ids = sorted(before[key].keys() & after[key].keys())
        if not ids:
            continue
        b = [float(before[key][i]) for i in ids]
        a = [float(after[key][i]) for i in ids]
        d = diff_ci(a, b, paired=True)
        ci = "" if d.lo != d.lo else f" [{d.lo:+.3f}, {d.hi:+.3f}]"  # NaN: one item
        print(
            f"| {'/'.join(key)} | {len(ids)} | {sum(b) / len(b):.3f} | {sum(a) / len(a):.3f} | "
            f"{d.mean:+.3f}{ci} |"
        )


if __name__ == "__main__":
    main()
