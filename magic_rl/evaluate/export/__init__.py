"""`magic export`: a `magic eval` / `magic attack` output in other harnesses' result formats, so
published tables can be filled from our runs (docs/comparing.md maps the columns).

| format        | from          | writes (under OUT/<format>/)                                   |
|---------------|---------------|----------------------------------------------------------------|
| `eee`         | eval          | Every Eval Ever 0.3.0 aggregate JSON + instance JSONL (`eee`)  |
| `safety-eval` | eval          | `<model>/metrics.json` with safety-eval's task/key names       |
| `harmbench`   | eval          | `<model>/<set>.json` HarmBench results + `summary.json`        |
| `jbb`         | eval, attack  | JailbreakBench artifacts (`parameters` + `jailbreaks` rows)    |

Every format carries the judge-unknown counts and the policy applied to them (judge.failures).
A run directory with several evaluations (`magic eval` writes one directory per evaluation) exports
each under OUT/<format>/<evaluation directory>/, so two evaluations of one model never share a file;
one evaluation writes straight under OUT/<format>/.
A format that has nothing to write for a source (e.g. `harmbench` without ASR sets) writes nothing
and says so. Layout: `source` (reading outputs), `eee`, `safety_eval`, `harmbench`, `jbb`.

Run:
    magic eval --model runs/sandbox --benchmarks sandbox
    magic export runs/sandbox                         # all formats -> runs/sandbox/export/
    magic export runs/attack-20261201-120000 --format jbb --out exports/
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from magic_rl.data.files import DatasetError
from magic_rl.evaluate.export.eee import write_eee
from magic_rl.evaluate.export.harmbench import write_harmbench
from magic_rl.evaluate.export.jbb import write_jbb
from magic_rl.evaluate.export.safety_eval import write_safety_eval
from magic_rl.evaluate.export.source import (
    AttackOutput,
    EvalOutput,
    EvalRow,
    Output,
    read_output,
    read_sources,
)

FORMATS = ("eee", "safety-eval", "harmbench", "jbb")
_WRITERS: dict[str, tuple[Callable, tuple[type, ...]]] = {
    "eee": (write_eee, (EvalOutput,)),
    "safety-eval": (write_safety_eval, (EvalOutput,)),
    "harmbench": (write_harmbench, (EvalOutput,)),
    "jbb": (write_jbb, (EvalOutput, AttackOutput)),
}


def export(
    path: str | Path,
    formats: Sequence[str] = FORMATS,
    out: str | Path | None = None,
    *,
    log: Callable[..., None] = print,
    force: bool = False,
) -> dict[str, list[Path]]:
    """Write `formats` for every eval/attack output found at `path` (see `read_sources`) under
    `out` (default: PATH/export). Returns {format: files written}. A file in the way that an
    earlier export did not write is refused unless `force` (`magic_rl.data.outputs`)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown export formats {bad}; choose from {list(FORMATS)}")
    sources = read_sources(path)
    root = Path(out) if out is not None else Path(path) / "export"
    written: dict[str, list[Path]] = {f: [] for f in formats}
    several = sum(isinstance(src, EvalOutput) for src in sources) > 1
    for fmt in formats:
        writer, kinds = _WRITERS[fmt]
        for src in sources:
            if isinstance(src, kinds):
                apart = several and isinstance(src, EvalOutput)
                dest = root / fmt / src.dir.name if apart else root / fmt
                written[fmt] += _write(writer, src, dest, fmt, force)
        if not written[fmt]:
            log(f"[yellow]{fmt}: nothing to export from {path}[/]")
    return written


def _write(writer: Callable, src: Output, dest: Path, fmt: str, force: bool) -> list[Path]:
    """One format of one source. results.json is read as `magic eval`/`magic attack` write it;
    a hand-edited or foreign one of another shape (a list where a table was, a number where a
    section was) fails inside a writer: that is the file's fault, named as such."""
    try:
        return writer(src, dest, force=force)
    except (TypeError, KeyError, AttributeError, IndexError) as err:
        detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        raise DatasetError(
            src.dir / "results.json",
            f"not shaped as `magic eval`/`magic attack` write it ({detail}); cannot export {fmt}",
        ) from err


__all__ = [
    "FORMATS",
    "AttackOutput",
    "EvalOutput",
    "EvalRow",
    "Output",
    "export",
    "read_output",
    "read_sources",
    "write_eee",
    "write_harmbench",
    "write_jbb",
    "write_safety_eval",
]
