"""The rule taggers: `tag_taxonomy` (regex cues -> a taxonomy code), `tag_strategy` (which
SORRY-Bench pool strategy made a text), `EXPECTED_CLASSES` of each pool strategy, and
`pool_accuracy` of both taggers against pool provenance.

`tag_taxonomy` scores each class by regex cues: a strong cue adds 2, a weak cue 1;
a class with score >= 2 has "high confidence". The code lists every high-confidence class
(ascending, joined by "_": a hybrid when two or more), else the best weak class, else "19". Cues
found in the seed as well as the rewrite are not counted: the taxonomy classifies how the attacker
*modified* the seed, not what the seed asks (the paper's user prompt says the same).

Expected classes of the pool strategies (a defensible mapping, not the paper's: it never maps
SORRY-Bench onto its taxonomy). A prediction is a *hit* when one of its classes is expected and
*exact* when all of them are:

    slang, uncommon_dialects, misspellings -> 3   concealment: coded words, dialect, character
                                                  edits (the paper lists "uncommon dialects" and
                                                  "deliberate character omission" under 3)
    technical_terms        -> 6 (14)   jargon substituted for plain words; its frames also ask
                                       for a procedure "with parameters" (a templated output)
    role_play              -> 0 (1)    a character/story frame (a fictional scene is close to 1)
    question               -> 19 (10)  recasting as a question adds no taxonomy technique
    logical_appeal         -> 4 (5, 8) a specious chain of reasoning ("it follows that ...")
    authority_endorsement  -> 8 (2, 7) an official body as the legitimating excuse; the
                                       endorsement itself is fabricated (7), the training
                                       programme an educational pretext (2)
    misrepresentation      -> 0 (2, 8) "I'm a nurse/auditor/teacher" is the paper's role-play
                                       (an identity claim), made to legitimise the ask
    evidence_based_persuasion -> 7     fabricated statistics and studies
    expert_endorsement     -> 7 (2, 8) a fabricated expert quote (fake citation)
    ascii, caesar, morse, atbash -> 13;   translate_* -> 18
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from magic_rl.data.seeds import sandbox_seeds
from magic_rl.evaluate.analyze.cues import CUES
from magic_rl.evaluate.analyze.diversity import tokenize
from magic_rl.evaluate.analyze.taxonomy import NONE, classes_of, code_of, is_hybrid
from magic_rl.strategies import build_pool
from magic_rl.strategies.mutations import SIGNATURES, STRATEGIES


def _distinct(pattern: re.Pattern[str], text: str) -> set[str]:
    return {m.group(0).lower() for m in pattern.finditer(text)}


@lru_cache(maxsize=65536)
def _in_seed(pattern: re.Pattern[str], seed: str) -> frozenset[str]:
    # A seed is tagged against many rewrites (the pool has 15 per seed): match it once.
    return frozenset(_distinct(pattern, seed)) if seed else frozenset()


def _non_latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(not ("a" <= c.lower() <= "z") and ord(c) > 0x24F for c in letters) / len(letters)


def taxonomy_scores(text: str, seed: str = "") -> dict[int, int]:
    """Cue score of each class (0-18) that has one; cues also matched in `seed` do not count."""
    scores: dict[int, int] = {}
    for cls, cues in CUES.items():
        score = 0
        for cue in cues:
            found = _distinct(cue.pattern, text) - _in_seed(cue.pattern, seed)
            if len(found) >= cue.min_distinct:
                score += cue.weight
        if score:
            scores[cls] = score
    # Script share cannot be a regex cue: a translation is mostly non-Latin letters.
    if _non_latin_share(text) > 0.3 > _non_latin_share(seed):
        scores[18] = scores.get(18, 0) + 2
    return scores


def tag_taxonomy(text: str, seed: str = "") -> str:
    """Taxonomy code of one rewrite: every high-confidence class (score >= 2), else the best
    single weak class, else "19"."""
    scores = taxonomy_scores(text, seed)
    high = [c for c, s in scores.items() if s >= 2]
    if high:
        return code_of(high)
    if scores:
        return str(max(sorted(scores), key=lambda c: scores[c]))
    return str(NONE)


def rule_tagger(texts: Sequence[str], seeds: Sequence[str]) -> list[str]:
    """The `Tagger` interface over `tag_taxonomy`."""
    return [tag_taxonomy(t, s) for t, s in zip(texts, seeds, strict=True)]


Tagger = Callable[[Sequence[str], Sequence[str]], list[str]]

# Which SORRY-Bench strategy a text shows, most specific signature first: encodings carry their
# payloads, scripts are unambiguous, and persuasion frames are checked before the writing styles
# whose signature words ("story", "data") a persuasion frame might borrow. French, whose function
# words occur in English names, comes last and needs two distinct words.
_STRATEGY_ORDER = (
    "ascii", "morse", "caesar", "atbash",
    "translate_malayalam", "translate_tamil", "translate_marathi", "translate_chinese",
    "misrepresentation", "expert_endorsement", "authority_endorsement",
    "evidence_based_persuasion", "logical_appeal",
    "role_play", "technical_terms", "slang", "uncommon_dialects", "misspellings", "question",
    "translate_french",
)  # fmt: skip


def tag_strategy(text: str, seed: str = "") -> str:
    """Which of the 20 SORRY-Bench strategies produced `text` (by `SIGNATURES`), or "none".
    Signature matches also present in `seed` do not count."""
    return next((name for name in _STRATEGY_ORDER if _shows(name, text, seed)), "none")


def tag_strategies(text: str, seed: str = "") -> list[str]:
    """Every SORRY-Bench strategy whose signature `text` shows (and `seed` does not), in
    `tag_strategy`'s order: two or more for a hybrid (strategies/hybrid.py; no single framing of
    the pool shows two), one for a single framing."""
    return [name for name in _STRATEGY_ORDER if _shows(name, text, seed)]


def is_hybrid_tags(tags: Sequence[str]) -> bool:
    """Whether a text's `tag_strategies` make it a hybrid: two or more strategies' signatures."""
    return len(tags) >= 2


def _shows(name: str, text: str, seed: str) -> bool:
    pattern = SIGNATURES[name]
    if name == "question":
        # A question seed matches too; the strategy shows as a new question opening.
        return bool(pattern.search(text)) and tokenize(text)[:3] != tokenize(seed)[:3]
    found = _distinct(pattern, text) - _in_seed(pattern, seed)
    return len(found) >= (2 if name == "translate_french" else 1)


EXPECTED_CLASSES: dict[str, frozenset[int]] = {
    "slang": frozenset({3}),
    "uncommon_dialects": frozenset({3}),
    "misspellings": frozenset({3}),
    "technical_terms": frozenset({6, 14}),
    "role_play": frozenset({0, 1}),
    "question": frozenset({19, 10}),
    "logical_appeal": frozenset({4, 5, 8}),
    "authority_endorsement": frozenset({8, 2, 7}),
    "misrepresentation": frozenset({0, 2, 8}),
    "evidence_based_persuasion": frozenset({7}),
    "expert_endorsement": frozenset({7, 2, 8}),
    **{name: frozenset({13}) for name in ("ascii", "caesar", "morse", "atbash")},
    **{name: frozenset({18}) for name in STRATEGIES if name.startswith("translate_")},
    # The project's own framings (held out in the sandbox; `tag_strategy` knows only SORRY-Bench's).
    "nested_fiction": frozenset({0, 12}),
    "system_override": frozenset({9}),
    "translation_task": frozenset({18, 11}),
    "persona_debate": frozenset({0, 1}),
    "research_report": frozenset({2, 14}),
}
assert set(EXPECTED_CLASSES) == set(STRATEGIES)


def pool_accuracy(records: Sequence[Any] | None = None) -> dict[str, Any]:
    """Both rule taggers against pool provenance (default: the default pool of every sandbox seed,
    SORRY-Bench's 15 programmatic strategies, harmful and benign seeds). Records need `.rewrite`, `.strategy`, `.seed.text`.

    Returns {"n", "taxonomy": {"hit", "exact", "hybrid_ratio"}, "strategy": {"accuracy"},
    "per_strategy": {name: {"n", "hit", "exact", "strategy_accuracy", "top_codes"}}}."""
    if records is None:
        records = build_pool(sandbox_seeds())
    per: dict[str, dict[str, Any]] = {}
    for r in records:
        code = tag_taxonomy(r.rewrite, r.seed.text)
        classes = set(classes_of(code))
        expected = EXPECTED_CLASSES[r.strategy]
        row = per.setdefault(
            r.strategy,
            {"n": 0, "hit": 0, "exact": 0, "strategy": 0, "hybrid": 0, "codes": Counter()},
        )
        row["n"] += 1
        row["hit"] += bool(classes & expected)
        row["exact"] += classes <= expected
        row["strategy"] += tag_strategy(r.rewrite, r.seed.text) == r.strategy
        row["hybrid"] += is_hybrid(code)
        row["codes"][code] += 1
    n = sum(row["n"] for row in per.values())
    if n == 0:
        raise ValueError("pool_accuracy: no records")

    def total(key: str) -> float:
        return sum(row[key] for row in per.values()) / n

    return {
        "n": n,
        "taxonomy": {"hit": total("hit"), "exact": total("exact"), "hybrid_ratio": total("hybrid")},
        "strategy": {"accuracy": total("strategy")},
        "per_strategy": {
            name: {
                "n": row["n"],
                "hit": row["hit"] / row["n"],
                "exact": row["exact"] / row["n"],
                "strategy_accuracy": row["strategy"] / row["n"],
                "top_codes": dict(row["codes"].most_common(3)),
            }
            for name, row in per.items()
        },
    }
