"""Public safety benchmarks -> `EvalItem`s, one loader per file format, with the paper's metric.

Every item says which number it feeds (docs/DESIGN.md §6, the reference's safety-eval fork):

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

Layout: `items` (EvalItem, metrics), `harm_loaders` and `other_loaders` (one loader per format),
`result_loaders` (other harnesses' result files: HarmBench results, JailbreakBench artifacts),
`registry` (BENCHMARKS, load_benchmark). Pure Python; pandas/pyarrow are imported only to read
parquet.
Run: `python -m magic_rl.data.benchmarks` lists the benchmarks found under the data root.
"""

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
from magic_rl.data.benchmarks.items import DEFAULT_DATA_ROOT, METRICS, EvalItem, Metric
from magic_rl.data.benchmarks.other_loaders import (
    OPENAI_MODERATION_CODES,
    XSTEST_SAFE_TYPES,
    load_generic,
    load_magic_validation,
    load_openai_moderation,
    load_orbench,
    load_xstest,
)
from magic_rl.data.benchmarks.registry import (
    BENCHMARKS,
    Benchmark,
    benchmark_path,
    file_sha256,
    list_benchmarks,
    load_benchmark,
)
from magic_rl.data.benchmarks.result_loaders import (
    JBBArtifact,
    artifact_asr,
    harmbench_asr,
    load_harmbench_results,
    load_jbb_artifact,
    load_jbb_artifacts_judge,
)
from magic_rl.data.files import DatasetError

__all__ = [
    "BENCHMARKS",
    "DEFAULT_DATA_ROOT",
    "METRICS",
    "OPENAI_MODERATION_CODES",
    "XSTEST_SAFE_TYPES",
    "Benchmark",
    "DatasetError",
    "JBBArtifact",
    "artifact_asr",
    "harmbench_asr",
    "load_harmbench_results",
    "load_jbb_artifact",
    "load_jbb_artifacts_judge",
    "EvalItem",
    "Metric",
    "benchmark_path",
    "file_sha256",
    "list_benchmarks",
    "load_benchmark",
    "load_dan",
    "load_generic",
    "load_harmbench",
    "load_harmbench_attacks",
    "load_harmbench_classifier_val",
    "load_jailbreakbench",
    "load_magic_validation",
    "load_openai_moderation",
    "load_orbench",
    "load_strongreject",
    "load_trustllm",
    "load_wildguardtest",
    "load_wildguardtest_judge",
    "load_wildjailbreak_benign",
    "load_wildjailbreak_harmful",
    "load_xstest",
]
