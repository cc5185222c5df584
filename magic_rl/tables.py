"""Terminal tables that keep their row keys whole at any width (80 columns whenever stdout is not a
terminal): `key_table(title, headers, rows, keys=k)`.

The first `keys` columns name a row (strategy, set and signal, variant). Rich, given a line too
narrow for a table, shrinks the wrappable columns to one width and then crops every column alike,
so a key becomes `wild…`. Here the widths are chosen before rich sees the table: the keys stay whole
while the values can still wrap into the rest of the line — on one line, else broken after each `/`
(`wildguardtest_judge/` / `adversarial_harmful`) — and the values wrap beside them (`0.72 [0.65,`
/ `0.80]`). Narrower still, the keys stack in one column (a key per line), whole while the values
keep 4 characters each, else folded onto more lines rather than losing characters. No cell is ever
cropped with an ellipsis; cells are plain text (a `[tag]` in a value is not rich markup).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_PAD = 2  # a cell's left and right padding


def _longest(cells: Sequence[str], words: bool = False) -> int:
    parts = [p for c in cells for p in (c.split() if words else c.splitlines())]
    return max((len(p) for p in parts), default=1)


def _spread(extra: int, lows: list[int], highs: list[int]) -> list[int]:
    """`lows` plus up to `extra` more, shared in proportion to what each lacks of `highs`."""
    want = [h - lo for lo, h in zip(lows, highs, strict=True)]
    total = sum(want)
    if total <= extra:
        return list(highs)
    return [lo + w * extra // total for lo, w in zip(lows, want, strict=True)]


def _shave(widths: list[int], room: int, floor: int = 4) -> list[int]:
    """`widths` cut to `room` in all, the widest first (a short number keeps its width)."""
    out = list(widths)
    while sum(out) > room and max(out) > floor:
        widest = max(out)
        out[out.index(widest)] -= 1
    return out


class KeyTable:
    """A rich renderable: the table, built when drawn, with widths fitted to the line."""

    def __init__(self, title, headers, rows, keys: int, text: Sequence[str], table_kwargs):
        self.title, self.headers, self.keys, self.table_kwargs = title, headers, keys, table_kwargs
        self.text = set(text)
        self.rows = [[str(c) for c in row] for row in rows]

    def column(self, i: int) -> list[str]:
        return [self.headers[i], *(r[i] for r in self.rows)]

    def layout(self, max_width: int) -> tuple[list[str], list[list[str]], list[int] | None, int]:
        """(headers, rows, column widths or None when the natural widths fit, key columns) for
        `max_width`."""
        boxed = self.table_kwargs.get("box", True) is not None
        n_values = len(self.headers) - self.keys
        values = [row[self.keys :] for row in self.rows]
        natural = [_longest(self.column(self.keys + j)) for j in range(n_values)]
        least = [
            min(_longest(self.column(self.keys + j), words=True), w) for j, w in enumerate(natural)
        ]

        self_keys = [row[: self.keys] for row in self.rows]

        def room(columns: int) -> int:
            return max_width - columns * _PAD - (columns + 1 if boxed else 0)

        def fits(headers, keys):
            """Widths with `keys` whole (None: the natural ones), or False if they do not fit."""
            key_w = [
                max(_longest([h], words=True), _longest([k[i] for k in keys]))
                for i, h in enumerate(headers)
            ]
            space = room(len(headers) + n_values)
            if sum(key_w) + sum(natural) <= space and keys is self_keys:
                return None
            if sum(key_w) + sum(least) <= space:
                return key_w + _spread(space - sum(key_w) - sum(least), least, natural)
            return False

        if self.keys == 0:  # a record: its fields side by side, else one field per line
            if sum(natural) <= room(n_values):
                return self.headers, self.rows, None, 0
            rows = [[h, *(r[i] for r in self.rows)] for i, h in enumerate(self.headers)]
            return ["field", *([""] * len(self.rows))], rows, None, 1
        broken = [[c.replace("/", "/\n") for c in row] for row in self_keys]
        stacked_header = [" / ".join(self.headers[: self.keys])]
        stacked = [["\n".join(row)] for row in broken]
        for headers, keys in (
            (self.headers[: self.keys], self_keys),  # side by side, one line each
            (self.headers[: self.keys], broken),  # side by side, broken after `/`
            (stacked_header, stacked),  # one column, a key part per line
        ):
            widths = fits(headers, keys)
            if widths is not False:
                rows = [[*k, *v] for k, v in zip(keys, values, strict=True)]
                return [*headers, *self.headers[self.keys :]], rows, widths, len(headers)
        # narrower still: the stacked keys whole if the values keep 4 columns each, else folded
        space = room(1 + n_values)
        longest = max(_longest(stacked_header, words=True), _longest([k[0] for k in stacked]))
        key_w = min(longest, space - 4 * n_values)
        key_w = max(key_w, 4)
        rows = [[*k, *v] for k, v in zip(stacked, values, strict=True)]
        widths = [key_w, *_shave(least, space - key_w)]
        return [*stacked_header, *self.headers[self.keys :]], rows, widths, 1

    def render(self, max_width: int):
        from rich.table import Table
        from rich.text import Text

        headers, rows, widths, keys = self.layout(max_width)
        kwargs = dict(self.table_kwargs)
        transposed = self.keys < keys  # a record, one field per line
        if transposed:
            kwargs["show_header"] = False
        if keys == 1 < self.keys and kwargs.get("box", True) is not None:
            kwargs.setdefault("show_lines", True)  # stacked keys: a rule between rows
        table = Table(title=self.title or None, title_justify="left", **kwargs)
        for i, header in enumerate(headers):
            table.add_column(
                header,
                justify="left" if i < keys or transposed or header in self.text else "right",
                overflow="fold",
                width=None if widths is None else widths[i],
            )
        for row in rows:
            table.add_row(*map(Text, row))
        return table

    def __rich_console__(self, console, options):
        yield self.render(options.max_width)

    def __str__(self) -> str:  # through plain `print` (a `log=print` caller): the terminal's width
        import io
        import shutil

        from rich.console import Console

        out = io.StringIO()
        width = shutil.get_terminal_size().columns
        Console(file=out, width=width, color_system=None, soft_wrap=False).print(self)
        return out.getvalue().rstrip("\n")


def key_table(
    title: str | None,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    keys: int = 1,
    text: Sequence[str] = (),
    **table_kwargs: Any,
) -> KeyTable:
    """A table of `rows` (cells converted with str) under `headers`; the first `keys` columns are
    left-aligned row keys, the others right-aligned values but for the `text` columns (named by
    header). `table_kwargs` go to `rich.table.Table` (e.g. `box=None`)."""
    return KeyTable(title, list(headers), rows, keys, text, table_kwargs)


def record_table(title: str, record: dict[str, Any]) -> KeyTable:
    """One result (a build stage's summary, a check) as a borderless table: the field names over
    their values, or one field per line when they do not fit side by side; floats to 4
    significant digits, lists joined by commas."""

    def text(value: Any) -> str:
        if isinstance(value, float) and value.is_integer() and abs(value) >= 1e4:
            return f"{value:,.0f}"  # a count carried as a float (n_prompt 11844.0), not 1.184e+04
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, list | tuple):
            return ", ".join(map(str, value)) or "-"
        return str(value)

    return key_table(title, list(record), [[text(v) for v in record.values()]], keys=0, box=None)


def warning(message: str):
    """`warning: message` in bold red on a terminal; plain text through `print` or in a log."""
    from rich.text import Text

    return Text.assemble(("warning:", "bold red"), " ", message)
