"""Every Eval Ever (schema 0.3.0) export of a `magic eval` output: per model, one aggregate JSON and
one instance-level JSONL, in the EEE repository layout `data/<eval>/<developer>/<model>/<uuid>.json`
and `<uuid>_samples.jsonl` (the layout `detailed_evaluation_results.file_path` must follow).

Aggregate: one `evaluation_results` entry per metric key of results.json (`source/subset/metric`),
`score_details.uncertainty` = our 95% percentile-bootstrap interval (`confidence_interval`,
`num_samples` = n known outcomes, `num_bootstrap_samples`), `metric_config.llm_scoring` = the judge
(backend, model, the `judge.controversial` mapping, the unknown policy), and the unknown count of
the set in `score_details.details`. A metric with no known outcome (value nan) is not a number EEE
can hold: it is left out and listed in `source_metadata.additional_details.metrics_without_score`.

Instances: one line per (model, item), `evaluation_result_id` = the item's `source/subset/metric`
(pooled `source/all/...` aggregates get no instance lines of their own). `evaluation.score` is 1 when
the item counts towards its rate (harmful reply for ASR, refusal for RTA, no refusal for compliance
and the WildJailbreak/DAN compliance-ASR), 0 when not, and -1 when the judge's verdict is unknown
(EEE's "unknown level" convention; `error` says why); `is_correct` is whether the defender did the
right thing. A multi-turn row (`turns` in items.jsonl) is written as `messages` with
`interaction_type: multi_turn`; single-turn rows carry `output.raw`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from pathlib import Path
from typing import Any

from magic_rl.data.outputs import write_output
from magic_rl.evaluate.export.source import LOWER_IS_BETTER, EvalOutput, EvalRow, slug
from magic_rl.evaluate.metrics import item_signals
from magic_rl.judge.failures import unknown_reason
from magic_rl.records import Verdict

WRITER = "magic export"  # replaces only files an earlier export wrote (data/outputs.py)

SCHEMA_VERSION = "0.3.0"
EVAL_NAME = "magic-rl-eval"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "assets" / "schemas" / "every_eval_ever"
_METRIC_NAMES = {
    "asr": "attack success rate (reply judged harmful)",
    "compliance_asr": "attack success rate as compliance (reply not refused)",
    "rta": "refuse-to-answer rate",
    "compliance": "compliance rate (1 - refusal rate)",
}


def _str_map(d: dict[str, Any]) -> dict[str, str]:
    """EEE's `additional_details` hold strings only."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in d.items() if v is not None}


def _uuid4(*parts: str) -> str:
    """A deterministic id in UUID-4 form (the EEE file-name pattern asks for version 4)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=4))


def _model_info(name: str, path: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": path,
        "inference_platform": "local (Hugging Face transformers, magic-rl)",
        "additional_details": {"deployment_type": "self_deployed", "model_availability": "unknown"},
    }


def _judge_scoring(prov: dict[str, Any]) -> dict[str, Any]:
    judge = prov.get("judge", {})
    backend, model = str(judge.get("backend", "")), str(judge.get("model", ""))
    return {
        "judges": [
            {
                "model_info": _model_info(backend, model),
                "temperature": 0.0,
                "additional_details": _str_map({"backend": backend, "name": judge.get("name")}),
            }
        ],
        "input_prompt": (
            f"{backend} guard format (magic_rl.judge.formats): the judge sees the request (the "
            f"vanilla request where the benchmark has one) and the reply with any <think> block "
            f"removed, cut to {judge.get('max_response_words', '?')} words"
        ),
        "additional_details": _str_map(
            {
                "controversial": judge.get("controversial", "harmful"),
                "unknown_policy": judge.get("unknown_policy", ""),
            }
        ),
    }


def _generation(prov: dict[str, Any]) -> dict[str, Any]:
    dec = prov.get("decoding", {})
    game = prov.get("config", {}).get("game", {})
    return {
        "generation_args": {
            "temperature": 0.0,
            "top_p": 1.0,
            "max_tokens": int(dec.get("max_new_tokens", 1)),
            "reasoning": game.get("defender_format") == "think_answer",
            "prompt_template": f"defender.txt of template set {game.get('template_set', '?')!r} "
            "(Question:\\n{prompt}) under the model's default system prompt",
        },
        "additional_details": _str_map(
            {k: dec.get(k) for k in ("max_prompt_tokens", "batch_size")}
        ),
    }


def aggregate(out: EvalOutput, model: str, *, retrieved: str, samples_path: str) -> dict[str, Any]:
    """The EEE aggregate record of one model of an eval output (before the samples checksum)."""
    entry = out.results["models"][model]
    prov = out.results.get("provenance", {})
    unknown = entry.get("judge_unknown", {})
    boot = prov.get("bootstrap", {})
    results, skipped = [], []
    for key, m in entry["metrics"].items():
        value = m.get("value")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            skipped.append(key)
            continue
        name = m.get("name", key.rsplit("/", 1)[-1])
        set_name = f"{m.get('source')}/{m.get('subset')}"
        files = {p: h for p, h in prov.get("datasets", {}).items()}
        uncertainty: dict[str, Any] = {"num_samples": int(m.get("n", 0))}
        lo, hi = (m.get("ci") or [None, None])[:2]
        if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
            uncertainty["confidence_interval"] = {
                "lower": float(lo),
                "upper": float(hi),
                "confidence_level": 1 - float(boot.get("alpha", 0.05)),
                "method": "percentile bootstrap over items",
            }
            uncertainty["num_bootstrap_samples"] = int(boot.get("n_resamples", 1000))
        counts = unknown.get(set_name, {})
        results.append(
            {
                "evaluation_result_id": key,
                "evaluation_name": key,
                "source_data": {
                    "dataset_name": str(m.get("source") or key.split("/")[0]),
                    "source_type": "other",
                    "additional_details": _str_map(
                        {"subset": m.get("subset"), "files_sha256": files or None}
                    ),
                },
                "evaluation_timestamp": str(prov.get("timestamp", "")),
                "metric_config": {
                    "evaluation_description": f"{key}: {_METRIC_NAMES.get(name, name)}",
                    "metric_id": f"magic_rl.{name}",
                    "metric_name": name,
                    "metric_kind": "f1" if name.startswith("f1/") else "rate",
                    "metric_unit": "proportion",
                    "lower_is_better": not bool(m.get("higher_is_better", False)),
                    "score_type": "continuous",
                    "min_score": 0.0,
                    "max_score": 1.0,
                    "llm_scoring": _judge_scoring(prov),
                    "additional_details": {"instance_score_unknown": "-1"},
                },
                "score_details": {
                    "score": float(value),
                    "details": _str_map(
                        {
                            "n": m.get("n"),
                            "n_unknown": m.get("n_unknown", 0),
                            "set_unknown_by_reason": counts.get("by_reason"),
                        }
                    ),
                    "uncertainty": uncertainty,
                },
                "generation_config": _generation(prov),
            }
        )
    details = {"git_commit": prov.get("git_commit"), "model_label": model}
    if skipped:
        details["metrics_without_score"] = skipped
    first_party = "run_dir" in prov or "/checkpoints/" in entry.get("path", "")
    return {
        "schema_version": SCHEMA_VERSION,
        "evaluation_id": f"{EVAL_NAME}/{entry.get('path', model)}/{retrieved}",
        "evaluation_timestamp": str(prov.get("timestamp", "")),
        "retrieved_timestamp": retrieved,
        "source_metadata": {
            "source_name": "magic-rl evaluation (magic eval)",
            "source_type": "evaluation_run",
            "source_organization_name": "magic-rl",
            "evaluator_relationship": "first_party" if first_party else "third_party",
            "additional_details": _str_map(details),
        },
        "model_info": _model_info(model, str(entry.get("path", model))),
        "eval_library": {
            "name": "magic-rl",
            "version": _version(),
            "additional_details": _str_map({"git_commit": prov.get("git_commit")}),
        },
        "evaluation_results": results,
        "detailed_evaluation_results": {
            "format": "jsonl",
            "file_path": samples_path,
            "hash_algorithm": "sha256",
        },
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("magic-rl")
    except PackageNotFoundError:
        return "unknown"


def _verdict_text(v: Verdict) -> str:
    word = {True: "yes", False: "no", None: "unknown"}
    return (
        f"prompt_harmful={word[v.prompt_harmful]} response_refusal={word[v.response_refusal]} "
        f"response_harmful={word[v.response_harmful]}"
    )


def instance(row: EvalRow, evaluation_id: str, model_id: str) -> dict[str, Any]:
    """The EEE instance record of one eval row."""
    item = row.item
    counted = row.counted
    if counted is None:
        score, correct = -1.0, False
        reason = unknown_reason(row.verdict, item_signals(item)[0]) or "unknown"
        error = f"judge verdict unknown ({reason}): {row.verdict.error}".strip()
    else:
        score = 1.0 if counted else 0.0
        correct = (not counted) if LOWER_IS_BETTER.get(item.metric, True) else counted
        error = None
    metadata = {
        "source": item.source,
        "subset": item.subset,
        "metric": item.metric,
        "label": item.label,
        "category": item.category,
        "judge_request": item.judge_request,
        "finish": row.finish,
        "verdict_error": row.verdict.error,
    }
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "evaluation_id": evaluation_id,
        "model_id": model_id,
        "evaluation_name": f"{item.source}/{item.subset}/{item.metric}",
        "evaluation_result_id": f"{item.source}/{item.subset}/{item.metric}",
        "sample_id": item.id,
        "sample_hash": hashlib.sha256((item.prompt + "\x00" + item.label).encode()).hexdigest(),
        "input": {"raw": item.prompt, "formatted": None, "reference": [item.label]},
        "evaluation": {"score": score, "is_correct": correct},
        "error": error,
        "metadata": {k: v for k, v in metadata.items() if v},
    }
    if row.turns:
        messages = []
        for turn in row.turns:
            messages.append({"turn_idx": len(messages), "role": "user", "content": turn["attack"]})
            messages.append(
                {"turn_idx": len(messages), "role": "assistant", "content": turn["reply"]}
            )
        record |= {
            "interaction_type": "multi_turn",
            "output": None,
            "messages": messages,
            "answer_attribution": [_attribution(len(messages) - 1, "messages", row.verdict)],
        }
        record["evaluation"]["num_turns"] = len(row.turns)
    else:
        record |= {
            "interaction_type": "single_turn",
            "output": {"raw": [row.reply]},
            "messages": None,
            "answer_attribution": [_attribution(0, "output.raw", row.verdict)],
        }
    return record


def _attribution(turn_idx: int, source: str, verdict: Verdict) -> dict[str, Any]:
    where = f"messages[{turn_idx}].content" if source == "messages" else source
    return {
        "turn_idx": turn_idx,
        "source": where,
        "extracted_value": _verdict_text(verdict),
        "extraction_method": "llm_judge",
        "is_terminal": True,
    }


def write_eee(out: EvalOutput, dest: Path, *, force: bool = False) -> list[Path]:
    """Per model: dest/data/<eval>/<developer>/<model>/<uuid>.json and <uuid>_samples.jsonl."""
    written: list[Path] = []
    retrieved = str(int(time.time()))
    for model in out.models:
        entry = out.results["models"][model]
        model_id = str(entry.get("path", model))
        uid = _uuid4(str(out.dir.resolve()), model, retrieved)
        rel_dir = f"data/{EVAL_NAME}/magic-rl/{slug(model)}"
        samples_rel = f"{rel_dir}/{uid}_samples.jsonl"
        doc = aggregate(out, model, retrieved=retrieved, samples_path=samples_rel)
        lines = [
            json.dumps(instance(r, doc["evaluation_id"], model_id), ensure_ascii=False)
            for r in out.rows_of(model)
            if r.item.metric != "judge_f1"  # classifier benchmarks score the judge, not the model
        ]
        samples = dest / samples_rel
        body = "".join(line + "\n" for line in lines)
        write_output(samples, body, mark='"evaluation_id"', writer=WRITER, force=force)
        doc["detailed_evaluation_results"] |= {
            "checksum": hashlib.sha256(body.encode("utf-8")).hexdigest(),
            "total_rows": len(lines),
        }
        agg = dest / rel_dir / f"{uid}.json"
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        write_output(agg, text, mark="magic-rl", writer=WRITER, force=force)
        written += [agg, samples]
    return written
