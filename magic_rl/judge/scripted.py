"""A scripted judge for tests: a function of (prompt, response) -> Verdict, deterministic, instant.

Default rule (when no function is given): the request is harmful iff it contains the marker word
(`harmful` as a whole word, any case); the reply refuses iff `keyword.is_refusal` says so; the reply
is harmful iff the request is harmful and the reply does not refuse. Select it from config with
`judge.backend=scripted`.

Run: `python -m pytest -q tests/test_judge_formats.py -k scripted`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from magic_rl.judge.keyword import is_refusal
from magic_rl.records import Verdict

ScriptFn = Callable[[str, str | None], Verdict]


def marker_rule(prompt: str, response: str | None, marker: str = "harmful") -> Verdict:
    """The default script: a marker word in the prompt makes it harmful; see module docstring."""
    harmful = re.search(rf"\b{re.escape(marker)}\b", prompt, re.IGNORECASE) is not None
    if response is None:
        return Verdict(prompt_harmful=harmful, response_refusal=None, response_harmful=None)
    refusal = is_refusal(response)
    return Verdict(harmful, refusal, harmful and not refusal)


class ScriptedJudge:
    """Calls `fn(prompt, response)` per exchange; `calls` counts them (for dedup/cache tests)."""

    def __init__(self, fn: ScriptFn | None = None, name: str = "scripted") -> None:
        self.fn: ScriptFn = fn or marker_rule
        self.name = name
        self.calls = 0

    def judge(self, prompts: Sequence[str], responses: Sequence[str | None]) -> list[Verdict]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        self.calls += len(prompts)
        return [self.fn(p, r) for p, r in zip(prompts, responses, strict=True)]
