"""The run directory's names live in one module, `magic_rl.rundir`: checkpoint names round-trip,
and no other module of the package spells a run-directory file name as a string of its own.
Run: `python -m pytest -q tests/test_rundir.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from magic_rl import rundir

PACKAGE = Path(rundir.__file__).parent
# Names other modules must take from rundir (bare "eval", "state", "checkpoints" are also metric,
# section and command names, so only the unambiguous ones are checked).
NAMES = {
    rundir.CONFIG,
    rundir.METRICS,
    rundir.REPLAY,
    rundir.CROSSPLAY,
    rundir.SUMMARY,
    rundir.STATE_TMP,
    rundir.STATE_OLD,
    rundir.META,
    rundir.OPTIM,
    rundir.CROSSPLAY_MATRIX,
    rundir.STRATEGY,
}
# HarmBench's own results layout (an export format, not a run directory) has a summary.json too.
ELSEWHERE = {("evaluate/export/harmbench.py", rundir.SUMMARY)}


def test_checkpoint_names_round_trip(tmp_path):
    assert rundir.checkpoint_name(10) == "step-000010"
    assert rundir.checkpoint_step("step-000010") == 10
    assert rundir.checkpoint_step(".tmp-step-000010") is None
    assert rundir.checkpoint_step("step-x") is None
    ckpt = rundir.checkpoint_dir(tmp_path, 5, "defender")
    assert ckpt == tmp_path / "checkpoints" / "step-000005" / "defender"
    assert rundir.is_checkpoint_dir(ckpt.parent) and not rundir.is_checkpoint_dir(ckpt)
    for step in (10, 2, 0):
        rundir.checkpoint_dir(tmp_path, step).mkdir(parents=True)
    (tmp_path / "checkpoints" / ".tmp-step-000011").mkdir()
    assert [p.name for p in rundir.checkpoint_dirs(tmp_path)] == [
        "step-000000",
        "step-000002",
        "step-000010",
    ]


def _package_nodes():
    """(module path, AST node) of every module of the package but rundir.py."""
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel != "rundir.py":
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                yield rel, node


def test_no_other_module_spells_a_run_directory_name():
    found = []
    for rel, node in _package_nodes():
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text in NAMES and (rel, text) not in ELSEWHERE:
                found.append(f"{rel}:{node.lineno}: {text!r}")
    assert not found, "spell these through magic_rl.rundir: " + ", ".join(found)


def test_no_other_module_formats_a_checkpoint_name():
    found = []
    for rel, node in _package_nodes():
        if isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and str(head.value).endswith("step-"):
                found.append(f"{rel}:{node.lineno}")
        elif isinstance(node, ast.Constant) and node.value == rundir.CHECKPOINT_PREFIX:
            found.append(f"{rel}:{node.lineno}")
    assert not found, "checkpoint names through magic_rl.rundir: " + ", ".join(found)
