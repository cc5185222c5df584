"""The two training phases as one workflow below the CLI: phase 1, the attacker's SFT on the attack
pool (`magic sft`), and `train`, what `magic train` runs: phase 1 first when it is pending, then
phase 2 (`loop.train`) on the resolved world.

`run_phase1(cfg)` is `magic sft`: the sandbox's cached attacker for a `sandbox:*` model, else the
pool (`sft.pool`, or built from the run's own RL seeds with the programmatic strategies) through
`sft.attacker_sft` into `sft_output(cfg)`, then `check_attacker`: `sft.check_samples` rewrites
sampled at the rollout temperature, their format and faithfulness rates printed and written to
check.json beside the weights (the sandbox build's check). `ensure_attacker(cfg)` is what `magic train` calls before
phase 2: when the attacker is this config's own phase-1 output and that is not complete yet (no
`sft.json`, which phase 1 writes last), phase 1 runs first; a named model (`models:`, `sandbox:`), a
finished output or a game without an attacker model is left alone. `train(cfg)` checks the run
before anything is built (`loop.preflight`: a taken name, a bad seed file), runs that rule,
resolves the world at the edge (`sandbox.resolve.resolve_world`, which also runs phase 0 for an
`aligned:` defender, magic_rl/align.py) and trains.

Floor: above `loop` (its seed loader) and beside `sandbox.world` (the sandbox's attacker), below the
CLI (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path

from magic_rl.config import RunConfig


class Phase1Missing(RuntimeError):
    """The attacker is this config's untrained phase-1 output, and phase 1 cannot run here."""


def sft_output(cfg) -> Path:
    """Where `magic sft` writes the phase-1 attacker of a real-model config."""
    return Path(cfg.sft.output or Path(cfg.output_dir) / cfg.name / "attacker-sft")


def run_phase1(cfg, *, force: bool = False, log=print) -> Path:
    """Phase 1 (`magic sft`): the SFT'd attacker's directory."""
    if cfg.sft.pool is None and cfg.sft.model.startswith("sandbox:"):
        from magic_rl.sandbox.world import build_attacker, build_world

        return build_attacker(cfg, build_world(cfg, log=log), force=force, log=log)
    from magic_rl.loop.run import load_rl_seeds
    from magic_rl.sandbox.resolve import resolve_model
    from magic_rl.sft import attacker_sft
    from magic_rl.strategies import build_pool, read_pool

    out = sft_output(cfg)
    base = resolve_model(cfg.sft.model, cfg, log=log)
    if cfg.sft.pool:
        records = read_pool(cfg.sft.pool)
    else:
        seeds = load_rl_seeds(cfg)
        records = build_pool(seeds, rng_seed=cfg.seed, exclude=cfg.sft.exclude_families)
        log(f"pool: {len(records)} records from {len(seeds)} {cfg.data.split} seeds")
    attacker_sft(cfg, records, base, out, log=log)
    if cfg.sft.check_samples:
        check_attacker(cfg, out, list({r.seed.id: r.seed for r in records}.values()), log=log)
    return out


def check_attacker(cfg, out: Path, seeds, *, log=print) -> dict:
    """The phase-1 attacker's format and faithfulness rates on `sft.check_samples` rewrites of
    `seeds` sampled at its rollout temperature and top-p (the sandbox build's check,
    `sandbox.checks.attacker_check`, with the game's own request marker), printed and written to
    `out`/check.json beside the weights."""
    import json

    from magic_rl.sandbox.checks import attacker_check, attacker_warnings
    from magic_rl.tables import record_table, warning

    check = attacker_check(
        cfg, out, seeds, cfg.sft.check_samples, request_marker=cfg.game.request_marker
    )
    (out / "check.json").write_text(json.dumps(check, indent=2) + "\n")
    log(record_table("attacker check (sampled rewrites of train-split seeds)", check))
    for line in attacker_warnings(check):
        log(warning(line))
    return check


def phase1_pending(cfg) -> bool:
    """True when the attacker is this config's phase-1 output and that output is not complete yet
    (no `sft.json`, which `magic sft` writes last)."""
    model = cfg.attacker.model
    if cfg.game.attacker != "policy":
        return False  # no attacker model plays (No-Game, static attacks)
    if ":" in model or cfg.sft.model.startswith("sandbox:"):
        return False  # a named model (models:, sandbox:) is resolved, never trained, here
    out = sft_output(cfg)
    return Path(model).resolve() == out.resolve() and not (out / "sft.json").exists()


def ensure_attacker(cfg, *, log=print) -> None:
    """Before phase 2: run phase 1 when `phase1_pending(cfg)`. Under several processes it refuses
    (`Phase1Missing`): SFT runs in one process, `magic sft` first."""
    if not phase1_pending(cfg):
        return
    from accelerate import PartialState

    if PartialState().num_processes > 1:
        raise Phase1Missing(
            f"attacker.model {cfg.attacker.model} does not exist yet: run `magic sft` first"
        )
    log(
        f"[bold]phase 1[/]: attacker.model is this config's sft.output "
        f"({cfg.attacker.model}), not trained yet: running `magic sft` first"
    )
    run_phase1(cfg, log=log)


def train(cfg: RunConfig, *, resume: Path | None = None, log=print) -> Path:
    """`magic train`: phase 1 first when its output is pending (`ensure_attacker`), then phase 2 on
    the resolved world; the config is recorded as given (sandbox names and all). Returns the run
    directory. A taken run name or a bad seed file fails before phase 1 or a world build."""
    from magic_rl.loop import preflight
    from magic_rl.loop import train as train_phase2
    from magic_rl.sandbox.resolve import resolve_world

    preflight(cfg, resume=resume)
    ensure_attacker(cfg, log=log)
    resolved = resolve_world(cfg, log=log)
    return train_phase2(resolved, resume=resume, log=log, recorded=cfg)
