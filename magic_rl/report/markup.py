"""Building blocks of the HTML page and its markdown twin: escaping, tables, and `Report`, the
list of HTML sections and markdown sections built side by side."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from magic_rl.report.plots import Figure


def _e(value: Any) -> str:
    return html.escape(str(value))


@dataclass(frozen=True)
class Cell:
    """A table cell written by hand: its HTML (trusted, already escaped) and its markdown text."""

    html: str
    md: str


def _html_cell(value: Any) -> str:
    return value.html if isinstance(value, Cell) else _e(value)


def _table(
    header: Sequence[Any], rows: Sequence[Sequence[Any]], numeric_from: int = 1, cls: str = ""
) -> str:
    head = "".join(f"<th>{_html_cell(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_html_cell(c)}</td>'
            if i >= numeric_from
            else f"<td>{_html_cell(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="{cls}">{table}</div>' if cls else table


@dataclass
class Report:
    """The report as HTML sections and their markdown twins, built together."""

    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    def section(self, anchor: str, title: str) -> None:
        self.html.append(f'<h2 id="{anchor}">{_e(title)}</h2>')
        self.md.append(f"\n## {title}\n")

    def heading(self, title: str) -> None:
        self.html.append(f"<h3>{_e(title)}</h3>")
        self.md.append(f"\n### {title}\n")

    def table(
        self,
        header: Sequence[Any],
        rows: Sequence[Sequence[Any]],
        numeric_from: int = 1,
        cls: str = "",
    ) -> None:
        """A table; `cls` wraps it in a <div> of that class (e.g. "wide": scrolls, never spills)."""
        self.html.append(_table(header, rows, numeric_from, cls))
        self.md.append(_md_table(header, rows))

    def open_details(self, summary: str) -> None:
        """Fold what follows (until `close_details`) away behind `summary`, in both files."""
        self.html.append(f"<details><summary>{_e(summary)}</summary>")
        self.md.append(f"\n<details><summary>{_e(summary)}</summary>\n")

    def close_details(self) -> None:
        self.html.append("</details>")
        self.md.append("\n</details>\n")

    def callout(self, text: str, good: bool) -> None:
        """A one-line finding, green when it is good news, red when not."""
        self.html.append(f'<p class="verdict {"good" if good else "bad"}">{_e(text)}</p>')
        self.md.append(f"**{text}**\n")

    def figure(self, fig: Figure | None, files_dir: str) -> None:
        if fig is None:
            return
        self.figures.append(fig)
        self.html.append(fig.img())
        self.md.append(f"![{fig.alt}]({files_dir}/{fig.name}.png)\n")

    def note(self, text: str) -> None:
        self.html.append(f'<p class="muted">{_e(text)}</p>')
        self.md.append(f"_{text}_\n")


def _md_cell(value: Any) -> str:
    text = value.md if isinstance(value, Cell) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
