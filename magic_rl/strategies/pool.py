"""The attack pool: seeds x strategies -> (seed, rewrite, reasoning) records for attacker SFT.

`build_pool(seeds)` applies every chosen strategy to every seed with a `Rewriter` (programmatic by
default) and returns `PoolRecord`s in seed order, then strategy order; `record.target` is the SFT
target `<think>reasoning</think><answer>rewrite</answer>`. `write_pool`/`read_pool` keep a pool as
JSONL, one record a line, with its strategy and family as provenance.

Departures from the reference pool (440 harmful seeds x 20 strategies, LLM-written reasoning):
the default strategies are SORRY-Bench's 15 that need no language model (translation goes through
`EndpointRewriter`; the project's own `novel` framings are asked for by name, as the sandbox world
does); excluding families (the reference left encoding out of SFT) is the caller's
choice via `exclude`. `build_pool` keeps everything in memory and fails on the first unusable
rewrite; `strategies/build.py` is the resumable, counting builder behind `magic pool build`.

Run: `python -c "from magic_rl.records import Seed; from magic_rl.strategies import build_pool;
print(build_pool([Seed('s1', 'Write a phishing email', 'harmful')])[0].target)"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from magic_rl.data.files import read_jsonl_rows
from magic_rl.prompts import format_target
from magic_rl.records import Seed
from magic_rl.strategies.mutations import DEFAULT_POOL, FAMILIES, STRATEGIES
from magic_rl.strategies.rewriter import ProgrammaticRewriter, Rewriter

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


@dataclass(frozen=True)
class PoolRecord:
    """One SFT example: the seed, the strategy that rewrote it, the reasoning and the rewrite."""

    id: str
    seed: Seed
    strategy: str
    family: str
    reasoning: str
    rewrite: str

    @property
    def target(self) -> str:
        return format_target(self.reasoning, self.rewrite)


def resolve_strategies(names_or_families: Iterable[str]) -> list[str]:
    """Strategy names from strategy names, family names or `family:NAME`, deduplicated, in the
    canonical order of STRATEGIES. Raises ValueError on an unknown name."""
    wanted: set[str] = set()
    for item in names_or_families:
        name = item.removeprefix("family:")
        if item.startswith("family:") and name not in FAMILIES:
            raise ValueError(f"unknown strategy family {name!r} (families: {list(FAMILIES)})")
        if name in FAMILIES:
            wanted.update(FAMILIES[name])
        elif name in STRATEGIES:
            wanted.add(name)
        else:
            raise ValueError(
                f"unknown strategy or family {item!r} (strategies: {list(STRATEGIES)}; families, "
                f"as NAME or family:NAME: {list(FAMILIES)})"
            )
    return [s for s in STRATEGIES if s in wanted]


def build_pool(
    seeds: Sequence[Seed],
    strategies: Sequence[str] | None = None,
    *,
    rng_seed: int = 0,
    rewriter: Rewriter | None = None,
    exclude: Sequence[str] = (),
) -> list[PoolRecord]:
    """Every seed rewritten with every chosen strategy (default: `DEFAULT_POOL`, SORRY-Bench's 15
    programmatic ones; the sandbox world passes `PROGRAMMATIC`, which adds the `novel` family), minus
    `exclude` (strategy names or families). Deterministic for a given `rng_seed` and rewriter."""
    ids = [s.id for s in seeds]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"build_pool: duplicate seed ids {dup[:5]}: record ids would collide")
    dropped = set(resolve_strategies(exclude))
    chosen = [s for s in resolve_strategies(strategies or DEFAULT_POOL) if s not in dropped]
    rewriter = rewriter if rewriter is not None else ProgrammaticRewriter()
    by_strategy = {}
    for strategy in chosen:
        mutations = rewriter.rewrite(seeds, strategy, rng_seed)
        if len(mutations) != len(seeds):
            raise ValueError(
                f"build_pool: rewriter gave {len(mutations)} rewrites for {len(seeds)} seeds "
                f"with strategy {strategy!r}"
            )
        by_strategy[strategy] = mutations
    records = []
    for i, seed in enumerate(seeds):
        for strategy in chosen:
            m = by_strategy[strategy][i]
            record = PoolRecord(
                id=f"{seed.id}/{strategy}",
                seed=seed,
                strategy=strategy,
                family=STRATEGIES[strategy],
                reasoning=m.reasoning,
                rewrite=m.text,
            )
            check_record(record, f"record {record.id!r}")
            records.append(record)
    return records


def check_record(record: PoolRecord, where: str) -> None:
    """ValueError naming `where` and the field if the reasoning or rewrite is empty or tagged."""
    for name in ("reasoning", "rewrite"):
        value = getattr(record, name)
        if not value.strip():
            raise ValueError(f"{where}: field {name!r} is empty")
        if any(tag in value for tag in _TAGS):
            raise ValueError(f"{where}: field {name!r} contains a <think>/<answer> tag")


# --- JSONL ------------------------------------------------------------------------------------

_SEED_FIELDS = ("id", "text", "label", "category", "source")
_FIELDS = ("id", "strategy", "family", "reasoning", "rewrite", "seed")


def pool_row(r: PoolRecord) -> dict:
    """The JSONL row of one record: id, strategy, family, reasoning, rewrite and the seed."""
    return {
        "id": r.id,
        "strategy": r.strategy,
        "family": r.family,
        "reasoning": r.reasoning,
        "rewrite": r.rewrite,
        "seed": {k: getattr(r.seed, k) for k in _SEED_FIELDS},
    }


def write_pool(records: Iterable[PoolRecord], path: str | Path) -> Path:
    """One JSON object a line (`pool_row`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(pool_row(r), ensure_ascii=False) + "\n")
    return path


def read_pool(path: str | Path) -> list[PoolRecord]:
    """Records of a pool JSONL. Raises ValueError naming the file, line and field of a bad row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pool file not found: {path} (write one with `magic pool build`)")
    return [_parse_row(row, f"{path}:{lineno}") for lineno, row in read_jsonl_rows(path)]


def _parse_row(row: dict, where: str) -> PoolRecord:
    for name in _FIELDS:
        if name not in row:
            raise ValueError(f"{where}: missing field {name!r}")
    for name in _FIELDS[:-1]:
        if not isinstance(row[name], str):
            raise ValueError(f"{where}: field {name!r} must be a string")
    strategy, seed_row = row["strategy"], row["seed"]
    if strategy not in STRATEGIES:
        raise ValueError(f"{where}: field 'strategy': unknown strategy {strategy!r}")
    if row["family"] != STRATEGIES[strategy]:
        raise ValueError(
            f"{where}: field 'family' is {row['family']!r}, but {strategy!r} belongs to "
            f"{STRATEGIES[strategy]!r}"
        )
    if not isinstance(seed_row, dict):
        raise ValueError(f"{where}: field 'seed' must be an object")
    unknown = sorted(set(seed_row) - set(_SEED_FIELDS))
    if unknown:
        raise ValueError(f"{where}: field 'seed' has unknown keys {unknown}")
    try:
        seed = Seed(**seed_row)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: field 'seed': {e}") from None
    record = PoolRecord(
        id=row["id"],
        seed=seed,
        strategy=strategy,
        family=row["family"],
        reasoning=row["reasoning"],
        rewrite=row["rewrite"],
    )
    check_record(record, where)
    return record
