"""Rich progress bars: `new_bar` (description, bar, n/total, elapsed, remaining) for any long job, and
`TrainProgress`, which adds the role being trained and the key metrics live; `summary_table`, the
end-of-run table of `loop.summarize_run` (printed by `magic train` and `make demo`)."""

from __future__ import annotations

from typing import Any

KEY_METRICS = (
    ("schedule/role", "role", "{}"),
    ("game/asr", "asr", "{:.2f}"),
    ("defender/refusal_rate/harmful", "refuse(harm)", "{:.2f}"),
    ("defender/refusal_rate/benign", "refuse(benign)", "{:.2f}"),
    ("attacker/format_rate", "fmt", "{:.2f}"),
    ("attacker/faithful_rate", "faithful", "{:.2f}"),
    ("time/step", "s/step", "{:.1f}"),
)


def new_bar(*extra_columns: Any):
    """A rich `Progress` with the project's standard columns, then `extra_columns` (not started)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *extra_columns,
    )


def describe(metrics: dict[str, Any]) -> str:
    parts = []
    for key, label, fmt in KEY_METRICS:
        if key in metrics and metrics[key] is not None:
            parts.append(f"{label} {fmt.format(metrics[key])}")
    return "  ".join(parts)


class TrainProgress:
    """`with TrainProgress(total, start) as bar: bar.update(metrics)`; a no-op when disabled."""

    def __init__(self, total: int, start: int = 0, *, enabled: bool = True, title: str = "train"):
        self.total, self.start, self.enabled, self.title = total, start, enabled, title
        self._progress = None
        self._task = None

    def __enter__(self) -> TrainProgress:
        if self.enabled:
            from rich.progress import TextColumn

            self._progress = new_bar(TextColumn("{task.fields[info]}"))
            self._progress.start()
            self._task = self._progress.add_task(
                self.title, total=self.total, completed=self.start, info=""
            )
        return self

    def update(self, metrics: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, info=describe(metrics))

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_table(summary: dict, run_dir) -> Any:
    """A rich table of a run summary's first and last 5-step means."""
    from rich.table import Table

    table = Table(title=f"{run_dir}  ({summary['steps']} steps, {summary['switches']} switches)")
    table.add_column("metric")
    table.add_column("first 5 steps", justify="right")
    table.add_column("last 5 steps", justify="right")
    for key, first in summary["first"].items():
        table.add_row(key, _fmt(first), _fmt(summary["last"][key]))
    return table
