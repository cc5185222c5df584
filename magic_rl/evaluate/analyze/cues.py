"""The rule tagger's regex cues per taxonomy class (`CUES`): a strong cue adds 2 to its class, a
weak cue 1. Cues found in the seed as well as the rewrite are not counted (see `rules`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from magic_rl.strategies.mutations import SIGNATURES


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
