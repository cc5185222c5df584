"""Not speed: can the sandbox's tiny base model learn to restate (copy) the request it was given?

The world's base model complies with "Sure. Here is how to [request]: 1. [...]" and the world
expands the marker (`magic_rl.content`, docs/deviations.md), because a policy of this size did not
learn to copy in the build's budget. This script measures that claim for a given shape and step
count, so the marker can be dropped the day a policy copies.

1. The base model's SFT set exactly as `sandbox.world.base_examples` builds it (same draws), with
   each compliance target's `[request]` replaced by `replies.restate` of the seed behind the prompt
   (the vanilla seed, or a pool rewrite's seed). `--mix F` adds F x as many copy drills: a prompt
   of 3–10 random seed-vocabulary words, the target its restatement.
2. Trained like the world's base model (`trainer.sft`, the build's base-model settings), evaluated
   at `--eval-at` steps (a callback; the schedule stays sized for `--steps`).
3. Greedy replies (48 tokens) to 40 prompts per set (half harmful, half benign): test-split
   rewrites by role_play, logical_appeal and slang (never trained on: the copy rate that matters),
   test- and train-split vanilla requests (trained on: memorised, not copied), train-split
   role_play rewrites, and 40 random-word prompts (the pure copy test). Copy rate = share of the
   non-refused replies that `content.carries` the seed's request.

Prints one JSON line per evaluation and writes OUT/<name>.json (counts and sample replies).

Run: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/copy_probe.py NAME [--steps 250]
[--eval-at 250,500] [--mix 0.2] [--out /tmp/copy_probe] [override ...]`, e.g. a wider model:
`... w256 --steps 500 sandbox.hidden_size=256 sandbox.intermediate_size=768`. Needs the world's
tokenizer (`magic sandbox build`; built on first use).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from magic_rl.config import load_config
from magic_rl.content import REQUEST_MARKER, carries
from magic_rl.data.seeds import sandbox_seeds, split_of
from magic_rl.policy import HFPolicy
from magic_rl.prompts import defender_messages, load_templates
from magic_rl.sandbox import replies
from magic_rl.sandbox.world import (
    base_examples,
    base_sft_config,
    build_world,
    held_out,
    tiny_model,
)
from magic_rl.strategies import build_pool

PER_SET = 40
TEST_STRATEGIES = ("role_play", "logical_appeal", "slang")


def seed_vocabulary(seeds) -> list[str]:
    """The words of the seed texts (random-word prompts and copy drills draw from it)."""
    return sorted({w for s in seeds for w in s.text.rstrip(".?!").split()})


def copy_examples(cfg, seeds, pool, templates, mix: float) -> list:
    """The base model's SFT examples with the request restated in text instead of the marker."""
    from magic_rl.sft import SFTExample  # torch

    train_ids = {s.id for s in seeds if split_of(s) == "train"}
    train_pool = [r for r in pool if r.seed.id in train_ids]
    skip = held_out(cfg)
    examples = base_examples(seeds, train_pool, templates, skip, cfg.sandbox.seed)

    def user(text: str) -> str:
        return defender_messages(templates, [], text)[-1]["content"]

    seed_of = {user(s.text): s.text for s in seeds}
    for rec in train_pool:
        if rec.strategy not in skip:
            seed_of.setdefault(user(rec.rewrite), rec.seed.text)
    out = [
        SFTExample(
            e.messages,
            e.target.replace(REQUEST_MARKER, replies.restate(seed_of[e.messages[-1]["content"]])),
        )
        if REQUEST_MARKER in e.target
        else e
        for e in examples
    ]
    rng = random.Random(1234)
    vocab = seed_vocabulary(seeds)
    for _ in range(round(mix * len(out))):
        prompt = " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 10)))
        target = f"Sure. Here is how to {replies.restate(prompt)}: 1. [...] 2. [...]"
        out.append(SFTExample(tuple(defender_messages(templates, [], prompt)), target))
    rng.shuffle(out)
    return out


def eval_sets(seeds, pool) -> dict[str, list[tuple[str, str]]]:
    """{set: [(prompt, the request it carries)]}."""
    rng = random.Random(7)

    def pick(items, label_of):
        harmful = [x for x in items if label_of(x) == "harmful"]
        benign = [x for x in items if label_of(x) != "harmful"]
        half = PER_SET // 2
        return rng.sample(harmful, min(half, len(harmful))) + rng.sample(
            benign, min(PER_SET - half, len(benign))
        )

    sets = {}
    for split in ("test", "train"):
        split_seeds = [s for s in seeds if split_of(s) == split]
        sets[f"{split}/vanilla"] = [(s.text, s.text) for s in pick(split_seeds, lambda s: s.label)]
        for strategy in TEST_STRATEGIES if split == "test" else ("role_play",):
            recs = [r for r in pool if r.strategy == strategy and split_of(r.seed) == split]
            sets[f"{split}/{strategy}"] = [
                (r.rewrite, r.seed.text) for r in pick(recs, lambda r: r.seed.label)
            ]
    vocab = seed_vocabulary(seeds)
    words = random.Random(99)
    prompts = [" ".join(words.choice(vocab) for _ in range(words.randint(4, 9))) for _ in range(40)]
    sets["novel/random_words"] = [(p, p) for p in prompts]
    return sets


def copy_rates(policy, templates, sets) -> dict:
    """Per set and pooled: refused, non-refused, carried, copy rate; a few sample replies."""
    per_set, samples = {}, {}
    for name, items in sets.items():
        chats = [defender_messages(templates, [], prompt) for prompt, _ in items]
        gens = policy.generate(chats, temperature=0.0, top_p=1.0, max_new_tokens=48, seed=0)
        kept = [
            (g.text, request)
            for (_, request), g in zip(items, gens, strict=True)
            if not replies.is_refusal_text(g.text)
        ]
        carried = sum(carries(reply, request) for reply, request in kept)
        per_set[name] = {"n": len(items), "non_refused": len(kept), "carried": carried}
        samples[name] = [{"request": r, "reply": t} for t, r in kept[:4]]

    def pooled(names):
        n = sum(per_set[k]["n"] for k in names)
        kept = sum(per_set[k]["non_refused"] for k in names)
        carried = sum(per_set[k]["carried"] for k in names)
        return {
            "copy_rate": round(carried / kept, 3) if kept else None,
            "carried": carried,
            "non_refused": kept,
            "refusal_share": round(1 - kept / n, 3),
        }

    groups = {
        "test_rewrites": [f"test/{s}" for s in TEST_STRATEGIES],
        "test_vanilla": ["test/vanilla"],
        "train": ["train/vanilla", "train/role_play"],
        "random_words": ["novel/random_words"],
    }
    return {
        "pooled": {g: pooled(names) for g, names in groups.items()},
        "sets": per_set,
        "samples": samples,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--steps", type=int, default=None, help="default: sandbox.base_steps")
    ap.add_argument("--eval-at", default="", help="comma-separated steps besides the last")
    ap.add_argument("--mix", type=float, default=0.0, help="copy drills, as a share of the set")
    ap.add_argument("--out", type=Path, default=Path("/tmp/copy_probe"))
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. sandbox.hidden_size=256")
    args = ap.parse_intermixed_args(argv)

    import torch
    from transformers import AutoTokenizer, TrainerCallback

    from magic_rl.sft import sft

    cfg = load_config("sandbox", args.overrides)
    sb = cfg.sandbox
    steps = args.steps or sb.base_steps
    eval_at = {int(x) for x in args.eval_at.split(",") if x} - {steps}
    world = build_world(cfg)  # cached: only its tokenizer is used
    tokenizer = AutoTokenizer.from_pretrained(world.tokenizer, padding_side="left")
    seeds = sandbox_seeds(fraction=sb.fraction)
    pool = build_pool(seeds, rng_seed=sb.seed)
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    examples = copy_examples(cfg, seeds, pool, templates, args.mix)
    sets = eval_sets(seeds, pool)
    policy = HFPolicy(tiny_model(sb, tokenizer, sb.seed), tokenizer)
    doc = {
        "name": args.name,
        "argv": argv,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in policy.model.parameters()),
        "examples": len(examples),
        "evals": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    train_s = {"total": 0.0, "start": 0.0}

    def evaluate(step: int) -> None:
        row = {"step": step, "train_s": round(train_s["total"], 1)}
        row["s_per_step"] = round(train_s["total"] / step, 3)
        row.update(copy_rates(policy, templates, sets))
        doc["evals"].append(row)
        (args.out / f"{args.name}.json").write_text(json.dumps(doc, indent=2))
        print(json.dumps({k: row[k] for k in ("step", "train_s", "s_per_step", "pooled")}))

    class Timed(TrainerCallback):
        def on_step_begin(self, _args, state, control, **kw):
            train_s["start"] = time.perf_counter()

        def on_step_end(self, _args, state, control, **kw):
            train_s["total"] += time.perf_counter() - train_s["start"]
            if state.global_step in eval_at:
                evaluate(state.global_step)
                policy.model.train()

    sft(
        policy,
        examples,
        base_sft_config(cfg),
        args.out / args.name,
        seed=sb.seed,
        max_steps=steps,
        completion_only=False,
        progress=False,
        callbacks=[Timed()],
    )
    evaluate(steps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
