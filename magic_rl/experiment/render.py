"""The ablation table written out: ablation.md (per-variant cells "0.12 [0.05, 0.19]", then the
paired differences against Defender-only) and the terminal table. Reads `design`; runs nothing."""

from __future__ import annotations

from typing import Any

from magic_rl.ablation_metrics import METRICS
from magic_rl.experiment.design import (
    PAIRED_KEYS,
    PAIRED_REFERENCE,
    STEPS_FACTOR,
    UNTRAINED,
    VARIANTS,
    columns,
    paired,
)


def paired_markdown(table: dict[str, dict[str, dict]]) -> str:
    diffs = paired(table)
    if not diffs:
        return ""
    headers = {m.key: m.header for m in METRICS}
    header = ["variant", "n pairs", *(headers[k] for k in PAIRED_KEYS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, cells in diffs.items():
        n = max(c["n"] for c in cells.values())
        lines.append(
            "| "
            + " | ".join(
                [variant, str(n), *(cell_text(cells[k], signed=True) for k in PAIRED_KEYS)]
            )
            + " |"
        )
    return (
        f"\nPaired differences against `{PAIRED_REFERENCE}` (variant minus `{PAIRED_REFERENCE}`, run by "
        "run with the same training seed; mean [95% Student-t interval] of the differences; an "
        "interval that excludes 0 separates the two variants):\n\n" + "\n".join(lines) + "\n"
    )


def cell_text(cell: dict, digits: int = 2, *, signed: bool = False) -> str:
    """ "0.12 [0.05, 0.19]"; the mean alone when there is no interval; "–" when undefined."""
    if cell.get("mean") is None:
        return "–"
    fmt = f"{'+' if signed else ''}.{digits}f"
    text = f"{cell['mean']:{fmt}}"
    if cell.get("lo") is not None and cell.get("hi") is not None:
        text += f" [{cell['lo']:{fmt}}, {cell['hi']:{fmt}}]"
    return text


def table_rows(table: dict[str, dict[str, dict]]) -> list[list[str]]:
    """[variant, n runs, one cell per metric] per variant."""
    rows = []
    for variant, row in table.items():
        n = max((c["n"] for c in row.values()), default=0)
        rows.append([variant, str(n), *(cell_text(row[m.key]) for m in columns(table))])
    return rows


def markdown(table: dict[str, dict[str, dict]], prov: dict[str, Any]) -> str:
    header = ["variant", "n", *(m.header for m in columns(table))]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(table)]
    variants = "\n".join(
        f"- `{v}`: {' '.join(VARIANTS[v]) or ('no training' if v == UNTRAINED else '(preset)')}"
        + (f", {STEPS_FACTOR[v]}x the steps" if v in STEPS_FACTOR else "")
        for v in table
    )
    return (
        "# Ablation (sandbox)\n\n"
        f"Mean [95% Student-t interval over training seeds, clipped to [0, 1]] of each metric on "
        f"the sandbox test sets; n = runs. Seeds {list(prov['seeds'])}, {prov['steps']} steps "
        f"per run ({_factors(prov)}), greedy evaluation of the last defender checkpoint; `base` is the untrained "
        f"defender, evaluated once (greedy decoding: every seed would give the same numbers). "
        f"Preset `{prov['preset']}`, overrides `{' '.join(prov['overrides']) or '-'}`, commit "
        f"{prov['git_commit']}.\n\n"
        + "\n".join(lines)
        + "\n"
        + paired_markdown(table)
        + f"\nVariants:\n{variants}\n"
    )


def _factors(prov: dict[str, Any]) -> str:
    factors = prov.get("steps_factor") or {}
    return ", ".join(f"`{v}` {k}x" for v, k in factors.items()) or "all equal"


def rich_table(table: dict[str, dict[str, dict]], title: str = "Ablation"):
    from magic_rl.tables import key_table

    headers = ["variant", "n", *(m.short for m in columns(table))]
    return key_table(title, headers, table_rows(table))
