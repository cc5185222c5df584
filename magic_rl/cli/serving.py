"""Serving: `magic serve judge|policy`."""

from __future__ import annotations

from typing import Annotated

import typer

from magic_rl.cli.common import (
    ConfigOpt,
    _console,
    _fail,
    _load,
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

    from magic_rl.judge.serve import (
        FAULTS,
        impostor_warning,
        serve_judge,
        serve_until_interrupted,
    )

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
            game=cfg.game,
        )
    except (ValueError, OSError) as err:
        _fail(str(err))
    url = server.url
    if warning := impostor_warning(judge, fmt):
        console.print(f"[bold yellow]{warning}[/]", highlight=False, soft_wrap=True)
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

    from magic_rl.config import PolicyConfig
    from magic_rl.policy.load import load_policy
    from magic_rl.serving import openai
    from magic_rl.serving.policy import PolicyServer

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
        policy = load_policy(path, PolicyConfig(dtype=dtype), device)
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
