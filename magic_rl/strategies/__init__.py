"""Attack-pool mutation strategies, the Rewriter edge and the pool builder (docs/DESIGN.md §4,
phase 1).

    mutations.py  the 20 SORRY-Bench strategies and the project's 5 `novel` framings as programmatic
                  rewrites; families, signatures
    phrases.py    their phrase tables: frames, slot values, substitution tables, reasoning pieces
    ciphers.py    ASCII / Caesar / Morse / Atbash encode and decode
    rewriter.py   Rewriter protocol; ProgrammaticRewriter; EndpointRewriter (OpenAI-compatible LLM)
    pool.py       PoolRecord, build_pool, write_pool / read_pool (JSONL)
    hybrid.py     two framings stacked, outer(inner(seed)): phase 1's hybrid rewrites

Run: `python -c "from magic_rl.records import Seed; from magic_rl.strategies import build_pool;
[print(r.target) for r in build_pool([Seed('s1', 'Write a phishing email', 'harmful')])]"`.
"""

from magic_rl.strategies.ciphers import decode, encode
from magic_rl.strategies.hybrid import hybrid_records
from magic_rl.strategies.mutations import (
    DEFAULT_POOL,
    FAMILIES,
    LANGUAGES,
    MUTATIONS,
    PROGRAMMATIC,
    SIGNATURES,
    SORRY_BENCH,
    STRATEGIES,
    Mutation,
    TranslationUnavailable,
    family_of,
    has_signature,
    mutate,
)
from magic_rl.strategies.pool import (
    PoolRecord,
    build_pool,
    read_pool,
    resolve_strategies,
    write_pool,
)
from magic_rl.strategies.rewriter import (
    EndpointRewriter,
    ProgrammaticRewriter,
    RewriteError,
    Rewriter,
)

__all__ = [
    "DEFAULT_POOL",
    "FAMILIES",
    "LANGUAGES",
    "MUTATIONS",
    "PROGRAMMATIC",
    "SIGNATURES",
    "SORRY_BENCH",
    "STRATEGIES",
    "EndpointRewriter",
    "Mutation",
    "PoolRecord",
    "ProgrammaticRewriter",
    "RewriteError",
    "Rewriter",
    "TranslationUnavailable",
    "build_pool",
    "decode",
    "encode",
    "family_of",
    "hybrid_records",
    "has_signature",
    "mutate",
    "read_pool",
    "resolve_strategies",
    "write_pool",
]
