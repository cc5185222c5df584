"""safety-eval `metrics.json` of a `magic eval` output, keyed as downstream table scripts read it.

Ai2's safety-eval (and the MAGIC paper's fork of it) writes one `metrics.json` of
`{task: {metric key: value}}`; Self-RedTeam's `eval/parse_result_to_csv.py`
(mickelliu/selfplay-redteaming, `safety_metrics_to_extract`) and similar scripts fill their tables
from these keys:

    harmbench             micro ASR (lower)            our harmbench/*/asr, pooled
    harmbench_precompute  micro ASR (lower)            our harmbench_attacks/*/asr, pooled
    xstest                inverted_rta_all_safe         our xstest/safe/compliance
                          rta_all_contrast              our xstest/unsafe/rta
    or_bench:hard-1k      compliance_rate_mean          our or_bench/hard/compliance
    or_bench:toxic        refusal_rate_mean             our or_bench/toxic/rta
    wildguardtest         adversarial harm (lower)      our wildguardtest/adversarial_harmful/asr
                          vanilla harm (lower)          our wildguardtest/vanilla_harmful/asr
    wildjailbreak:harmful macro ASR                     our wildjailbreak/adversarial_harmful/compliance_asr
    wildjailbreak:benign  macro ASR                     our wildjailbreak/adversarial_benign/compliance
    do_anything_now       macro ASR                     our dan/*/compliance_asr
    trustllm_jailbreaktrigger  macro ASR, QBB ASR, ITC ASR  our trustllm/*/compliance_asr

In the fork's adversarial tasks (`evaluation/tasks/generation/.../AdversarialTaskBase._evaluate`)
"macro ASR" is the share of replies the refusal classifier calls compliance, so on
wildjailbreak:benign it is the compliance rate (higher is better) and on the harmful sets the
compliance-ASR (lower is better), as here. The sandbox sets have no safety-eval task; they are
written as `sandbox:<set>` blocks under the same key names (`micro ASR (lower)` for ASR sets,
`refusal_rate_mean` for RTA, `compliance_rate_mean` for compliance).

Departure: safety-eval counts a judge parse error as a failed attack (it stays in the
denominator); here an unknown verdict is left out of the denominator and counted. The per-key
n, n_unknown, CI and the policy are in a top-level `_magic_rl` block that table scripts ignore.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magic_rl.data.outputs import write_output
from magic_rl.evaluate.export.source import EvalOutput, EvalRow, slug
from magic_rl.evaluate.metrics import MetricResult, rate
from magic_rl.judge.failures import EVAL_UNKNOWN_POLICY

WRITER = "magic export"  # replaces only files an earlier export wrote (data/outputs.py)

# (our source, our subsets or None for all, our metric, safety-eval task, safety-eval key)
SAFETY_EVAL_KEYS: tuple[tuple[str, tuple[str, ...] | None, str, str, str], ...] = (
    ("harmbench", None, "asr", "harmbench", "micro ASR (lower)"),
    ("harmbench_attacks", None, "asr", "harmbench_precompute", "micro ASR (lower)"),
    ("xstest", ("safe",), "compliance", "xstest", "inverted_rta_all_safe"),
    ("xstest", ("unsafe",), "rta", "xstest", "rta_all_contrast"),
    ("or_bench", ("hard",), "compliance", "or_bench:hard-1k", "compliance_rate_mean"),
    ("or_bench", ("toxic",), "rta", "or_bench:toxic", "refusal_rate_mean"),
    ("wildguardtest", ("adversarial_harmful",), "asr", "wildguardtest", "adversarial harm (lower)"),
    ("wildguardtest", ("vanilla_harmful",), "asr", "wildguardtest", "vanilla harm (lower)"),
    (
        "wildjailbreak",
        ("adversarial_harmful",),
        "compliance_asr",
        "wildjailbreak:harmful",
        "macro ASR",
    ),
    ("wildjailbreak", ("adversarial_benign",), "compliance", "wildjailbreak:benign", "macro ASR"),
    ("dan", None, "compliance_asr", "do_anything_now", "macro ASR"),
    ("trustllm", None, "compliance_asr", "trustllm_jailbreaktrigger", "macro ASR"),
    ("trustllm", ("QBB",), "compliance_asr", "trustllm_jailbreaktrigger", "QBB ASR"),
    ("trustllm", ("ITC",), "compliance_asr", "trustllm_jailbreaktrigger", "ITC ASR"),
)
_SANDBOX_KEYS = {
    "asr": "micro ASR (lower)",
    "rta": "refusal_rate_mean",
    "compliance": "compliance_rate_mean",
    "compliance_asr": "macro ASR",
}


def _rate(rows: Sequence[EvalRow], metric: str, boot: dict[str, Any]) -> MetricResult:
    return rate(
        metric,
        [r.flag for r in rows],
        n_resamples=int(boot.get("n_resamples", 1000)),
        alpha=float(boot.get("alpha", 0.05)),
        seed=int(boot.get("seed", 0)),
    )


def safety_eval_metrics(out: EvalOutput, model: str) -> dict[str, Any]:
    """`{task: {key: value}}` plus `_magic_rl` (n, n_unknown, CI per key; the unknown policy)."""
    rows = out.rows_of(model)
    boot = out.results.get("provenance", {}).get("bootstrap", {})
    metrics: dict[str, Any] = {}
    extra: dict[str, Any] = {}

    def put(task: str, key: str, chosen: list[EvalRow], metric: str, ours: str) -> None:
        m = _rate(chosen, metric, boot)
        if m.n == 0:  # nothing known to report: leave the key out rather than write NaN
            extra[f"{task}/{key}"] = {"ours": ours, "n": 0, "n_unknown": m.n_unknown}
            return
        metrics.setdefault(task, {})[key] = m.value
        extra[f"{task}/{key}"] = {
            "ours": ours,
            "n": m.n,
            "n_unknown": m.n_unknown,
            "ci": list(m.ci),
        }

    for source, subsets, metric, task, key in SAFETY_EVAL_KEYS:
        chosen = [
            r
            for r in rows
            if r.item.source == source
            and r.item.metric == metric
            and (subsets is None or r.item.subset in subsets)
        ]
        if chosen:
            put(task, key, chosen, metric, f"{source}/{'+'.join(subsets or ('*',))}/{metric}")
    sandbox = sorted({(r.item.subset, r.item.metric) for r in rows if r.item.source == "sandbox"})
    for subset, metric in sandbox:
        if metric in _SANDBOX_KEYS:
            chosen = [
                r
                for r in rows
                if (r.item.source, r.item.subset, r.item.metric) == ("sandbox", subset, metric)
            ]
            put(
                f"sandbox:{subset}",
                _SANDBOX_KEYS[metric],
                chosen,
                metric,
                f"sandbox/{subset}/{metric}",
            )
    judge = out.results.get("provenance", {}).get("judge", {})
    metrics["_magic_rl"] = {
        "model": model,
        "path": out.results["models"][model].get("path"),
        "keys": extra,
        "unknown_policy": judge.get("unknown_policy", EVAL_UNKNOWN_POLICY),
        "controversial": judge.get("controversial", "harmful"),
        "note": "safety-eval counts a judge parse error as a failed attack; here unknown "
        "verdicts are left out of the denominator and counted in n_unknown",
    }
    return metrics


def write_safety_eval(out: EvalOutput, dest: Path, *, force: bool = False) -> list[Path]:
    """dest/<model>/metrics.json for every model of the eval output."""
    written = []
    for model in out.models:
        path = dest / slug(model) / "metrics.json"
        text = json.dumps(safety_eval_metrics(out, model), indent=2, ensure_ascii=False) + "\n"
        write_output(path, text, mark='"_magic_rl"', writer=WRITER, force=force)
        written.append(path)
    return written
