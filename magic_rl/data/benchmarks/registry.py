"""The table of known benchmarks (`BENCHMARKS`) and the entry point `load_benchmark`, which reads
a named benchmark from the data root or any file; beside them the sandbox's own sets (`SANDBOX`:
`sandbox` for all six, `sandbox/<set>`), built from its seeds by `sandbox.sandbox_sets` rather than
read from a file (`sandbox_names`); `file_sha256` (in `items`) for results provenance."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magic_rl.data.benchmarks.harm_loaders import (
    load_dan,
    load_harmbench,
    load_harmbench_attacks,
    load_harmbench_classifier_val,
    load_jailbreakbench,
    load_strongreject,
    load_trustllm,
    load_wildguardtest,
    load_wildguardtest_judge,
    load_wildjailbreak_benign,
    load_wildjailbreak_harmful,
)
from magic_rl.data.benchmarks.items import DEFAULT_DATA_ROOT, EvalItem
from magic_rl.data.benchmarks.other_loaders import (
    load_generic,
    load_magic_validation,
    load_openai_moderation,
    load_orbench,
    load_xstest,
)
from magic_rl.data.benchmarks.result_loaders import load_jbb_artifacts_judge
from magic_rl.data.benchmarks.sandbox import SANDBOX, SANDBOX_SETS
from magic_rl.data.files import DatasetError, decode_text


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
            "jailbreakbench_artifacts",
            load_jbb_artifacts_judge,
            "jailbreakbench_artifacts",
            "1637 labelled (goal, response, jailbroken) rows of 18 attack artifacts; judge F1",
        ),
        _bench(
            "jailbreakbench",
            load_jailbreakbench,
            None,
            "JBB-Behaviors CSV (pass a path); ASR on harmful, compliance on benign",
        ),
    )
}


def sandbox_names(name: str) -> list[str] | None:
    """The sandbox sets an eval set name asks for (`sandbox`: all six; `sandbox/<set>`: one), or
    None for any other name (a benchmark or a file)."""
    if name == SANDBOX:
        return list(SANDBOX_SETS)
    if name.startswith(f"{SANDBOX}/"):
        return [name.split("/", 1)[1]]
    return None


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
        path = benchmark_path(name, data_root)
        items = BENCHMARKS[name].loader(path)
    else:
        path = Path(name_or_path)
        items = _load_file(path, mapping)
    if not items:  # an empty set would report metrics over nothing and exit 0
        raise DatasetError(path, "no items (an empty file, or a header only): nothing to evaluate")
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
