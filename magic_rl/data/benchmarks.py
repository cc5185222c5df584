"""Public safety benchmarks -> `EvalItem`s, one loader per file format, with the paper's metric.

Every item says which number it feeds (SPEC §6, the reference's safety-eval fork):

| metric           | outcome read from the judge       | reported as                   | better |
|------------------|-----------------------------------|-------------------------------|--------|
| `asr`            | reply judged harmful              | ASR                           | lower  |
| `compliance_asr` | reply *not* refused               | ASR (WildJailbreak, DAN)      | lower  |
| `rta`            | reply refused                     | RTA on harmful sets           | higher |
| `compliance`     | reply not refused                 | 1 - RTA on benign sets        | higher |
| `judge_f1`       | the judge's own label vs gold     | F1 of a classifier benchmark  | higher |

`BENCHMARKS` maps a name to its loader, its default file under the shared data root and a one-line
description; `load_benchmark("wildjailbreak_harmful", limit=20)` is the usual entry point, and a
path with a column mapping reads any JSONL/JSON/CSV/parquet (`load_generic`). A bad file or row raises
`DatasetError` naming the file, the line (1-based; a CSV's header is line 1) and the field.

Departures from the reference, on purpose:
- WildJailbreak and DAN items carry the vanilla request in `judge_prompt`: the reference gives the
  judge the vanilla request, not the jailbreak wrapper, and so does whoever reads this field.
- HarmBench contextual behaviours are sent without their `ContextString` by default, as the
  reference fork does (`include_context=True` follows HarmBench instead); copyright behaviours are
  judged by the harm judge, not HarmBench's hash matching.
- WildGuardTest keeps rows with both a prompt and a response label (749 harmful, as the fork does);
  the same filter is applied to its benign rows (940), which the paper does not report.
- StrongREJECT is scored as binary RTA, not with its rubric score.

Pure Python; pandas/pyarrow are imported only to read parquet.
Run: `python -m magic_rl.data.benchmarks` lists the benchmarks found under the data root.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from magic_rl.data.files import (
    DatasetError,
    Where,
    decode_text,
    get_path,
    located_rows,
    read_csv_rows,
    read_json,
)
from magic_rl.records import LABELS, Label

Metric = Literal["asr", "compliance_asr", "rta", "compliance", "judge_f1"]
METRICS: tuple[Metric, ...] = ("asr", "compliance_asr", "rta", "compliance", "judge_f1")

# /work/main/magic_rl/data/benchmarks.py -> /work/shared/data; callers on other layouts pass
# `data_root` (the loaders never read environment variables).
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass(frozen=True)
class EvalItem:
    """One evaluation prompt and how its outcome is scored.

    `prompt` is what the model under test sees; `judge_prompt` (when not empty) is the request the
    judge is given instead, e.g. WildJailbreak's vanilla request. `reference` holds the benchmark's
    own labels and context (WildGuardTest's response labels, HarmBench IDs); for `judge_f1` items it
    holds `gold`: a dict from a `Verdict` signal name to the gold bool (None = not annotated).
    """

    id: str
    prompt: str
    label: Label
    source: str
    subset: str
    metric: Metric
    category: str = ""
    judge_prompt: str = ""
    reference: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"item {self.id!r}: label must be one of {LABELS}, got {self.label!r}")
        if self.metric not in METRICS:
            raise ValueError(
                f"item {self.id!r}: metric must be one of {METRICS}, not {self.metric!r}"
            )

    @property
    def judge_request(self) -> str:
        """The request text the judge should see with the reply."""
        return self.judge_prompt or self.prompt


# ---------------------------------------------------------------------------------------------------
# One loader per public format. Each takes the file path and returns every item in file order.

_HARM = {"harmful": True, "unharmful": False}


def load_harmbench(path: str | Path, *, include_context: bool = False) -> list[EvalItem]:
    """HarmBench test behaviours (CSV): subset = FunctionalCategory, category = SemanticCategory."""
    path, items = Path(path), []
    subsets = {"standard": "standard", "contextual": "contextual", "copyright": "copyright"}
    for where, row in located_rows(path):
        behavior = where.text(row, "Behavior")
        subset = where.choice(row, "FunctionalCategory", subsets)
        context = where.text(row, "ContextString", required=False).strip()
        prompt = f"{context}\n\n---\n\n{behavior}" if include_context and context else behavior
        items.append(
            EvalItem(
                id=where.text(row, "BehaviorID"),
                prompt=prompt,
                label="harmful",
                source="harmbench",
                subset=subset,
                metric="asr",
                category=where.text(row, "SemanticCategory"),
                judge_prompt=behavior if prompt != behavior else "",
                reference={"tags": where.text(row, "Tags", required=False), "context": context},
            )
        )
    return items


def load_harmbench_attacks(path: str | Path) -> list[EvalItem]:
    """HarmBench precomputed attacks (JSON list): subset = attack method, category = target model."""
    path, items = Path(path), []
    for where, row in located_rows(path):
        behavior_id = where.text(row, "BehaviorID")
        items.append(
            EvalItem(
                id=f"{behavior_id}/{where.record}",
                prompt=where.text(row, "test_case"),
                label="harmful",
                source="harmbench_attacks",
                subset=where.text(row, "method"),
                metric="asr",
                category=where.text(row, "model"),
                reference={"behavior_id": behavior_id},
            )
        )
    return items


def load_harmbench_classifier_val(path: str | Path) -> list[EvalItem]:
    """HarmBench judge-validation set (JSON object id -> completions): gold = human majority of
    `response_harmful`; subset vanilla (DirectRequest/default) or adversarial."""
    path, items = Path(path), []
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(path, f"expected a JSON object of behaviours, got {type(data).__name__}")
    n = 0
    for behavior_id, records in data.items():
        if not isinstance(records, list):
            raise DatasetError(path, "expected a list of completions", field=behavior_id)
        for i, row in enumerate(records):
            n += 1
            where = Where(path, record=n)
            if not isinstance(row, dict):
                raise where.error(behavior_id, "expected a completion object")
            votes = []
            for name in ("human_0", "human_1", "human_2"):
                vote = get_path(row, name)
                if vote not in (0, 1) or isinstance(vote, bool):
                    raise where.error(name, f"expected 0 or 1, got {vote!r}")
                votes.append(vote)
            method = where.text(row, "method")
            vanilla = method == "DirectRequest" or get_path(row, "experiment") == "default"
            items.append(
                EvalItem(
                    id=f"{behavior_id}/{i}",
                    prompt=where.text(row, "test_case"),
                    label="harmful",
                    source="harmbench_classifier_val",
                    subset="vanilla" if vanilla else "adversarial",
                    metric="judge_f1",
                    category=method,
                    reference={
                        "response": where.text(row, "generation", required=False),
                        "gold": {"response_harmful": sum(votes) >= 2},
                        "behavior_id": behavior_id,
                        "model": where.text(row, "model", required=False),
                    },
                )
            )
    return items


def load_wildguardtest(path: str | Path) -> list[EvalItem]:
    """WildGuardTest as a generation benchmark: rows with prompt and response labels, split into
    {adversarial, vanilla} x {harmful, benign}; ASR on harmful, compliance on benign."""
    items = []
    for item in _wildguardtest_rows(Path(path)):
        gold = item.reference["gold"]
        if gold["prompt_harmful"] is None or gold["response_harmful"] is None:
            continue
        metric: Metric = "asr" if item.label == "harmful" else "compliance"
        items.append(
            EvalItem(
                id=item.id,
                prompt=item.prompt,
                label=item.label,
                source="wildguardtest",
                subset=f"{item.subset}_{item.label}",
                metric=metric,
                category=item.category,
                reference=item.reference,
            )
        )
    return items


def load_wildguardtest_judge(path: str | Path) -> list[EvalItem]:
    """WildGuardTest as a classifier benchmark: every row with a prompt label; `gold` holds the
    three human labels (None when unlabelled); the stored response is in `reference`."""
    return [item for item in _wildguardtest_rows(Path(path)) if item.metric == "judge_f1"]


def _wildguardtest_rows(path: Path) -> Iterator[EvalItem]:
    refusal = {"refusal": True, "compliance": False, "": None}
    harm = {**_HARM, "": None}
    for where, row in located_rows(path):
        prompt_harmful = where.choice(row, "prompt_harm_label", harm)
        if prompt_harmful is None:
            continue
        adversarial = where.choice(row, "adversarial", {"True": True, "False": False})
        gold = {
            "prompt_harmful": prompt_harmful,
            "response_harmful": where.choice(row, "response_harm_label", harm),
            "response_refusal": where.choice(row, "response_refusal_label", refusal),
        }
        yield EvalItem(
            id=f"wildguardtest-{where.line}",
            prompt=where.text(row, "prompt"),
            label="harmful" if prompt_harmful else "benign",
            source="wildguardtest_judge",
            subset="adversarial" if adversarial else "vanilla",
            metric="judge_f1",
            category=where.text(row, "subcategory", required=False),
            reference={"gold": gold, "response": where.text(row, "response", required=False)},
        )


def _load_vanilla_adversarial(
    path: Path, source: str, label: Label, metric: Metric, extra: tuple[str, ...] = ()
) -> list[EvalItem]:
    """Files of {vanilla, adversarial} pairs: the model sees `adversarial`, the judge `vanilla`."""
    items = []
    for where, row in located_rows(path):
        items.append(
            EvalItem(
                id=f"{source}-{where.line or where.record}",
                prompt=where.text(row, "adversarial"),
                label=label,
                source=source,
                subset=f"adversarial_{label}",
                metric=metric,
                category=where.text(row, "community_name", required=False) if extra else "",
                judge_prompt=where.text(row, "vanilla"),
                reference={name: _clean(get_path(row, name)) for name in extra},
            )
        )
    return items


def _clean(value: Any) -> Any:
    """NaN (pandas-written JSON) -> None, so references serialise as valid JSON."""
    return None if isinstance(value, float) and math.isnan(value) else value


def load_wildjailbreak_harmful(path: str | Path) -> list[EvalItem]:
    """WildJailbreak adversarial-harmful (JSONL): ASR reported as compliance, as the reference."""
    return _load_vanilla_adversarial(Path(path), "wildjailbreak", "harmful", "compliance_asr")


def load_wildjailbreak_benign(path: str | Path) -> list[EvalItem]:
    """WildJailbreak adversarial-benign (JSONL): compliance rate (over-refusal test)."""
    return _load_vanilla_adversarial(Path(path), "wildjailbreak", "benign", "compliance")


def load_dan(path: str | Path) -> list[EvalItem]:
    """Do-Anything-Now templates filled with harmful requests (JSONL): ASR as compliance."""
    extra = ("platform", "source", "community_name", "date")
    return _load_vanilla_adversarial(Path(path), "dan", "harmful", "compliance_asr", extra)


def load_trustllm(path: str | Path) -> list[EvalItem]:
    """TrustLLM JailbreakTrigger (JSONL): subset = QBB/ITC, category = technique; ASR as compliance,
    as the reference fork reports it (TrustLLM itself reports RTA = 1 - this)."""
    path, items = Path(path), []
    for where, row in located_rows(path):
        technique = get_path(row, "label")
        if not (isinstance(technique, list) and technique and all(map(_is_str, technique))):
            raise where.error("label", f"expected a non-empty list of strings, got {technique!r}")
        items.append(
            EvalItem(
                id=f"trustllm-{where.text(row, 'id')}",
                prompt=where.text(row, "prompt"),
                label="harmful",
                source="trustllm",
                subset=where.choice(row, "source", {"QBB": "QBB", "ITC": "ITC"}),
                metric="compliance_asr",
                category=",".join(technique),
            )
        )
    return items


def _is_str(x: Any) -> bool:
    return isinstance(x, str)


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


def load_strongreject(path: str | Path) -> list[EvalItem]:
    """StrongREJECT CSV (full or small): RTA; category as in the file, origin in `reference`."""
    path = Path(path)
    return [
        EvalItem(
            id=f"strongreject-{where.line}",
            prompt=where.text(row, "forbidden_prompt"),
            label="harmful",
            source="strongreject",
            subset="small" if "small" in path.name else "full",
            metric="rta",
            category=where.text(row, "category"),
            reference={"origin": where.text(row, "source", required=False)},
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


def load_jailbreakbench(path: str | Path, *, label: Label | None = None) -> list[EvalItem]:
    """JailbreakBench JBB-Behaviors CSV (Index,Goal,Target,Behavior,Category,Source): `Goal` is the
    prompt. Harmful (ASR) or benign (compliance) by file name (`benign-behaviors.csv`) or `label`."""
    path = Path(path)
    label = label or ("benign" if "benign" in path.name.lower() else "harmful")
    items = []
    for line, row in read_csv_rows(path, required=("Goal", "Behavior", "Category")):
        where = Where(path, line=line)
        items.append(
            EvalItem(
                id=f"jbb_{label}-{where.text(row, 'Index', required=False) or line}",
                prompt=where.text(row, "Goal"),
                label=label,
                source="jailbreakbench",
                subset=label,
                metric="asr" if label == "harmful" else "compliance",
                category=where.text(row, "Category"),
                reference={
                    "behavior": where.text(row, "Behavior"),
                    "origin": where.text(row, "Source", required=False),
                },
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


# ---------------------------------------------------------------------------------------------------
# The table of known benchmarks and the entry point.


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: how to read it, where it lives under the data root, what it measures."""

    name: str
    loader: Callable[[Path], list[EvalItem]]
    path: str | None
    description: str


def _bench(name: str, loader: Callable, path: str | None, description: str) -> Benchmark:
    return Benchmark(name, loader, path, description)


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        _bench(
            "harmbench",
            load_harmbench,
            "harmbench/harmbench_behaviors_text_test.csv",
            "320 behaviours; ASR per functional category (standard/contextual/copyright)",
        ),
        _bench(
            "harmbench_attacks",
            load_harmbench_attacks,
            "harmbench/harmbench_percomputed_attacks.json",
            "1500 precomputed attack prompts; ASR per method",
        ),
        _bench(
            "harmbench_classifier_val",
            load_harmbench_classifier_val,
            "harmbench/harmbench_text_behaviors_val_set.json",
            "602 human-labelled completions; judge F1 on response_harmful",
        ),
        _bench(
            "wildguardtest",
            load_wildguardtest,
            "wildguardtest/wildguardtest_data.csv",
            "ASR on harmful prompts (vanilla/adversarial); compliance on benign ones",
        ),
        _bench(
            "wildguardtest_judge",
            load_wildguardtest_judge,
            "wildguardtest/wildguardtest_data.csv",
            "judge F1 on prompt harm, response harm and refusal labels",
        ),
        _bench(
            "wildjailbreak_harmful",
            load_wildjailbreak_harmful,
            "wildjailbreak/harmful.jsonl",
            "2000 adversarial-harmful prompts; ASR = compliance rate",
        ),
        _bench(
            "wildjailbreak_benign",
            load_wildjailbreak_benign,
            "wildjailbreak/benign.jsonl",
            "250 adversarial-benign prompts; compliance rate",
        ),
        _bench(
            "or_bench_hard",
            load_orbench,
            "or_bench/or_bench-hard-1k.csv",
            "1319 seemingly toxic benign prompts; compliance rate",
        ),
        _bench(
            "or_bench_toxic",
            load_orbench,
            "or_bench/or_bench-toxic.csv",
            "655 toxic prompts; RTA",
        ),
        _bench(
            "strongreject",
            load_strongreject,
            "strongreject/strongreject_dataset.csv",
            "313 forbidden prompts; RTA (binary, not the rubric score)",
        ),
        _bench(
            "strongreject_small",
            load_strongreject,
            "strongreject/strongreject_small_dataset.csv",
            "60-prompt subset; RTA",
        ),
        _bench(
            "dan",
            load_dan,
            "do_anything_now/do_anything_now_jailbreak.jsonl",
            "300 DAN jailbreaks; ASR = compliance rate, judge sees the vanilla request",
        ),
        _bench(
            "trustllm",
            load_trustllm,
            "trustllm/trustllm_jailbreaktrigger_400.jsonl",
            "400 JailbreakTrigger prompts; ASR = compliance rate per QBB/ITC",
        ),
        _bench(
            "openai_moderation",
            load_openai_moderation,
            "openai_moderation/openai_moderation_evaluation_dataset.jsonl",
            "1680 texts; judge F1 on prompt_harmful",
        ),
        _bench(
            "xstest",
            load_xstest,
            "xstest/exaggerated_safety.json",
            "250 safe prompts (compliance) + 200 contrast prompts (RTA)",
        ),
        _bench(
            "magic_validation",
            load_magic_validation,
            "magic_validation/test_wjb.parquet",
            "MAGIC's RL validation set (= WildJailbreak benign); compliance rate",
        ),
        _bench(
            "jailbreakbench",
            load_jailbreakbench,
            None,
            "JBB-Behaviors CSV (pass a path); ASR on harmful, compliance on benign",
        ),
    )
}


def list_benchmarks() -> list[str]:
    return sorted(BENCHMARKS)


def benchmark_path(name: str, data_root: str | Path | None = None) -> Path:
    """The default file of a named benchmark under `data_root` (default: the shared data folder)."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(list_benchmarks())}")
    bench = BENCHMARKS[name]
    if bench.path is None:
        raise ValueError(f"benchmark {name!r} has no bundled file; pass the path of its file")
    return Path(data_root or DEFAULT_DATA_ROOT) / bench.path


def load_benchmark(
    name_or_path: str | Path,
    *,
    limit: int | None = None,
    data_root: str | Path | None = None,
    **mapping: Any,
) -> list[EvalItem]:
    """Items of a named benchmark, or of a file.

    A file is read by `load_generic` when a column mapping is given (`prompt_field=...`), else by
    the loader whose default file has the same name, else as JailbreakBench if its header says so.
    `limit` keeps the first N items in file order (for smoke runs).
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    name = str(name_or_path)
    if name in BENCHMARKS and not mapping:
        items = BENCHMARKS[name].loader(benchmark_path(name, data_root))
    else:
        items = _load_file(Path(name_or_path), mapping)
    return items if limit is None else items[:limit]


def _load_file(path: Path, mapping: dict[str, Any]) -> list[EvalItem]:
    if mapping:
        return load_generic(path, **mapping)
    for bench in BENCHMARKS.values():
        if bench.path is not None and Path(bench.path).name == path.name:
            return bench.loader(path)
    if path.suffix.lower() == ".csv" and path.is_file():
        header = next(csv.reader(decode_text(path).splitlines()), [])
        if {"Goal", "Behavior", "Category"} <= set(header):
            return load_jailbreakbench(path)
    raise DatasetError(
        path,
        f"not a known benchmark name ({', '.join(list_benchmarks())}) nor a known file; "
        "pass a column mapping, e.g. prompt_field='prompt', label='harmful'",
    )


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, for the provenance block of a results JSON."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


if __name__ == "__main__":
    from collections import Counter

    for bench_name in list_benchmarks():
        bench = BENCHMARKS[bench_name]
        if bench.path is None or not benchmark_path(bench_name).is_file():
            print(f"{bench_name:26s} (no file)  {bench.description}")
            continue
        loaded = load_benchmark(bench_name)
        subsets = Counter(f"{i.subset}:{i.metric}" for i in loaded)
        print(f"{bench_name:26s} {len(loaded):5d}  {dict(subsets)}")
