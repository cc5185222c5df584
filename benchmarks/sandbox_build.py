"""A fresh `magic sandbox build` against its 3-minute budget: wall time and seconds per stage.

Runs the real command (`magic sandbox build`, attacker included) in a subprocess with an empty
temporary cache, so nothing is reused, then reads the stage times the build stores (`build.json`,
the attacker's `sft.json`). Prints each stage's seconds and share of the wall time, and the ratio
of the wall time to the budget (the sandbox issue's bar: 180 s on 2 cores). Overrides pass through,
e.g. `sandbox.base_steps=200` to see what a smaller world would cost.

Run: `python benchmarks/sandbox_build.py [--budget 180] [--keep DIR] [override ...]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=180.0, help="seconds")
    ap.add_argument("--keep", type=Path, help="build into this (empty) cache dir and keep it")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    cache = args.keep or Path(tempfile.mkdtemp(prefix="magic-build-"))
    if args.keep and any(cache.glob("world-*")):
        sys.exit(f"{cache} already holds a world: the build would be reused, not timed")
    cmd = [sys.executable, "-m", "magic_rl.cli", "sandbox", "build"]
    cmd += [*args.overrides, f"sandbox.cache_dir={cache}", "train.progress=false"]
    try:
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        (world,) = cache.glob("world-*")
        stages = dict(json.loads((world / "build.json").read_text())["timings_s"])
        (sft,) = world.glob("attacker-*/sft.json")
        stages["attacker_sft"] = json.loads(sft.read_text())["seconds"]
    finally:
        if not args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    stages["start-up, loading, saving"] = round(wall - sum(stages.values()), 1)
    print(f"{'stage':<28} {'seconds':>8} {'share':>6}")
    for name, seconds in stages.items():
        print(f"{name:<28} {seconds:8.1f} {seconds / wall:6.0%}")
    print(f"{'wall':<28} {wall:8.1f}")
    print(f"wall / budget ({args.budget:.0f} s): {wall / args.budget:.2f}")


if __name__ == "__main__":
    main()
