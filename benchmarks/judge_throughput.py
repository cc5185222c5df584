"""Train the embedded judge on the sandbox world; report held-out accuracy per signal and speed.

Held-out protocols (`magic_rl.sandbox.judge_data.sandbox_judge_splits`): `seeds` tests on requests
the judge never saw (test-split seeds); `rewrites` tests on rewrites by strategies it never saw.
Throughput is verdicts per second of `judge.judge` on prompt+response pairs (and prompt-only
calls), in batches of 512, with torch's default thread count.

Run:
    .venv/bin/python benchmarks/judge_throughput.py --protocol seeds --epochs 4
    .venv/bin/python benchmarks/judge_throughput.py --protocol rewrites --epochs 4 --save /tmp/judge
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from magic_rl.judge.embedded import EmbeddedJudge, evaluate_judge, train_embedded_judge
from magic_rl.sandbox.judge_data import sandbox_judge_splits


def verdicts_per_second(judge: EmbeddedJudge, prompts: list[str], responses: list) -> float:
    judge.judge(prompts[:512], responses[:512])  # warm-up
    start = time.perf_counter()
    judge.judge(prompts, responses)
    return len(prompts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=("seeds", "rewrites"), default="seeds")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None, help="directory to save the trained judge in")
    args = ap.parse_args()

    t0 = time.perf_counter()
    train, test = sandbox_judge_splits(args.protocol, rng_seed=args.seed, fraction=args.fraction)
    t1 = time.perf_counter()
    judge = train_embedded_judge(train, epochs=args.epochs, seed=args.seed)
    t2 = time.perf_counter()
    accuracy = evaluate_judge(judge, test)
    if args.save:
        judge.save_pretrained(args.save)

    reps = max(1, 5000 // len(test))
    pairs = [e for e in test if e.response is not None] * reps
    prompts = [e.prompt for e in pairs]
    report = {
        "protocol": args.protocol,
        "epochs": args.epochs,
        "fraction": args.fraction,
        "train_examples": len(train),
        "test_examples": len(test),
        "build_s": round(t1 - t0, 1),
        "train_s": round(t2 - t1, 1),
        "held_out_accuracy": {k: round(v, 4) for k, v in accuracy.items()},
        "torch_threads": torch.get_num_threads(),
        "pair_verdicts_per_s": round(
            verdicts_per_second(judge, prompts, [e.response for e in pairs])
        ),
        "prompt_only_verdicts_per_s": round(
            verdicts_per_second(judge, prompts, [None] * len(prompts))
        ),
        "judge": judge.name,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
