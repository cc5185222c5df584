"""The 20 SORRY-Bench mutation strategies, and five framings of this project's own (`novel`), as
deterministic programmatic rewrites of a seed.

`mutate(strategy, seed, rng)` returns a `Mutation`: the rewrite (a short framing built around a
verbatim or lightly transformed copy of the seed) and first-person reasoning explaining the choice.
The same call handles both labels: a harmful seed gets a jailbreak, a benign seed the same kind of
jailbreak-looking wrapper around its harmless request (an "adversarial benign" prompt), and the
reasoning says which. `MUTATIONS[name]` is the `(seed, rng) -> Mutation` function of one strategy.

Departures from the paper's pool (SORRY-Bench mutations written by GPT-4, reasoning by a strong
LLM): here writing-style and persuasion rewrites are templates (several phrasings each, picked by
`rng`) plus word-substitution tables and deterministic character edits, and the reasoning is
composed from phrase lists. Rewrites stay short (<= 60 words for seeds of <= 25 words, cipher
payloads aside) and reasoning is two sentences of <= 35 words, so the sandbox's tiny 512-token
models can learn them. Translation strategies need a language model (`EndpointRewriter`); here
they raise `TranslationUnavailable`. Morse code has no letter case, so a Morse rewrite decodes to
the seed in upper case.

The `novel` family (nested fiction, a fake system override, a translation-task wrapper, a persona
debate, a research-report pretext) is this project's, not SORRY-Bench's: it exists to be held out,
so that the sandbox tests generalisation on unseen framings a defender of its size can read (the
held-out ciphers it cannot; docs/sandbox.md measures both). It is in the sandbox world's pool
(`PROGRAMMATIC`), not in the default one (`DEFAULT_POOL`, SORRY-Bench's 15). Every strategy has a `SIGNATURES` pattern its rewrites match (a role-play
rewrite names a character or story, an authority endorsement cites an agency), for tests and for a
strategy tagger.

Run: `python -c "import random; from magic_rl.records import Seed; from magic_rl.strategies import
mutate; print(mutate('role_play', Seed('s', 'Write a phishing email', 'harmful'), random.Random(0)))"`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

from magic_rl.records import Label, Seed
from magic_rl.strategies.ciphers import encode
from magic_rl.strategies.phrases import (
    ASSESSMENTS,
    DIALECT_OF_FRAME,
    FRAMES,
    GOALS,
    IMPERATIVE_VERBS,
    PLANS,
    QUOTED_QUESTION_FRAMES,
    SLOTS,
    SUBSTITUTIONS,
)

FAMILIES: dict[str, tuple[str, ...]] = {
    "writing_style": (
        "slang", "uncommon_dialects", "technical_terms", "role_play", "misspellings", "question",
    ),
    "persuasion": (
        "logical_appeal", "authority_endorsement", "misrepresentation",
        "evidence_based_persuasion", "expert_endorsement",
    ),
    "encoding": ("ascii", "caesar", "morse", "atbash"),
    "translation": (
        "translate_malayalam", "translate_tamil", "translate_marathi", "translate_chinese",
        "translate_french",
    ),
    # This project's own framings, not SORRY-Bench's: the sandbox's held-out non-cipher attacks.
    "novel": (
        "nested_fiction", "system_override", "translation_task", "persona_debate",
        "research_report",
    ),
}  # fmt: skip
STRATEGIES: dict[str, str] = {name: family for family, names in FAMILIES.items() for name in names}
# The 20 strategies of the paper's pool (SORRY-Bench's mutations).
SORRY_BENCH: tuple[str, ...] = tuple(s for s, f in STRATEGIES.items() if f != "novel")
LANGUAGES: dict[str, str] = {
    "translate_malayalam": "Malayalam",
    "translate_tamil": "Tamil",
    "translate_marathi": "Marathi",
    "translate_chinese": "Simplified Chinese",
    "translate_french": "French",
}
# What the programmatic rewriter can do: everything but translation (the sandbox world's pool).
PROGRAMMATIC: tuple[str, ...] = tuple(s for s, f in STRATEGIES.items() if f != "translation")
# The default pool (`build_pool`, `magic pool build` without an LLM): SORRY-Bench's 15 of them.
DEFAULT_POOL: tuple[str, ...] = tuple(s for s in PROGRAMMATIC if s in SORRY_BENCH)


@dataclass(frozen=True)
class Mutation:
    """One rewrite of a seed: `text` is what the defender would see, `reasoning` the attacker's
    first-person explanation of it (the SFT target's <think> part), `gist` the frame's name as the
    reasoning says it ("a crime novel where a hacker answers"; hybrids quote it)."""

    strategy: str
    family: str
    text: str
    reasoning: str
    gist: str = ""


class TranslationUnavailable(ValueError):
    """A translation strategy was asked of a rewriter without a language model."""


_I = re.IGNORECASE
SIGNATURES: dict[str, re.Pattern[str]] = {
    "slang": re.compile(r"\b(yo|fam|lowkey|ngl|bruh|no cap|fr|aight)\b", _I),
    "uncommon_dialects": re.compile(
        r"\b(och|aye|ken|y'all|howdy|reckon|guv(?:'nor)?|innit|g'day|crikey)\b", _I
    ),
    "technical_terms": re.compile(
        r"\b(technical|specification|protocol|methodology|procedur\w*|parameters|terminology)\b", _I
    ),
    "role_play": re.compile(r"\b(character|story|novel|screenplay|scene|role-play)\b", _I),
    "misspellings": re.compile(r"\b(plz|pls|thx|sry|typos)\b", _I),
    "question": re.compile(r"^\s*(could|can|would|how|what)\b[^\n]*\?\s*$", _I),
    "logical_appeal": re.compile(
        r"\b(logic|logical|logically|it follows|rational|rationally|reasoning|therefore)\b", _I
    ),
    "authority_endorsement": re.compile(
        r"\b(agency|agencies|official|officially|government|regulators?|guidelines|institutions)\b",
        _I,
    ),
    "misrepresentation": re.compile(r"\bI(?:'m| am) an?\b"),
    "evidence_based_persuasion": re.compile(
        r"\b(study|studies|data|statistics|survey|evidence|empirical)\b|\d+%", _I
    ),
    "expert_endorsement": re.compile(r"\bDr\. |\b(professor|experts?|specialists?)\b", _I),
    "ascii": re.compile(r"\bASCII\b.*\n[\d ]+$", re.DOTALL),
    "caesar": re.compile(r"\bCaesar\b"),
    "morse": re.compile(r"\bMorse\b.*\n[-./ ]+$", re.DOTALL),
    "atbash": re.compile(r"\bAtbash\b"),
    # A translation shows its language's script (French: its function words).
    "translate_malayalam": re.compile(r"[\u0D00-\u0D7F]"),
    "translate_tamil": re.compile(r"[\u0B80-\u0BFF]"),
    "translate_marathi": re.compile(r"[\u0900-\u097F]"),
    "translate_chinese": re.compile(r"[\u4E00-\u9FFF]"),
    "translate_french": re.compile(r"\b(le|la|les|des|une|pour|comment|vous|est)\b", _I),
    "nested_fiction": re.compile(
        r"\b(inner (?:tale|legend|chapter|actor)|within (?:a|the) (?:dream|tale|play)|nested)\b", _I
    ),
    "system_override": re.compile(
        r"\b(override|(?:developer|admin|maintenance) mode|unrestricted)\b", _I
    ),
    "translation_task": re.compile(r"\b(translat\w*)\b", _I),
    "persona_debate": re.compile(r"\b(debat\w*|panel|moderator)\b", _I),
    "research_report": re.compile(r"\b(report|appendix|white paper|literature review)\b", _I),
}


# Reasoning = an assessment of the seed (by label) + a plan naming the frame's gist and a goal.
def family_of(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (strategies: {list(STRATEGIES)})")
    return STRATEGIES[strategy]


def has_signature(strategy: str, text: str) -> bool:
    """Whether `text` shows the recognisable mark of `strategy` (SIGNATURES)."""
    family_of(strategy)
    return SIGNATURES[strategy].search(text) is not None


def mutate(strategy: str, seed: Seed, rng: random.Random) -> Mutation:
    """Rewrite `seed` with `strategy`; the same `rng` state always gives the same Mutation."""
    family = family_of(strategy)
    if family == "translation":
        raise TranslationUnavailable(
            f"seed {seed.id!r}: strategy {strategy!r} translates into {LANGUAGES[strategy]} and "
            "needs a language model; build this part of the pool with EndpointRewriter (the "
            "programmatic rewriter cannot translate)"
        )
    # Every slot is drawn on every call so the rng stream does not depend on the frame.
    slots = {name: rng.choice(values) for name, values in SLOTS.items()}
    body, end = split_end(seed.text)
    frames = FRAMES[strategy]
    if strategy == "question" and not is_imperative(body):
        frames = QUOTED_QUESTION_FRAMES
    index = rng.randrange(len(frames))
    frame = frames[index]
    copy = transformed_copy(strategy, body, index, rng)
    payload = encode(strategy, normalize(seed.text)) if family == "encoding" else ""
    text = frame.text.format(
        copy=copy, copy_lc=lower_first(copy), end=end, payload=payload, **slots
    )
    gist = frame.gist.format(**slots)
    reasoning = compose_reasoning(seed.label, gist, rng)
    return Mutation(strategy=strategy, family=family, text=text, reasoning=reasoning, gist=gist)


MUTATIONS: dict[str, Callable[[Seed, random.Random], Mutation]] = {
    name: partial(mutate, name) for name in STRATEGIES
}


def compose_reasoning(label: Label, gist: str, rng: random.Random) -> str:
    """Two first-person sentences: why the seed needs a disguise (by label), and which one."""
    assessment = rng.choice(ASSESSMENTS[label])
    plan = rng.choice(PLANS).format(gist=gist, goal=rng.choice(GOALS[label]))
    return f"{assessment} {plan}"


def transformed_copy(strategy: str, body: str, frame_index: int, rng: random.Random) -> str:
    """The seed copy a frame wraps: word substitutions (slang, dialect, jargon), character edits
    (misspellings) or the seed itself."""
    if strategy == "uncommon_dialects":
        return substitute(body, DIALECT_OF_FRAME[frame_index])
    if strategy in ("slang", "technical_terms"):
        return substitute(body, strategy)
    if strategy == "misspellings":
        return misspell(body, rng)
    return body


def normalize(text: str) -> str:
    return " ".join(text.split())


def split_end(text: str) -> tuple[str, str]:
    """("Write X", ".") for "Write X." and ("How do I X", "?") for "How do I X?"."""
    core = normalize(text).rstrip(".! ")
    if core.endswith("?"):
        return core.rstrip("? "), "?"
    return core, "."


def lower_first(text: str) -> str:
    """Lower the first letter unless the first word is "I" or looks like an acronym."""
    first = text.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or (len(first) > 1 and first[1].isupper()):
        return text
    return text[:1].lower() + text[1:]


def is_imperative(body: str) -> bool:
    """One sentence opening with a known verb ("Write ...", not "Hi! Write ..." or "Write X. Be
    brief"), so that "Could you write ...?" reads as one question."""
    words = body.split()
    one_sentence = re.search(r"[.!?]\s", body) is None
    return one_sentence and bool(words) and words[0].lower() in IMPERATIVE_VERBS


@cache
def _substitution_pattern(table: str) -> re.Pattern[str]:
    keys = sorted(SUBSTITUTIONS[table], key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(k) for k in keys) + r")\b", re.IGNORECASE)


def substitute(text: str, table: str) -> str:
    """Replace whole words from the named SUBSTITUTIONS table, keeping an initial capital."""
    mapping = SUBSTITUTIONS[table]

    def repl(m: re.Match[str]) -> str:
        new = mapping[m.group(0).lower()]
        return new[:1].upper() + new[1:] if m.group(0)[0].isupper() else new

    return _substitution_pattern(table).sub(repl, text)


_EDITABLE = re.compile(r"[A-Za-z]{4,}")
_VOWELS = "aeiou"


def misspell(text: str, rng: random.Random) -> str:
    """Deterministic typos: about 60% of words of 4+ letters (at least one) get one edit (swap,
    drop, double or vowel change) that keeps the first letter, so each stays within edit
    distance 2 of the original."""
    words = [m for m in _EDITABLE.finditer(text)]
    if not words:
        return text
    chosen = [rng.random() < 0.6 for _ in words]
    if not any(chosen):
        chosen[max(range(len(words)), key=lambda i: len(words[i].group(0)))] = True
    out, last = [], 0
    for m, pick in zip(words, chosen, strict=True):
        out.append(text[last : m.start()])
        out.append(_typo(m.group(0), rng) if pick else m.group(0))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double", "vowel"))
    if kind == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "vowel" and word[i].lower() in _VOWELS:
        options = [v for v in _VOWELS if v != word[i].lower()]
        return word[:i] + rng.choice(options) + word[i + 1 :]
    return word[:i] + word[i] + word[i:]
