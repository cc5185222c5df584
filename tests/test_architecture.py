"""The import graph keeps the floors of docs/ARCHITECTURE.md: no module imports from a higher floor.

The floors are read from the `floors` block of docs/ARCHITECTURE.md (the doc is the one list); each
module of the package belongs to the floor of its longest listed prefix. Every `import` and
`from ... import` of the package's own modules counts, at the top of a module or inside a function
(a function-local import hides an edge, it does not remove it), TYPE_CHECKING ones included.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "magic_rl"
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def floors(doc: str) -> dict[str, int]:
    """{module prefix (without `magic_rl.`): floor} from the doc's ```floors block (highest first,
    one floor a line: `N  prefix prefix ...`)."""
    block = re.search(r"```floors\n(.*?)```", doc, re.S)
    assert block, f"{DOC}: no ```floors block"
    out: dict[str, int] = {}
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        number, *prefixes = line.split()
        for prefix in prefixes:
            assert prefix not in out, f"{DOC}: {prefix} listed twice"
            out[prefix] = int(number)
    return out


def modules() -> dict[str, Path]:
    """Dotted module name (without `magic_rl.`; a package's __init__ is the package) -> file."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) of every import of the package's own modules in `path`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package
                base = ["magic_rl", *package.split(".")] if package else ["magic_rl"]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            targets = [
                f"{source}.{a.name}"
                if f"{source}.{a.name}".removeprefix("magic_rl.") in known
                else source
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "magic_rl" or target.startswith("magic_rl."):
                out.append((target.removeprefix("magic_rl").removeprefix("."), node.lineno))
    return out


def floor_of(module: str, table: dict[str, int]) -> int | None:
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        prefix = ".".join(parts[:k])
        if prefix in table:
            return table[prefix]
    return None


def upward_imports(table: dict[str, int]) -> list[str]:
    mods = modules()
    known = set(mods)
    problems = []
    for name, path in sorted(mods.items()):
        if not name:  # magic_rl/__init__.py
            continue
        own = floor_of(name, table)
        for target, line in imports(name, path, known):
            if not target:
                continue
            theirs = floor_of(target, table)
            if own is not None and theirs is not None and theirs > own:
                problems.append(
                    f"{path.relative_to(ROOT)}:{line}: {name} (floor {own}) imports {target} "
                    f"(floor {theirs})"
                )
    return problems


@pytest.fixture(scope="module")
def table() -> dict[str, int]:
    return floors(DOC.read_text())


def test_every_module_has_a_floor(table):
    missing = [m for m in modules() if m and floor_of(m, table) is None]
    assert not missing, f"modules on no floor of {DOC}: {missing}"


def test_no_import_runs_from_a_lower_floor_to_a_higher_one(table):
    problems = upward_imports(table)
    assert not problems, "\n".join(problems)


def test_an_upward_import_is_found(table, tmp_path, monkeypatch):
    """The check can fail: a module of the lowest floor that imports the CLI, inside a function."""
    lowest = min(table.values())
    leaf = next(p for p, f in table.items() if f == lowest)
    path = modules()[leaf]
    fake = tmp_path / "magic_rl"
    for src in PACKAGE.rglob("*.py"):
        dst = fake / src.relative_to(PACKAGE)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text())
    target = fake / path.relative_to(PACKAGE)
    target.write_text(target.read_text() + "\n\ndef _f():\n    from magic_rl.cli import app\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    problems = upward_imports(table)
    assert len(problems) == 1 and f"{leaf} (floor {lowest}) imports cli" in problems[0]


def test_below_the_entry_points_nothing_imports_the_sandbox():
    """loop, evaluate, judge and trainer take paths: the entry points resolve sandbox names."""
    mods = modules()
    core = ("loop", "evaluate", "judge", "trainer", "game", "policy", "rewards")
    found = [
        f"{name} imports {target}"
        for name, path in mods.items()
        if name.split(".")[0] in core
        for target, _ in imports(name, path, set(mods))
        if target == "sandbox" or target.startswith("sandbox.")
    ]
    assert not found, found


# Modules that read text (replies, attacks, seeds): rewards must not import them.
TEXT_FIELDS = {"reply", "attack", "attack_raw", "reasoning", "text"}


def rewards_problems(path: Path) -> list[str]:
    """What makes `rewards` more than a function of labels: an import of a package module other
    than `config` and `records`, or a read of a turn's or seed's text."""
    mods = modules()
    problems = [
        f"imports {target}"
        for target, _ in imports("rewards", path, set(mods))
        if target not in ("config", "records")
    ]
    tree = ast.parse(path.read_text(), str(path))
    problems += [
        f"line {node.lineno}: reads .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in TEXT_FIELDS
    ]
    return problems


def test_rewards_are_a_function_of_labels_only():
    """rewards.py reads the judge's labels, the seed's label and the turns' flags, never text:
    whether a reply carries its request arrives as `Verdict.reply_carries_request`."""
    assert rewards_problems(modules()["rewards"]) == []


def test_a_text_reading_reward_is_found(tmp_path):
    """The check can fail: the quality term's old way, reading the reply through `content`."""
    fake = tmp_path / "rewards.py"
    fake.write_text(
        modules()["rewards"].read_text()
        + "\n\nfrom magic_rl.content import carries\n\n"
        + "def _carried(episode):\n    return carries(episode.last.reply, episode.seed.text)\n"
    )
    last = len(fake.read_text().splitlines())
    assert rewards_problems(fake) == [
        "imports content",
        f"line {last}: reads .reply",
        f"line {last}: reads .text",
    ]
