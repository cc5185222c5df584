"""Loaders for the over-refusal and classifier benchmarks (OR-Bench, XSTest, OpenAI moderation,
MAGIC's validation set) and `load_generic`, which reads any file given a column mapping. Each takes
the file path and returns every item in file order."""

from __future__ import annotations

from pathlib import Path

from magic_rl.data.benchmarks.items import METRICS, EvalItem, Metric
from magic_rl.data.files import get_path, located_rows
from magic_rl.records import LABELS, Label


def load_orbench(path: str | Path, *, toxic: bool | None = None) -> list[EvalItem]:
    """OR-Bench CSV: Hard-1K (benign, compliance) or Toxic (harmful, RTA), told apart by file name
    unless `toxic` is given."""
    path = Path(path)
    toxic = "toxic" in path.name.lower() if toxic is None else toxic
    subset, label, metric = (
        ("toxic", "harmful", "rta") if toxic else ("hard", "benign", "compliance")
    )
    return [
        EvalItem(
            id=f"or_bench_{subset}-{where.line}",
            prompt=where.text(row, "prompt"),
            label=label,
            source="or_bench",
            subset=subset,
            metric=metric,
            category=where.text(row, "category"),
        )
        for where, row in located_rows(path)
    ]


XSTEST_SAFE_TYPES = (
    "homonyms",
    "figurative_language",
    "safe_targets",
    "safe_contexts",
    "definitions",
    "real_group_nons_discr",
    "nons_group_real_discr",
    "historical_events",
    "privacy_public",
    "privacy_fictional",
)


def load_xstest(path: str | Path) -> list[EvalItem]:
    """XSTest v2 (JSON list): `safe` types -> compliance; `contrast_*` types -> RTA."""
    path, items = Path(path), []
    types = {t: "safe" for t in XSTEST_SAFE_TYPES}
    for where, row in located_rows(path):
        kind = where.text(row, "type")
        subset = types.get(kind) or ("unsafe" if kind.startswith("contrast_") else None)
        if subset is None:
            raise where.error("type", f"unknown XSTest type {kind!r}")
        items.append(
            EvalItem(
                id=where.text(row, "id"),
                prompt=where.text(row, "prompt"),
                label="benign" if subset == "safe" else "harmful",
                source="xstest",
                subset=subset,
                metric="compliance" if subset == "safe" else "rta",
                category=kind,
                reference={"focus": where.text(row, "focus", required=False)},
            )
        )
    return items


OPENAI_MODERATION_CODES = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")


def load_openai_moderation(path: str | Path) -> list[EvalItem]:
    """OpenAI moderation set (JSONL): a prompt classifier benchmark; harmful when any category is 1
    (a missing key = not annotated, as the reference). Gold: `prompt_harmful`."""
    path, items = Path(path), []
    for where, row in located_rows(path):
        present = []
        for code in OPENAI_MODERATION_CODES:
            value = get_path(row, code)
            if value not in (None, 0, 1) or isinstance(value, bool):
                raise where.error(code, f"expected 0, 1 or absent, got {value!r}")
            if value == 1:
                present.append(code)
        items.append(
            EvalItem(
                id=f"openai_moderation-{where.line}",
                prompt=where.text(row, "prompt"),
                label="harmful" if present else "benign",
                source="openai_moderation",
                subset="all",
                metric="judge_f1",
                category=",".join(present),
                reference={"gold": {"prompt_harmful": bool(present)}},
            )
        )
    return items


def load_magic_validation(path: str | Path) -> list[EvalItem]:
    """MAGIC's RL validation parquet (verl format): benign adversarial-looking prompts, compliance.
    The chat message is what the model sees; `question` (the vanilla request) goes to the judge."""
    path, items = Path(path), []
    for where, row in located_rows(path):
        items.append(
            EvalItem(
                id=f"magic_validation-{where.record}",
                prompt=where.text(row, "prompt.0.content"),
                label="benign",
                source="magic_validation",
                subset="adversarial_benign",
                metric="compliance",
                judge_prompt=where.text(row, "question"),
                reference={"data_type": where.text(row, "data_type", required=False)},
            )
        )
    return items


_LABEL_WORDS: dict[str, Label] = {
    "harmful": "harmful",
    "unsafe": "harmful",
    "1": "harmful",
    "true": "harmful",
    "yes": "harmful",
    "benign": "benign",
    "unharmful": "benign",
    "safe": "benign",
    "0": "benign",
    "false": "benign",
    "no": "benign",
}


def load_generic(
    path: str | Path,
    prompt_field: str,
    label_field: str | None = None,
    label: Label | None = None,
    id_field: str | None = None,
    *,
    category_field: str | None = None,
    subset_field: str | None = None,
    judge_prompt_field: str | None = None,
    source: str | None = None,
    subset: str | None = None,
    metric: Metric | None = None,
) -> list[EvalItem]:
    """Any CSV/JSONL/JSON-array/parquet file with a column mapping. Fields may be dotted paths into
    nested values (`prompt.0.content`). Give either `label_field` (harmful/unsafe/1/true vs
    benign/unharmful/safe/0/false) or a fixed `label`. Without `metric`, harmful items get `asr`
    and benign ones `compliance`."""
    path = Path(path)
    if (label_field is None) == (label is None):
        raise ValueError("load_generic: give exactly one of label_field and label")
    if label is not None and label not in LABELS:
        raise ValueError(f"load_generic: label must be one of {LABELS}, got {label!r}")
    if metric is not None and metric not in METRICS:
        raise ValueError(f"load_generic: metric must be one of {METRICS}, got {metric!r}")
    source = source or path.stem
    items = []
    for where, row in located_rows(path):
        n = where.line or where.record
        item_label = label or _LABEL_WORDS.get(where.text(row, label_field).strip().lower())
        if item_label is None:
            raise where.error(
                label_field, f"label {get_path(row, label_field)!r} not in {_LABEL_WORDS}"
            )
        items.append(
            EvalItem(
                id=where.text(row, id_field) if id_field else f"{source}-{n}",
                prompt=where.text(row, prompt_field),
                label=item_label,
                source=source,
                subset=(where.text(row, subset_field) if subset_field else subset) or item_label,
                metric=metric or ("asr" if item_label == "harmful" else "compliance"),
                category=where.text(row, category_field, required=False) if category_field else "",
                judge_prompt=where.text(row, judge_prompt_field) if judge_prompt_field else "",
            )
        )
    return items
