"""The world and its inputs: `magic config show`, `validate`, `sandbox build/probe`; `pool build` is
in `cli/pool.py`, imported here so it registers in the same place of `magic --help`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import (
    ConfigOpt,
    Overrides,
    _console,
    _fail,
    _load,
    app,
    config_app,
    sandbox_app,
)
from magic_rl.cli.pool import pool_build  # noqa: F401 (registers `magic pool build` here)


@config_app.command("show")
def config_show(
    preset_or_file: Annotated[str, typer.Argument(help="Preset name or YAML file.")],
    overrides: Overrides = None,
) -> None:
    """Print the fully resolved configuration (defaults <- YAML <- overrides)."""
    from magic_rl.config import dump_config

    typer.echo(dump_config(_load(preset_or_file, overrides)), nl=False)


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="YAML config to check.")],
    overrides: Overrides = None,
) -> None:
    """Check a config without running anything; exits non-zero naming the bad field."""
    cfg = _load(file, overrides)
    typer.echo(
        f"ok: {file} ({cfg.name}: attacker={cfg.attacker.model}, defender="
        f"{cfg.defender.model}, judge={cfg.judge.backend})"
    )


@sandbox_app.command("build")
def sandbox_build(
    config: ConfigOpt = "sandbox",
    force: Annotated[bool, typer.Option(help="Rebuild even if cached.")] = False,
    attacker: Annotated[bool, typer.Option(help="Also run phase-1 SFT of the attacker.")] = True,
    overrides: Overrides = None,
) -> None:
    """Build the sandbox world (seeds, pool, tokenizer, base model, judge, SFT'd attacker)."""
    import json
    import time

    from magic_rl.sandbox.checks import attacker_warnings
    from magic_rl.sandbox.world import build_attacker, build_world, world_for
    from magic_rl.tables import warning

    cfg = _load(config, overrides)
    console = _console()
    t = time.perf_counter()
    world = world_for(cfg)
    cached = not force and world.built
    cached = cached and (not attacker or (world.attacker(cfg) / "sft.json").exists())
    build_world(cfg, force=force, log=console.print)
    info = world.info
    stages = dict(info["timings_s"])
    if attacker:
        sft_summary = build_attacker(cfg, world, force=force, log=console.print) / "sft.json"
        stages["attacker_sft"] = json.loads(sft_summary.read_text()).get("seconds")
    took = f"{time.perf_counter() - t:.0f}s" + (", reused from the cache" if cached else "")
    acc = info["judge_accuracy"]
    signals = ("prompt_harmful", "response_refusal", "response_harmful")
    console.print(f"[bold green]sandbox world[/] {world.root}  ({took})")
    console.print(f"  base model: {world.base}  ({info['parameters']:,} parameters)")
    console.print(
        f"  judge:      {world.judge}  held-out accuracy "
        + ", ".join(f"{k} {acc[k]:.3f}" for k in signals if k in acc)
    )
    console.print(f"  pool:       {world.pool}  ({info['pool_records']} records)")
    learn = info.get("learnability", {})
    console.print(
        "  learnability (defender-size classifier, harmful vs benign rewrites): held-out "
        f"requests {learn.get('held_out_requests')}, held-out strategies "
        f"{learn.get('held_out_strategies')}"
    )
    if attacker:
        console.print(f"  attacker:   {world.attacker(cfg)}")
        check_file = world.attacker(cfg) / "check.json"
        if check_file.is_file():
            check = json.loads(check_file.read_text())
            console.print(
                f"  attacker check ({check['n']} sampled rewrites, temperature "
                f"{check['temperature']}): format {check['format_rate']}, faithful "
                f"{check['faithful_rate']}"
            )
            for line in attacker_warnings(check):
                console.print(warning(line))
    console.print("  built in:   " + ", ".join(f"{k} {v}s" for k, v in stages.items()))


@sandbox_app.command("probe")
def sandbox_probe(
    config: ConfigOpt = "sandbox",
    model: Annotated[
        str | None, typer.Option(help="Defender to probe (default: the base model).")
    ] = None,
    sampled: Annotated[
        bool, typer.Option(help="Sample at the rollout temperature, not greedy.")
    ] = False,
    per_strategy: Annotated[int, typer.Option(help="Rewrites per strategy.")] = 60,
    split: Annotated[str, typer.Option(help="Seed split to probe (train/val/test).")] = "test",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for probe.json and probe.md (default: OUTPUT_DIR/probe-<time>)."
        ),
    ] = None,
    overrides: Overrides = None,
) -> None:
    """Per-strategy vulnerability of a sandbox defender (ASR, refusal, CIs) on test-split seeds."""
    import time

    from magic_rl.sandbox.probe import probe_defender, rich_table, write_probe

    cfg = _load(config, overrides)
    out = out or Path(cfg.output_dir) / f"probe-{time.strftime('%Y%m%d-%H%M%S')}"
    if (out / "probe.json").exists():
        _fail(f"{out / 'probe.json'} exists: choose another --out (nothing was run)")
    console = _console()
    rows = probe_defender(
        cfg, model, sampled=sampled, per_strategy=per_strategy, split=split, log=console.print
    )
    title = f"{model or 'base model'}: {'sampled' if sampled else 'greedy'} replies, {split} seeds"
    console.print(rich_table(rows, title))
    provenance = {
        "model": model or "base",
        "sampled": sampled,
        "per_strategy": per_strategy,
        "split": split,
        "overrides": list(overrides or []),
    }
    path = write_probe(rows, out, provenance)
    console.print(f"[bold green]probe[/] {path}  ({out / 'probe.md'})")
