"""The sandbox's own seed sets and the reader for a user's RL seed file.

Three kinds of project-authored requests live as base items in `magic_rl/assets/seeds/*.jsonl`:
`harmful` (short benchmark-style requests that NAME a harmful behaviour, never instructions),
`benign` (everyday requests) and `contrast` (benign requests that look alarming, as in XSTest:
homonyms, figures of speech, games and fiction, definitions, history, public facts, safety
questions). Each base item is expanded deterministically with paraphrase frames ("Explain how to
{howto}.", "Can you {task}?", "Hi! {text}") into a few variants. Ids are `<base id>-<variant>` where
variant 0 is the base text and variant k the k-th entry of `FRAMES`, so ids never depend on the
position of unrelated items. Splits (~80/10/10) and the `fraction` subset are decided by a stable
hash of the BASE id, so all variants of a base item share a split and splits never leak.

Departures from the paper: the reference RL seeds are 15k harmful + 15k benign prompts drawn from
public datasets; the sandbox instead uses a few hundred hand-written items (no public data copied)
so tiny models can learn them on CPU. Contrast seeds carry label `benign`, `source`
`sandbox/contrast` and their kind of contrast as `category`.

Run `python -m magic_rl.data.seeds` to print the seed-set sizes (`seed_stats()`) as JSON.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from magic_rl.data.files import decode_text, read_jsonl_rows
from magic_rl.records import Label, Seed

KINDS: tuple[str, ...] = ("harmful", "benign", "contrast")
SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_CUTS: tuple[float, float] = (0.8, 0.9)  # bucket < 0.8 -> train, < 0.9 -> val, else test
VARIANTS_PER_BASE = 2

# Append-only: a frame's position + 1 is the variant index in seed ids. Slots: `howto` is an
# activity ("kill a Python process"), `task` an imperative request ("write a haiku about the
# ocean"), `text` the whole base text, `question` a base text ending in "?", `wh` a question that
# starts with a question word (its first letter is lowered).
FRAMES: tuple[tuple[str, str], ...] = (
    ("howto", "Explain how to {howto}."),
    ("howto", "What is the best way to {howto}?"),
    ("howto", "Give me a way to {howto}."),
    ("howto", "Tell me how to {howto}."),
    ("howto", "I want to {howto}. How do I do it?"),
    ("task", "Can you {task}?"),
    ("task", "Please {task}."),
    ("task", "I need you to {task}."),
    ("task", "I'd like you to {task}."),
    ("text", "Hi! {text}"),
    ("text", "{text} Thanks!"),
    ("text", "{text} Please keep it short."),
    ("text", "Hello there. {text}"),
    ("question", "Quick question: {text}"),
    ("wh", "I was wondering, {wh}"),
)
_ACTION_SLOTS = ("howto", "task")
_QUESTION_WORDS = {"what", "how", "where", "why", "who", "when", "which", "should", "is", "are"}
_SANDBOX_ID = re.compile(r"^(?P<base>(?:harmful|benign|contrast)-[a-z_]+-\d{4})-\d+$")
_BASE_ID = re.compile(r"^(harmful|benign|contrast)-[a-z_]+-\d{4}$")


@dataclass(frozen=True)
class BaseItem:
    """One hand-written request of an asset file with the slots its frames may fill."""

    id: str
    kind: str
    text: str
    category: str
    howto: str = ""
    task: str = ""


def normalize(text: str) -> str:
    """Case- and whitespace-insensitive key used for deduplication."""
    return " ".join(text.lower().split())


def _bucket(key: str, salt: str) -> float:
    """A stable uniform number in [0, 1) for `key` (independent per `salt`)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


def split_of_base(base_id: str) -> str:
    """The split (train/val/test) of a base item, from a stable hash of its id."""
    b = _bucket(base_id, "split")
    return "train" if b < SPLIT_CUTS[0] else "val" if b < SPLIT_CUTS[1] else "test"


def base_id_of(seed_id: str) -> str:
    """The base item id of a sandbox seed id (`harmful-cybercrime-0007-2` -> `...-0007`).

    Ids that are not sandbox ids (a user's seed file) are their own base.
    """
    m = _SANDBOX_ID.match(seed_id)
    return m.group("base") if m else seed_id


def split_of(seed: Seed) -> str:
    """The split a seed belongs to; all variants of one base item share it."""
    return split_of_base(base_id_of(seed.id))


def _asset_path(kind: str):
    return resources.files("magic_rl") / "assets" / "seeds" / f"{kind}.jsonl"


def _read_base_items(kind: str) -> list[BaseItem]:
    path = _asset_path(kind)
    items: list[BaseItem] = []
    seen: dict[str, int] = {}
    for lineno, row in read_jsonl_rows(str(path)):
        where = f"{path}:{lineno}"
        for name in ("id", "text", "category"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise ValueError(f"{where}: field {name!r} must be a non-empty string")
        if not _BASE_ID.match(row["id"]) or not row["id"].startswith(f"{kind}-{row['category']}-"):
            raise ValueError(
                f"{where}: field 'id' {row['id']!r} must look like '{kind}-<category>-NNNN'"
            )
        if row["id"] in seen:
            raise ValueError(f"{where}: field 'id' {row['id']!r} repeats line {seen[row['id']]}")
        seen[row["id"]] = lineno
        items.append(
            BaseItem(
                id=row["id"],
                kind=kind,
                text=row["text"].strip(),
                category=row["category"],
                howto=row.get("howto", ""),
                task=row.get("task", ""),
            )
        )
    return items


def _fill(slot: str, template: str, item: BaseItem) -> str | None:
    """The frame's text for `item`, or None when the item lacks the slot."""
    if slot in _ACTION_SLOTS:
        value = getattr(item, slot)
        return template.format(**{slot: value}) if value else None
    if slot == "text":
        return template.format(text=item.text)
    if not item.text.endswith("?"):
        return None
    if slot == "question":
        return template.format(text=item.text)
    first = item.text.split()[0]
    if first.lower() not in _QUESTION_WORDS:
        return None
    return template.format(wh=first.lower() + item.text[len(first) :])


def variants(item: BaseItem, n: int = VARIANTS_PER_BASE) -> list[tuple[int, str]]:
    """(variant index, text) of the base text and `n` frame variants.

    One variant comes from an action frame when the item has a slot for one, the rest from text
    frames; within each group the frame is picked by a stable hash of the base id and the
    template, skipping frames that would repeat the base text (e.g. "Explain how to ..." bases).
    """
    out = [(0, item.text)]
    seen = {normalize(item.text)}
    candidates = [
        (i + 1, slot in _ACTION_SLOTS, text)
        for i, (slot, template) in enumerate(FRAMES)
        if (text := _fill(slot, template, item)) is not None
    ]
    candidates.sort(key=lambda c: _bucket(f"{item.id}|{FRAMES[c[0] - 1][1]}", "frame"))
    actions = [c for c in candidates if c[1]]
    texts = [c for c in candidates if not c[1]]
    for group, limit in ((actions, min(1, n)), (texts, n)):
        taken = 0
        for index, _, text in group:
            if taken == limit or len(out) == n + 1:
                break
            if normalize(text) not in seen:
                seen.add(normalize(text))
                out.append((index, text))
                taken += 1
    return sorted(out)


@functools.cache
def _expanded() -> tuple[tuple[str, Seed], ...]:
    """(kind, seed) for every sandbox seed, deduplicated across all kinds.

    Base texts are reserved first so a base item never loses its own text to another item's
    variant; a later variant that repeats an earlier text is dropped.
    """
    items = [item for kind in KINDS for item in _read_base_items(kind)]
    taken: set[str] = set()
    for item in items:
        key = normalize(item.text)
        if key in taken:
            raise ValueError(f"{_asset_path(item.kind)}: base item {item.id!r} repeats a text")
        taken.add(key)
    out: list[tuple[str, Seed]] = []
    for item in items:
        label: Label = "harmful" if item.kind == "harmful" else "benign"
        for index, text in variants(item):
            if index != 0:
                if normalize(text) in taken:
                    continue
                taken.add(normalize(text))
            seed = Seed(
                id=f"{item.id}-{index}",
                text=text,
                label=label,
                category=item.category,
                source=f"sandbox/{item.kind}",
            )
            out.append((item.kind, seed))
    return tuple(out)


def sandbox_seeds(
    split: str | None = None,
    kinds: Sequence[str] = KINDS,
    fraction: float = 1.0,
) -> list[Seed]:
    """The sandbox seeds of `kinds` in `split` (None = all splits).

    `fraction` keeps a deterministic subset of base items (with all their variants), nested as
    the fraction grows, so a reduced build keeps its splits disjoint.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or isinstance(kinds, str):
        raise ValueError(f"kinds must be a sequence of {KINDS}, got {kinds!r}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    out: list[Seed] = []
    for kind in kinds:
        for k, seed in _expanded():
            base = base_id_of(seed.id)
            if k != kind or _bucket(base, "fraction") >= fraction:
                continue
            if split is None or split_of_base(base) == split:
                out.append(seed)
    return out


def is_contrast(seed: Seed) -> bool:
    """A benign request that sounds harmful (the sandbox's `contrast` kind, as in XSTest's safe
    prompts): the world's base model refuses it more often than other benign requests, and phase 0
    can draw a share of its benign examples from it."""
    return seed.label != "harmful" and seed.source.endswith("contrast")


def seed_stats(fraction: float = 1.0) -> dict:
    """Sizes of the sandbox seed sets: per kind, seeds/base items, per split and per category."""
    stats: dict = {}
    for kind in KINDS:
        seeds = sandbox_seeds(kinds=(kind,), fraction=fraction)
        bases = {base_id_of(s.id) for s in seeds}
        stats[kind] = {
            "seeds": len(seeds),
            "base": len(bases),
            "splits": {sp: sum(split_of(s) == sp for s in seeds) for sp in SPLITS},
            "base_splits": {sp: sum(split_of_base(b) == sp for b in bases) for sp in SPLITS},
            "categories": dict(sorted(Counter(s.category for s in seeds).items())),
        }
    stats["total"] = {
        "seeds": sum(stats[k]["seeds"] for k in KINDS),
        "base": sum(stats[k]["base"] for k in KINDS),
    }
    return stats


# --- a user's own seed file -------------------------------------------------------------------

_LABEL_WORDS: dict[str, Label] = {
    "harmful": "harmful",
    "benign": "benign",
    "1": "harmful",
    "0": "benign",
    "true": "harmful",
    "false": "benign",
}


def parse_label(value: object, where: str) -> Label:
    """`harmful`/`benign`, 1/0 or true/false (any case) -> Label; `where` names file and line."""
    if isinstance(value, bool):
        return "harmful" if value else "benign"
    if isinstance(value, int | float) and value in (0, 1):
        return "harmful" if value == 1 else "benign"
    label = _LABEL_WORDS.get(str(value).strip().lower()) if isinstance(value, str) else None
    if label is None:
        raise ValueError(
            f"{where}: field 'label' must be harmful|benign, 1/0 or true/false, got {value!r}"
        )
    return label


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a JSONL or CSV file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        yield from read_jsonl_rows(path)
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(decode_text(path), newline=""))
        try:
            header = reader.fieldnames or []
            if "label" not in header or not {"text", "prompt"} & set(header):
                raise ValueError(
                    f"{path}:1: header must name a 'text' (or 'prompt') and a 'label' column, "
                    f"got {header}"
                )
            lineno = 1
            for row in reader:
                start, lineno = lineno + 1, reader.line_num
                if None in row:  # DictReader puts surplus fields under the key None
                    raise ValueError(
                        f"{path}:{start}: {len(header) + len(row[None])} fields, the header has "
                        f"{len(header)} (quote a text that holds commas)"
                    )
                if any(v and v.strip() for v in row.values() if isinstance(v, str)):
                    yield start, row
        except csv.Error as e:
            raise ValueError(f"{path}:{reader.line_num}: bad CSV: {e}") from None
    else:
        raise ValueError(f"{path}: seed file must be .jsonl or .csv, got {suffix or 'no suffix'!r}")


def load_seed_file(path: str | Path) -> list[Seed]:
    """Seeds from a user's JSONL or CSV file.

    Columns/fields: `text` (or `prompt`), `label` (harmful|benign, 1/0, true/false), optional `id`
    and `category`. A missing id becomes `<file stem>-<hash of the text>` so it stays put when
    rows are added; a repeated id is an error (it would break the split by id).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such seed file (data.seeds)")
    seeds: list[Seed] = []
    first_line: dict[str, int] = {}
    for lineno, row in _rows(path):
        where = f"{path}:{lineno}"
        text = row.get("text") if row.get("text") not in (None, "") else row.get("prompt")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: field 'text' (or 'prompt') must be a non-empty string")
        if row.get("label") in (None, ""):
            raise ValueError(f"{where}: field 'label' is missing")
        label = parse_label(row["label"], where)
        seed_id = row.get("id")
        if seed_id in (None, ""):
            seed_id = f"{path.stem}-{hashlib.sha256(normalize(text).encode()).hexdigest()[:12]}"
        seed_id = str(seed_id).strip()
        if seed_id in first_line:
            raise ValueError(
                f"{where}: field 'id' {seed_id!r} repeats line {first_line[seed_id]} "
                "(a row without an id repeats the text of that line)"
            )
        first_line[seed_id] = lineno
        category = row.get("category")
        seeds.append(
            Seed(
                id=seed_id,
                text=text.strip(),
                label=label,
                category=str(category).strip() if category not in (None, "") else "",
                source=f"file/{path.name}",
            )
        )
    if not seeds:
        raise ValueError(f"{path}: no seeds in file")
    return seeds


def load_seeds(
    source: str, *, split: str | None, include_contrast: bool = True, fraction: float = 1.0
) -> list[Seed]:
    """RL seeds from `source` (`data.seeds`): `sandbox` = the built-in seed sets of `split` (harmful,
    benign and, with `include_contrast`, contrast; `fraction` as in `sandbox_seeds`), else a
    user's seed file (`load_seed_file`, every row: a user's file is the training set)."""
    if source == "sandbox":
        kinds = ("harmful", "benign", "contrast") if include_contrast else ("harmful", "benign")
        return sandbox_seeds(split=split, kinds=kinds, fraction=fraction)
    return load_seed_file(source)


if __name__ == "__main__":
    print(json.dumps(seed_stats(), indent=2))
