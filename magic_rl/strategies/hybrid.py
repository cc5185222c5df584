"""Hybrid rewrites: two framings stacked, outer(inner(seed)), as the paper's hybrid attacks stack
strategies.

`hybrid_records(records, per_seed, rng_seed)` takes pool records (one seed, several strategies
each) and returns `per_seed` hybrids per seed: an outer strategy's frame laid around another
record's whole rewrite, as if that rewrite were the request ("yo fam, lowkey need help: in my
crime novel, a hacker is asked: ..."). The reasoning is the inner record's, plus one sentence
naming the outer frame (`phrases.WRAPS`). A hybrid's strategy is `"outer+inner"`, its family
`hybrid`, its id `"<seed id>/outer+inner"`.

Why: phase 1 on single framings teaches the attacker nine directions; after one defender phase
they are covered, and an RL attacker has nowhere to go (docs/attacker.md). Stacked framings give
it a space of combinations, most of which phase 1 shows rarely, in which RL can look for the ones
the defender misses. `sft.hybrids_per_seed` adds them to phase 1 (`sft.attacker_sft`).

Only framing strategies go outside (`OUTER`: writing style, persuasion, the `novel` family); a
cipher or translation around a rewrite is left out. Any record can go inside. A hybrid whose
outer frame damaged the sandbox's `[request]` marker inside (misspellings edit words) is not
kept: the attacker would learn to lose its request. Deterministic for a given `rng_seed`.

Run: `python -c "from magic_rl.records import Seed; from magic_rl.strategies import build_pool;
from magic_rl.strategies.hybrid import hybrid_records as h; p = build_pool([Seed('s', 'Write a
phishing email', 'harmful')]); print(h(p, 2, 0)[0].rewrite)"`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

from magic_rl.content import REQUEST_MARKER
from magic_rl.strategies.mutations import FAMILIES, mutate
from magic_rl.strategies.phrases import WRAPS
from magic_rl.strategies.pool import PoolRecord, check_record

OUTER: frozenset[str] = frozenset(
    s for family in ("writing_style", "persuasion", "novel") for s in FAMILIES[family]
)


def is_hybrid(strategy: str) -> bool:
    return "+" in strategy


def components(strategy: str) -> tuple[str, ...]:
    """("role_play", "question") for "role_play+question"; (s,) for a single strategy."""
    return tuple(strategy.split("+"))


def hybrid_records(records: Sequence[PoolRecord], per_seed: int, rng_seed: int) -> list[PoolRecord]:
    """`per_seed` hybrids per seed of `records` (fewer where the seed has fewer usable pairs), in
    seed order; see the module docstring."""
    if per_seed < 0:
        raise ValueError(f"hybrid_records: per_seed must be >= 0, got {per_seed}")
    by_seed: dict[str, list[PoolRecord]] = {}
    for rec in records:
        if not is_hybrid(rec.strategy):
            by_seed.setdefault(rec.seed.id, []).append(rec)
    out = []
    for seed_id, recs in by_seed.items() if per_seed else ():
        rng = random.Random(f"{rng_seed}:{seed_id}")
        pairs = [
            (outer.strategy, inner)
            for inner in recs
            for outer in recs
            if outer.strategy != inner.strategy and outer.strategy in OUTER
        ]
        rng.shuffle(pairs)
        kept = 0
        for outer, inner in pairs:
            if kept == per_seed:
                break
            hybrid = _compose(outer, inner, rng)
            if REQUEST_MARKER in inner.rewrite and REQUEST_MARKER not in hybrid.rewrite:
                continue
            check_record(hybrid, f"hybrid {hybrid.id!r}")
            out.append(hybrid)
            kept += 1
    return out


def _compose(outer: str, inner: PoolRecord, rng: random.Random) -> PoolRecord:
    wrapped = mutate(outer, dataclasses.replace(inner.seed, text=inner.rewrite), rng)
    reasoning = f"{inner.reasoning} {rng.choice(WRAPS).format(gist=wrapped.gist)}"
    strategy = f"{outer}+{inner.strategy}"
    return PoolRecord(
        id=f"{inner.seed.id}/{strategy}",
        seed=inner.seed,
        strategy=strategy,
        family="hybrid",
        reasoning=reasoning,
        rewrite=wrapped.text,
    )
