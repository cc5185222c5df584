"""Serving and multi-run experiments: `magic serve judge|policy` and `magic experiment ablation`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import (
    ConfigOpt,
    _console,
    _fail,
    _load,
    experiment_app,
    overrides,
    renamed,
    serve_app,
    warn,
)

# --- serve -------------------------------------------------------------------------------------

HostOpt = Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 exposes it).")]
PortOpt = Annotated[int, typer.Option(help="TCP port; 0 picks a free one.", min=0, max=65535)]
# Distinct defaults, so a judge and a policy served side by side (the usual pair) never collide.
JUDGE_PORT, POLICY_PORT = 8000, 8001
GUARD_FORMATS = ("wildguard", "qwen3guard", "llamaguard")
ApiKeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        help="Require `Authorization: Bearer $VAR` (the key is read from this "
        "environment variable, never from the command line)."
    ),
]
MaxBodyOpt = Annotated[
    int, typer.Option(help="Largest request body in bytes (413 above it).", min=1)
]
ReadTimeoutOpt = Annotated[
    float,
    typer.Option(
        help="Seconds a client has to send its request headers, then its body.", min=0.001
    ),
]
MaxConnectionsOpt = Annotated[
    int, typer.Option(help="Open connections past which requests get 503 at once.", min=1)
]


def _api_key(api_key_env: str | None) -> str | None:
    import os

    if not api_key_env:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        _fail(f"--api-key-env {api_key_env}: the environment variable is unset or empty")
    return key


def _limits(max_body_bytes: int, read_timeout: float, max_connections: int):
    from magic_rl.serving import Limits

    return Limits(
        max_body_bytes=max_body_bytes, read_timeout_s=read_timeout, max_connections=max_connections
    )


def served_judge(cfg, log=print):
    """The judge a config names, built locally to be served (never a client of another endpoint)."""
    from magic_rl.judge import make_judge
    from magic_rl.sandbox.resolve import resolve_judge

    if cfg.judge.endpoint:
        raise ValueError(
            f"judge.endpoint={cfg.judge.endpoint!r}: this config's judge is already a client of an "
            "endpoint; serve a local judge (judge.endpoint=null)"
        )
    return make_judge(resolve_judge(cfg, log=log).judge)


@serve_app.command("judge")
def serve_judge_cmd(
    config: ConfigOpt = "sandbox",
    host: HostOpt = "127.0.0.1",
    port: PortOpt = JUDGE_PORT,
    answer_format: Annotated[
        str,
        typer.Option(
            help="The guard model whose answer text the judge speaks (judge.backend of a client): "
            "wildguard, qwen3guard or llamaguard."
        ),
    ] = "wildguard",
    old_format: Annotated[
        str | None, typer.Option("--format", hidden=True, help="Old name of --answer-format.")
    ] = None,
    fault_rate: Annotated[
        float, typer.Option(help="Share of requests that get an injected fault (testing).")
    ] = 0.0,
    faults: Annotated[
        str, typer.Option(help="Comma-separated faults to draw from: timeout,500,garbage,slow.")
    ] = "timeout,500,garbage,slow",
    model_name: Annotated[
        str | None, typer.Option(help="Model name to report and accept (default: the judge's).")
    ] = None,
    api_key_env: ApiKeyEnvOpt = None,
    max_body_bytes: MaxBodyOpt = 1 << 20,
    read_timeout: ReadTimeoutOpt = 10.0,
    max_connections: MaxConnectionsOpt = 512,
    overrides: overrides("judge.max_response_tokens=256") = None,
) -> None:
    """Serve the config's judge (the sandbox's embedded one by default) as a guard-model endpoint.

    Example: magic serve judge --port 8000 --answer-format wildguard
    (then train with the `judge.backend=... judge.endpoint=... judge.model=...` it prints)
    """
    import logging

    from magic_rl.judge.serve import FAULTS, serve_judge, serve_until_interrupted

    fmt = renamed("--format", "--answer-format", old_format, answer_format, "wildguard")
    if fmt not in GUARD_FORMATS:
        _fail(f"--answer-format {fmt!r}: choose {', '.join(GUARD_FORMATS)}")
    cfg = _load(config, overrides)
    console = _console()
    chosen = tuple(f.strip() for f in faults.split(",") if f.strip())
    if set(chosen) - set(FAULTS):
        _fail(f"--faults {faults!r}: choose from {','.join(FAULTS)}")
    key = _api_key(api_key_env)
    limits = _limits(max_body_bytes, read_timeout, max_connections)
    try:
        judge = served_judge(cfg, log=console.print)
    except (ValueError, FileNotFoundError, OSError) as err:
        _fail(str(err))
    name = model_name or judge.name
    logging.basicConfig(level=logging.WARNING)
    try:
        server = serve_judge(
            judge,
            host,
            port,
            backend_format=fmt,
            fault_rate=fault_rate,
            faults=chosen,
            seed=cfg.seed,
            model_name=name,
            api_key=key,
            limits=limits,
        )
    except (ValueError, OSError) as err:
        _fail(str(err))
    url = server.url
    console.print(f"[bold green]judge[/] {name} ({fmt}) at {url}", highlight=False)
    console.print(
        f"train against it: judge.backend={fmt} judge.endpoint={url} judge.model={name}"
        "   (Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    serve_until_interrupted(server)


@serve_app.command("policy")
def serve_policy_cmd(
    model: Annotated[
        str | None,
        typer.Option(
            help="RUN_DIR (its last checkpoint), RUN_DIR/checkpoints/step-N, a model directory "
            "(HF safetensors), sandbox:base|attacker (built on demand) or models:NAME.",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        str, typer.Option(help="Which model of a run or checkpoint: defender or attacker.")
    ] = "defender",
    config: ConfigOpt = "sandbox",
    host: HostOpt = "127.0.0.1",
    port: PortOpt = POLICY_PORT,
    model_name: Annotated[
        str | None, typer.Option(help="Model name to report and accept (default: MODEL as given).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    max_batch: Annotated[
        int, typer.Option(help="Requests decoded together (rows: x n).", min=1)
    ] = 16,
    max_tokens: Annotated[
        int, typer.Option(help="Largest max_tokens a request may ask (and chat's default).", min=1)
    ] = 1024,
    api_key_env: ApiKeyEnvOpt = None,
    max_body_bytes: MaxBodyOpt = 1 << 20,
    read_timeout: ReadTimeoutOpt = 10.0,
    max_connections: MaxConnectionsOpt = 512,
    overrides: overrides("sandbox.cache_dir=.magic_cache") = None,
) -> None:
    """Serve a causal LM behind OpenAI-compatible /v1/chat/completions and /v1/completions.

    Concurrent requests are batched; chats use the model's chat template; temperature, top_p,
    max_tokens, n, seed and stop are honoured. 127.0.0.1 by default; limits as `serve judge`.

    Examples:
        magic serve policy --model sandbox:base
        magic serve policy --model runs/demo --role attacker --port 8002
        magic serve policy --model models:smollm2-135m-instruct --model-name smollm2
    """
    import logging

    from magic_rl.serving import openai
    from magic_rl.serving.policy import PolicyServer, load_policy

    model, overrides = _policy_model(model, overrides)
    if role not in ("defender", "attacker"):
        _fail(f"--role {role!r}: choose defender or attacker")
    cfg = _load(config, overrides)
    console = _console()
    key = _api_key(api_key_env)
    limits = _limits(max_body_bytes, read_timeout, max_connections)
    if dtype not in ("float32", "bfloat16", "float16"):
        _fail(f"--dtype {dtype!r}: choose float32, bfloat16 or float16")
    try:
        from magic_rl.sandbox.resolve import model_dir

        path = model_dir(model, role, cfg, log=console.print)
        policy = load_policy(path, device=device, dtype=dtype)
        server = PolicyServer(
            policy,
            model_name or model,
            host,
            port,
            api_key=key,
            limits=limits,
            caps=openai.Caps(max_tokens=max_tokens),
            max_batch=max_batch,
        )
    except (ValueError, FileNotFoundError, OSError) as err:
        _fail(str(err))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("magic_rl.serving.policy").setLevel(logging.INFO)  # one line per batch
    name = model_name or model
    console.print(f"[bold green]policy[/] {name} ({path}) at {server.url}", highlight=False)
    console.print(
        f"use it: base_url={server.url} model={name}   e.g. magic pool build "
        f"--rewriter-url {server.url} --rewriter-model {name}   (Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    server.serve_forever()


def _policy_model(model: str | None, args: list[str] | None) -> tuple[str, list[str]]:
    """(the model, the overrides) of `serve policy`: the model was once its positional argument
    (`magic serve policy MODEL`), still accepted with a warning: a first trailing argument that is
    not `key=value` is it."""
    args = list(args or [])
    if args and "=" not in args[0]:
        if model is not None:
            _fail(f"{args[0]!r}: the model is given by --model; trailing arguments are key=value")
        warn("`magic serve policy MODEL` is deprecated: give the model as --model MODEL")
        return args[0], args[1:]
    if model is None:
        _fail("missing --model (a run directory, checkpoint, model directory or sandbox:base)")
    return model, args


# --- experiments (magic_rl.experiment) ----------------------------------------------------------


@experiment_app.command("ablation")
def experiment_ablation(
    config: ConfigOpt = "sandbox",
    seeds: Annotated[str, typer.Option(help="Training seeds (top-level `seed`).")] = "0,1,2,3,4",
    steps: Annotated[
        int | None, typer.Option(help="Steps per run (default: the config's train.steps).", min=1)
    ] = None,
    variants: Annotated[
        str,
        typer.Option(
            help="Comma-separated: base,no_game,defender_only,static,magic,magic_eq,league,"
            "hard_replay."
        ),
    ] = "base,no_game,defender_only,static,magic,magic_eq",
    out: Annotated[
        Path,
        typer.Option(help="Parent directory of the runs; gets ablation.json/.md.", metavar="DIR"),
    ] = Path("runs/ablation"),
    limit: Annotated[
        int | None, typer.Option(help="Prompts per sandbox eval set (smoke runs).", min=1)
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print the plan and its time estimate, run nothing.")
    ] = False,
    overrides: overrides("game.max_turns=3") = None,
) -> None:
    """The ablation table: each variant x seed trained for the same steps, its last defender
    evaluated on the sandbox sets; mean [95% t-interval] over seeds. Resumable (reruns skip what
    is done). Overrides apply to every run.

    The plan (runs, steps, a time estimate) is printed first; --dry-run stops there.

    Examples:
        magic experiment ablation --dry-run
        magic experiment ablation --seeds 0,1 --steps 30 --variants base,no_game,magic --out runs/abl
    """
    from magic_rl.config import ConfigError
    from magic_rl.experiment import parse_seeds, parse_variants, run_ablation

    console = _console()
    try:
        chosen, seed_list = parse_variants(variants), parse_seeds(seeds)
        _print_plan(console, config, overrides or [], chosen, seed_list, steps, out)
        if dry_run:
            return
        path = run_ablation(
            config,
            overrides or [],
            variants=chosen,
            seeds=seed_list,
            steps=steps,
            out=out,
            limit=limit,
            log=console.print,
        )
    except (ConfigError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    console.print(
        f"[bold green]ablation[/] {path}  ({path.with_suffix('.md')}, "
        f"{path.parent / 'provenance.json'})"
    )


# `magic experiment ablation` with its defaults (26 runs, 1800 steps with evaluation) took 17 min 49 s
# on 2 idle CPU cores (docs/ablation.md); the estimate scales that by the planned steps.
MEASURED_STEPS, MEASURED_S = 1800, 1069.0


def _print_plan(console, config, overrides, variants, seeds, steps, out: Path) -> None:
    """Runs, steps and a time estimate before an ablation starts (docs/ablation.md's timing)."""
    from magic_rl.experiment import STEPS_FACTOR, run_specs

    steps = steps or _load(config, overrides).train.steps
    specs = run_specs(variants, seeds)
    trained = [s for s in specs if s.trained]
    todo = [s for s in trained if not (out / s.name / "summary.json").is_file()]
    total = sum(steps * STEPS_FACTOR.get(s.variant, 1) for s in todo)
    estimate = (
        f"about {max(1, round(total * MEASURED_S / MEASURED_STEPS / 60))} min on 2 CPU cores "
        "(scaled from docs/ablation.md's timing)"
        if config == "sandbox"
        else "no estimate (timed only for the sandbox preset)"
    )
    longer = [f"{v} {k}x" for v, k in STEPS_FACTOR.items() if v in variants]
    console.print(
        f"[bold]plan[/] {len(variants)} variants x {len(seeds)} seeds: {len(specs)} runs "
        f"({len(trained) - len(todo)} already complete in {out}), {total} training steps to go "
        f"({steps} per run{''.join(f', {x}' for x in longer)}); {estimate}",
        highlight=False,
    )
