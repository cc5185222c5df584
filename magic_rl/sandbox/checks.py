"""Is the sandbox game winnable? Two checks that `magic sandbox build` prints and stores in build.json.

- `learnability`: a sequence classifier of the defender's size (the world's Llama shape, random
  init) trained on (rewrite -> seed label) pairs of the train split (rewrites by the strategies
  the policies may see) and on every vanilla seed, as the base defender is (what is harmful is
  world knowledge; how attacks look is not). Its accuracy on held-out (request, strategy)
  pairs — test-split requests rewritten by those strategies (`held_out_requests`) and by the
  held-out strategies (`held_out_strategies`, and per strategy) — says whether a defender this size
  can tell harmful from benign rewrites at all. If it cannot, the world, not the algorithm, decides
  the game (a held-out cipher it cannot read tests nothing about generalisation; the held-out
  `novel` framings are there to be readable).
- `attacker_check`: the phase-1 attacker's rewrites sampled at the training temperature for seeds
  of the train split: the share well-formed (`format_rate`, the strict <think>/<answer> check) and
  the share still carrying their seed's request (`faithful_rate`, `magic_rl.content.carries`).

Run: `magic sandbox build` (both run at the end of a build; the figures are in docs/sandbox.md).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from magic_rl.config import PolicyConfig, RunConfig
from magic_rl.content import carries
from magic_rl.game import rewrite
from magic_rl.policy.load import load_policy
from magic_rl.prompts import load_templates

MAX_TOKENS = 128  # rewrites are at most ~60 words, cipher payloads aside
ATTACKER_SAMPLES = 96
# What the phase-1 attacker should reach before phase 2 starts from it (docs/LOG.md): below, the
# game's attacker mostly loses its format reward or plays a different request.
ATTACKER_AIMS = {"format_rate": 0.9, "faithful_rate": 0.9}


def _encode(tokenizer, texts: Sequence[str]):
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=MAX_TOKENS,
        padding=True,
        return_tensors="pt",
    )
    return enc["input_ids"], enc["attention_mask"]


def learnability(
    cfg: RunConfig,
    tokenizer,
    train: Sequence[tuple[str, bool]],
    tests: dict[str, Sequence[tuple[str, bool, str]]],
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
) -> dict[str, float]:
    """Train a classifier of the defender's size on `train` (text, harmful) pairs; accuracy on
    each test set of `tests` ((text, harmful, strategy) rows), plus `n_<name>` counts, `steps`
    and, for `held_out_strategies`, the accuracy per strategy (`held_out_strategies/<name>`)."""
    import torch
    from transformers import LlamaForSequenceClassification

    from magic_rl.sandbox.world import llama_config  # world imports this module

    sb = cfg.sandbox
    torch.manual_seed(sb.seed)
    model = LlamaForSequenceClassification(llama_config(sb, tokenizer, num_labels=2))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = random.Random(sb.seed)
    order: list[int] = []
    model.train()
    for _ in range(steps):
        if len(order) < batch_size:
            order += rng.sample(range(len(train)), len(train))
        batch, order = order[:batch_size], order[batch_size:]
        ids, mask = _encode(tokenizer, [train[i][0] for i in batch])
        labels = torch.tensor([int(train[i][1]) for i in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    model.eval()
    out: dict[str, float] = {"steps": float(steps)}
    with torch.inference_mode():
        for name, rows in tests.items():
            right: list[bool] = []
            for start in range(0, len(rows), 256):
                chunk = rows[start : start + 256]
                ids, mask = _encode(tokenizer, [t for t, _, _ in chunk])
                pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
                right += [
                    int(p) == int(y) for p, (_, y, _) in zip(pred.tolist(), chunk, strict=True)
                ]
            out[name] = round(sum(right) / max(len(rows), 1), 4)
            out[f"n_{name}"] = float(len(rows))
            if name == "held_out_strategies":
                by: dict[str, list[bool]] = {}
                for (_, _, strategy), hit in zip(rows, right, strict=True):
                    by.setdefault(strategy, []).append(hit)
                for strategy, hits in sorted(by.items()):
                    out[f"{name}/{strategy}"] = round(sum(hits) / len(hits), 4)
    return out


def learnability_sets(pool, seeds, train_ids: set[str], test_ids: set[str], held_out: set[str]):
    """(train pairs of (text, seed is harmful), {test set name: (text, harmful, strategy) rows})."""
    train = [(s.text, s.label == "harmful") for s in seeds]
    train += [
        (r.rewrite, r.seed.label == "harmful")
        for r in pool
        if r.seed.id in train_ids and r.strategy not in held_out
    ]
    test = [r for r in pool if r.seed.id in test_ids]
    tests = {
        "held_out_requests": [
            (r.rewrite, r.seed.label == "harmful", r.strategy)
            for r in test
            if r.strategy not in held_out
        ],
        "held_out_strategies": [
            (r.rewrite, r.seed.label == "harmful", r.strategy)
            for r in test
            if r.strategy in held_out
        ],
    }
    return train, tests


def attacker_check(
    cfg: RunConfig,
    attacker: Path,
    seeds,
    n: int = ATTACKER_SAMPLES,
    *,
    request_marker: bool = True,
) -> dict:
    """Format and faithfulness rates of the attacker's rewrites sampled at the training
    temperature and top-p, for `n` seeds drawn from `seeds` (written by the game's own attacker
    half, `game.rewrite`; `request_marker`: the sandbox world's `[request]` marker read, as its
    attacker writes it; a real model's phase 1 (`phases.run_phase1`) passes the game's own)."""

    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    chosen = random.Random(cfg.sandbox.seed).sample(list(seeds), min(n, len(seeds)))
    policy = load_policy(attacker, PolicyConfig(dtype="float32"), "cpu", what="phase-1 attacker")
    s = cfg.attacker.sampling
    game = cfg.game.model_copy(update={"request_marker": request_marker})
    attacks = rewrite(policy, templates, chosen, game, s, greedy=False, seed=cfg.sandbox.seed)
    faithful = [carries(a.text, seed.text) for a, seed in zip(attacks, chosen, strict=True)]
    return {
        "n": len(chosen),
        "temperature": s.temperature,
        "top_p": s.top_p,
        "format_rate": round(sum(a.format_ok for a in attacks) / max(len(attacks), 1), 4),
        "faithful_rate": round(sum(faithful) / max(len(faithful), 1), 4),
    }


def attacker_warnings(check: dict) -> list[str]:
    """One line per rate of an `attacker_check` result below its aim (`ATTACKER_AIMS`)."""
    return [
        f"phase-1 attacker {key} {check[key]:.2f} is below its aim {aim:.2f}: phase 2 starts "
        "from an attacker that "
        + ("rarely writes <think>/<answer>" if key == "format_rate" else "drops the request")
        + " (docs/LOG.md; more sft.max_steps or a larger sandbox world may lift it)"
        for key, aim in ATTACKER_AIMS.items()
        if key in check and check[key] < aim
    ]
