"""Shared pieces of the `magic` CLI: the Typer apps, option annotations and error/console helpers.

Only typer is imported here; rich and magic_rl.config load on first use, heavy libraries never.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="MAGIC: co-evolving attacker and defender LLMs for robust safety (arXiv 2602.01539).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect configurations.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The self-contained CPU sandbox world.", no_args_is_help=True)
pool_app = typer.Typer(help="The attack pool (phase-1 SFT data).", no_args_is_help=True)
serve_app = typer.Typer(
    help="Serve models behind OpenAI-compatible endpoints.", no_args_is_help=True
)
experiment_app = typer.Typer(help="Multi-run experiments with seeds and CIs.", no_args_is_help=True)
# Group order here is the order `magic --help` lists them in.
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(pool_app, name="pool")
app.add_typer(serve_app, name="serve")
app.add_typer(experiment_app, name="experiment")

ConfigOpt = Annotated[
    str, typer.Option("--config", "-c", help="Preset name (sandbox) or YAML file.")
]
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Dotted overrides, e.g. schedule.freq=15.", show_default=False),
]


def _fail(message: str, code: int = 2) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load(config: str | None, overrides: list[str] | None):
    from magic_rl.config import ConfigError, load_config

    try:
        return load_config(config, overrides or [])
    except ConfigError as err:
        _fail(str(err))


def _console():
    from rich.console import Console

    # soft_wrap: long lines are left to the terminal, so a printed path is never split by a newline
    # (copy-paste keeps working); tables still fit the width.
    return Console(soft_wrap=True)
