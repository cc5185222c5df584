"""The paper's 20-class attack taxonomy (Appendix F.4) in 6 families, and its codes: sorted class
ids joined by "_" ("0_3" is a hybrid), "19" for none, "unknown" for an unparsed LLM answer."""

from __future__ import annotations

from collections.abc import Iterable

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


def code_name(code: str) -> str:
    """A code with its class names, for people: "role-play + encoding (0_13)"; a code that is
    not one (a malformed or hand-written label) is returned as it is."""
    try:
        ids = classes_of(code)
    except ValueError:
        return code
    if not ids:
        return code
    return f"{' + '.join(TAXONOMY[i] for i in ids)} ({code})"


def is_hybrid(code: str) -> bool:
    return "_" in code
