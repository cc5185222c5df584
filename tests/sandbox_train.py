"""Test helper: `train(cfg)` as `magic train` runs it — the sandbox names resolved at the edge
(`magic_rl.sandbox.resolve.resolve_world`), the config as given recorded in config.yaml."""

from __future__ import annotations

from magic_rl import loop
from magic_rl.sandbox.resolve import resolve_world


def train(cfg, *, resume=None, log=print):
    loop.preflight(cfg, resume=resume)
    return loop.train(resolve_world(cfg, log=log), resume=resume, log=log, recorded=cfg)
