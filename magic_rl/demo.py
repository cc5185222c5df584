"""`make demo`: the main job on the sandbox, end to end, on 2 CPU cores.

1. build the sandbox world (cached): seeds, attack pool, tokenizer, base model, embedded judge
2. phase 1: attacker SFT on the pool (cached)
3. phase 2: co-evolution, both roles trained with alternating GRPO (configs/sandbox.yaml)
4. evaluate the final defender on the sandbox test split and print where everything is

Run: `make demo` (or `python -m magic_rl.demo [overrides...]`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from rich.console import Console

    from magic_rl.cli import print_summary
    from magic_rl.config import load_config
    from magic_rl.loop import summarize_run, train
    from magic_rl.sandbox.world import build_attacker, build_world

    console = Console(soft_wrap=True)  # printed paths stay whole, as in `magic`
    t0 = time.perf_counter()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    cfg = load_config("sandbox", [f"name=demo-{stamp}", *argv])

    console.rule("[bold]1. sandbox world")
    world = build_world(cfg, log=console.print)
    console.print(f"world: {world.root}  (build times {world.info['timings_s']})")
    console.rule("[bold]2. phase 1: attacker SFT")
    attacker = build_attacker(cfg, world, log=console.print)
    console.print(f"attacker: {attacker}")
    console.rule("[bold]3. phase 2: co-evolution")
    run_dir = train(cfg, log=console.print)
    print_summary(summarize_run(run_dir), run_dir)
    console.rule("[bold]4. evaluation")
    results = evaluate_demo(cfg, run_dir, console)
    console.rule("[bold]done")
    console.print(f"run directory: {run_dir}  ({time.perf_counter() - t0:.0f}s in all)")
    console.print(f"  metrics: {run_dir / 'metrics.jsonl'}\n  replay:  {run_dir / 'replay.jsonl'}")
    console.print(f"  checkpoints: {run_dir / 'checkpoints'}")
    if results:
        console.print(f"  evaluation: {results}")
    return 0


def evaluate_demo(cfg, run_dir: Path, console) -> Path | None:
    try:
        from magic_rl.evaluate.run import evaluate_run
    except ImportError:
        console.print(
            "[yellow]`magic eval` is not built yet: the training metrics above are the "
            "demo's results.[/]"
        )
        return None
    return evaluate_run(cfg, run_dir, log=console.print)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
