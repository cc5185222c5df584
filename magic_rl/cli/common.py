"""Shared pieces of the `magic` CLI: the Typer apps, option annotations, the error boundary and
console helpers.

The error boundary (`ErrorBoundary`, the root command's class, so `magic` and tests through typer's
`CliRunner` get it alike): a user error — a bad option, config, data file, run directory, an
unreachable judge — prints one line per problem, `error: <file>[:line][:field]: what and what to
do`, and exits 2; any other exception prints one `error: internal error: ...` line and exits 1. The
Python traceback is shown only with `--debug` (accepted anywhere on the command line). User errors
are `CLIError` (raised by `_fail`), `ValueError` (ConfigError, DatasetError, ...), `OSError`, any
exception class defined in magic_rl, and a library's write failure whose text is an OS refusal
(safetensors' `No space left on device`, torch's `inline_container.cc`; the saves themselves name
their path through `magic_rl.data.outputs.writing`).

Only typer is imported here; rich and magic_rl.config load on first use, heavy libraries
never.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer
from typer._click import exceptions as click_errors  # typer vendors click; its errors live here
from typer.core import TyperGroup

DEBUG_FLAG = "--debug"


class CLIError(Exception):
    """A user error the CLI reports as `error: <message>` with exit code `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _one_line(text: str) -> str:
    return " ".join(text.split())


def error_lines(err: BaseException) -> tuple[int, list[str]]:
    """(exit code, message lines) for an exception escaping a command."""
    if isinstance(err, CLIError):
        return err.code, [_one_line(line) for line in str(err).splitlines() if line.strip()]
    if isinstance(err, click_errors.UsageError):
        where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        return 2, [_one_line(err.format_message()) + where]
    if isinstance(err, click_errors.ClickException):
        return err.exit_code, [_one_line(err.format_message())]
    if isinstance(err, KeyboardInterrupt | typer.Abort):
        return 130, ["interrupted"]
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return 2, [f"{err.filename}: {err.strerror}"]
    from magic_rl.data.outputs import is_write_failure

    if is_write_failure(err):  # a save no `writing` block named
        return 2, [
            f"a write failed: {_one_line(str(err))[:300]} (the disk is full or not writable; "
            "rerun with --debug to see which save)"
        ]
    ours = type(err).__module__.startswith("magic_rl")
    if isinstance(err, ValueError | OSError) or ours:
        lines = [_one_line(line) for line in str(err).splitlines() if line.strip()]
        return 2, lines or [type(err).__name__]
    return 1, [
        f"internal error: {type(err).__name__}: {_one_line(str(err))} (rerun with --debug for "
        "the traceback, and please report it)"
    ]


def _print_errors(lines: list[str]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True, soft_wrap=True, highlight=False)
    for line in lines:  # Text, not markup: a message may hold brackets (`name=[unclosed`)
        console.print(Text.assemble(("error:", "bold red"), " ", line))


class ErrorBoundary(TyperGroup):
    """The root `magic` group: every error escaping a command ends here (module docstring)."""

    def invoke(self, ctx):
        # typer turns a KeyboardInterrupt into a silent `Exit(130)` before `main` below sees it:
        # Ctrl-C outside a training step (which `loop.interrupt` handles) is reported here instead.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as err:  # loop.interrupt.Interrupted carries its message, code
            raise CLIError(str(err) or "interrupted (Ctrl-C)", getattr(err, "code", 130)) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        cut = args.index("--") if "--" in args else len(args)
        debug = DEBUG_FLAG in args[:cut]
        args = [a for i, a in enumerate(args) if i >= cut or a != DEBUG_FLAG]
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as err:
            err.show()
            code = err.exit_code
        except (Exception, KeyboardInterrupt, typer.Abort) as err:
            if debug:
                traceback.print_exc()
            code, lines = error_lines(err)
            _print_errors(lines)
        else:
            if not standalone_mode:
                return rv
            code = rv if isinstance(rv, int) else 0
        if not standalone_mode and code == 0:
            return 0
        sys.exit(code)


# `-h` as well as `--help` on every command (subcommands inherit the root context's settings).
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    cls=ErrorBoundary,
    help="MAGIC: co-evolving attacker and defender LLMs for robust safety (arXiv 2602.01539). "
    "Errors print one line (`error: file:field: ...`); add --debug anywhere for the traceback. "
    "Flags mean the same in every command (README, `Flags`).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)
config_app = typer.Typer(help="Inspect configurations.", no_args_is_help=True)
sandbox_app = typer.Typer(help="The self-contained CPU sandbox world.", no_args_is_help=True)
pool_app = typer.Typer(help="The attack pool (phase-1 SFT data).", no_args_is_help=True)
serve_app = typer.Typer(
    help="Serve models behind OpenAI-compatible endpoints.", no_args_is_help=True
)
experiment_app = typer.Typer(help="Multi-run experiments with seeds and CIs.", no_args_is_help=True)


def version() -> str:
    """The installed package's version (`make install` installs it, editable)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("magic-rl")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"magic-rl {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    # The root's help is app's `help=`; this callback only adds --version.
    pass


# Group order here is the order `magic --help` lists them in.
app.add_typer(config_app, name="config")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(pool_app, name="pool")
app.add_typer(serve_app, name="serve")
app.add_typer(experiment_app, name="experiment")

ConfigOpt = Annotated[
    str, typer.Option("--config", "-c", help="Preset name (sandbox) or YAML file.")
]


def overrides(example: str):
    """The trailing `key=value` config overrides of a command; `example` is one that matters to it
    (the hint never names a field the command ignores)."""
    return Annotated[
        list[str] | None,
        typer.Argument(
            help=f"Dotted config overrides (`magic config explain` lists the fields), e.g. {example}.",
            show_default=False,
            metavar="KEY=VALUE",
        ),
    ]


Overrides = overrides("schedule.freq=15")  # training's hint; other commands name their own


def warn(message: str) -> None:
    """One `warning: ...` line on stderr (stdout stays the command's output)."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, soft_wrap=True, highlight=False).print(
        Text.assemble(("warning:", "bold yellow"), " ", message)
    )


def renamed(old: str, new: str, old_value, new_value, default=None):
    """The value of a flag renamed from `old` to `new`: the old spelling still works (so older
    commands in docs/LOG.md run) and warns once; both given is an error."""
    if old_value is None:
        return new_value
    if new_value != default:
        _fail(f"{old} and {new} are the same flag ({old} is its old name): give only {new}")
    warn(f'{old} is deprecated: it is now {new} (README, "Flags")')
    return old_value


def _fail(message: str, code: int = 2) -> NoReturn:
    """Stop the command with a user error; `ErrorBoundary` prints it."""
    raise CLIError(message, code)


def _load(config: str | None, overrides: list[str] | None, *, complete: bool = False):
    """A config (preset or YAML + overrides); `complete`: the file is a run's saved config.yaml,
    which must name every field (a truncated one is refused, not filled with defaults)."""
    from magic_rl.config import ConfigError, load_config

    try:
        return load_config(config, overrides or [], complete=complete)
    except ConfigError as err:
        _fail(str(err))


def _console():
    from rich.console import Console

    # soft_wrap: long lines are left to the terminal, so a printed path is never split by a newline
    # (copy-paste keeps working); tables still fit the width.
    return Console(soft_wrap=True)
