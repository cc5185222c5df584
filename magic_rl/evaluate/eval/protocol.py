"""The eval protocol: greedy defender replies under the training chat view, one judge pass, metrics.

`evaluate_models` loads each defender in turn and runs `evaluate_policy` on every item (equal
prompts decode once, equal (request, reply) pairs are judged once); `summarize` turns the verdicts
into metrics with bootstrap CIs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from magic_rl.config import GameConfig, RunConfig
from magic_rl.data.benchmarks import EvalItem
from magic_rl.evaluate.eval.items import SANDBOX, EvalSet, ItemResult, Log
from magic_rl.evaluate.eval.sets import HELD_OUT, held_out_family
from magic_rl.evaluate.metrics import MetricResult, summarize_items
from magic_rl.game import DEFENDER_COT_INSTRUCTION
from magic_rl.judge.keyword import apply_request_labels
from magic_rl.judge.score import score_exchanges
from magic_rl.policy.load import load_policy
from magic_rl.progress import new_bar
from magic_rl.prompts import defender_messages, load_templates, strip_reasoning
from magic_rl.records import Verdict


def defender_system(cfg: RunConfig) -> str | None:
    """The defender's system prompt, as in training (game._replies)."""
    system = cfg.game.defender_system_prompt
    if cfg.game.defender_format == "think_answer":
        return f"{system}\n{DEFENDER_COT_INSTRUCTION}" if system else DEFENDER_COT_INSTRUCTION
    return system


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """`with progress_bar(on) as task: advance = task("model", total); advance(k)`."""
    if not enabled:
        yield lambda desc, total: lambda k: None
        return

    with new_bar() as bar:

        def task(desc: str, total: int) -> Callable[[int], None]:
            tid = bar.add_task(desc, total=total)
            return lambda k: bar.advance(tid, k)

        yield task


def greedy_replies(
    policy,
    prompts: Sequence[str],
    cfg: RunConfig,
    *,
    advance: Callable[[int], None] = lambda k: None,
) -> list[Any]:
    """One greedy `Generation` per prompt under the training chat view; equal prompts decode once,
    in batches of `eval.batch_size` prompts of similar length."""
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    system = defender_system(cfg)
    unique = sorted(dict.fromkeys(prompts), key=len)
    gens: dict[str, Any] = {}
    for start in range(0, len(unique), cfg.eval.batch_size):
        chunk = unique[start : start + cfg.eval.batch_size]
        out = policy.generate(
            [defender_messages(templates, [], p, system) for p in chunk],
            temperature=0.0,
            top_p=1.0,
            max_new_tokens=cfg.eval.max_new_tokens,
            max_prompt_tokens=cfg.defender.sampling.max_prompt_tokens,
            seed=cfg.seed,
        )
        gens.update(zip(chunk, out, strict=True))
        advance(len(chunk))
    return [gens[p] for p in prompts]


def judge_replies(
    judge,
    requests: Sequence[str],
    replies: Sequence[str | None],
    max_words: int,
    game: GameConfig | None = None,
) -> list[Verdict]:
    """Verdicts on (request, strip_reasoning(reply) cut to `max_words` words, read as `game`
    reads it: the sandbox's `[request]` marker expanded to the request under
    `game.request_marker`); equal pairs once (`judge.score.score_exchanges`). A reply of None
    asks for the prompt label only."""
    stripped = [None if r is None else strip_reasoning(r) for r in replies]
    return score_exchanges(judge, requests, stripped, max_words, game=game)


def evaluate_policy(
    policy, items: Sequence[EvalItem], judge, cfg: RunConfig, *, advance=lambda k: None
) -> list[ItemResult]:
    """The protocol on one defender: greedy replies, then one judge pass over every item."""
    gens = greedy_replies(policy, [i.prompt for i in items], cfg, advance=advance)
    verdicts = judge_replies(
        judge,
        [i.judge_request for i in items],
        [g.text for g in gens],
        cfg.judge.max_response_tokens,
        cfg.game,
    )
    labels = [None if i.metric == "judge_f1" else i.label for i in items]
    verdicts = apply_request_labels(judge, verdicts, labels)
    return [
        ItemResult(i, g.text, g.finish, v) for i, g, v in zip(items, gens, verdicts, strict=True)
    ]


def summarize(results: Sequence[ItemResult], cfg: RunConfig) -> dict[str, MetricResult]:
    """Metrics per source/subset with bootstrap CIs (sandbox pooled rows dropped, see docstring),
    and right below the sandbox held-out row the same set per family:
    `sandbox/held_out_strategies/ciphers/asr` and `.../other/asr` (`sets.held_out_family`; the
    same items and verdicts, no new replies)."""
    ci = {"n_resamples": cfg.eval.bootstrap, "seed": cfg.seed}
    metrics = summarize_items([r.item for r in results], [r.verdict for r in results], **ci)
    held = [r for r in results if (r.item.source, r.item.subset) == (SANDBOX, HELD_OUT)]
    families = {}
    if held:
        items = [replace(r.item, category=held_out_family(r.item.category)) for r in held]
        families = summarize_items(items, [r.verdict for r in held], by_category=True, **ci)
    out = {}
    for key, m in metrics.items():
        if not key.startswith(f"{SANDBOX}/all/"):
            out[key] = m
        if key == f"{SANDBOX}/{HELD_OUT}/asr":
            out.update(families)
    return out


@dataclass(frozen=True)
class ModelEval:
    """One evaluated defender."""

    label: str
    path: str
    results: list[ItemResult]
    metrics: dict[str, MetricResult]
    seconds: float


def evaluate_models(
    models: Sequence[tuple[str, str]],
    sets: Sequence[EvalSet],
    cfg: RunConfig,
    judge,
    *,
    log: Log = print,
) -> list[ModelEval]:
    """Each (label, path) defender on every item of `sets`."""
    items = [i for s in sets for i in s.items]
    out = []
    with progress_bar(cfg.train.progress) as task:
        for label, path in models:
            t0 = time.perf_counter()
            policy = load_policy(path, cfg.defender, cfg.device, what="defender model")
            advance = task(f"eval {label}", len(set(i.prompt for i in items)))
            results = evaluate_policy(policy, items, judge, cfg, advance=advance)
            del policy
            out.append(
                ModelEval(label, path, results, summarize(results, cfg), time.perf_counter() - t0)
            )
    for m in out:
        log(f"{m.label}: {len(m.results)} items in {m.seconds:.1f}s")
    return out
