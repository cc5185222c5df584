"""Scoring plumbing shared by the judges: de-duplication, the call cache, counters, verdict assembly.

- `score_exchanges(judge, prompts, responses, max_words, memo, game)`: the one judging helper of
  training (`loop.stages.StepJudge`), evaluation, cross-play and the audit
  (`evaluate.eval.judge_replies`), the sandbox probe and `magic serve judge`: cuts replies to the
  judge's word budget, reads each as the game does (`game.reply_as_read`: under
  `game.request_marker` a sandbox reply's `[request]` becomes the prompt it answers; the judge
  itself reads no marker), asks any `Judge` once per distinct (prompt, reply) pair (GRPO groups
  repeat prompts, and often replies), optionally memoised across calls, and returns verdicts in
  input order.
- Model-backed judges (`EndpointJudge`, `HFGuardJudge`) go through `plan_calls` -> cache/model ->
  `assemble`: replies are truncated to what the judge may see, each exchange becomes its format's
  calls (prompt-only and/or prompt+reply), identical calls across the batch are made once, answers
  come from `CallCache` when known, and the format's parser turns answers into `Verdict`s.
- `JudgeStats` counts requests, retries, errors, parse failures and cache hits; the training loop
  logs them as `judge/*` metrics.

Only answers that parsed are cached (a garbage answer is retried next time, not replayed). The cache
key is (judge name, model, prompt, reply-or-None) of one call, so the prompt-only call of a prompt is
shared by every reply to it. Persistence is an append-only JSONL file, one call per line.

Run: `python -m pytest -q tests/test_judge_endpoint.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from magic_rl.config import GameConfig
from magic_rl.data.files import read_jsonl_rows
from magic_rl.game import reply_as_read
from magic_rl.judge.base import Judge
from magic_rl.judge.formats import Call, GuardFormat, truncate_response
from magic_rl.records import Verdict

CacheKey = tuple[str, str, str, str | None]  # (judge name, model, prompt, response or None)


def score_exchanges(
    judge: Judge,
    prompts: Sequence[str],
    responses: Sequence[str | None],
    max_words: int | None = None,
    memo: dict[tuple[str, str | None], Verdict] | None = None,
    game: GameConfig | None = None,
) -> list[Verdict]:
    """One verdict per exchange, in order: each reply cut to its first `max_words` words (None:
    whole), then read as `game` reads it (`game.reply_as_read` with the exchange's prompt; None:
    as written), each distinct (prompt, reply) judged once, in one `judge.judge` call. A reply of
    None asks for the prompt label only. `memo` (a dict the caller keeps) carries verdicts across
    calls: a pair found in it is not judged again, and new verdicts are added to it.

    The marker is expanded after the cut, so the word budget counts the reply as the policy wrote
    it (a compliance's restated request is not cut off by its own length)."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")

    def read(prompt: str, reply: str) -> str:
        cut = reply if max_words is None else truncate_response(reply, max_words)
        return cut if game is None else reply_as_read(cut, prompt, game)

    keys = [(p, None if r is None else read(p, r)) for p, r in zip(prompts, responses, strict=True)]
    memo = {} if memo is None else memo
    todo = list(dict.fromkeys(k for k in keys if k not in memo))
    if todo:
        verdicts = judge.judge([p for p, _ in todo], [r for _, r in todo])
        if len(verdicts) != len(todo):
            name = getattr(judge, "name", type(judge).__name__)
            raise RuntimeError(f"judge {name!r} returned {len(verdicts)} verdicts for {len(todo)}")
        memo.update(zip(todo, verdicts, strict=True))
    return [memo[k] for k in keys]


@dataclass
class JudgeStats:
    """Running counters of a model-backed judge (never reset by the judge itself)."""

    requests: int = 0  # model calls made: HTTP attempts (retries included) or generated sequences
    retries: int = 0  # attempts repeated after a timeout, 5xx, 408/429 or connection error
    errors: int = 0  # failed attempts, whatever happened next
    parse_failures: int = 0  # exchanges whose answer did not parse (some signal unknown)
    cache_hits: int = 0  # calls answered from the cache

    def metrics(self) -> dict[str, float]:
        return {f"judge/{k}": float(v) for k, v in asdict(self).items()}


class CallCache:
    """Answers of guard-model calls, in memory and optionally appended to a JSONL file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._answers: dict[CacheKey, str] = {}
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def _load(self, path: Path) -> None:
        for lineno, row in read_jsonl_rows(path):
            try:
                key = (row["judge"], row["model"], row["prompt"], row["response"])
                answer = row["output"]
            except (KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: bad judge cache line ({e!r})") from e
            if not isinstance(answer, str):
                raise ValueError(f"{path}:{lineno}: field 'output' must be a string")
            self._answers[key] = answer

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: CacheKey) -> str | None:
        return self._answers.get(key)

    def put_many(self, items: Mapping[CacheKey, str]) -> None:
        new = {k: v for k, v in items.items() if self._answers.get(k) != v}
        self._answers.update(new)
        if self.path is None or not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for (judge, model, prompt, response), output in new.items():
                row = {"judge": judge, "model": model, "prompt": prompt, "response": response}
                f.write(json.dumps(row | {"output": output}, ensure_ascii=False) + "\n")


@dataclass(frozen=True)
class Exchange:
    """One exchange as a judge sees it: the (truncated) reply and its format's calls."""

    prompt: str
    response: str | None
    calls: tuple[Call, ...]


def split_cached(
    calls: Sequence[Call], cache: CallCache | None, key, stats: JudgeStats
) -> tuple[dict[Call, str], list[Call]]:
    """(answers found in the cache, calls still to make); counts cache hits in `stats`."""
    answers: dict[Call, str] = {}
    todo: list[Call] = []
    for call in calls:
        cached = cache.get(key(call)) if cache is not None else None
        if cached is None:
            todo.append(call)
        else:
            answers[call] = cached
            stats.cache_hits += 1
    return answers, todo


def plan_calls(
    fmt: GuardFormat,
    prompts: Sequence[str],
    responses: Sequence[str | None],
    max_response_tokens: int,
    tokenizer: Any = None,
) -> tuple[list[Exchange], list[Call]]:
    """The exchanges (replies truncated) and the distinct calls they need, in first-seen order."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    exchanges = []
    for prompt, response in zip(prompts, responses, strict=True):
        if response is not None:
            response = truncate_response(response, max_response_tokens, tokenizer)
        exchanges.append(Exchange(prompt, response, tuple(fmt.calls(prompt, response))))
    unique = list(dict.fromkeys(c for ex in exchanges for c in ex.calls))
    return exchanges, unique


def assemble(
    fmt: GuardFormat,
    exchanges: Sequence[Exchange],
    answers: Mapping[Call, str],
    failures: Mapping[Call, str],
    stats: JudgeStats,
) -> tuple[list[Verdict], list[Call]]:
    """Verdicts from the answers; a failed call's signals are unknown with its failure as error.

    Returns the verdicts and the calls whose exchange parsed cleanly (safe to cache).
    """
    verdicts: list[Verdict] = []
    clean: list[Call] = []
    for ex in exchanges:
        verdict = fmt.parse([answers.get(c) for c in ex.calls], ex.response)
        failed = [failures[c] for c in ex.calls if c in failures]
        if failed:
            verdict = replace(verdict, error="; ".join(dict.fromkeys(failed)))
        if verdict.error.startswith("parse"):
            stats.parse_failures += 1
        elif not failed:
            clean.extend(ex.calls)
        verdicts.append(verdict)
    return verdicts, clean
