"""Test helper: `train(cfg)` as `magic train` runs it — the sandbox names resolved at the edge
(`magic_rl.sandbox.resolve.resolve_world`), the config as given recorded in config.yaml."""

from __future__ import annotations

from magic_rl import loop
from magic_rl.sandbox.resolve import resolve_world


def train(cfg, *, resume=None, log=print):
    loop.preflight(cfg, resume=resume)
    return loop.train(resolve_world(cfg, log=log), resume=resume, log=log, recorded=cfg)


def two_step_run(tiny_overrides, out, name: str = "base", log=lambda *a: None):
    """The small finished run several test files read: 2 steps of 4 seeds on the tiny world,
    switching every step (so both roles train and checkpoint)."""
    from magic_rl.config import load_config

    overrides = ["train.steps=2", "schedule.freq=1", "train.seeds_per_step=4"]
    cfg = load_config("sandbox", [*tiny_overrides, *overrides, f"output_dir={out}", f"name={name}"])
    return train(cfg, log=log)
