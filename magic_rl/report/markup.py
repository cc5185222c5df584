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


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass
class Report:
    """The report as HTML sections and their markdown twins, built together."""

    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    def section(self, anchor: str, title: str) -> None:
        self.html.append(f'<h2 id="{anchor}">{_e(title)}</h2>')
        self.md.append(f"\n## {title}\n")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1):
        self.html.append(_table(header, rows, numeric_from))
        self.md.append(_md_table(header, rows))

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
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
