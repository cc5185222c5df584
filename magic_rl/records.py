"""Typed records passed between the stages of the game: seeds -> turns/episodes -> verdicts.

Everything here is a frozen dataclass or an enum; no stage passes loose dicts or tensors to another.
Pure Python: importing this module never imports torch.

Departures from the reference code: roles are named (`Role.ATTACKER`), never list positions, and a
judge label is three-valued (`True`, `False`, `None` = unknown) so a parse failure can never be read
as "safe" (docs/DESIGN.md §7).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

Label = Literal["harmful", "benign"]
LABELS: tuple[Label, ...] = ("harmful", "benign")


class Role(enum.StrEnum):
    """A player of the game. The string value is what configs, metrics and files use."""

    ATTACKER = "attacker"
    DEFENDER = "defender"

    @property
    def other(self) -> Role:
        return Role.DEFENDER if self is Role.ATTACKER else Role.ATTACKER


@dataclass(frozen=True)
class Seed:
    """One vanilla request the game starts from.

    `label` is the dataset's label of the request's intent; `category` is a harm category for harmful
    seeds (e.g. "cybercrime") and a topic or kind for benign ones (e.g. "contrast").
    """

    id: str
    text: str
    label: Label
    category: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"seed {self.id!r}: label must be one of {LABELS}, got {self.label!r}")
        if not self.text.strip():
            raise ValueError(f"seed {self.id!r}: text is empty")


FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Turn:
    """One exchange: the attacker's output and the defender's reply to it.

    `attack_raw` is the attacker's full generation; `reasoning` and `attack` are what was extracted
    from it (`attack` is what the defender saw). When the game has no attacker (No-Game, static
    data) `attack_raw` equals `attack` and `reasoning` is empty.
    """

    attack_raw: str
    reasoning: str
    attack: str
    reply: str
    attack_finish: FinishReason = "stop"
    reply_finish: FinishReason = "stop"
    attack_format_ok: bool = True
    # Token ids the trainer needs (empty for scripted/static turns): the prompt each role saw at this
    # turn and the tokens it generated. Loss is taken on the generated ids only.
    attack_prompt_ids: tuple[int, ...] = ()
    attack_ids: tuple[int, ...] = ()
    reply_prompt_ids: tuple[int, ...] = ()
    reply_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Episode:
    """A seed and the turns played on it. `group` ties the G members of a GRPO group together."""

    seed: Seed
    turns: tuple[Turn, ...]
    group: int = 0
    member: int = 0

    @property
    def last(self) -> Turn:
        return self.turns[-1]


@dataclass(frozen=True)
class Verdict:
    """The judge's labels of one exchange. `None` means unknown (parse failure or error).

    `prompt_harmful` is the request label of the prompt alone; `response_refusal` and
    `response_harmful` come from the prompt+response call. `score` (optional) is a graded harm score
    in [0, 1] of the response; `error` says why a signal is unknown. `reply_carries_request` is the
    training judge stage's own label, not a judge's: does the reply carry the seed's request
    (`game.carries_request`, read by the defender-quality reward); None where it was not computed.
    `rewrite_carries_request`, the stage's other label: does the attacker's rewrite still carry
    the seed's request (`game.rewrite_carries_request`, read under `reward.unfaithful: failed`).
    """

    prompt_harmful: bool | None
    response_refusal: bool | None
    response_harmful: bool | None
    categories: tuple[str, ...] = ()
    score: float | None = None
    error: str = ""
    reply_carries_request: bool | None = None
    rewrite_carries_request: bool | None = None

    @property
    def any_unknown(self) -> bool:
        return None in (self.prompt_harmful, self.response_refusal, self.response_harmful)


@dataclass(frozen=True)
class RewardBreakdown:
    """Per-role reward of one episode with the terms that make it up (docs/DESIGN.md §3).

    `valid` is False when the sample is dropped from the update (unknown judge label under the
    default policy, or a masked truncation); dropped samples keep their components for the log.
    """

    total: float
    components: dict[str, float] = field(default_factory=dict)
    valid: bool = True
    note: str = ""
