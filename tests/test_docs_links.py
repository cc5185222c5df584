"""Every reference in the repository points to something the repository has.

A reader follows a reference from a doc, docstring, comment or config to a file; one that points
outside the repository (an internal contract or style guide) or to a file since moved leaves the
reader nowhere. Checked over the repository's text files (README, docs/, the package, tests,
benchmarks, configs, Makefile):

- markdown links `[text](path)` resolve from the linking file (web links and anchors aside);
- repository paths written out (`docs/DESIGN.md`, `configs/sandbox.yaml`, `magic_rl/game.py`,
  `tests/test_game.py`, `benchmarks/step.py`, ...) exist;
- dotted package names (`magic_rl.policy.load`) name a module or package of `magic_rl`;
- no text cites the files this project was specified from ("SPEC §N", "STYLE"): the design is
  docs/DESIGN.md, departures are in docs/deviations.md, the paper is cited by its sections.

Run: `python -m pytest -q tests/test_docs_links.py`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("README.md", "Makefile", "pyproject.toml")
DIRS = ("docs", "magic_rl", "tests", "benchmarks", "configs", ".ci")
SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ".cfg", ""}
SKIP = ("tests/data/", "tests/golden/", "magic_rl/assets/")  # data files, not prose
SELF = "tests/test_docs_links.py"  # plants bad references on purpose

LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
PATH = re.compile(
    r"(?<![\w./-])((?:docs|configs|benchmarks|tests|magic_rl|\.ci)/[\w./-]*\w\.(?:md|py|yaml|yml"
    r"|txt|json|jsonl|toml))(?![\w/])"
)
MODULE = re.compile(r"(?<![\w./-])magic_rl((?:\.\w+)+)(?![\w/])")  # not "magic_rl.x/1", a format id
OUTSIDE = re.compile(r"\bSPEC\b|\bSTYLE\b|SPEC\.md|STYLE\.md")


def text_files(root: Path = ROOT) -> list[Path]:
    files = [root / name for name in TOP if (root / name).is_file()]
    for folder in DIRS:
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root)
            if not path.is_file() or "__pycache__" in rel.parts or rel.as_posix().startswith(SKIP):
                continue
            if path.suffix in SUFFIXES or path.name == "run":
                files.append(path)
    return files


def module_exists(root: Path, dotted: str) -> bool:
    """`.a.b.c` after `magic_rl`: true when `magic_rl/a` is a module or package (what follows a
    module may be an attribute, so only the parts that are folders must go on being folders)."""
    folder = root / "magic_rl"
    for part in dotted.strip(".").split("."):
        if (folder / part).is_dir():
            folder = folder / part
            continue
        return (folder / f"{part}.py").is_file() or folder != root / "magic_rl"
    return True


def problems(root: Path = ROOT) -> list[str]:
    out = []
    for path in text_files(root):
        rel = path.relative_to(root)
        if rel.as_posix() == SELF:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{rel}:{lineno}"
            if OUTSIDE.search(line):
                out.append(f"{where}: cites a file outside the repository: {line.strip()}")
            if path.suffix == ".md":
                for target in LINK.findall(line):
                    target = target.split("#")[0]
                    if not target or re.match(r"[a-z]+:", target):
                        continue
                    if not (path.parent / target).exists():
                        out.append(f"{where}: link to a missing file: {target}")
            for target in PATH.findall(line):
                if not (root / target).exists():
                    out.append(f"{where}: names a missing file: {target}")
            for dotted in MODULE.findall(line):
                if not module_exists(root, dotted):
                    out.append(f"{where}: names a missing module: magic_rl{dotted}")
    return out


def test_every_reference_points_into_the_repository():
    found = problems()
    assert not found, "\n".join(found)


def test_the_design_doc_has_the_numbered_sections_cited():
    """ "docs/DESIGN.md §N" is cited across the code; each N must be a section of the doc."""
    design = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d+)\. ", design, re.M))
    cited = set()
    for path in text_files():
        for m in re.finditer(r"DESIGN\.md §(\d+)((?:, §\d+)*)", path.read_text(encoding="utf-8")):
            cited |= {m.group(1), *re.findall(r"§(\d+)", m.group(2))}
    assert cited and cited <= sections, sorted(cited - sections)


@pytest.mark.parametrize(
    "planted, expected",
    [
        ("See [the guide](missing.md).", "link to a missing file: missing.md"),
        ("# as docs/NOWHERE.md says", "names a missing file: docs/NOWHERE.md"),
        ('"""Rewards (SPEC §3)."""', "cites a file outside the repository"),
        ("# STYLE says so", "cites a file outside the repository"),
        ("`magic_rl.vllm_policy`", "names a missing module: magic_rl.vllm_policy"),
    ],
)
def test_a_bad_reference_is_found(tmp_path, planted, expected):
    """The check can fail: a copy of the repository's docs with one bad reference planted."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "magic_rl").mkdir()
    (tmp_path / "magic_rl" / "game.py").write_text('"""The game (docs/DESIGN.md §1)."""\n')
    (tmp_path / "docs" / "DESIGN.md").write_text("# Design\n\n## 1. The game\n")
    (tmp_path / "README.md").write_text("See [design](docs/DESIGN.md) and `magic_rl.game.play`.\n")
    assert problems(tmp_path) == []
    target = tmp_path / "docs" / "guide.md"
    target.write_text(f"# Guide\n\n{planted}\n")
    found = problems(tmp_path)
    assert len(found) == 1 and expected in found[0] and "docs/guide.md:3" in found[0], found
