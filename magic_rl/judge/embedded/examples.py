"""`JudgeExample`: one labelled exchange the embedded judge trains and is scored on.

The sandbox writes them (`magic_rl.sandbox.judge_data`); `magic judge audit` and tests may build
them from any labelled data. Labels follow the judge's three signals (`records.Verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JudgeExample:
    """One labeled exchange. `response=None` is a prompt-only example: its reply labels are None."""

    prompt: str
    response: str | None
    prompt_harmful: bool
    response_refusal: bool | None
    response_harmful: bool | None
    kind: str = ""
    seed_id: str = ""

    def __post_init__(self) -> None:
        if (self.response is None) != (self.response_refusal is None):
            raise ValueError(f"example of seed {self.seed_id!r}: reply labels need a reply")
        if self.response_refusal and self.response_harmful:
            raise ValueError(f"example of seed {self.seed_id!r}: a refusal is never harmful here")
