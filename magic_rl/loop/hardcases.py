"""Buffers of (seed, attack) pairs the defender meets again: hard-case replay and victim hardening.

- Hard-case replay (`replay.share > 0`): after every step, exchanges whose attack broke the defender
  (harmful seed, reply judged harmful) or made it refuse (benign seed, reply judged a refusal) enter
  a bounded FIFO buffer (`replay.max_size`, one entry per distinct (seed, attack)). At a defender
  step a share `replay.share` of the batch's seeds, at positions drawn from (run seed, step), is
  replaced by buffered cases drawn the same way: the defender answers the stored attack (turn 1)
  instead of a fresh rewrite. Metrics: `replay/buffer_size`, `replay/share`.
- Victim hardening (`schedule.protocol=victim_hardening`): every attack of the attacker steps since
  the last defender update is collected (`pending`); the defender step plays `seeds_per_step` of them,
  drawn from (run seed, step), and empties the buffer.

Both buffers are saved with the run's state, so resume replays the same cases. Multi-turn: the
stored attack is the episode's last turn and is replayed as the first turn.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from magic_rl.records import Seed


@dataclass(frozen=True)
class Case:
    seed: Seed
    attack: str
    step: int


def is_hard(rec: dict) -> bool:
    """A replay record whose attack broke the defender (harmful) or made it refuse (benign)."""
    v = rec["verdict"]
    if rec["seed"]["label"] == "harmful":
        return v.get("response_harmful") is True
    return v.get("response_refusal") is True


def case_of(rec: dict) -> Case:
    s = rec["seed"]
    seed = Seed(s["id"], s["text"], s["label"], s.get("category", ""))
    return Case(seed, rec["turns"][-1]["attack"], rec["step"])


class CaseBuffer:
    """A FIFO buffer of distinct (seed, attack) cases, at most `max_size` (None: unbounded)."""

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self.items: list[Case] = []

    def __len__(self) -> int:
        return len(self.items)

    def add(self, cases: Iterable[Case], *, distinct: bool = True) -> int:
        keys = {(c.seed.id, c.attack) for c in self.items} if distinct else set()
        added = 0
        for case in cases:
            key = (case.seed.id, case.attack)
            if distinct and key in keys:
                continue
            keys.add(key)
            self.items.append(case)
            added += 1
        if self.max_size is not None and len(self.items) > self.max_size:
            self.items = self.items[-self.max_size :]
        return added

    def draw(self, n: int, rng: random.Random) -> list[Case]:
        return rng.sample(self.items, min(n, len(self.items)))

    def clear(self) -> None:
        self.items = []

    def state_dict(self) -> list[dict[str, Any]]:
        return [{"seed": asdict(c.seed), "attack": c.attack, "step": c.step} for c in self.items]

    def load_state_dict(self, state: Sequence[dict[str, Any]]) -> None:
        self.items = [Case(Seed(**c["seed"]), c["attack"], int(c["step"])) for c in state]


def mix_in(
    batch: list[Seed], buffer: CaseBuffer, share: float, rng: random.Random
) -> tuple[list[Seed], list[str | None]]:
    """Replace round(share * len(batch)) seeds (at most the buffer's size) by buffered cases.
    Returns the batch and, per position, the attack to replay (None: a fresh rewrite)."""
    n = min(round(share * len(batch)), len(buffer))
    fixed: list[str | None] = [None] * len(batch)
    if n == 0:
        return batch, fixed
    batch = list(batch)
    for pos, case in zip(
        sorted(rng.sample(range(len(batch)), n)), buffer.draw(n, rng), strict=True
    ):
        batch[pos], fixed[pos] = case.seed, case.attack
    return batch, fixed
