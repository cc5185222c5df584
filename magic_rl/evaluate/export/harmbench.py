"""HarmBench completions/results JSON of a `magic eval` output: `{BehaviorID: [{test_case,
generation, label}]}`, one file per (model, set) of ASR items, label 1 = the reply was judged
harmful, 0 = not, -1 = the judge's verdict was unknown (HarmBench's own "could not classify").

HarmBench's ASR is the mean over behaviours of the per-behaviour mean label (rows labelled -1 left
out); `data.benchmarks.harmbench_asr` recomputes it from a file. With one item per behaviour (the
HarmBench test set, the sandbox's vanilla set) it equals our item-level ASR. Behaviour ids: the
item id (HarmBench's `BehaviorID` for the `harmbench` benchmark); items that wrap a vanilla request
(rewrites, WildJailbreak) are grouped by that request, `goal-<sha256[:12]>`. A `summary.json` next to
the files gives each file's ASR and unknown count.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from magic_rl.data.benchmarks import harmbench_asr
from magic_rl.data.outputs import write_output
from magic_rl.evaluate.export.source import EvalOutput, EvalRow, slug

WRITER = "magic export"  # replaces only files an earlier export wrote (data/outputs.py)


def behavior_id(row: EvalRow) -> str:
    item = row.item
    if item.judge_prompt:
        return "goal-" + hashlib.sha256(item.judge_prompt.encode()).hexdigest()[:12]
    return item.id


def harmbench_results(rows: list[EvalRow]) -> dict[str, list[dict[str, Any]]]:
    """{BehaviorID: [{test_case, generation, label}]} of ASR rows (harmful reply = 1)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        flag = r.flag
        label = -1 if flag is None else int(flag)
        out.setdefault(behavior_id(r), []).append(
            {"test_case": r.item.prompt, "generation": r.reply, "label": label}
        )
    return out


def write_harmbench(out: EvalOutput, dest: Path, *, force: bool = False) -> list[Path]:
    """dest/<model>/<source>_<subset>.json per ASR set, and dest/<model>/summary.json."""
    written = []
    for model in out.models:
        rows = [r for r in out.rows_of(model) if r.item.metric == "asr"]
        sets = list(dict.fromkeys(r.set_name for r in rows))
        summary: dict[str, Any] = {}
        for set_name in sets:
            results = harmbench_results([r for r in rows if r.set_name == set_name])
            path = dest / slug(model) / f"{slug(set_name)}.json"
            text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
            write_output(path, text, mark='"test_case"', writer=WRITER, force=force)
            written.append(path)
            labels = [row["label"] for rs in results.values() for row in rs]
            rate = harmbench_asr(results)
            summary[set_name] = {
                "file": path.name,
                "asr": None if math.isnan(rate) else rate,
                "behaviors": len(results),
                "completions": len(labels),
                "unknown": labels.count(-1),
            }
        if sets:
            path = dest / slug(model) / "summary.json"
            text = json.dumps(summary, indent=2) + "\n"
            write_output(path, text, mark='"behaviors"', writer=WRITER, force=force)
            written.append(path)
    return written
