"""benchmarks/eval_diff.py: paired before/after rates of two `magic eval` outputs, and the mean
over several outputs on either side (training seeds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_diff.py"


def _items(path: Path, outcomes: dict[str, bool | None], metric: str = "asr") -> Path:
    path.mkdir()
    rows = [
        {"source": "hb", "subset": "std", "metric": metric, "id": i, "outcome": o}
        for i, o in outcomes.items()
    ]
    (path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _table(*dirs: Path | str) -> list[str]:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, dirs)], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.startswith("| hb/")]


def test_one_after_is_paired_on_the_shared_items(tmp_path: Path) -> None:
    before = _items(tmp_path / "b", {"1": True, "2": True, "3": False, "4": None})
    after = _items(tmp_path / "a", {"1": False, "2": True, "3": False, "4": True, "5": True})
    (row,) = _table(before, after)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["hb/std/asr", "3", "0.667", "0.333"]
    assert cells[4].startswith("-0.333")


def test_several_afters_average_each_item_over_the_items_all_scored(tmp_path: Path) -> None:
    before = _items(tmp_path / "b", {"1": True, "2": True, "3": True})
    s0 = _items(tmp_path / "s0", {"1": False, "2": True, "3": False})
    s1 = _items(tmp_path / "s1", {"1": False, "2": False, "3": None})
    (row,) = _table(before, s0, s1)
    cells = [c.strip() for c in row.strip("|").split("|")]
    # items 1 and 2 (3 is unknown in s1): after = mean(0, 0) and mean(1, 0) -> 0.25
    assert cells[:4] == ["hb/std/asr", "2", "1.000", "0.250"]
    assert cells[4].startswith("-0.750")


def test_several_befores_joined_by_commas_average_too(tmp_path: Path) -> None:
    a0 = _items(tmp_path / "a0", {"1": True, "2": False})
    a1 = _items(tmp_path / "a1", {"1": True, "2": True})
    b = _items(tmp_path / "b", {"1": False, "2": False})
    (row,) = _table(f"{a0},{a1}", b)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["hb/std/asr", "2", "0.750", "0.000"]
    assert cells[4].startswith("-0.750")
