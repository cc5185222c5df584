"""Fault suite, part 1: bad inputs to every `magic` command, run in-process through typer's CliRunner.

Each case asserts the CLI's promise (docs/reliability.md): exit code 2 (a user error), exactly one
`error:` line that names the file / option / field at fault, no Python traceback, and nothing
written or changed in the working directory or next to the inputs. No case loads a model: each
input is refused before anything heavy starts. `--debug` shows the traceback.

Run: `python -m pytest -q tests/test_faults.py` (a few seconds).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_errors import one_error
from typer.testing import CliRunner

from magic_rl.cli import app
from magic_rl.config import dump_config, load_config

runner = CliRunner()

SEED_OK = '{"text": "a", "label": "harmful"}\n{"text": "b", "label": "benign"}\n'
# Inputs, relative to the case's input folder; a name ending in / is a directory.
FILES: dict[str, bytes | str] = {
    "empty.yaml": "",
    "comments.yaml": "# only a comment\n",
    "binary.yaml": bytes(range(256)) * 4,
    "nul.yaml": "name: a\x00b\n",
    "latin1.yaml": "name: caf\xe9\n".encode("latin-1"),
    "list.yaml": "- a\n- b\n",
    "unclosed.yaml": "name: [unclosed\n",
    "tabs.yaml": "train:\n\tsteps: 3\n",
    "typo.yaml": "judge:\n  modle: x\n",
    "section.yaml": "trainer:\n  steps: 3\n",
    "scalar_section.yaml": "judge: 5\n",
    "configdir.yaml/": "",
    "notarun/": "",
    "notamodel/": "",
    "notamodel/README.md": "not a model\n",
    "existing/metrics.jsonl": '{"step": 0}\n',
    "badcfg_run/metrics.jsonl": '{"step": 0, "schedule/role": "defender"}\n',
    "badcfg_run/config.yaml": bytes(range(256)),
    "bench.jsonl": '{"prompt": "p", "label": "harmful"}\n',
    "bench_empty.jsonl": "",
    "bench_header.csv": "prompt,label\n",
    # seed files
    "s_badjson.jsonl": '{"text": "a", "label": "harmful"}\n{"text": "b", "label": "benign"\n',
    "s_nolabel.jsonl": '{"text": "a", "label": "harmful"}\n{"text": "b"}\n',
    "s_badlabel.jsonl": '{"text": "a", "label": "evil"}\n',
    "s_emptytext.jsonl": '{"text": "", "label": "harmful"}\n',
    "s_numtext.jsonl": '{"text": 5, "label": "harmful"}\n',
    "s_empty.jsonl": "",
    "s_blank.jsonl": "\n\n",
    "s_list.jsonl": "[1, 2]\n",
    "s_latin1.jsonl": '{"text": "caf\xe9", "label": "benign"}\n'.encode("latin-1"),
    "s_dupid.jsonl": '{"id": "x", "text": "a", "label": "harmful"}\n'
    '{"id": "x", "text": "b", "label": "benign"}\n',
    "s_onlyharm.jsonl": '{"text": "a", "label": "harmful"}\n',
    "s_header.csv": "text,label\n",
    "s_nolabelcol.csv": "text\nabc\n",
    "s_fields.csv": "text,label\na,harmful,extra\n",
    "s_badlabel.csv": "text,label\na,maybe\n",
    "s_latin1.csv": "text,label\ncaf\xe9,benign\n".encode("latin-1"),
    "s_seeds.txt": SEED_OK,
    "s_ok.jsonl": SEED_OK,
}


def _write_inputs(root: Path) -> None:
    for name, content in FILES.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    # a run whose saved config.yaml was cut short (resume must not fill it with paper defaults)
    full = dump_config(load_config("sandbox"))
    (root / "truncated_run").mkdir()
    (root / "truncated_run" / "config.yaml").write_text(full[: len(full) // 3].rsplit("\n", 1)[0])
    # a run whose every checkpoint is torn (a kill mid-write, before writes were atomic)
    for step in (0, 3):
        role = root / "torn_run" / "checkpoints" / f"step-{step:06d}" / "defender"
        role.mkdir(parents=True)
        (role / "config.json").write_text("")
        (role / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")


# (id, argv with {d} = the input folder, strings the one error line must hold)
CASES: list[tuple[str, str, tuple[str, ...]]] = [
    # --- config files (magic validate / config show / train) ---
    ("empty-config", "validate {d}/empty.yaml", ("empty.yaml", "empty config")),
    ("comments-only-config", "validate {d}/comments.yaml", ("comments.yaml", "empty config")),
    ("binary-config", "validate {d}/binary.yaml", ("binary.yaml", "not a text")),
    ("nul-bytes-config", "validate {d}/nul.yaml", ("nul.yaml", "binary")),
    ("latin1-config", "validate {d}/latin1.yaml", ("latin1.yaml", "UTF-8")),
    ("list-config", "validate {d}/list.yaml", ("list.yaml", "mapping")),
    ("unclosed-yaml", "validate {d}/unclosed.yaml", ("unclosed.yaml:", "not valid YAML")),
    ("tab-indented-yaml", "validate {d}/tabs.yaml", ("tabs.yaml:2", "not valid YAML")),
    ("unknown-field", "validate {d}/typo.yaml", ("typo.yaml", "judge.modle", "unknown field")),
    ("unknown-section", "validate {d}/section.yaml", ("section.yaml", "trainer", "unknown")),
    ("scalar-section", "validate {d}/scalar_section.yaml", ("scalar_section.yaml", "judge")),
    ("directory-config", "validate {d}/configdir.yaml", ("configdir.yaml", "directory")),
    ("missing-config", "validate {d}/nope.yaml", ("nope.yaml", "no such config file")),
    ("unknown-preset", "validate nopreset", ("nopreset", "preset")),
    ("config-show-empty", "config show {d}/empty.yaml", ("empty.yaml", "empty config")),
    ("train-empty-config", "train --config {d}/empty.yaml", ("empty.yaml", "empty config")),
    # --- overrides ---
    ("lr-inf", "validate sandbox defender.lr=.inf", ("defender.lr", "finite")),
    ("lr-nan", "validate sandbox attacker.lr=.nan", ("attacker.lr", "finite")),
    ("clip-eps-overflow", "validate sandbox grpo.clip_eps=1e400", ("grpo.clip_eps", "finite")),
    ("r-harm-minus-inf", "validate sandbox reward.r_harm=-.inf", ("reward.r_harm",)),
    ("betas-inf", "validate sandbox attacker.adam_betas=[.inf,0.9]", ("attacker.adam_betas",)),
    ("name-escapes", "validate sandbox name=../../x", ("name", "output_dir")),
    ("name-absolute", "validate sandbox name=/tmp/x", ("name", "output_dir")),
    ("name-dotdot", "validate sandbox name=..", ("name", "output_dir")),
    ("name-empty", "validate sandbox name=", ("name",)),
    ("override-unclosed", "validate sandbox name=[unclosed", ("name=[unclosed", "quote")),
    ("override-no-equals", "validate sandbox trainsteps", ("trainsteps", "key=value")),
    ("override-empty-segment", "validate sandbox a..b=1", ("a..b=1", "empty key")),
    ("override-into-scalar", "validate sandbox name.x=1", ("name.x=1", "not a section")),
    ("steps-not-int", "validate sandbox train.steps=abc", ("train.steps",)),
    ("steps-negative", "validate sandbox train.steps=-1", ("train.steps",)),
    ("group-size-1", "validate sandbox grpo.group_size=1", ("grpo.group_size",)),
    (
        "metric-low-above-high",
        "validate sandbox schedule.mode=metric schedule.low=0.9 schedule.high=0.5",
        ("schedule.low",),
    ),
    (
        "start-agent-not-trained",
        "validate sandbox schedule.train_roles=defender schedule.start_agent=attacker",
        ("schedule.start_agent",),
    ),
    (
        "static-without-file",
        "validate sandbox game.attacker=static schedule.train_roles=defender",
        ("static_attacks",),
    ),
    ("judge-backend", "validate sandbox judge.backend=nope", ("judge.backend",)),
    (
        "unknown-fraction",
        "validate sandbox judge.max_unknown_fraction=2",
        ("max_unknown_fraction",),
    ),
    ("top-p-zero", "validate sandbox defender.sampling.top_p=0", ("defender.sampling.top_p",)),
    ("fraction-zero", "validate sandbox sandbox.fraction=0", ("sandbox.fraction",)),
    ("vllm-lora", "validate sandbox defender.backend=vllm defender.lora.r=8", ("defender", "lora")),
    (
        "ratio-untrained-role",
        "validate sandbox schedule.train_roles=attacker schedule.update_ratio.defender=1",
        ("schedule.update_ratio",),
    ),
    # --- training runs ---
    ("resume-missing-dir", "train --resume {d}/nowhere", ("nowhere", "config.yaml")),
    ("resume-not-a-run", "train --resume {d}/notarun", ("notarun", "config.yaml")),
    (
        "resume-truncated-config",
        "train --resume {d}/truncated_run",
        ("truncated_run/config.yaml", "missing", "truncated"),
    ),
    (
        "run-exists",
        "train --config sandbox name=existing output_dir={d}",
        ("existing", "--resume"),
    ),
    # --- seed files (magic train data.seeds=FILE): file, line and field ---
    ("seeds-bad-json", "train data.seeds={d}/s_badjson.jsonl", ("s_badjson.jsonl:2", "JSON")),
    ("seeds-no-label", "train data.seeds={d}/s_nolabel.jsonl", ("s_nolabel.jsonl:2", "'label'")),
    ("seeds-bad-label", "train data.seeds={d}/s_badlabel.jsonl", ("s_badlabel.jsonl:1", "'label'")),
    (
        "seeds-empty-text",
        "train data.seeds={d}/s_emptytext.jsonl",
        ("s_emptytext.jsonl:1", "'text'"),
    ),
    ("seeds-number-text", "train data.seeds={d}/s_numtext.jsonl", ("s_numtext.jsonl:1", "'text'")),
    ("seeds-empty-file", "train data.seeds={d}/s_empty.jsonl", ("s_empty.jsonl", "no seeds")),
    ("seeds-blank-lines", "train data.seeds={d}/s_blank.jsonl", ("s_blank.jsonl", "no seeds")),
    ("seeds-not-object", "train data.seeds={d}/s_list.jsonl", ("s_list.jsonl:1", "object")),
    ("seeds-latin1", "train data.seeds={d}/s_latin1.jsonl", ("s_latin1.jsonl:1", "UTF-8")),
    ("seeds-duplicate-id", "train data.seeds={d}/s_dupid.jsonl", ("s_dupid.jsonl:2", "'id'")),
    (
        "seeds-one-label-only",
        "train data.seeds={d}/s_onlyharm.jsonl",
        ("s_onlyharm.jsonl", "benign", "harmful_fraction"),
    ),
    ("seeds-csv-header-only", "train data.seeds={d}/s_header.csv", ("s_header.csv", "no seeds")),
    (
        "seeds-csv-no-label-column",
        "train data.seeds={d}/s_nolabelcol.csv",
        ("s_nolabelcol.csv:1", "label"),
    ),
    ("seeds-csv-extra-field", "train data.seeds={d}/s_fields.csv", ("s_fields.csv:2", "fields")),
    ("seeds-csv-bad-label", "train data.seeds={d}/s_badlabel.csv", ("s_badlabel.csv:2", "'label'")),
    ("seeds-csv-latin1", "train data.seeds={d}/s_latin1.csv", ("s_latin1.csv:2", "UTF-8")),
    ("seeds-txt-suffix", "train data.seeds={d}/s_seeds.txt", ("s_seeds.txt", ".jsonl or .csv")),
    ("seeds-missing", "train data.seeds={d}/s_nope.jsonl", ("s_nope.jsonl", "no such")),
    (
        "pool-bad-seeds",
        "pool build --out {d}/p.jsonl data.seeds={d}/s_nolabel.jsonl",
        ("s_nolabel",),
    ),
    # --- evaluation and the other commands ---
    ("eval-limit-negative", "eval --model x --limit -1", ("--limit", "1")),
    ("eval-limit-zero", "eval --model x --limit 0", ("--limit",)),
    ("eval-no-model-option", "eval --benchmarks {d}/bench.jsonl", ("--model",)),
    (
        "eval-dir-without-model",
        "eval --model {d}/notamodel --benchmarks {d}/bench.jsonl",
        ("notamodel", "config.json"),
    ),
    (
        "eval-missing-model-dir",
        "eval --model {d}/nomodel/here --benchmarks {d}/bench.jsonl",
        ("nomodel/here", "no such directory"),
    ),
    (
        "eval-empty-benchmark",
        "eval --model sandbox:base --benchmarks {d}/bench_empty.jsonl",
        ("bench_empty.jsonl", "no items"),
    ),
    (
        "eval-header-only-benchmark",
        "eval --model sandbox:base --benchmarks {d}/bench_header.csv",
        ("bench_header.csv", "no items"),
    ),
    (
        "eval-unknown-benchmark",
        "eval --model sandbox:base --benchmarks nope",
        ("nope", "benchmark"),
    ),
    (
        "eval-run-all-checkpoints-torn",
        "eval --model {d}/torn_run --benchmarks {d}/bench.jsonl",
        ("torn_run", "no whole checkpoints"),
    ),
    (
        "eval-torn-checkpoint",
        "eval --model {d}/torn_run/checkpoints/step-000003 --benchmarks {d}/bench.jsonl",
        ("step-000003/defender/config.json", "empty"),
    ),
    ("crossplay-not-a-run", "crossplay {d}/notarun --limit 2", ("notarun", "checkpoints")),
    ("crossplay-limit-zero", "crossplay {d}/notarun --limit 0", ("--limit",)),
    ("attack-best-of-zero", "attack --attacker x --target y --best-of 0", ("--best-of",)),
    ("analyze-missing-run", "analyze {d}/nowhere", ("nowhere",)),
    ("report-missing-run", "report {d}/nowhere", ("nowhere",)),
    ("report-binary-config", "report {d}/badcfg_run", ("badcfg_run/config.yaml", "unreadable")),
    ("serve-port-too-big", "serve judge --port 99999", ("--port", "65535")),
    ("serve-port-negative", "serve judge --port -1", ("--port",)),
    ("serve-bad-fault", "serve judge --faults bogus", ("--faults", "bogus")),
    ("pool-bad-strategy", "pool build --out {d}/p.jsonl --strategies bogus", ("bogus",)),
    ("ablation-bad-seeds", "experiment ablation --seeds x --out {d}/abl", ("x",)),
    ("ablation-bad-variant", "experiment ablation --variants bogus --out {d}/abl", ("bogus",)),
    ("unknown-command", "frobnicate", ("frobnicate",)),
    ("unknown-option", "train --bogus", ("--bogus",)),
]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def inputs(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "in"
    _write_inputs(d)
    cwd = tmp_path / "cwd"  # relative outputs (runs/, .magic_cache) would land here
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return d


def test_the_suite_has_the_issue_s_seventy_bad_inputs():
    assert len(CASES) >= 70
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("argv", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clean_error_line_and_writes_nothing(inputs, argv, expect):
    root = inputs.parent
    before = _snapshot(root)
    line = one_error(runner.invoke(app, argv.format(d=inputs).split()))
    for s in expect:
        assert s in line, line
    assert _snapshot(root) == before, "a refused command wrote or changed files"


def test_debug_flag_shows_the_traceback(inputs):
    result = runner.invoke(app, ["validate", "sandbox", "grpo.clip_eps=1e400", "--debug"])
    assert result.exit_code == 2
    assert "Traceback" in result.output
    assert "error: " in result.output


def test_an_unexpected_exception_is_one_line_with_exit_1(monkeypatch):
    import magic_rl.cli.world as world

    def boom(*a, **k):
        raise KeyError("bug")

    monkeypatch.setattr(world, "_load", boom)
    result = runner.invoke(app, ["validate", "sandbox"])
    assert result.exit_code == 1
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert line.startswith("error: internal error: KeyError") and "--debug" in line


def test_a_valid_config_still_validates(inputs):
    result = runner.invoke(app, ["validate", "sandbox", "train.steps=3"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")
