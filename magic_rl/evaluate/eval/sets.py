"""The eval sets of `magic eval`: benchmarks by name or file, and the sandbox's six sets (their
loader, `data.benchmarks.sandbox`, is registered beside the public benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from magic_rl.config import RunConfig
from magic_rl.data.benchmarks import (
    BENCHMARKS,
    DatasetError,
    EvalItem,
    benchmark_path,
    file_sha256,
    load_benchmark,
    sandbox_names,
    sandbox_sets,
)
from magic_rl.data.benchmarks.sandbox import HELD_OUT, held_out_family  # noqa: F401 (protocol's)
from magic_rl.evaluate.eval.items import EvalSet, Log


def load_sets(
    names: Sequence[str],
    cfg: RunConfig,
    *,
    limit: int | None = None,
    data_root: str | Path | None = None,
    sandbox_pool: Path | None = None,
    log: Log = print,
) -> list[EvalSet]:
    """Benchmark names (data.benchmarks), files, `sandbox` (all six sets) or `sandbox/<set>`;
    `sandbox_pool`: the built world's pool.jsonl, if any (`sandbox_sets`)."""
    wanted: list[str] = []  # sandbox sets
    out: list[EvalSet] = []
    for name in names:
        if (sets := sandbox_names(name)) is not None:
            wanted += sets
        else:
            items, path = _load_benchmark(name, limit, data_root)
            files = {str(path): file_sha256(path)} if path is not None and path.is_file() else {}
            out.append(EvalSet(name, items, files))
    if wanted:
        found = sandbox_sets(
            list(dict.fromkeys(wanted)),
            held_out_strategies=cfg.data.held_out_strategies,
            world_seed=cfg.sandbox.seed,
            limit=limit,
            pool_path=sandbox_pool,
            log=log,
        )
        out = [EvalSet(name, items, files) for name, items, files in found] + out
    return out


def _load_benchmark(
    name: str, limit: int | None, data_root: str | Path | None
) -> tuple[list[EvalItem], Path | None]:
    if name in BENCHMARKS:
        return load_benchmark(name, limit=limit, data_root=data_root), benchmark_path(
            name, data_root
        )
    path = Path(name)
    if not path.is_file():
        raise DatasetError(
            path, f"neither a benchmark name ({', '.join(sorted(BENCHMARKS))}) nor a file"
        )
    try:
        return load_benchmark(path, limit=limit), path
    except DatasetError as err:
        if (err.line, err.record, err.field) != (None, None, None):
            raise
    # A file no loader knows by name: read it as a table with `prompt` and `label` columns.
    return load_benchmark(path, limit=limit, prompt_field="prompt", label_field="label"), path
