"""Every example in `magic ... -h` and in README.md runs as written, so none drifts from the code.

The examples are read programmatically: each command's help text (the lines after `Example:` /
`Examples:` that start with `magic`, `\\` continuations joined) and README.md (the `magic` lines of
its fenced bash blocks and its inline `magic ...` code spans). Each runs in-process through typer's
CliRunner, in a scratch directory that holds what `make demo` leaves: `runs/demo`, a link to a
trained run (here a 2-step run on the tiny world of conftest.py) with an evaluation. Settings are
shrunk, never the command's shape: `--limit`/`--steps` become 2 (`--limit 2` is added where the
command has it), an ablation keeps its first seed, the tiny world's overrides are appended where a
command takes overrides, and a new training run gets its own `output_dir`.

Parsed only (every flag and argument checked against the command, nothing run), with the reason:
servers (`magic serve ...`: they run until stopped; tests/test_serve_policy.py and
test_judge_serve.py start them), `magic models fetch` (downloads from PyPI), anything that needs an
LLM endpoint (`--rewriter-url`, `--llm-url`), the GPU-scale paper configs and placeholders
(`/path/to`, `=...`). Examples that read the public benchmark files skip when `../shared/data` is
absent (tests/README.md). The examples run in document order after a fixed phase order (build,
train, evaluate, experiment, report), so a later one may use an earlier one's output (the report of
the ablation example's runs).

The commands in docs/*.md's fenced blocks (docs/LOG.md's history included) are parsed: a renamed
flag keeps its old spelling, so a logged command still runs.

Run: `OMP_NUM_THREADS=1 python -m pytest -q tests/test_examples.py` (~4 min on 2 loaded cores, the
tiny world's build included; docs/LOG.md).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from magic_rl.cli import app

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
# A training example's steps, on the tiny world: 2 steps, a switch after each.
TRAIN_TINY = ["train.steps=2", "schedule.freq=1", "train.seeds_per_step=4"]
PARSE_ONLY = (
    (r"^magic serve ", "a server runs until stopped"),
    (r"^magic models fetch", "downloads from PyPI"),
    (r"--rewriter-url|--llm-url", "needs an LLM endpoint"),
    (r"paper-qwen|/path/to|=\.\.\.", "GPU-scale paper config or a placeholder"),
)
NEEDS_DATA = r"harmbench|xstest|wildguard|jailbreakbench|^magic judge audit"
PHASES = ("config", "validate", "sandbox build", "models", "pool", "sft", "train", "eval",
          "attack", "sandbox probe", "crossplay", "analyze", "judge", "serve", "experiment",
          "export", "report")  # fmt: skip


# --- finding the examples ----------------------------------------------------------------------


def _commands(cmd=None, path=()):
    """(path, click command) of every leaf command of `magic`."""
    cmd = cmd or typer.main.get_command(app)
    subs = getattr(cmd, "commands", None)
    if not subs:
        yield path, cmd
        return
    for name, sub in subs.items():
        yield from _commands(sub, (*path, name))


def _joined(lines: list[str]) -> list[str]:
    """Lines with `\\` continuations joined."""
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1].rstrip() + " " + line.strip()
        else:
            out.append(line.strip())
    return out


def help_examples() -> list[tuple[str, str]]:
    """(where, command line) of every example in a command's help text."""
    found = []
    for path, cmd in _commands():
        lines = (cmd.help or "").splitlines()
        starts = [i for i, line in enumerate(lines) if re.match(r"\s*Examples?:", line)]
        for i in starts[:1]:
            block = [re.sub(r"^\s*Examples?:\s*", "", lines[i])] + lines[i + 1 :]
            for line in _joined([b for b in block if b.strip()]):
                if line.startswith("magic "):
                    found.append((f"magic {' '.join(path)} -h", line))
    return found


def readme_examples(text: str | None = None) -> list[tuple[str, str]]:
    """(where, command line) of every `magic` line of README.md's fenced bash blocks and every
    inline `magic ...` code span (one with `...` in it stands for a family, not a command)."""
    text = text if text is not None else (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    fenced = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
    for block in fenced.findall(text):
        for line in _joined(block.splitlines()):
            if line.startswith("magic "):
                found.append(("README.md", line))
    for span in re.findall(r"`(magic [^`]+)`", fenced.sub("", text)):
        line = " ".join(span.split())
        if "..." not in line:
            found.append(("README.md", line))
    return found


def docs_commands() -> list[tuple[str, str]]:
    """(file, command line) of every `magic` command in docs/*.md's fenced blocks, after any
    leading environment settings (`OMP_NUM_THREADS=1 magic ...`)."""
    found = []
    for path in sorted((REPO / "docs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"^```(?:bash|sh)?\n(.*?)^```", text, re.S | re.M):
            for line in _joined(block.splitlines()):
                match = re.match(r"(?:[A-Z_]+=\S*\s+|time\s+)*(magic\s.*)$", line)
                if match:
                    found.append((path.name, match.group(1)))
    return found


def _phase(line: str) -> int:
    words = " ".join(shlex.split(line, comments=True)[1:3])
    return next((i for i, p in enumerate(PHASES) if words.startswith(p)), len(PHASES))


EXAMPLES = sorted(
    dict.fromkeys(help_examples() + readme_examples()),
    key=lambda example: _phase(example[1]),
)


# --- running them ------------------------------------------------------------------------------


def _leaf(args: list[str]):
    """(the leaf command, its arguments) an argument list names."""
    cmd, rest = typer.main.get_command(app), list(args)
    while getattr(cmd, "commands", None):
        assert rest and rest[0] in cmd.commands, f"no command {rest[:1]} in {sorted(cmd.commands)}"
        cmd, rest = cmd.commands[rest[0]], rest[1:]
    return cmd, rest


def _params(cmd) -> set[str]:
    return {p.name for p in cmd.params}


def _set(args: list[str], flag: str, value) -> list[str]:
    """`flag value` in args: replaced where given, else appended."""
    if flag in args:
        i = args.index(flag)
        return [*args[: i + 1], str(value), *args[i + 2 :]]
    return [*args, flag, str(value)]


def tiny(args: list[str], overrides: list[str], n: int) -> list[str]:
    """The example's arguments with tiny settings (module docstring)."""
    cmd, _ = _leaf(args)
    params = _params(cmd)
    if "limit" in params:
        args = _set(args, "--limit", 2)
    if "per_strategy" in params:
        args = _set(args, "--per-strategy", 2)
    if "steps" in params:
        args = _set(args, "--steps", 2)
    if "stages" in params:
        args = _set(args, "--stages", 2)
    if "seeds" in params and "--seeds" in args:
        i = args.index("--seeds")
        args = _set(args, "--seeds", args[i + 1].split(",")[0])
    if "overrides" in params and args[0] not in ("config", "validate"):  # these only print
        args = [*args, *overrides]
        if args[:1] == ["train"] and "--resume" not in args:
            args = [*args, *TRAIN_TINY, f"output_dir=runs/example-{n}"]
    return args


def invoke(args: list[str]):
    return runner.invoke(app, args, env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, tiny_overrides):
    """A directory as `make demo` leaves it (module docstring); the examples run inside it."""
    from magic_rl.demo import link_latest

    root = tmp_path_factory.mktemp("examples")
    (root / "configs").symlink_to(REPO / "configs")
    before = Path.cwd()
    os.chdir(root)
    try:
        res = invoke(["train", *tiny_overrides, *TRAIN_TINY, "name=demo-20260101-000000"])
        assert res.exit_code == 0, res.output
        link_latest(root / "runs" / "demo-20260101-000000")
        res = invoke(["eval", "--model", "runs/demo", "--limit", "2", *tiny_overrides])
        assert res.exit_code == 0, res.output
        yield root
    finally:
        os.chdir(before)


def test_examples_were_found() -> None:
    lines = [line for _, line in EXAMPLES]
    assert len(help_examples()) >= 20 and len(readme_examples()) >= 25, lines
    for command in ("eval", "attack", "crossplay", "report", "export", "serve policy", "pool"):
        assert any(line.startswith(f"magic {command}") for line in lines), command


@pytest.mark.parametrize(("where", "line"), EXAMPLES, ids=[e[1][:70] for e in EXAMPLES])
def test_example_runs_as_written(where, line, request, shared_data_or_none) -> None:
    args = shlex.split(line, comments=True)[1:]
    if args[0].startswith("-"):  # the root's own options (--version)
        res = invoke(args)
        assert res.exit_code == 0, res.output
        return
    reason = next((why for pattern, why in PARSE_ONLY if re.search(pattern, line)), None)
    if reason is not None:
        cmd, rest = _leaf(args)
        cmd.make_context(cmd.name, rest)  # an unknown flag or a bad value raises here
        return
    if re.search(NEEDS_DATA, line):
        if shared_data_or_none is None:
            pytest.skip("reads the public benchmark files (../shared/data absent)")
        args = [str(shared_data_or_none) if a == "../shared/data" else a for a in args]
        if "data_root" in _params(_leaf(args)[0]) and "--data-root" not in args:
            args = [*args, "--data-root", str(shared_data_or_none)]
    request.getfixturevalue("scratch")  # built for the first example that runs (not parse-only)
    tiny_overrides = request.getfixturevalue("tiny_overrides")
    args = tiny(args, tiny_overrides, EXAMPLES.index((where, line)))
    res = invoke(args)
    assert res.exit_code == 0, f"{where}: {line}\nran: magic {shlex.join(args)}\n{res.output}"


@pytest.mark.parametrize(
    ("where", "line"), docs_commands(), ids=[c[1][:70] for c in docs_commands()]
)
def test_docs_commands_still_parse(where, line) -> None:
    args = [a for a in shlex.split(line, comments=True)[1:] if a != "&"]
    cmd, rest = _leaf(args)
    cmd.make_context(cmd.name, rest)  # an unknown or removed flag raises here


@pytest.fixture
def shared_data_or_none() -> Path | None:
    root = Path(
        os.environ.get("MAGIC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    return root if root.is_dir() else None
