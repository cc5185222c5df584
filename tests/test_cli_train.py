"""`magic train` runs phase 1 first when its attacker is the config's own, not yet trained, phase-1
output (a clean clone of configs/smollm2-cpu.yaml), and only then. Phase 1 and phase 2 are replaced
by recorders: the real path is tests/test_real_model.py's end-to-end test.
Run: `python -m pytest -q tests/test_cli_train.py`.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import magic_rl.cli.training as training
import magic_rl.loop as loop
import magic_rl.phase1 as phase1
import magic_rl.sandbox.resolve as resolve
from magic_rl.cli import app

runner = CliRunner()


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """Records phase-1 and phase-2 calls; phase 1 writes what `magic sft` writes last."""
    seen: list[str] = []

    def fake_phase1(cfg, *, force=False, log=print):
        seen.append("sft")
        out = phase1.sft_output(cfg)
        out.mkdir(parents=True, exist_ok=True)
        (out / "sft.json").write_text(json.dumps({"steps": 1}))
        return out

    def phase2(cfg, *, resume=None, log=print, recorded=None):
        seen.append(f"train:{cfg.attacker.model}")
        return tmp_path / "runs" / cfg.name

    monkeypatch.setattr(phase1, "run_phase1", fake_phase1)
    monkeypatch.setattr(loop, "train", phase2)
    # The instruct model's names stay unresolved (resolving would fetch the model).
    monkeypatch.setattr(resolve, "resolve_world", lambda cfg, log=print: cfg)
    monkeypatch.setattr(loop, "summarize_run", lambda run_dir: {})
    monkeypatch.setattr(training, "print_summary", lambda summary, run_dir: None)
    return seen


def _args(tmp_path, attacker: str) -> list[str]:
    return [
        "train",
        "--config",
        "configs/smollm2-cpu.yaml",
        f"attacker.model={attacker}",
        f"sft.output={tmp_path / 'sft' / 'attacker'}",
        f"output_dir={tmp_path / 'runs'}",
    ]


def test_train_runs_phase1_first_when_its_attacker_is_missing(calls, tmp_path) -> None:
    attacker = tmp_path / "sft" / "attacker"
    res = runner.invoke(app, _args(tmp_path, str(attacker)))
    assert res.exit_code == 0, res.output
    assert calls == ["sft", f"train:{attacker}"]
    assert "phase 1" in res.output and "running `magic sft` first" in res.output

    res = runner.invoke(app, _args(tmp_path, str(attacker)))  # now trained: not again
    assert res.exit_code == 0, res.output
    assert calls == ["sft", f"train:{attacker}", f"train:{attacker}"]


def test_train_leaves_other_attackers_alone(calls, tmp_path) -> None:
    res = runner.invoke(app, _args(tmp_path, "models:smollm2-135m-instruct"))  # MAGIC-base
    assert res.exit_code == 0, res.output
    assert calls == ["train:models:smollm2-135m-instruct"]
    half = tmp_path / "sft" / "attacker"
    no_game = [
        "game.attacker=none",
        "schedule.train_roles=defender",
        "schedule.update_ratio={defender: 1}",
    ]
    res = runner.invoke(app, [*_args(tmp_path, str(half)), *no_game])  # no attacker plays
    assert res.exit_code == 0, res.output
    assert calls[1:] == [f"train:{half}"]
    half.mkdir(parents=True)  # an interrupted phase 1 (no sft.json) is run again
    res = runner.invoke(app, _args(tmp_path, str(half)))
    assert res.exit_code == 0, res.output
    assert calls[2:] == ["sft", f"train:{half}"]


def test_a_taken_run_name_fails_before_phase1(calls, tmp_path, monkeypatch) -> None:
    monkeypatch.undo()  # the real phase 2 entry: it refuses a taken name before loading anything
    seen: list[str] = []
    monkeypatch.setattr(phase1, "run_phase1", lambda *a, **k: seen.append("sft"))
    run = tmp_path / "runs" / "smollm2-cpu"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("")
    res = runner.invoke(app, _args(tmp_path, str(tmp_path / "sft" / "attacker")))
    assert res.exit_code == 2 and "already holds a run" in res.output
    assert seen == []
