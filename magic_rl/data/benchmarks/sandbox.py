"""The sandbox's six eval sets, a loader registered beside the public benchmarks
(`registry.SANDBOX`): built from the sandbox's TEST-split seeds, not read from one file.

    vanilla_harmful       harmful seeds as they are (ASR, and RTA on the same prompts)
    benign, contrast      benign seeds, and benign seeds phrased like harmful ones (compliance)
    train_strategies      rewrites of harmful seeds by the training strategies (ASR)
    held_out_strategies   rewrites by `data.held_out_strategies` (ASR)
    adversarial_benign    rewrites of benign seeds (compliance)

Rewrites come from the world's pool.jsonl, passed as a path (`pool_path`; rebuilt in memory for
seeds a reduced or unbuilt world lacks); at most `REWRITES_PER_SEED` per seed, picked by a stable
hash of (seed, strategy). The judge request of a rewrite is its seed, as WildJailbreak's is its
vanilla request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from magic_rl.data.benchmarks.items import EvalItem, file_sha256
from magic_rl.data.seeds import sandbox_seeds
from magic_rl.records import Seed
from magic_rl.strategies import (
    PROGRAMMATIC,
    STRATEGIES,
    build_pool,
    read_pool,
    resolve_strategies,
)

SANDBOX = "sandbox"
SANDBOX_SETS: tuple[str, ...] = (
    "vanilla_harmful",
    "benign",
    "contrast",
    "train_strategies",
    "held_out_strategies",
    "adversarial_benign",
)
SEEDS_DIR = Path(__file__).resolve().parents[2] / "assets" / "seeds"
# Rewrites per test seed in the sandbox's rewrite sets: keeps the whole sandbox eval (~400 prompts
# at fraction 1) within half a minute on 2 CPU cores.
REWRITES_PER_SEED = 2

Log = Callable[..., None]
HELD_OUT = "held_out_strategies"


def held_out_family(strategy: str) -> str:
    """The held-out set's two families: `ciphers` (the encoding strategies, which a defender must
    see to read) and `other` (framings, whose success tests generalisation)."""
    return "ciphers" if STRATEGIES.get(strategy) == "encoding" else "other"


def _rank(seed: Seed, strategy: str) -> str:
    return hashlib.sha256(f"{seed.id}/{strategy}".encode()).hexdigest()


def pick_rewrites(records: Sequence, per_seed: int) -> list:
    """At most `per_seed` records per seed, by a stable hash of (seed, strategy); input order kept."""
    by_seed: dict[str, list] = {}
    for r in records:
        by_seed.setdefault(r.seed.id, []).append(r)
    keep = {
        id(r)
        for rs in by_seed.values()
        for r in sorted(rs, key=lambda r: _rank(r.seed, r.strategy))[:per_seed]
    }
    return [r for r in records if id(r) in keep]


def _seed_item(seed: Seed, subset: str, metric: str, suffix: str = "") -> EvalItem:
    return EvalItem(
        id=seed.id + suffix,
        prompt=seed.text,
        label=seed.label,
        source=SANDBOX,
        subset=subset,
        metric=metric,
        category=seed.category,
    )


def _rewrite_item(rec, subset: str, metric: str) -> EvalItem:
    return EvalItem(
        id=rec.id,
        prompt=rec.rewrite,
        label=rec.seed.label,
        source=SANDBOX,
        subset=subset,
        metric=metric,
        category=rec.strategy,
        judge_prompt=rec.seed.text,
    )


def sandbox_items(
    seeds: Sequence[Seed], pool: Sequence, held_out: set[str], per_seed: int = REWRITES_PER_SEED
) -> dict[str, list[EvalItem]]:
    """The six sandbox sets from test-split `seeds` and pool records of those seeds."""
    test_ids = {s.id for s in seeds}
    pool = [r for r in pool if r.seed.id in test_ids]
    harmful = [r for r in pool if r.seed.label == "harmful"]
    kind = {s.id: s.source.rsplit("/", 1)[-1] for s in seeds}
    pick = lambda recs: pick_rewrites(recs, per_seed)  # noqa: E731
    return {
        "vanilla_harmful": [
            _seed_item(s, "vanilla_harmful", "asr") for s in seeds if s.label == "harmful"
        ]
        + [_seed_item(s, "vanilla_harmful", "rta", "/rta") for s in seeds if s.label == "harmful"],
        "benign": [_seed_item(s, "benign", "compliance") for s in seeds if kind[s.id] == "benign"],
        "contrast": [
            _seed_item(s, "contrast", "compliance") for s in seeds if kind[s.id] == "contrast"
        ],
        "train_strategies": [
            _rewrite_item(r, "train_strategies", "asr")
            for r in pick([r for r in harmful if r.strategy not in held_out])
        ],
        "held_out_strategies": [
            _rewrite_item(r, "held_out_strategies", "asr")
            for r in pick([r for r in harmful if r.strategy in held_out])
        ],
        "adversarial_benign": [
            _rewrite_item(r, "adversarial_benign", "compliance")
            for r in pick([r for r in pool if r.seed.label == "benign"])
        ],
    }


def sandbox_sets(
    names: Sequence[str],
    *,
    held_out_strategies: Sequence[str],
    world_seed: int,
    limit: int | None = None,
    pool_path: Path | None = None,
    log: Log = print,
) -> list[tuple[str, list[EvalItem], dict[str, str]]]:
    """(name, items, files read with their sha256) of the sandbox sets `names` (`sandbox/<set>`):
    every test-split seed, whatever `sandbox.fraction` the world was built with (test seeds never
    reach training, so a reduced world still has the full test). `pool_path`: the built world's
    pool.jsonl (None: no world built); `world_seed`: its `sandbox.seed`."""
    unknown = [n for n in names if n not in SANDBOX_SETS]
    if unknown:
        raise ValueError(f"unknown sandbox sets {unknown} (sets: {list(SANDBOX_SETS)})")
    seeds = sandbox_seeds(split="test")
    test_ids = {s.id for s in seeds}
    files = {str(p): file_sha256(p) for p in sorted(SEEDS_DIR.glob("*.jsonl"))}
    pool = []
    if pool_path is not None:
        pool = [r for r in read_pool(pool_path) if r.seed.id in test_ids]
        files[str(pool_path)] = file_sha256(pool_path)
    # Seeds a reduced world (sandbox.fraction < 1) left out are rewritten here; the records are the
    # world's own, as each rewrite's rng depends only on (world seed, strategy, seed id).
    pooled = {r.seed.id for r in pool}
    pool += build_pool([s for s in seeds if s.id not in pooled], PROGRAMMATIC, rng_seed=world_seed)
    held_out = set(resolve_strategies(held_out_strategies))
    by_set = sandbox_items(seeds, pool, held_out)
    out = []
    for name in names:
        items = by_set[name] if limit is None else _limit(by_set[name], limit)
        if not items:
            log(f"[yellow]sandbox/{name}: no items (no held-out strategies?); skipped[/]")
            continue
        out.append((f"{SANDBOX}/{name}", items, files))
    return out


def _limit(items: list[EvalItem], limit: int) -> list[EvalItem]:
    """First `limit` prompts; vanilla_harmful's asr/rta twins count as one prompt."""
    prompts = list(dict.fromkeys(i.prompt for i in items))[:limit]
    keep = set(prompts)
    return [i for i in items if i.prompt in keep]
