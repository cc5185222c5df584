"""`make demo`: the main job on the sandbox, end to end, on 2 CPU cores.

1. build the sandbox world (cached): seeds, attack pool, tokenizer, base model, embedded judge
2. phase 1: attacker SFT on the pool (cached)
3. phase 2: co-evolution, both roles trained with alternating GRPO (configs/sandbox.yaml), in
   `DEMO_STEPS` steps: defender, attacker, defender phases. The preset's fourth phase (attacker)
   cannot change the defender that step 4 evaluates, so the demo stops before it.
4. evaluate the first (base) and final defender on the sandbox test split
5. the two-sided headline (MAGIC's claim: robust without over-refusal) before/after in one small
   table, then where everything is, and the report command

The run is `runs/demo-<time>`; `runs/demo` is a link to the latest one, so the README's and `magic
--help`'s examples (`magic eval --model runs/demo ...`) run as written after `make demo`.

"Kept" compliance means it fell by at most `KEPT` (absolute) on that set
(`evaluate.eval.headline`); the numbers come from the evaluation's results.json
(RUN_DIR/eval/<time>_sandbox/), with their 95% bootstrap intervals there.

Run: `make demo` (or `python -m magic_rl.demo [overrides...]`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from magic_rl import rundir
from magic_rl.config import load_config
from magic_rl.evaluate.eval import evaluate_run
from magic_rl.evaluate.eval.headline import two_sided
from magic_rl.loop import preflight, summarize_run, train
from magic_rl.progress import summary_table
from magic_rl.sandbox.checks import attacker_warnings
from magic_rl.sandbox.resolve import resolve_judge, resolve_world
from magic_rl.sandbox.world import build_attacker, build_world
from magic_rl.tables import key_table, warning

# Three phases of `schedule.freq` (15) steps: the defender has the last word, and its final
# checkpoint is bit for bit the one the preset's 60 steps end with (an attacker phase leaves the
# defender frozen). A user's `train.steps=...` override still wins.
DEMO_STEPS = 45


def main(argv: list[str]) -> int:
    from rich.console import Console

    console = Console(soft_wrap=True)  # printed paths stay whole, as in `magic`
    t0 = time.perf_counter()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    cfg = load_config("sandbox", [f"name=demo-{stamp}", f"train.steps={DEMO_STEPS}", *argv])

    console.rule("[bold]1. sandbox world")
    world = build_world(cfg, log=console.print)
    took = ", ".join(f"{k} {v}s" for k, v in world.info["timings_s"].items())
    console.print(f"world: {world.root}  (built in: {took})")
    console.rule("[bold]2. phase 1: attacker SFT")
    cached = (world.attacker(cfg) / "sft.json").exists()
    attacker = build_attacker(cfg, world, log=console.print)
    console.print(f"attacker: {attacker}")
    check = attacker / "check.json"
    if cached and check.is_file():  # a fresh build warned already
        for line in attacker_warnings(json.loads(check.read_text())):
            console.print(warning(line))
    console.rule("[bold]3. phase 2: co-evolution")
    preflight(cfg)
    resolved = resolve_world(cfg, log=console.print)
    run_dir = train(resolved, log=console.print, recorded=cfg)
    console.print(summary_table(summarize_run(run_dir), run_dir))
    console.rule("[bold]4. evaluation")
    judged = resolve_judge(cfg, log=console.print)  # the policies stay named as given
    results = evaluate_run(judged, run_dir, log=console.print, sandbox_pool=world.pool)
    console.rule("[bold]5. the two-sided headline")
    show_headline(results.parent / rundir.RESULTS, console)
    console.rule("[bold]done")
    link = link_latest(run_dir)
    console.print(f"run directory: {run_dir}  ({time.perf_counter() - t0:.0f}s in all)")
    if link is not None:
        console.print(f"  {link} -> {run_dir.name} (the latest demo: the examples' path)")
    console.print(f"  metrics: {run_dir / rundir.METRICS}\n  replay:  {run_dir / rundir.REPLAY}")
    console.print(f"  checkpoints: {run_dir / rundir.CHECKPOINTS}")
    console.print(f"  evaluation: {results}")
    console.print(f"  report: magic report {run_dir} --out {run_dir / 'report.html'}")
    return 0


def link_latest(run_dir: Path, name: str = "demo") -> Path | None:
    """Point `run_dir.parent / name` at `run_dir` (a relative symlink, replaced atomically); None
    when that name is a real directory (a run of its own: never touched)."""
    link = run_dir.parent / name
    if link.exists() and not link.is_symlink():
        return None
    tmp = run_dir.parent / f".{name}.link"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    tmp.replace(link)
    return link


def headline(results_json: Path) -> tuple[list[tuple[str, float, float]], str]:
    """([(label, before, after)] of HEADLINE, a one-line verdict) from an evaluate_run results.json
    (its first model is the base defender, its last the trained one)."""
    models = list(json.loads(Path(results_json).read_text())["models"].values())
    return two_sided(models[0]["metrics"], models[-1]["metrics"])


def show_headline(results_json: Path, console) -> None:
    rows, verdict = headline(results_json)
    title = "robust without over-refusal? (sandbox test sets, greedy)"
    headers = ["metric", "base defender", "after co-evolution"]
    cells = [[label, f"{before:.2f}", f"{after:.2f}"] for label, before, after in rows]
    console.print(key_table(title, headers, cells))
    console.print(f"[bold]{verdict}[/]")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
