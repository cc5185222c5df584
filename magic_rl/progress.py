"""Progress display: `new_bar` (description, bar, n/total, elapsed, remaining) for any long job, and
`TrainProgress`, which adds the role being trained and the key metrics; `summary_table`, the
end-of-run table of `loop.summarize_run` (printed by `magic train` and `make demo`).

At any width the bar, n/total, elapsed and remaining time stay whole: the metric fields that do not
fit are dropped, last first (`describe(metrics, width)`), and the bar narrows below 120 columns.
Without a terminal (`make demo > log`, nohup, CI) a live bar would print once, at the end, cropped;
`TrainProgress` prints one plain, uncropped line every `every` steps instead (and always the last).
"""

from __future__ import annotations

import time
from typing import Any

KEY_METRICS = (  # in the order they give way: the last is the first dropped on a narrow terminal
    ("schedule/role", "role", "{}"),
    ("game/asr", "asr", "{:.2f}"),
    ("defender/refusal_rate/harmful", "refuse(harm)", "{:.2f}"),
    ("defender/refusal_rate/benign", "refuse(benign)", "{:.2f}"),
    ("attacker/format_rate", "fmt", "{:.2f}"),
    ("attacker/faithful_rate", "faithful", "{:.2f}"),
    ("time/step", "s/step", "{:.1f}"),
)
SFT_METRICS = (("loss", "loss", "{:.3f}"), ("learning_rate", "lr", "{:.2e}"))
PLAIN_LINES = 20  # lines a run prints without a terminal when `every` is not given


def bar_width(console_width: int) -> int:
    """The bar's width: 40 on a wide terminal, narrower below 120 columns (never under 10)."""
    return 40 if console_width >= 120 else max(10, min(20, console_width // 4))


def new_bar(*extra_columns: Any, console=None):
    """A rich `Progress` with the project's standard columns, then `extra_columns` (not started).

    When the line is too wide, the description and the extra columns wrap; the bar, n/total and
    the times are never cropped."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Column

    def yielding(column):  # rich collapses the wrappable columns before cropping all evenly
        column._table_column = Column(no_wrap=False, overflow="fold")
        return column

    console = console or Console()
    whole = Column(no_wrap=True)
    return Progress(
        TextColumn("[bold]{task.description}", table_column=Column(overflow="fold")),
        BarColumn(bar_width=bar_width(console.width), table_column=whole),
        MofNCompleteColumn(table_column=whole),
        TimeElapsedColumn(table_column=whole),
        TimeRemainingColumn(table_column=whole),
        *map(yielding, extra_columns),
        console=console,
    )


def describe(metrics: dict[str, Any], width: int | None = None, fields=KEY_METRICS) -> str:
    """The key metrics (`fields`: (key, label, format)) as `label value`; with `width`, only the
    leading fields that fit."""
    parts: list[str] = []
    for key, label, fmt in fields:
        if key in metrics and metrics[key] is not None:
            part = f"{label} {fmt.format(metrics[key])}"
            if width is not None and len("  ".join([*parts, part])) > width:
                break
            parts.append(part)
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainProgress:
    """`with TrainProgress(total, start) as bar: bar.update(metrics)`; a no-op when disabled.

    On a terminal, a live line (bar, n/total, times, the metrics that fit); otherwise one plain line
    per `every` steps (default: about `PLAIN_LINES` lines per run) and after the last step.
    """

    def __init__(
        self,
        total: int,
        start: int = 0,
        *,
        enabled: bool = True,
        title: str = "train",
        every: int | None = None,
        console=None,
        fields=KEY_METRICS,
    ):
        self.total, self.start, self.enabled, self.title = total, start, enabled, title
        self.fields = fields
        self.every = every or max(1, -(-total // PLAIN_LINES))
        self.console = console
        self.done = start
        self._progress = None
        self._task = None
        self._t0 = 0.0

    @property
    def live(self) -> bool:
        return self._progress is not None

    def __enter__(self) -> TrainProgress:
        if not self.enabled:
            return self
        if self.console is None:
            from rich.console import Console

            self.console = Console()  # plain lines print with soft_wrap (whole); the live one fits
        self._t0 = time.perf_counter()
        if self.console.is_terminal:
            from rich.progress import TextColumn

            self._progress = new_bar(TextColumn("{task.fields[info]}"), console=self.console)
            self._progress.start()
            self._task = self._progress.add_task(
                self.title, total=self.total, completed=self.start, info=""
            )
        return self

    def _fixed_width(self) -> int:
        """Columns taken by everything on the live line but the metrics (cells and their gaps)."""
        task = self._progress.tasks[0]
        cells = [column(task) for column in self._progress.columns[:-1]]
        return sum(self.console.measure(c).maximum for c in cells) + len(cells)

    def update(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.done += 1
        if self._progress is not None:
            room = self.console.width - self._fixed_width() - 1
            self._progress.update(
                self._task, advance=1, info=describe(metrics, max(room, 0), self.fields)
            )
        elif (self.done - self.start) % self.every == 0 or self.done == self.total:
            self.console.print(
                self.plain_line(metrics), highlight=False, markup=False, soft_wrap=True
            )

    def plain_line(self, metrics: dict[str, Any]) -> str:
        """`train 12/60 (20%)  0:01:02 elapsed, 0:04:08 left  role defender  asr 0.50 ...`."""
        elapsed = time.perf_counter() - self._t0
        ran = self.done - self.start
        left = elapsed / ran * (self.total - self.done) if ran else 0.0
        pct = 100 * self.done // max(self.total, 1)
        head = (
            f"{self.title} {self.done}/{self.total} ({pct}%)  "
            f"{_clock(elapsed)} elapsed, {_clock(left)} left"
        )
        info = describe(metrics, fields=self.fields)
        return f"{head}  {info}" if info else head

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_table(summary: dict, run_dir) -> Any:
    """A rich table of a run summary's first and last 5-step means."""
    from rich.table import Table

    table = Table(title=f"{run_dir}  ({summary['steps']} steps, {summary['switches']} switches)")
    table.add_column("metric", overflow="fold")
    table.add_column("first 5 steps", justify="right", no_wrap=True)
    table.add_column("last 5 steps", justify="right", no_wrap=True)
    for key, first in summary["first"].items():
        table.add_row(key, _fmt(first), _fmt(summary["last"][key]))
    return table
