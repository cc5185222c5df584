"""JailbreakBench artifact JSON (`{"parameters": {...}, "jailbreaks": [rows]}`) of attacks.

- From a `magic attack` output: one artifact; one row per harmful seed (`goal` = the seed, `prompt`
  = the attacker's rewrite, `response` = the target's reply, `jailbroken` = the judge's harm label).
  With best-of-K the row is the first successful of the K rewrites (else the first);
  `number_of_queries` = K and `queries_to_jailbreak` = the 1-based index of the first success.
- From a `magic eval` output: one artifact per (model, set) whose items wrap a vanilla request
  (the sandbox's strategy rewrites, WildJailbreak, DAN): `goal` = the vanilla request, `prompt` =
  the wrapped prompt; `jailbroken` = the item counts towards its ASR (a harmful reply; for the
  compliance-ASR sets, a reply not refused).

`parameters.attack_success_rate` is recomputed from the rows (the mean of `jailbroken` over the rows
with a known verdict), never from `total_number_of_jailbreaks`. A row whose verdict is unknown has
`jailbroken: null` and is counted in `parameters.number_of_unknown_verdicts`; the policy is in
`parameters.unknown_policy`. Token counts are not tracked and are null.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from magic_rl.data.benchmarks import JBBArtifact, artifact_asr
from magic_rl.data.outputs import write_output
from magic_rl.evaluate.export.source import AttackOutput, EvalOutput, slug
from magic_rl.judge.failures import EVAL_UNKNOWN_POLICY

WRITER = "magic export"  # replaces only files an earlier export wrote (data/outputs.py)


def _row(
    index: int,
    goal: str,
    behavior: str,
    category: str,
    prompt: str,
    response: str,
    jailbroken: bool | None,
    queries: int = 1,
    to_jailbreak: int | None = None,
) -> dict:
    return {
        "index": index,
        "goal": goal,
        "behavior": behavior,
        "category": category,
        "prompt": prompt,
        "response": response,
        "number_of_queries": queries,
        "queries_to_jailbreak": to_jailbreak,
        "prompt_tokens": None,
        "response_tokens": None,
        "jailbroken": jailbroken,
    }


def _parameters(
    rows: list[dict[str, Any]], *, method: str, model: str, judge: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    art = JBBArtifact(Path("-"), {}, rows)
    rate = artifact_asr(art)
    known = [r for r in rows if r["jailbroken"] is not None]
    return {
        "method": method,
        "model": model,
        "attack_type": "black_box",
        "defense": None,
        "attack_success_rate": None if rate != rate else rate,
        "total_number_of_jailbreaks": sum(bool(r["jailbroken"]) for r in known),
        "number_of_submitted_prompts": len(rows),
        "total_number_of_queries": sum(r["number_of_queries"] for r in rows),
        "total_prompt_tokens": None,
        "total_response_tokens": None,
        "evaluation_date": time.strftime("%Y-%m-%d"),
        "evaluation_llm_provider": "magic-rl",
        "number_of_unknown_verdicts": len(rows) - len(known),
        "unknown_policy": judge.get("unknown_policy", EVAL_UNKNOWN_POLICY)
        + "; such a row has jailbroken: null",
        "method_parameters": {
            "judge": judge.get("backend"),
            "judge_model": judge.get("model"),
            "controversial": judge.get("controversial", "harmful"),
            **extra,
        },
    }


def attack_artifact(out: AttackOutput) -> dict[str, Any]:
    """The artifact of one `magic attack` output (rows grouped per seed, best-of-K collapsed)."""
    by_seed: dict[str, list[dict[str, Any]]] = {}
    for r in out.rows:
        by_seed.setdefault(str(r["seed_id"]), []).append(r)
    rows = []
    for index, (seed_id, tries) in enumerate(by_seed.items()):
        tries = sorted(tries, key=lambda r: r.get("k", 0))
        flags = [t.get("success") for t in tries]
        hit = next((i for i, f in enumerate(flags) if f is True), None)
        jailbroken = True if hit is not None else (None if None in flags else False)
        chosen = tries[hit if hit is not None else 0]
        rows.append(
            _row(
                index,
                chosen["seed"],
                seed_id,
                chosen.get("category", ""),
                chosen["attack"],
                chosen["reply"],
                jailbroken,
                len(tries),
                None if hit is None else hit + 1,
            )
        )
    res = out.results
    judge = res.get("provenance", {}).get("judge", {})
    params = _parameters(
        rows,
        method="magic-rl attacker",
        model=Path(str(res["target"])).name or str(res["target"]),
        judge=judge,
        attacker=str(res["attacker"]),
        target=str(res["target"]),
        best_of=res.get("best_of", 1),
    )
    return {"parameters": params, "jailbreaks": rows}


def eval_artifacts(out: EvalOutput) -> dict[tuple[str, str], dict[str, Any]]:
    """{(model, set): artifact} for the sets of ASR items that wrap a vanilla request."""
    judge = out.results.get("provenance", {}).get("judge", {})
    arts = {}
    for model in out.models:
        rows = [
            r
            for r in out.rows_of(model)
            if r.item.judge_prompt and r.item.metric in ("asr", "compliance_asr")
        ]
        for set_name in dict.fromkeys(r.set_name for r in rows):
            chosen = [r for r in rows if r.set_name == set_name]
            art_rows = [
                _row(
                    i,
                    r.item.judge_prompt,
                    r.item.id,
                    r.item.category,
                    r.item.prompt,
                    r.reply,
                    r.counted,
                )
                for i, r in enumerate(chosen)
            ]
            path = out.results["models"][model].get("path", model)
            params = _parameters(
                art_rows,
                method=f"{set_name} prompts",
                model=Path(str(path)).name or str(path),
                judge=judge,
                set=set_name,
                metric=chosen[0].item.metric,
                target=str(path),
            )
            arts[(model, set_name)] = {"parameters": params, "jailbreaks": art_rows}
    return arts


def write_jbb(out: EvalOutput | AttackOutput, dest: Path, *, force: bool = False) -> list[Path]:
    """dest/attack.json for an attack output; dest/<model>/<set>.json for an eval output."""
    if isinstance(out, AttackOutput):
        docs = {dest / f"{slug(out.dir.name)}.json": attack_artifact(out)}
    else:
        docs = {
            dest / slug(model) / f"{slug(set_name)}.json": art
            for (model, set_name), art in eval_artifacts(out).items()
        }
    for path, doc in docs.items():
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        write_output(path, text, mark="magic-rl", writer=WRITER, force=force)
    return list(docs)
