"""Opponent league: a pool of past checkpoints per role, and the opponent a training role meets.

At every role switch the role that just trained is saved (checkpoints/step-N/<role>/) and its
snapshot joins the role's list (`Snapshots`; step-000000 holds both starting roles). With
`league.enabled`, at each step the training role meets the latest opponent (the weights in memory)
with probability `league.latest_prob`, otherwise a past snapshot of the opponent role, among the
`league.max_size` most recent ones:

- `uniform`: each past snapshot equally likely (fictitious self-play over the pool);
- `prioritised`: weight (win rate of that snapshot against the training role so far) **
  `pfsp_power` (AlphaStar's PFSP "hard" weighting: opponents that still win are met more often).
  The win rate is the mean over the steps it played of its side's share of wins on harmful seeds:
  `game/asr` for an attacker, 1 - `game/asr` for a defender; a snapshot that never played counts 0.5.

The draw is a pure function of (run seed, step, role, league state), and the state (snapshots, win
statistics) is saved with the run's state, so resume picks the same opponents. Past opponents are
loaded lazily from their checkpoint directory, at most one per role in memory (`OpponentCache`): the
pool never multiplies memory by its size. A LoRA role's checkpoint is an adapter directory, loaded
with its base through transformers' peft integration (one base + adapter per role at a time).

Sources and departures: docs/deviations.md "Beyond latest-only play".
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from magic_rl import rundir
from magic_rl.config import LeagueConfig
from magic_rl.records import Role


class Snapshots:
    """Per role, the checkpoint names (step-NNNNNN) where a new version of it was saved."""

    def __init__(self) -> None:
        self.names: dict[Role, list[str]] = {Role.ATTACKER: [], Role.DEFENDER: []}

    def add(self, role: Role, name: str) -> bool:
        if name in self.names[role]:
            return False
        self.names[role].append(name)
        return True

    def state_dict(self) -> dict[str, list[str]]:
        return {r.value: list(v) for r, v in self.names.items()}

    def load_state_dict(self, state: dict[str, list[str]]) -> None:
        self.names = {r: list(state.get(r.value, [])) for r in Role}


class League:
    """Chooses the opponent of each training role at each step; keeps win statistics."""

    def __init__(self, cfg: LeagueConfig, snapshots: Snapshots, run_seed: int) -> None:
        self.cfg, self.snapshots, self.run_seed = cfg, snapshots, run_seed
        # "role/step-N" -> [sum of per-step win rates, steps played]
        self.wins: dict[str, list[float]] = {}

    def past(self, opponent: Role, *, latest_in_pool: bool = True) -> list[str]:
        """Past snapshots of `opponent` one can be matched with. Under alternating play the last
        snapshot is the weights in memory (the latest opponent), so it is left out; under
        concurrent play the opponent moved on since its last snapshot, so every snapshot is past."""
        names = self.snapshots.names[opponent]
        if latest_in_pool:
            names = names[:-1]
        return names[-self.cfg.max_size :]

    def win_rate(self, opponent: Role, name: str) -> float:
        total, n = self.wins.get(f"{opponent.value}/{name}", (0.0, 0))
        return total / n if n else 0.5

    def probabilities(self, role: Role, *, latest_in_pool: bool = True) -> dict[str | None, float]:
        """{snapshot name, or None for the latest: probability} for `role`'s opponent."""
        past = self.past(role.other, latest_in_pool=latest_in_pool)
        if not past:
            return {None: 1.0}
        p_latest = self.cfg.latest_prob
        weights = self._weights(role.other, past)
        total = sum(weights)
        out: dict[str | None, float] = {None: p_latest}
        for name, w in zip(past, weights, strict=True):
            out[name] = out.get(name, 0.0) + (1 - p_latest) * w / total
        return out

    def _weights(self, opponent: Role, past: list[str]) -> list[float]:
        if self.cfg.sampling == "uniform":
            return [1.0] * len(past)
        weights = [self.win_rate(opponent, n) ** self.cfg.pfsp_power for n in past]
        return weights if sum(weights) > 0 else [1.0] * len(past)

    def pick(self, role: Role, step: int, *, latest_in_pool: bool = True) -> str | None:
        """The opponent snapshot `role` meets at `step`; None = the latest (in memory)."""
        past = self.past(role.other, latest_in_pool=latest_in_pool)
        rng = random.Random(f"{self.run_seed}:league:{role.value}:{step}")
        if not past or rng.random() < self.cfg.latest_prob:
            return None
        return rng.choices(past, weights=self._weights(role.other, past))[0]

    def record(self, opponent: Role, name: str, asr: float | None) -> None:
        """After a step against past snapshot `name` with attack success rate `asr` on harmful
        seeds: add its side's win rate (None/NaN: no harmful seed judged, nothing recorded)."""
        if not isinstance(asr, float) or math.isnan(asr):
            return
        rate = asr if opponent is Role.ATTACKER else 1.0 - asr
        total, n = self.wins.get(f"{opponent.value}/{name}", (0.0, 0))
        self.wins[f"{opponent.value}/{name}"] = [total + rate, n + 1]

    def state_dict(self) -> dict[str, Any]:
        return {"wins": {k: list(v) for k, v in self.wins.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wins = {k: [float(v[0]), int(v[1])] for k, v in state.get("wins", {}).items()}


class OpponentCache:
    """At most one past opponent per role in memory, loaded from its checkpoint on demand."""

    def __init__(self, run_dir: Path, load) -> None:
        self.run_dir, self.load = run_dir, load  # load(path, role) -> frozen policy
        self.held: dict[Role, tuple[str, Any]] = {}

    def get(self, role: Role, name: str):
        held = self.held.get(role)
        if held is not None and held[0] == name:
            return held[1]
        self.held.pop(role, None)  # free the previous one before loading the next
        path = rundir.checkpoint_dir(self.run_dir, name, role.value)
        if not path.is_dir():
            raise FileNotFoundError(
                f"league: opponent checkpoint {path} is missing (the run's checkpoints/ must keep "
                "every snapshot the league holds)"
            )
        policy = self.load(path, role)
        policy.model.requires_grad_(False)
        policy.model.eval()
        self.held[role] = (name, policy)
        return policy
