"""The sandbox's phase-1 SFT with glibc's default malloc vs `magic_rl.cpu.keep_freed_memory()`.

Each setting runs in its own process (the malloc setting cannot be undone): `attacker_sft` on the
world's train-split pool for `--steps` optimiser steps, exactly as `magic sandbox build` runs it, once
with `keep_freed_memory()` (what `tune_for_cpu()` does on a CPU-only machine) and once with it
disabled. It prints the SFT's seconds (TRL set-up included), minor page faults and the ratio.

The world is `load_config("sandbox", overrides)`'s, built on first use (minutes) and reused from
`sandbox.cache_dir`; `--world DIR` uses an already built world directory as is.

Run: `python benchmarks/cpu_alloc.py [--steps 30] [--world DIR] [override ...]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def measure(keep: bool, steps: int, world_dir: str | None, overrides: list[str]) -> dict:
    from magic_rl import cpu
    from magic_rl.config import load_config
    from magic_rl.data.seeds import split_of
    from magic_rl.sandbox.world import World, build_world
    from magic_rl.sft import attacker_sft
    from magic_rl.strategies import read_pool

    if not keep:
        cpu.keep_freed_memory = lambda: False  # the baseline: glibc's default behaviour
    cfg = load_config("sandbox", [*overrides, f"sft.max_steps={steps}", "train.progress=false"])
    world = World(Path(world_dir)) if world_dir else build_world(cfg, log=lambda *a: None)
    records = [r for r in read_pool(world.pool) if split_of(r.seed) == "train"]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with tempfile.TemporaryDirectory() as out:
        summary = attacker_sft(cfg, records, str(world.base), out, log=lambda *a: None)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"applied": cpu._applied, "seconds": summary["seconds"], "minor_faults": faults}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--world", help="an already built world directory")
    ap.add_argument("--child", choices=["default", "keep"], help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child == "keep", args.steps, args.world, args.overrides)))
        return
    flags = [f"--steps={args.steps}", *([f"--world={args.world}"] if args.world else [])]
    rows = {}
    for setting in ("default", "keep"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", setting, *flags, *args.overrides],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows[setting] = json.loads(out.strip().splitlines()[-1])
    print(f"phase-1 SFT, {args.steps} steps")
    print(f"{'malloc':<22} {'seconds':>8} {'minor faults':>14}")
    for setting, r in rows.items():
        name = "keep_freed_memory" if setting == "keep" else "glibc default"
        print(f"{name:<22} {r['seconds']:8.1f} {r['minor_faults']:14,}")
    if not rows["keep"]["applied"]:
        print("keep_freed_memory() had no effect here (not glibc, or a GPU is visible): no ratio")
        return
    print(
        f"speed-up (default / keep_freed_memory): {rows['default']['seconds'] / rows['keep']['seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()
