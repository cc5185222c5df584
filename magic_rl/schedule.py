"""Which role trains at each step: a small, serialisable state machine (docs/DESIGN.md §4 switching
modes).

    scheduler = Scheduler(cfg.schedule)
    role = scheduler.role                  # train this role at the current step
    switched = scheduler.advance(metrics)  # after the step; True at a block boundary

Modes:
- `ratio`: blocks of `freq * update_ratio[role]` steps, alternating, starting with `start_agent`.
  Every block, the first included, has its full length (the reference makes the first block one
  step short).
- `metric`: a moving average over the last `window` steps of `metrics[cfg.metric]` (default: mean
  R_harm of the defender). Defender -> attacker when the window is full and the average >= `high`;
  attacker -> defender when it is full and the average <= `low`. The window is CLEARED at a switch,
  so every block lasts at least `window` steps and each decision only sees steps of the current
  block. `transitions` (`{"defender": "attacker", ...}`) overrides where a threshold leads; a role
  mapped to itself never leaves. A NaN metric (a step with no valid sample) is not added to the
  window.
- `train_roles` naming one role: always that role (`start_agent` defaults to it and the config
  refuses another); `advance` never switches.

`state_dict()` is JSON-able; `load_state_dict` on a fresh Scheduler with the same config continues
exactly as an uninterrupted run would.

Run: `python -m pytest -q tests/test_schedule.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from magic_rl.config import ScheduleConfig, trained_roles
from magic_rl.records import Role

STATE_VERSION = 1


class Scheduler:
    """Decides the role to train; `advance` after every step."""

    def __init__(self, cfg: ScheduleConfig) -> None:
        self.cfg = cfg  # checked whole by ScheduleConfig: start_agent trains, every ratio >= 1
        self.roles = trained_roles(cfg)
        self.destination = {Role.DEFENDER: Role.ATTACKER, Role.ATTACKER: Role.DEFENDER}
        for src, dst in (cfg.transitions or {}).items():
            self.destination[Role(src)] = Role(dst)
        self._role = cfg.start_agent
        self.step = 0  # steps completed
        self.step_in_block = 0
        self.window: list[float] = []

    @property
    def role(self) -> Role:
        """The role to train at the current step."""
        return self._role

    @property
    def block_length(self) -> int | None:
        """Length of the current block in ratio mode; None when blocks end on a metric or never."""
        if len(self.roles) == 1 or self.cfg.mode != "ratio":
            return None
        return self.cfg.freq * self.cfg.update_ratio[self._role]

    def advance(self, metrics: Mapping[str, float]) -> bool:
        """Record a finished step; return True when the next step trains the other role."""
        self.step += 1
        self.step_in_block += 1
        if len(self.roles) == 1:
            return False
        if self.cfg.mode == "ratio":
            assert self.block_length is not None
            switch_to = self._role.other if self.step_in_block >= self.block_length else None
        else:
            switch_to = self._metric_decision(metrics)
        if switch_to is None or switch_to is self._role:
            return False
        self._role = switch_to
        self.step_in_block = 0
        self.window.clear()
        return True

    def _metric_decision(self, metrics: Mapping[str, float]) -> Role | None:
        name = self.cfg.metric
        if name not in metrics:
            raise KeyError(
                f"schedule.metric {name!r} is not among this step's metrics "
                f"(have: {sorted(metrics)[:20]})"
            )
        value = float(metrics[name])
        if not math.isnan(value):
            self.window = [*self.window, value][-self.cfg.window :]
        if len(self.window) < self.cfg.window:
            return None
        average = sum(self.window) / len(self.window)
        if self._role is Role.DEFENDER and average >= self.cfg.high:
            return self.destination[Role.DEFENDER]
        if self._role is Role.ATTACKER and average <= self.cfg.low:
            return self.destination[Role.ATTACKER]
        return None

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "mode": self.cfg.mode,
            "train_roles": self.cfg.train_roles,
            "role": self._role.value,
            "step": self.step,
            "step_in_block": self.step_in_block,
            "window": list(self.window),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict()`; the config must have the same mode and train_roles."""
        missing = {"version", "mode", "train_roles", "role", "step", "step_in_block", "window"}
        missing -= set(state)
        if missing:
            raise ValueError(f"scheduler state lacks {sorted(missing)}")
        if state["version"] != STATE_VERSION:
            raise ValueError(f"scheduler state version {state['version']} != {STATE_VERSION}")
        for key in ("mode", "train_roles"):
            if state[key] != getattr(self.cfg, key):
                raise ValueError(
                    f"scheduler state was saved with schedule.{key}={state[key]!r}, "
                    f"config has {getattr(self.cfg, key)!r}"
                )
        role = Role(state["role"])
        if role not in self.roles:
            raise ValueError(f"scheduler state role {role.value!r} is not a trained role")
        self._role = role
        self.step = int(state["step"])
        self.step_in_block = int(state["step_in_block"])
        self.window = [float(v) for v in state["window"]][-self.cfg.window :]
