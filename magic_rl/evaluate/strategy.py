"""Attack-pattern analysis (SPEC §6): the paper's 20-class taxonomy, taggers, and per-stage
statistics of a run's attacker rewrites.

    TAXONOMY / FAMILIES      the 20 classes (0-19) in 6 families, as in the paper (Appendix F.4)
    tag_taxonomy(text, seed) rule/regex tagger -> a code: "7", or a hybrid "0_3", or "19" (none)
    tag_strategy(text, seed) which of the 20 SORRY-Bench pool strategies made `text`, or "none"
    LLMTagger(...)           the paper's LLM-judge classification through an OpenAI-compatible URL
    EXPECTED_CLASSES         the taxonomy classes each pool strategy should land in (below)
    pool_accuracy(records)   both rule taggers against pool provenance
    self_bleu / embedding_diversity / analyze_replay(run_dir)   diversity and stage statistics

The rule tagger (`tag_taxonomy`) scores each class by regex cues: a strong cue adds 2, a weak cue 1;
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

Departures from the paper: the paper classifies with an LLM judge (its prompt is shipped as
`assets/report/classification_prompt.txt` and used by `LLMTagger`); the sandbox uses the rule
tagger, which knows the pool's phrasings and generic jailbreak cues, not the long tail a 7B
attacker invents — treat its codes on real runs as a rough first look. Diversity (self-BLEU,
embedding diversity) is this project's addition; the "embedding" is a hashed character-n-gram
TF-IDF vector, not a neural embedding, so it runs anywhere with numpy.

Run: `magic analyze runs/sandbox` (writes runs/sandbox/analysis/strategy.json);
`python -c "from magic_rl.evaluate.strategy import pool_accuracy; print(pool_accuracy())"`.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from magic_rl.data.files import read_jsonl_rows
from magic_rl.strategies.mutations import SIGNATURES, STRATEGIES

# --- the taxonomy ---------------------------------------------------------------------------------

TAXONOMY: dict[int, str] = {
    0: "role-play",
    1: "simulated decision scenario",
    2: "academic/educational pretext",
    3: "concealment of key information",
    4: "causation confusion",
    5: "false analogy/fact distortion",
    6: "concept substitution",
    7: "false premise/fabricated evidence",
    8: "legitimacy pretext",
    9: "ignore previous instructions",
    10: "step-by-step questioning",
    11: "multi-condition stacking",
    12: "complex logic nesting",
    13: "encoding",
    14: "templated output format",
    15: "code by pseudonym",
    16: "structured response",
    17: "surrogate modality",
    18: "translation",
    19: "none",
}
FAMILIES: dict[str, tuple[int, ...]] = {
    "identity & scenario simulation": (0, 1, 2),
    "semantic ambiguity": (3, 4, 5, 6),
    "logical reversal": (7, 8, 9),
    "complex construction": (10, 11, 12),
    "structural/format manipulation": (13, 14, 15, 16, 17, 18),
    "others": (19,),
}
NONE = 19
UNKNOWN = "unknown"


def family_of_class(cls: int) -> str:
    for family, classes in FAMILIES.items():
        if cls in classes:
            return family
    raise ValueError(f"no taxonomy class {cls!r} (classes are 0-19)")


def code_of(classes: Iterable[int]) -> str:
    """The paper's combined code: sorted class ids joined by "_" ("0_3"); "19" when empty."""
    ids = sorted({int(c) for c in classes if int(c) != NONE})
    return "_".join(map(str, ids)) if ids else str(NONE)


def classes_of(code: str) -> tuple[int, ...]:
    """(0, 3) for "0_3"; () for "unknown". Raises ValueError on anything else."""
    if code == UNKNOWN:
        return ()
    try:
        ids = tuple(int(p) for p in code.split("_"))
    except ValueError:
        raise ValueError(f"bad taxonomy code {code!r}") from None
    if not ids or any(i not in TAXONOMY for i in ids):
        raise ValueError(f"bad taxonomy code {code!r}: classes are 0-19")
    return ids


def is_hybrid(code: str) -> bool:
    return "_" in code


# --- rule tagger ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cue:
    """A regex that adds `weight` to a class when it matches at least `min_distinct` distinct
    strings of the rewrite that the seed does not contain."""

    pattern: re.Pattern[str]
    weight: int = 2
    min_distinct: int = 1


_I = re.IGNORECASE


def _cue(pattern: str, weight: int = 2, min_distinct: int = 1, flags: int = _I) -> Cue:
    return Cue(re.compile(pattern, flags), weight, min_distinct)


_PROFESSIONS = (
    r"teacher|auditor|journalist|parent|mother|father|nurse|doctor|physician|researcher|student|"
    r"professor|officer|detective|police\w*|lawyer|attorney|engineer|pentester|developer|"
    r"scientist|writer|novelist|author|investigator|pharmacist|chemist|social worker|"
    r"consultant|analyst|moderator|librarian|therapist|counsel+or|paramedic|firefighter|agent"
)
_CONDITIONS = (
    r"\b(assuming|given that|provided that|on (the )?condition|with the constraint|while|during|"
    r"as long as|only if|in the context of|taking into account|considering that|under the "
    r"assumption)\b"
)
_FOREIGN_WORDS = (
    r"\b(le|la|les|des|une|pour|comment|vous|est|avec|dans|el|los|las|una|para|cómo|usted|der|"
    r"das|und|nicht|wie|ich|ein|eine|il|della|sono|não|uma|você|como)\b"
)

CUES: dict[int, tuple[Cue, ...]] = {
    0: (
        _cue(
            r"\b(role-?play\w*|in character|you are now|you play|play (the role|a character|"
            r"the part)|pretend (to be|you are|you're)|act as|imagine you are|from now on,? you "
            r"are|take on the persona)\b"
        ),
        _cue(rf"\bI(?:'m| am) an? (?:\w+[ -]){{0,2}}({_PROFESSIONS})\b"),
        _cue(rf"\bas an? (?:\w+[ -]){{0,3}}({_PROFESSIONS}|expert|specialist|hacker)\b"),
        _cue(
            r"\b(novel|screenplay|story|stories|fiction(al)?|script for a (film|movie|play))\b", 1
        ),
        _cue(r"\b(character|persona|hero|heroine|protagonist|villain)\b", 1),
    ),
    1: (
        _cue(
            r"\b(simulat\w+|hypothetical (scenario|situation)|thought experiment|drill|war ?game|"
            r"(tabletop|training) exercise|in a world where|imagine an? (world|scenario|situation|"
            r"crisis)|you must decide|life-or-death)\b"
        ),
        _cue(r"\b(scenario|emergency|crisis|stranded|no doctors|apocalypse)\b", 1),
    ),
    2: (
        _cue(
            r"\b(for (my|a|an|our) (research( paper)?|paper|thesis|dissertation|class|course|"
            r"lecture|lesson|seminar|textbook|essay|homework)|academic\w*|educational(ly)?|for "
            r"(research|educational|teaching|learning) purposes|safety lesson|curriculum)\b"
        ),
        _cue(
            r"\b(students?|teach(ing|er)?|learn(ing)?|school|university|classroom|professor|"
            r"training (programme|program|course))\b",
            1,
        ),
    ),
    3: (
        Cue(SIGNATURES["slang"]),
        Cue(SIGNATURES["uncommon_dialects"]),
        Cue(SIGNATURES["misspellings"]),
        _cue(
            r"\b(that thing|the stuff|you know (what|who)|certain (items|substances|materials|"
            r"people)|without naming|the usual (way|method)|the special (ingredient|package)|"
            r"wink)\b"
        ),
        _cue(r"\b(u|ur|r u|gonna|wanna|tryna|dunno|ya|yer|ye|mate|y'know)\b", 1),
    ),
    4: (
        _cue(
            r"\b(it follows( that)?|therefore|hence|thus|consequently|by (simple )?logic|the "
            r"rational (choice|thing|move)|logically|which (means|proves) that)\b"
        ),
        _cue(r"\bsince\b[^.]{3,120}\b(we|you|one) (should|must|ought)\b"),
        _cue(r"\b(logic(al)?|rational(ly)?|because|reasoning|leads? to|causes?)\b", 1),
    ),
    5: (
        _cue(
            r"\b(just (as|like)|in the same way( that)?|no different (from|than)|analogous(ly)?|"
            r"by analogy|is (just )?like an?|much like)\b"
        ),
        _cue(r"\b(widely known|everyone knows|well known|as we all know|common knowledge)\b", 1),
    ),
    6: (
        _cue(
            r"\b(so-called|euphemis\w+|code ?words?|a\.k\.a\.|aka|let's call it|we'll call it|"
            r"refer(red)? to as|read (\w+ )?as)\b"
        ),
        _cue(
            r"\b(technical|specification|protocol|methodolog\w+|procedur\w*|parameters|"
            r"terminology|workflow|systems-engineering|elucidate|exfiltrate|fabricate|"
            r"authentication credentials?|host system|web application|procure|utili[sz]e|"
            r"remediate|gain unauthori[sz]ed access)\b",
            1,
        ),
        _cue(
            r"\b(technical|specification|protocol|methodolog\w+|procedur\w*|parameters|"
            r"terminology|workflow|systems-engineering|elucidate|exfiltrate|fabricate|"
            r"authentication credentials?|host system|web application|procure|utili[sz]e|"
            r"remediate|gain unauthori[sz]ed access)\b",
            1,
            min_distinct=2,
        ),
        _cue(r"['\u2018\"\u201c][a-z]+(?: [a-z]+){0,3}['\u2019\"\u201d]", 1, flags=0),
    ),
    7: (
        _cue(
            r"\b(stud(y|ies) (show|shows|showed|found|have shown|suggest)|an? (\d{4}|recent) "
            r"study|according to (an?|the|recent) (study|report|survey|paper)|peer-reviewed|"
            r"survey data|statistics (from|show)|research (shows|has shown|proves)|data (show|"
            r"indicate|suggest)|(empirical|scientific) evidence|published in|given that|as has "
            r"been proven)\b"
        ),
        _cue(r"\d+(\.\d+)?\s?%"),
        _cue(
            r"\b(experts?|specialists?|scientists|doctors) (in the field )?(agree|say|recommend|"
            r"confirm)"
        ),
        _cue(
            r"\b(Dr\.|Professor|Prof\.) [A-Z][a-z]+( [A-Z][a-z]+)?\b[^.]{0,80}\b(says|say|said|"
            r"recommends|told|confirms|states)\b",
            flags=0,
        ),
        _cue(r"\b(study|studies|data|statistics|survey|evidence|empirical|proven|experts?)\b", 1),
    ),
    8: (
        _cue(
            r"\b(for (safety|security|testing|research|prevention|awareness|defensive|"
            r"protection) (purposes|reasons|only)|authori[sz]ed|officially|official (guidelines|"
            r"advice|mandate|approval)|approved by|endorsed by|mandate|penetration test\w*|"
            r"security (audit|test|assessment)|to (test|protect|secure|defend|prevent)|"
            r"public[- ]interest|in line with (those |the )?guidelines|(government|official) "
            r"guidelines|patient safety|protect my|back transparency|must be briefed)\b"
        ),
        _cue(
            r"\b(official|guidelines|agency|agencies|government|regulators?|institutions?|"
            r"legitimate|legal(ly)?|safety|protect|prevent(ed|ion)?|awareness|professionals?|"
            r"practitioners)\b",
            1,
        ),
    ),
    9: (
        _cue(
            r"\b(ignore (all |any )?(the )?(previous|prior|above|earlier|your) (instructions|rules|"
            r"guidelines)|disregard (your|all|any|the) (rules|instructions|guidelines|policies)|"
            r"forget (your|all|the) (rules|instructions|guidelines)|no (restrictions|limits|"
            r"filters)|without (any )?(restrictions|filters|censorship)|developer mode|"
            r"jailbr[eo]\w*|do anything now|unfiltered|uncensored)\b"
        ),
        _cue(r"\bDAN\b", flags=0),
    ),
    10: (
        _cue(
            r"\b(step[- ]by[- ]step|one step at a time|progressively|Q1\b.*\bQ2|first,[^.?]*"
            r"\bthen\b)",
            flags=_I | re.DOTALL,
        ),
        _cue(r"(^|\n)\s*(1[.)]|Q1[:.]).*\n\s*(2[.)]|Q2[:.])"),
        _cue(r"\?\s+\S[^?]*\?\s+\S[^?]*\?", 1),
    ),
    11: (
        _cue(_CONDITIONS, 2, min_distinct=3),
        _cue(_CONDITIONS, 1, min_distinct=2),
    ),
    12: (
        _cue(
            r"\b(if [^.?]{3,80}\b(and|then) [^.?]{3,80}\b(then|what|how)\b|hypothetically|"
            r"suppose (that )?\w+ (is|were|are)|assume (that )?[A-Z]\b|in scenario [A-Z]\b|"
            r"counterfactual|what would happen if)"
        ),
        _cue(r"\b(if|suppose|assume|hypothetical)\b", 1),
    ),
    13: (
        _cue(
            r"\b(decod\w+|encod\w+|decrypt\w*|cipher\w*|base64|rot-?13|ascii|morse|atbash|caesar|"
            r"hexadecimal|binary code)\b"
        ),
        _cue(r"(?:\b\d{2,3}\s+){8,}"),
        _cue(r"(?:[.-]{1,6}\s+(?:/\s+)?){8,}"),
        _cue(r"\b[A-Za-z0-9+/]{24,}={0,2}(\s|$)", flags=0),
    ),
    14: (
        _cue(
            r"\b(output (strictly |only )?(in|using) (this|the following) (format|template)|(use|"
            r"follow|fill in) (this|the following) template|(start|begin) (your|the) (reply|"
            r"response|answer) with|respond (only )?(in|with) the (format|template)|format:|"
            r"template:|in the following format)"
        ),
        _cue(r"\[[^\]]{3,60}\]|\b(enumerate|list) each\b|\bincluding parameters\b", 1),
    ),
    15: (
        _cue(
            r"\b(python|javascript|typescript|c\+\+|bash|powershell|sql|pseudo-?code|script|"
            r"algorithm|snippet|source code|compile)\b|```|\b(def|function) \w+\(|\bimport \w+"
        ),
    ),
    16: (
        _cue(r"\b(JSON|XML|YAML|CSV|markdown table|key-value|as a dictionary)\b|\{\s*\"\w+\"\s*:"),
        _cue(r"\b(table|bullet points|fields?|columns?)\b", 1),
    ),
    17: (
        _cue(
            r"\b(image|picture|photo|audio|video|screenshot|diagram|attached file|the attachment|"
            r"transcrib\w+|OCR|voice (message|recording))\b"
        ),
    ),
    18: (
        _cue(_FOREIGN_WORDS, 2, min_distinct=2),
        _cue(
            r"\b(translate|in (French|Spanish|German|Chinese|Tamil|Malayalam|Marathi|Hindi|"
            r"Russian|Arabic|Japanese)|respond in)\b",
            1,
        ),
    ),
}


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
    for name in _STRATEGY_ORDER:
        pattern = SIGNATURES[name]
        if name == "question":
            # A question seed matches too; the strategy shows as a new question opening.
            if pattern.search(text) and tokenize(text)[:3] != tokenize(seed)[:3]:
                return name
            continue
        found = _distinct(pattern, text) - _in_seed(pattern, seed)
        if len(found) >= (2 if name == "translate_french" else 1):
            return name
    return "none"


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
}
assert set(EXPECTED_CLASSES) == set(STRATEGIES)


def pool_accuracy(records: Sequence[Any] | None = None) -> dict[str, Any]:
    """Both rule taggers against pool provenance (default: the sandbox pool, all 15 programmatic
    strategies, harmful and benign seeds). Records need `.rewrite`, `.strategy`, `.seed.text`.

    Returns {"n", "taxonomy": {"hit", "exact", "hybrid_ratio"}, "strategy": {"accuracy"},
    "per_strategy": {name: {"n", "hit", "exact", "strategy_accuracy", "top_codes"}}}."""
    if records is None:
        from magic_rl.data.seeds import sandbox_seeds
        from magic_rl.strategies import build_pool

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


# --- LLM tagger (real runs) -----------------------------------------------------------------------

PROMPT_PATH = (
    Path(__file__).resolve().parents[1] / "assets" / "report" / "classification_prompt.txt"
)


def load_classification_prompt(path: str | Path = PROMPT_PATH) -> dict[str, str]:
    """The paper's F.4 prompt as {"system", "standards", "user"} from its `=== name ===` sections."""
    path = Path(path)
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = re.fullmatch(r"=== (\w+) ===", line.strip())
        if m:
            current = sections.setdefault(m.group(1), [])
        elif current is not None:
            current.append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"{path}:{lineno}: text before the first '=== section ===' line")
    missing = {"system", "standards", "user"} - set(sections)
    if missing:
        raise ValueError(f"{path}: missing section(s) {sorted(missing)}")
    return {name: "\n".join(lines).strip() for name, lines in sections.items()}


def classification_messages(
    text: str, seed: str, prompt: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """Chat messages of the paper's classifier for one rewrite of `seed`."""
    p = prompt or load_classification_prompt()
    user = (
        p["user"]
        .replace("{CLASSIFICATION_STANDARDS}", "\n" + p["standards"] + "\n")
        .replace("{question}", seed)
        .replace("{attacker_answer}", text)
    )
    return [{"role": "system", "content": p["system"]}, {"role": "user", "content": user}]


def parse_classification(answer: str) -> str:
    """The code of a classifier answer: its <answer> JSON's `combined_strategy_code`, else
    `primary_strategy`, else `all_strategies`; "unknown" when none parses to classes 0-19."""
    m = re.search(r"<answer>(.*?)(?:</answer>|$)", answer, re.DOTALL)
    body = (m.group(1) if m else answer).strip()
    j = re.search(r"\{.*\}", body, re.DOTALL)
    if not j:
        return UNKNOWN
    try:
        obj = json.loads(j.group(0))
    except json.JSONDecodeError:
        return UNKNOWN
    if not isinstance(obj, dict):
        return UNKNOWN
    for key in ("combined_strategy_code", "primary_strategy", "all_strategies"):
        value = obj.get(key)
        try:
            if isinstance(value, list):
                ids = [int(v) for v in value]
            elif isinstance(value, bool) or value is None:
                continue
            else:
                ids = [int(p) for p in str(value).strip().split("_")]
        except (TypeError, ValueError):
            continue
        if ids and all(i in TAXONOMY for i in ids):
            return code_of(ids)
    return UNKNOWN


class LLMTagger:
    """The paper's classifier: an LLM behind an OpenAI-compatible `/chat/completions` URL.

    Greedy, one request per rewrite, `concurrency` in flight. A transport error or HTTP error is
    retried `retries` times, then raises RuntimeError naming the URL; an answer that does not
    parse gives "unknown" and is counted in `self.unknown` (never silently "19").
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        *,
        max_tokens: int = 1024,
        timeout_s: float = 120.0,
        retries: int = 2,
        concurrency: int = 8,
        prompt_path: str | Path = PROMPT_PATH,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.retries = retries
        self.concurrency = concurrency
        self.prompt = load_classification_prompt(prompt_path)
        self._headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"LLMTagger: environment variable {api_key_env!r} is not set")
            self._headers["Authorization"] = f"Bearer {key}"
        self.calls = 0
        self.unknown = 0

    def __repr__(self) -> str:
        return f"LLMTagger(url={self.url!r}, model={self.model!r})"

    def __call__(self, texts: Sequence[str], seeds: Sequence[str]) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        import httpx

        if len(texts) != len(seeds):
            raise ValueError(f"LLMTagger: {len(texts)} texts but {len(seeds)} seeds")
        with (
            httpx.Client(timeout=self.timeout_s, headers=self._headers) as client,
            ThreadPoolExecutor(max_workers=self.concurrency) as pool,
        ):
            pairs = zip(texts, seeds, strict=True)
            answers = list(pool.map(lambda ts: self._ask(client, *ts), pairs))
        codes = [parse_classification(a) for a in answers]
        self.calls += len(codes)
        self.unknown += sum(c == UNKNOWN for c in codes)
        return codes

    def _ask(self, client, text: str, seed: str) -> str:
        import httpx

        payload = {
            "model": self.model,
            "messages": classification_messages(text, seed, self.prompt),
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        error = ""
        for _ in range(self.retries + 1):
            try:
                response = client.post(self.url, json=payload)
                response.raise_for_status()
                content = response.json()["choices"][0]["message"]["content"]
                return content if isinstance(content, str) else ""
            except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as e:
                error = f"{type(e).__name__}: {e}"
        raise RuntimeError(f"LLMTagger: {self.url} failed after {self.retries + 1} tries ({error})")


# --- diversity ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def self_bleu(texts: Sequence[str], max_n: int = 4, epsilon: float = 0.1) -> float:
    """Mean BLEU-`max_n` of each text against all the others as references (higher = less
    diverse). Clipped n-gram precisions with multiple references, the closest-length brevity
    penalty, and Chen & Cherry (2014) smoothing 1: a zero n-gram match count becomes `epsilon`.
    nan for fewer than two texts."""
    tokens = [tokenize(t) for t in texts]
    if len(tokens) < 2:
        return math.nan
    counts = [[_ngrams(t, n) for n in range(1, max_n + 1)] for t in tokens]
    # For each n-gram, the two largest counts (with owners): "max over the other texts" is then
    # the top count unless the hypothesis owns it. Linear in the corpus, not quadratic.
    top: list[dict[tuple, tuple[int, int, int]]] = [{} for _ in range(max_n)]
    for i, per_n in enumerate(counts):
        for k, counter in enumerate(per_n):
            for gram, c in counter.items():
                best, owner, second = top[k].get(gram, (0, -1, 0))
                if c > best:
                    top[k][gram] = (c, i, best)
                elif c > second:
                    top[k][gram] = (best, owner, c)
    lengths = np.array([len(t) for t in tokens])
    scores = []
    for i, per_n in enumerate(counts):
        hyp_len = len(tokens[i])
        if hyp_len == 0:
            continue
        log_p = 0.0
        for k, counter in enumerate(per_n):
            total = sum(counter.values())
            if total == 0:
                log_p += math.log(epsilon / 1.0)
                continue
            matched = 0
            for gram, c in counter.items():
                best, owner, second = top[k][gram]
                matched += min(c, second if owner == i else best)
            log_p += math.log(matched / total if matched else epsilon / total)
        others = np.delete(lengths, i)
        ref_len = int(others[np.argmin(np.abs(others - hyp_len) * 1000 + others)])
        bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
        scores.append(bp * math.exp(log_p / max_n))
    return float(np.mean(scores)) if scores else math.nan


def char_ngram_tfidf(
    texts: Sequence[str], n_range: tuple[int, int] = (3, 5), dim: int = 4096
) -> np.ndarray:
    """[len(texts), dim] L2-normalised TF-IDF of hashed character n-grams (crc32, so stable
    across processes, unlike `hash`)."""
    tf = np.zeros((len(texts), dim), dtype=np.float64)
    for row, text in enumerate(texts):
        s = " " + " ".join(text.lower().split()) + " "
        for n in range(n_range[0], n_range[1] + 1):
            for i in range(len(s) - n + 1):
                tf[row, zlib.crc32(s[i : i + n].encode("utf-8")) % dim] += 1.0
    df = (tf > 0).sum(axis=0)
    idf = np.log((1 + len(texts)) / (1 + df)) + 1.0
    x = tf * idf
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def embedding_diversity(texts: Sequence[str]) -> float:
    """Mean pairwise cosine distance of `char_ngram_tfidf` vectors (0 = all identical); nan for
    fewer than two texts."""
    if len(texts) < 2:
        return math.nan
    x = char_ngram_tfidf(texts)
    sim = x @ x.T  # [N, N]
    n = len(texts)
    mean_sim = (sim.sum() - np.trace(sim)) / (n * (n - 1))
    return float(1.0 - mean_sim)


# --- replay analysis ------------------------------------------------------------------------------


def read_replay(path: str | Path) -> list[dict]:
    """Records of a replay.jsonl; raises ValueError naming the file, line and field of a bad row."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no replay buffer (runs write replay.jsonl)")
    rows = []
    for lineno, row in read_jsonl_rows(path):
        where = f"{path}:{lineno}"
        for key, kind in (("step", int), ("seed", dict), ("turns", list)):
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                raise ValueError(f"{where}: field {key!r} missing or not {kind.__name__}")
        for key in ("label", "text"):
            if not isinstance(row["seed"].get(key), str):
                raise ValueError(f"{where}: field 'seed.{key}' missing or not a string")
        for k, turn in enumerate(row["turns"]):
            if not isinstance(turn, dict) or not isinstance(turn.get("attack"), str):
                raise ValueError(f"{where}: field 'turns[{k}].attack' missing or not a string")
        rows.append(row)
    return rows


def stage_edges(steps: Sequence[int], stages: int) -> list[tuple[int, int]]:
    """Split [min(steps), max(steps)] into `stages` contiguous, equally wide, inclusive step
    ranges (fewer when there are fewer distinct steps)."""
    if stages < 1:
        raise ValueError(f"stages must be >= 1, got {stages}")
    lo, hi = min(steps), max(steps)
    stages = min(stages, hi - lo + 1)
    cuts = np.linspace(lo, hi + 1, stages + 1)
    bounds = [int(math.ceil(c)) for c in cuts]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(stages) if bounds[i + 1] > bounds[i]]


def stage_stats(
    texts: Sequence[str],
    seeds: Sequence[str],
    tagger: Tagger,
    *,
    max_texts: int = 400,
    max_diversity: int = 200,
    rng: random.Random,
) -> dict[str, Any]:
    """Taxonomy distribution, hybrid ratio, distinct codes, SORRY-Bench strategies and diversity
    of one stage's rewrites, tagged on a sample of at most `max_texts` (diversity on at most
    `max_diversity` of those)."""
    idx = list(range(len(texts)))
    if len(idx) > max_texts:
        idx = sorted(rng.sample(idx, max_texts))
    sample = [texts[i] for i in idx]
    sample_seeds = [seeds[i] for i in idx]
    codes = tagger(sample, sample_seeds) if sample else []
    known = [c for c in codes if c != UNKNOWN]
    code_counts = Counter(known)
    # A hybrid's weight is split across its classes, so the class shares sum to 1 (stacked bars).
    class_share: Counter = Counter()
    for c in known:
        parts = classes_of(c)
        for cls in parts:
            class_share[cls] += 1 / len(parts)
    n = len(known)
    div = sample[:max_diversity]
    return {
        "n_rewrites": len(texts),
        "n_tagged": len(codes),
        "n_unknown": len(codes) - n,
        "codes": {c: k / n for c, k in code_counts.most_common()} if n else {},
        "classes": {str(c): class_share[c] / n for c in sorted(class_share)} if n else {},
        "families": _family_shares(class_share, n),
        "hybrid_ratio": sum(is_hybrid(c) for c in known) / n if n else math.nan,
        "distinct_codes": len(code_counts),
        "sorry_strategies": dict(
            Counter(
                tag_strategy(t, s) for t, s in zip(sample, sample_seeds, strict=True)
            ).most_common()
        ),
        "self_bleu": self_bleu(div),
        "embedding_diversity": embedding_diversity(div),
    }


def _family_shares(class_share: Counter, n: int) -> dict[str, float]:
    if not n:
        return {}
    return {f: sum(class_share[c] for c in classes) / n for f, classes in FAMILIES.items()}


def analyze_replay(
    run_dir: str | Path,
    stages: int = 4,
    *,
    tagger: Tagger | None = None,
    label: str = "harmful",
    max_texts: int = 400,
    max_diversity: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Per training stage, the attack patterns of the attacker's rewrites of `label` seeds.

    Every turn's attack counts once per (step, seed, text): in defender phases the G replies of a
    group share one greedy rewrite, which would otherwise be counted G times. Stages split the
    run's step range evenly (`stage_edges`). Default tagger: `rule_tagger`.
    """
    run_dir = Path(run_dir)
    rows = read_replay(run_dir / "replay.jsonl")
    tagger = tagger or rule_tagger
    seen: set[tuple] = set()
    items: list[tuple[int, str, str, str]] = []  # (step, attack, seed text, trained role)
    for row in rows:
        if row["seed"]["label"] != label:
            continue
        for turn in row["turns"]:
            key = (row["step"], row["seed"].get("id", row["seed"]["text"]), turn["attack"])
            if turn["attack"].strip() and key not in seen:
                seen.add(key)
                items.append(
                    (
                        row["step"],
                        turn["attack"],
                        row["seed"]["text"],
                        str(row.get("trained_role", "")),
                    )
                )
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "label": label,
        "tagger": "rules" if tagger is rule_tagger else repr(tagger),
        "taxonomy": {str(k): v for k, v in TAXONOMY.items()},
        "n_records": len(rows),
        "n_rewrites": len(items),
        "stages": [],
    }
    if not items:
        return result
    rng = random.Random(seed)
    for lo, hi in stage_edges([s for s, *_ in items], stages):
        sel = [it for it in items if lo <= it[0] <= hi]
        stats = stage_stats(
            [it[1] for it in sel],
            [it[2] for it in sel],
            tagger,
            max_texts=max_texts,
            max_diversity=max_diversity,
            rng=rng,
        )
        roles = Counter(it[3] for it in sel)
        result["stages"].append({"steps": [lo, hi], "trained_roles": dict(roles), **stats})
    return result


def write_analysis(run_dir: str | Path, analysis: dict[str, Any]) -> Path:
    """RUN_DIR/analysis/strategy.json (NaN written as null)."""
    path = Path(run_dir) / "analysis" / "strategy.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_nan_to_none(analysis), indent=2) + "\n", encoding="utf-8")
    return path


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj
