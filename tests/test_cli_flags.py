"""The CLI's one model-path rule and its flags: a model argument resolves the same way in every
command (`sandbox.resolve.model_dir`) and a bad one is named, never read as a Hub id; `-h`,
`--version`, `magic config explain`; renamed flags still work and warn; distinct ports; commands
that would end having written nothing say so and exit non-zero; an ablation prints its plan first.
Run: `python -m pytest -q tests/test_cli_flags.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magic_rl.cli import app
from magic_rl.config import load_config
from magic_rl.sandbox.resolve import model_dir

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(args: list[str]):
    return runner.invoke(app, args, env={"COLUMNS": "200"})


def _model(path: Path) -> Path:
    """A directory that passes the whole-model check (a config and a valid empty safetensors)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    header = b"{}"
    (path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    return path


@pytest.fixture
def run(tmp_path) -> Path:
    """A run directory with two whole checkpoints (step 0 and step 5)."""
    run = tmp_path / "runs" / "r"
    for step in (0, 5):
        for role in ("attacker", "defender"):
            _model(run / "checkpoints" / f"step-{step:06d}" / role)
    (run / "config.yaml").write_text("name: r\n")
    return run


# --- one model-path rule -----------------------------------------------------------------------


def test_a_run_a_checkpoint_and_a_model_directory_resolve_to_a_role_model(run) -> None:
    cfg = load_config("sandbox")
    last = run / "checkpoints" / "step-000005"
    assert model_dir(str(run), "defender", cfg) == str(last / "defender")
    assert model_dir(str(run), "attacker", cfg) == str(last / "attacker")
    first = run / "checkpoints" / "step-000000"
    assert model_dir(str(first), "attacker", cfg) == str(first / "attacker")
    assert model_dir(str(first / "defender"), "attacker", cfg) == str(first / "defender")


def test_a_missing_path_is_named_never_read_as_a_hub_id(tmp_path, monkeypatch) -> None:
    cfg = load_config("sandbox")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for spec in ("runs/typo", "./x", "/nowhere/model", "a/b/c"):
        with pytest.raises(FileNotFoundError, match="no such directory; a model argument is"):
            model_dir(spec, "defender", cfg)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        model_dir(str(tmp_path / "runs"), "defender", cfg)
    seen: list[str] = []
    assert model_dir("Qwen/Qwen2.5-7B-Instruct", "defender", cfg, log=seen.append) == (
        "Qwen/Qwen2.5-7B-Instruct"
    )
    assert "Hugging Face Hub id" in seen[0]


def test_a_run_without_checkpoints_is_named(tmp_path) -> None:
    run = tmp_path / "empty-run"
    run.mkdir()
    (run / "config.yaml").write_text("name: x\n")
    with pytest.raises(FileNotFoundError, match="no whole checkpoints"):
        model_dir(str(run), "defender", load_config("sandbox"))


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "--model", "runs/typo", "--benchmarks", "sandbox/benign"],
        ["attack", "--attacker", "runs/typo", "--target", "sandbox:base"],
        ["sandbox", "probe", "--model", "runs/typo"],
        ["serve", "policy", "--model", "runs/typo", "--port", "0"],
    ],
    ids=["eval", "attack", "sandbox probe", "serve policy"],
)
def test_every_command_names_a_missing_model_path(args, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    res = invoke(args)
    assert res.exit_code == 2, res.output
    assert "runs/typo: no such directory; a model argument is" in res.output
    assert "huggingface" not in res.output.lower()


def test_serve_policy_takes_a_run_directory_and_a_role(run, monkeypatch) -> None:
    import magic_rl.policy.load as policy

    loaded: list[str] = []

    def fake_load(path, *args, **kw):  # stops the command before a server starts
        loaded.append(path)
        raise ValueError("stop here")

    monkeypatch.setattr(policy, "load_policy", fake_load)
    res = invoke(["serve", "policy", "--model", str(run), "--role", "attacker", "--port", "0"])
    assert res.exit_code == 2 and "stop here" in res.output, res.output
    assert loaded == [str(run / "checkpoints" / "step-000005" / "attacker")]
    # the old positional spelling still works, with a warning
    res = invoke(["serve", "policy", str(run), "--port", "0"])
    assert "deprecated" in res.output and "--model MODEL" in res.output, res.output
    assert loaded[-1] == str(run / "checkpoints" / "step-000005" / "defender")
    res = invoke(["serve", "policy", "--port", "0"])
    assert res.exit_code == 2 and "missing --model" in res.output


# --- flags -------------------------------------------------------------------------------------


def test_dash_h_and_version() -> None:
    for args in (["-h"], ["eval", "-h"], ["serve", "policy", "-h"], ["judge", "audit", "-h"]):
        res = invoke(args)
        assert res.exit_code == 0 and "Usage:" in res.output, (args, res.output)
    res = invoke(["--version"])
    assert res.exit_code == 0 and res.output.startswith("magic-rl "), res.output


def test_the_overrides_hint_fits_the_command() -> None:
    assert "schedule.freq=15" in invoke(["train", "-h"]).output
    for args in (["eval", "-h"], ["serve", "judge", "-h"], ["pool", "build", "-h"]):
        assert "schedule.freq" not in invoke(args).output, args


def test_serve_judge_and_policy_default_to_different_ports() -> None:
    from magic_rl.cli.serving import serve_judge_cmd, serve_policy_cmd

    def port(fn):
        import inspect

        return inspect.signature(fn).parameters["port"].default

    assert port(serve_judge_cmd) != port(serve_policy_cmd)


def test_renamed_flags_still_work_with_a_warning(monkeypatch) -> None:
    import magic_rl.judge.serve as judge_serve

    seen: list[str] = []

    def fake_serve(judge, host, port, *, backend_format, **kw):  # no server is started
        seen.append(backend_format)
        raise OSError("stop here")

    monkeypatch.setattr(judge_serve, "serve_judge", fake_serve)
    monkeypatch.setattr("magic_rl.cli.serving.served_judge", lambda cfg, log=print: _Named())
    res = invoke(["serve", "judge", "--format", "qwen3guard", "--port", "0"])
    assert "--format is deprecated: it is now --answer-format" in res.output, res.output
    res = invoke(["serve", "judge", "--answer-format", "llamaguard", "--port", "0"])
    assert "deprecated" not in res.output, res.output
    assert seen == ["qwen3guard", "llamaguard"]
    res = invoke(["serve", "judge", "--format", "qwen3guard", "--answer-format", "llamaguard"])
    assert res.exit_code == 2 and "give only --answer-format" in res.output
    res = invoke(["attack", "--attacker", "x", "--target", "y", "--seeds", str(Path("/nowhere"))])
    assert res.exit_code == 2 and "--seeds is deprecated: it is now --prompts" in res.output


class _Named:
    name = "judge"


def test_config_explain_shows_descriptions_types_and_values() -> None:
    res = invoke(["config", "explain", "schedule.freq"])
    assert res.exit_code == 0, res.output
    assert "schedule.freq = 15  (int)" in res.output and "steps per block unit" in res.output
    res = invoke(["config", "explain", "schedule", "schedule.freq=7"])
    assert "schedule.freq = 7" in res.output and "schedule.train_roles" in res.output
    everything = invoke(["config", "explain"]).output
    assert everything.count("\n    ") > 100 and "(no description)" not in everything
    res = invoke(["config", "explain", "schedule.frequency"])
    assert res.exit_code == 2 and "no such config field" in res.output


# --- nothing written is an error, plans before long work ------------------------------------------


def test_export_with_nothing_to_export_exits_non_zero(tmp_path, monkeypatch) -> None:
    import magic_rl.evaluate.export as export

    monkeypatch.setattr(
        export, "export", lambda path, formats, out, log=print, force=False: {"jbb": []}
    )
    res = invoke(["export", str(tmp_path), "--format", "jbb"])
    assert res.exit_code == 2 and "nothing exported" in res.output, res.output


def test_judge_audit_always_saves(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = REPO / "tests" / "data" / "benchmarks"
    res = invoke(["judge", "audit", "--judge", "keyword", "--benchmarks", "wildguardtest_judge",
                  "--data-root", str(data), "eval.bootstrap=100", "train.progress=false"])  # fmt: skip
    assert res.exit_code == 0, res.output
    saved = list((tmp_path / "runs").glob("judge-audit-*/audit.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["judges"]["keyword"]


def test_ablation_prints_its_plan_and_estimate_first(tmp_path) -> None:
    out = tmp_path / "abl"
    res = invoke(["experiment", "ablation", "--dry-run", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "6 variants x 5 seeds: 26 runs" in res.output and "1800 training steps" in res.output
    assert "min on 2 CPU cores" in res.output and not out.exists()
    (out / "magic-s0").mkdir(parents=True)
    (out / "magic-s0" / "summary.json").write_text("{}")
    res = invoke(["experiment", "ablation", "--dry-run", "--variants", "magic", "--seeds", "0,1",
                  "--steps", "10", "--out", str(out)])  # fmt: skip
    assert "2 runs (1 already complete" in res.output and "10 training steps to go" in res.output


def test_make_demo_links_runs_demo_to_the_latest_run(tmp_path) -> None:
    from magic_rl.demo import link_latest

    first, second = tmp_path / "demo-1", tmp_path / "demo-2"
    first.mkdir(), second.mkdir()
    assert link_latest(first) == tmp_path / "demo"
    assert link_latest(second) == tmp_path / "demo"
    assert (tmp_path / "demo").resolve() == second.resolve()
    assert Path.readlink(tmp_path / "demo") == Path(
        "demo-2"
    )  # relative: the runs/ tree moves whole
    (tmp_path / "demo").unlink()
    (tmp_path / "demo").mkdir()  # a run of the user's own called demo is never replaced
    assert link_latest(second) is None and (tmp_path / "demo").is_dir()
