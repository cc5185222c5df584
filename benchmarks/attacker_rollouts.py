"""Not speed: what an attacker experiment's rollouts say about its framings, per group of runs.

For each `LABEL::GLOB` (a glob of run directories, e.g. the `trained-s*` runs of one `magic
experiment attacker` output), over every attacker-phase exchange on a harmful seed in the runs'
replay.jsonl:
- the hybrid share of the well-formed rewrites in steps 0-14 and 30-44 (a hybrid shows two or more
  strategies' signatures, `evaluate.analyze.rules.tag_strategies`);
- the ASR (reply judged harmful) of hybrid and of single-framing rewrites over all steps;
- the share of seed groups (one step's G rewrites of one seed, with every defender reply they got)
  in which every exchange fails, some do, or every one succeeds. Only mixed groups carry a GRPO
  signal. With K sampled replies a group holds G x K outcomes and is nearly always mixed; the
  column reads the runs with one greedy reply per rewrite.

Prints one markdown table (docs/attacker.md, "The compositional space").

Run: `.venv/bin/python benchmarks/attacker_rollouts.py "trained::runs/attacker-hybrid/trained-s*"
["base::runs/attacker-hybrid/base-s*" ...]`.
"""

from __future__ import annotations

import argparse
import glob
import json
from collections import Counter
from pathlib import Path

from magic_rl.evaluate.analyze.rules import is_hybrid_tags, tag_strategies

EARLY, LATE = 15, 30  # the first 15 steps, and the steps from 30 on (45-step runs: the last 15)


def summarize(runs: list[Path]) -> dict:
    share = {"early": [0, 0], "late": [0, 0]}
    asr = {"hybrid": [0, 0], "single": [0, 0]}
    groups: dict[tuple, list[bool]] = {}
    for run in runs:
        for line in (run / "replay.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row["trained_role"] != "attacker" or row["seed"]["label"] != "harmful":
                continue
            turn = row["turns"][-1]
            won = row["verdict"]["response_harmful"] is True
            groups.setdefault((str(run), row["step"], row["group"]), []).append(won)
            if not turn["format_ok"]:
                continue
            hybrid = is_hybrid_tags(tag_strategies(turn["attack"], row["seed"]["text"]))
            kind = "hybrid" if hybrid else "single"
            asr[kind][0] += won
            asr[kind][1] += 1
            window = "early" if row["step"] < EARLY else "late" if row["step"] >= LATE else None
            if window:
                share[window][0] += hybrid
                share[window][1] += 1
    outcome = Counter(
        "fail" if not any(g) else "win" if all(g) else "mixed" for g in groups.values()
    )
    n = max(sum(outcome.values()), 1)
    return {
        "runs": len(runs),
        "share": {k: v[0] / v[1] if v[1] else None for k, v in share.items()},
        "asr": {k: (v[0] / v[1] if v[1] else None, v[1]) for k, v in asr.items()},
        "groups": {k: outcome[k] / n for k in ("fail", "mixed", "win")},
    }


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+", metavar="LABEL::GLOB")
    args = parser.parse_args()
    print(
        "| world / defender | runs | hybrid share, steps 0-14 | hybrid share, steps 30-44 | "
        "ASR of hybrids | ASR of single framings | seed groups all fail / mixed / all succeed |"
    )
    print("|---|---|---|---|---|---|---|")
    for spec in args.specs:
        label, sep, pattern = spec.partition("::")
        runs = sorted(Path(p) for p in glob.glob(pattern))
        if not sep or not runs:
            raise SystemExit(f"{spec!r}: want LABEL::GLOB matching run directories")
        s = summarize(runs)
        (h, nh), (o, no) = s["asr"]["hybrid"], s["asr"]["single"]
        g = s["groups"]
        print(
            f"| {label} | {s['runs']} | {_rate(s['share']['early'])} | {_rate(s['share']['late'])} "
            f"| {_rate(h)} (n={nh}) | {_rate(o)} (n={no}) "
            f"| {g['fail']:.2f} / {g['mixed']:.2f} / {g['win']:.2f} |"
        )


if __name__ == "__main__":
    main()
