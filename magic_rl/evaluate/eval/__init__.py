"""`magic eval`: a defender checkpoint on benchmarks and the sandbox sets -> results JSON, items, table.

Protocol (docs/DESIGN.md §6, the paper's): the defender sees the training chat view, `defender.txt`
("Question:\\n{prompt}") under the model's default system prompt (`prompts.defender_messages`, with
the think/answer instruction when `game.defender_format=think_answer`, as in training); decoding is
greedy with at most `eval.max_new_tokens` tokens; the judge reads `strip_reasoning(reply)` cut to
`judge.max_response_tokens` words, next to `item.judge_request` (the vanilla request where a
benchmark has one). Outcomes become metrics with 95% percentile-bootstrap CIs
(`evaluate.metrics.summarize_items`); unknown judge labels are counted, never read as safe.

The sandbox sets (`--benchmarks sandbox`, or any `sandbox/<set>`), from every TEST-split seed
(whatever `sandbox.fraction` the world was built with; `--limit N` keeps N prompts per set):

    vanilla_harmful       harmful seeds as written                          asr, rta
    benign, contrast      benign and alarming-looking benign seeds          compliance
    train_strategies      pool rewrites of harmful seeds, strategies seen    asr
                          in training (not in data.held_out_strategies)
    held_out_strategies   pool rewrites by the held-out strategies           asr, and per
                          family: ciphers/asr (encodings) and other/asr (the rest)
    adversarial_benign    pool rewrites of benign (incl. contrast) seeds     compliance

Outputs: every evaluation gets its own directory, never overwritten (`layout`):
RUN_DIR/eval/<YYYYmmdd-HHMMSS>_<sets>/ when the models are a run's checkpoints, else
<output_dir>/eval-<YYYYmmdd-HHMMSS>_<sets>/, or `--out DIR` (refused when DIR already holds a
results.json). Several `--model`s are evaluated into one directory, side by side. `magic report`
merges a run's evaluations (the newest result per model and metric), `magic export` exports each.
In each directory: results.json
`{"models": {label: {"path", "metrics": {key: MetricResult}, "judge_unknown": {set: counts}}},
"provenance": {...}}` (one label per evaluated defender; `judge_unknown` counts per set the items
whose verdict was unknown, by reason, and the provenance states the policy applied), items.jsonl
(one line per model x item: prompt, reply, verdict, outcome), results.md (markdown table with CIs).
`evaluate_run` (used by `make demo`) puts the first and last defender checkpoints of a run side by
side. The embedded sandbox judge scoring a set outside the sandbox gets one loud warning (on the
console, in results.md and in the provenance's `warnings`).

The package: `items` (EvalSet, ItemResult, set names), `model_args` (run dirs, checkpoints,
defender and judge loading), `sets` (benchmarks and the sandbox sets), `protocol` (greedy replies,
judging, metrics), `outputs` (provenance, results files, tables), `layout` (where evaluations are
written and found), `headline` (the two-sided before/after verdict), `entry` (`evaluate`,
`evaluate_run`).

Departures: the paper reports point estimates only; CIs are this project's addition. "At most 512
tokens of the reply" is applied as 512 whitespace words (no judge tokenizer is assumed). The
sandbox sets' `sandbox/all/*` pooled rows are dropped: they would mix vanilla and rewritten prompts.

Run:
    magic eval --model runs/sandbox --benchmarks sandbox,xstest --limit 50
    magic eval --model runs/sandbox/checkpoints/step-000000 --model runs/sandbox --limit 50
    magic eval --model Qwen/Qwen2.5-7B-Instruct --config configs/paper-qwen2.5-7b.yaml \\
        --benchmarks harmbench,wildjailbreak_harmful,wildjailbreak_benign,xstest
"""

from magic_rl.evaluate.eval.entry import evaluate, evaluate_run, judge_scope_warning, model_labels
from magic_rl.evaluate.eval.items import (
    REPO,
    REWRITES_PER_SEED,
    SANDBOX,
    SANDBOX_SETS,
    SEEDS_DIR,
    EvalSet,
    ItemResult,
    Log,
    verdict_dict,
)
from magic_rl.evaluate.eval.layout import (
    claim_out_dir,
    find_evaluations,
    new_eval_dir,
    sets_slug,
)
from magic_rl.evaluate.eval.model_args import (
    is_run_dir,
    resolve_role_model,
    run_checkpoints,
    run_dir_of,
)
from magic_rl.evaluate.eval.outputs import (
    git_commit,
    markdown_table,
    provenance,
    rich_table,
    show,
    table_rows,
    write_results,
)
from magic_rl.evaluate.eval.protocol import (
    ModelEval,
    defender_system,
    evaluate_models,
    evaluate_policy,
    greedy_replies,
    judge_replies,
    progress_bar,
    summarize,
)
from magic_rl.evaluate.eval.sets import load_sets

__all__ = [
    "REPO",
    "REWRITES_PER_SEED",
    "SANDBOX",
    "SANDBOX_SETS",
    "SEEDS_DIR",
    "EvalSet",
    "ItemResult",
    "Log",
    "ModelEval",
    "claim_out_dir",
    "defender_system",
    "evaluate",
    "evaluate_models",
    "evaluate_policy",
    "evaluate_run",
    "find_evaluations",
    "git_commit",
    "greedy_replies",
    "is_run_dir",
    "judge_replies",
    "judge_scope_warning",
    "load_sets",
    "markdown_table",
    "model_labels",
    "new_eval_dir",
    "progress_bar",
    "provenance",
    "resolve_role_model",
    "rich_table",
    "run_checkpoints",
    "run_dir_of",
    "sets_slug",
    "show",
    "summarize",
    "table_rows",
    "verdict_dict",
    "write_results",
]
