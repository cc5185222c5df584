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
    overrides,
    sandbox_app,
)
from magic_rl.cli.pool import pool_build  # noqa: F401 (registers `magic pool build` here)

SandboxOverrides = overrides("sandbox.fraction=0.5")


@config_app.command("show")
def config_show(
    preset_or_file: Annotated[str, typer.Argument(help="Preset name or YAML file.")],
    overrides: Overrides = None,
) -> None:
    """Print the fully resolved configuration (defaults <- YAML <- overrides)."""
    from magic_rl.config import dump_config

    typer.echo(dump_config(_load(preset_or_file, overrides)), nl=False)


def config_fields(model_cls, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, type, description) of every leaf field of a pydantic config class, in
    declaration order; a section (a nested config class, optional or not) is walked, not listed."""
    import enum
    import types
    import typing

    from pydantic import BaseModel

    rows = []
    for name, info in model_cls.model_fields.items():
        key = f"{prefix}{name}"
        ann = info.annotation
        options = typing.get_args(ann) if isinstance(ann, types.UnionType) else (ann,)
        section = next(
            (a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if section is not None:
            rows += config_fields(section, f"{key}.")
            continue
        if typing.get_origin(ann) is typing.Literal:
            kind = "one of " + ", ".join(str(a) for a in typing.get_args(ann))
        elif isinstance(ann, type) and issubclass(ann, enum.Enum):
            kind = "one of " + ", ".join(str(m.value) for m in ann)
        else:
            kind = getattr(ann, "__name__", None) if isinstance(ann, type) else None
            kind = kind or str(ann).replace("typing.", "").replace("magic_rl.records.", "")
        rows.append((key, kind, " ".join((info.description or "").split())))
    return rows


@config_app.command("explain")
def config_explain(
    key: Annotated[
        str | None,
        typer.Argument(help="A field (schedule.freq) or a section (schedule); default: all."),
    ] = None,
    config: ConfigOpt = "sandbox",
    overrides: Overrides = None,
) -> None:
    """What each config field means, its type and its value in --config (overrides applied).

    Examples:
        magic config explain schedule.freq
        magic config explain judge --config configs/paper-qwen2.5-7b.yaml
    """
    from magic_rl.config import RunConfig

    if key is not None and "=" in key:  # `magic config explain k=v`: overrides only, every field
        key, overrides = None, [key, *(overrides or [])]
    cfg = _load(config, overrides)
    rows = [
        r
        for r in config_fields(RunConfig)
        if key is None or r[0] == key or r[0].startswith(f"{key}.")
    ]
    if not rows:
        _fail(f"{key}: no such config field or section (`magic config explain` lists them all)")
    import json

    values = cfg.model_dump(mode="json")
    for name, kind, description in rows:
        value = values
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        shown = json.dumps(value) if value is not None or name.count(".") < 2 else "(section unset)"
        typer.echo(f"{name} = {shown}  ({kind})\n    {description or '(no description)'}")


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
    overrides: SandboxOverrides = None,
) -> None:
    """Build the sandbox world (seeds, pool, tokenizer, base model, judge, SFT'd attacker) and run
    its checks (learnability, the attacker's sampled rewrites)."""
    import json
    import time

    from magic_rl.sandbox.checks import attacker_warnings
    from magic_rl.sandbox.resolve import check_world
    from magic_rl.sandbox.world import build_checked, world_for
    from magic_rl.tables import warning

    cfg = _load(config, overrides)
    console = _console()
    t = time.perf_counter()
    world = world_for(cfg)
    if not force:  # a damaged cache is refused with the command that rebuilds it
        check_world(world, world.attacker(cfg) if attacker else None)
    cached = not force and world.built and "learnability" in world.info
    cached = cached and (not attacker or (world.attacker(cfg) / "sft.json").exists())
    _, phase1 = build_checked(cfg, force=force, attacker=attacker, log=console.print)
    info = world.info
    stages = dict(info["timings_s"])
    if phase1 is not None:
        stages["attacker_sft"] = json.loads((phase1 / "sft.json").read_text()).get("seconds")
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
    per = {k.split("/", 1)[1]: v for k, v in learn.items() if k.startswith("held_out_strategies/")}
    if per:
        console.print("    per held-out strategy: " + ", ".join(f"{k} {v}" for k, v in per.items()))
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
        str | None,
        typer.Option(
            help="Defender to probe: RUN_DIR, RUN_DIR/checkpoints/step-N, a model directory or "
            "sandbox:NAME (default: the base model)."
        ),
    ] = None,
    sampled: Annotated[
        bool, typer.Option(help="Sample at the rollout temperature, not greedy.")
    ] = False,
    per_strategy: Annotated[int, typer.Option(help="Rewrites per strategy.")] = 60,
    split: Annotated[str, typer.Option(help="Seed split to probe (train/val/test).")] = "test",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for probe.json and probe.md (default: OUTPUT_DIR/probe-<time>).",
            metavar="DIR",
        ),
    ] = None,
    overrides: SandboxOverrides = None,
) -> None:
    """Per-strategy vulnerability of a sandbox defender (ASR, refusal, CIs) on test-split seeds."""
    import time

    from magic_rl.sandbox.probe import probe_defender, rich_table, write_probe
    from magic_rl.sandbox.resolve import model_dir

    cfg = _load(config, overrides)
    out = out or Path(cfg.output_dir) / f"probe-{time.strftime('%Y%m%d-%H%M%S')}"
    for name in ("probe.json", "probe.md"):  # never replaced, even a probe's own
        if (out / name).exists():
            _fail(f"{out / name} exists: choose another --out (nothing was run)")
    console = _console()
    if model is not None:
        model = model_dir(model, "defender", cfg, log=console.print)
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
