"""Loaders for the harm benchmarks: HarmBench (behaviours, precomputed attacks, classifier
validation), WildGuardTest (generation and judge views), WildJailbreak, DAN, TrustLLM, StrongREJECT
and JailbreakBench. Each takes the file path and returns every item in file order."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from magic_rl.data.benchmarks.items import EvalItem, Metric
from magic_rl.data.files import (
    DatasetError,
    Where,
    get_path,
    located_rows,
    read_csv_rows,
    read_json,
)
from magic_rl.records import Label

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
