"""Fault suite, part 3: a run stopped by a signal, two trains on one run directory, a first state
save cut short, and a run that diverges.

- SIGTERM through the CLI stops after the current step with the state saved, exit 143, and a
  resume ends bit-identical to an uninterrupted run (metrics, replay, every checkpoint file);
  SIGINT exits 130 the same way; a second signal stops at once.
- The run-directory lock: a second train on a run held by a live process exits 2 naming the holder
  and changes no file; a lock left by a dead process is taken over, saying so.
- A kill during the first state save (a checkpoint written, no state) resumes from step 0.
- A run that stops early (a signal, a divergence, an error) still closes its tracker (`train.tracker`).
- The divergence guard: `defender.lr=1e6` stops the run at the first non-finite gradient, exit 2,
  naming step and role, with no NaN logged and nothing saved; a saved state with NaN weights is
  refused on resume.

Run: `python -m pytest -q tests/test_interrupts.py` (about two minutes with the tiny world built).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_errors import one_error
from sandbox_train import train
from typer.testing import CliRunner

from magic_rl import loop
from magic_rl.cli import app
from magic_rl.config import load_config

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _no_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "magic_rl.cli", "train", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_sigterm_stops_after_the_step_and_the_resume_is_bit_identical(tiny_overrides, tmp_path):
    common = [
        *tiny_overrides,
        "train.steps=6",
        "schedule.freq=3",  # no checkpoint_every: the state saved on SIGTERM is the only one
        "train.seeds_per_step=4",
        "reward.truncation=penalize",  # reward variance, so the updates move the weights
        f"output_dir={tmp_path}",
    ]
    ref, run = tmp_path / "ref", tmp_path / "stopped"
    subprocess.run(_cmd(*common, "name=ref"), check=True, env=_env(), capture_output=True)

    proc = subprocess.Popen(
        _cmd(*common, "name=stopped"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics, deadline = run / "metrics.jsonl", time.time() + 300
    while proc.poll() is None and time.time() < deadline:  # inside the first block, before a save
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 1:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, out + err
    done = len(_rows(metrics))
    assert done < 3, "the run reached its first switch before the signal: nothing to test"
    assert f"interrupted at step {done}; resume with: magic train --resume {run}" in err
    assert json.loads((run / "state" / "meta.json").read_text())["next_step"] == done
    assert not (run / ".lock").exists()

    resumed = subprocess.run(_cmd("--resume", str(run)), env=_env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _no_time(_rows(run / "metrics.jsonl")) == _no_time(_rows(ref / "metrics.jsonl"))
    assert (run / "replay.jsonl").read_bytes() == (ref / "replay.jsonl").read_bytes()
    ck_run, ck_ref = _files(run / "checkpoints"), _files(ref / "checkpoints")
    assert sorted(ck_run) == sorted(ck_ref) and any("step-000006" in k for k in ck_ref)
    assert all(ck_run[k] == ck_ref[k] for k in ck_ref), "a checkpoint differs"


STEP = loop.Run.step  # the step as the loop defines it


def _train_in_process(cfg, monkeypatch, on_step):
    """loop.train with `on_step(run, k)` called at the start of each step (this hook only: it
    wraps the unpatched step, not an earlier call's hook)."""

    def hooked(self, k):
        on_step(self, k)
        return STEP(self, k)

    monkeypatch.setattr(loop.Run, "step", hooked)
    return train(cfg, log=lambda *a: None)


@pytest.mark.slow
def test_sigint_saves_at_the_step_end_and_a_second_signal_stops_at_once(
    tiny_overrides, tmp_path, monkeypatch
):
    cfg = load_config(
        "sandbox",
        [*tiny_overrides, "train.steps=4", "schedule.freq=4", "train.seeds_per_step=2"],
    )
    once = cfg.model_copy(update={"output_dir": str(tmp_path), "name": "once"})
    # what was there before (SIG_IGN, not default_int_handler, when pytest runs in a background job)
    before = signal.getsignal(signal.SIGINT)

    def one(run, k):
        if k == 1:
            os.kill(os.getpid(), signal.SIGINT)  # during step 1: it finishes, then the run stops

    with pytest.raises(loop.Interrupted, match="interrupted at step 2; resume with") as stop:
        _train_in_process(once, monkeypatch, one)
    assert stop.value.code == 130
    run = tmp_path / "once"
    assert [r["step"] for r in _rows(run / "metrics.jsonl")] == [0, 1]
    assert json.loads((run / "state" / "meta.json").read_text())["next_step"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored

    last = cfg.model_copy(update={"output_dir": str(tmp_path), "name": "last"})

    def at_last(run, k):
        if k == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # during the last step: the run ends whole...

    with pytest.raises(loop.Interrupted, match="during the last step: the run is complete") as stop:
        _train_in_process(last, monkeypatch, at_last)  # ...and its caller is still stopped
    assert stop.value.code == 143
    assert [r["step"] for r in _rows(tmp_path / "last" / "metrics.jsonl")] == [0, 1, 2, 3]
    assert (tmp_path / "last" / "summary.json").is_file()

    twice = cfg.model_copy(update={"output_dir": str(tmp_path), "name": "twice"})

    def two(run, k):
        if k == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # the second: stop inside this step

    with pytest.raises(loop.Interrupted, match="stopped at once during step 1") as stop:
        _train_in_process(twice, monkeypatch, two)
    assert stop.value.code == 143
    run = tmp_path / "twice"
    assert [r["step"] for r in _rows(run / "metrics.jsonl")] == [0]
    assert not (run / "state").exists() and not (run / ".lock").exists()


@pytest.mark.slow
def test_sigint_through_the_cli_exits_130_with_the_resume_command(
    tiny_overrides, tmp_path, monkeypatch
):
    step = loop.Run.step

    def hooked(self, k):
        if k == 0:
            os.kill(os.getpid(), signal.SIGINT)
        return step(self, k)

    monkeypatch.setattr(loop.Run, "step", hooked)
    args = ["train", *tiny_overrides, "train.steps=3", "train.seeds_per_step=2"]
    result = runner.invoke(app, [*args, f"output_dir={tmp_path}", "name=c"])
    assert result.exit_code == 130, result.output
    assert f"interrupted at step 1; resume with: magic train --resume {tmp_path / 'c'}" in (
        result.output
    )
    assert "error:" not in result.output


# -- the run-directory lock ------------------------------------------------------------------------

HOLD = """
import sys, time
from pathlib import Path
from magic_rl.loop.lock import RunLock
with RunLock(Path(sys.argv[1]), log=print):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def small_run(tiny_overrides, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lock")
    cfg = load_config(
        "sandbox",
        [*tiny_overrides, "train.steps=2", "schedule.freq=1", "train.seeds_per_step=2"],
    )
    return train(cfg.model_copy(update={"output_dir": str(out)}), log=lambda *a: None)


def _hold(run: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], env=_env(), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.slow
def test_a_second_train_on_a_held_run_exits_2_naming_the_holder_and_changes_nothing(
    small_run, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    holder = _hold(run)
    try:
        before = _files(run)
        result = runner.invoke(app, ["train", "--resume", str(run), "train.steps=3"])
        line = one_error(result)
        assert f"pid {holder.pid} on host {socket.gethostname()} since " in line, line
        assert str(run / ".lock") in line
        assert _files(run) == before, "a refused train changed the run directory"
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is stale, taken over, and released after
    assert (run / ".lock").exists()
    result = runner.invoke(app, ["train", "--resume", str(run), "train.steps=3"])
    assert result.exit_code == 0, result.output
    assert f"took over a stale lock of pid {holder.pid}" in result.output
    assert not (run / ".lock").exists()
    assert [r["step"] for r in _rows(run / "metrics.jsonl")] == [0, 1, 2]


def test_a_lock_of_another_host_is_refused_naming_it(tmp_path):
    from magic_rl.loop.lock import RunLock, RunLocked

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that is not alive here: on another host it may well be
    lock = {"pid": gone.pid, "host": "elsewhere", "since": 0}
    (tmp_path / ".lock").write_text(json.dumps(lock))
    with pytest.raises(RunLocked, match=f"pid {gone.pid} on host elsewhere since 1970-01-01"):
        RunLock(tmp_path).acquire()
    assert json.loads((tmp_path / ".lock").read_text())["host"] == "elsewhere"


# -- the first state save cut short ----------------------------------------------------------------


class Killed(BaseException):
    """Stands for a kill."""


@pytest.mark.slow
def test_a_kill_during_the_first_state_save_resumes_from_step_0(
    tiny_overrides, tmp_path, monkeypatch
):
    common = [*tiny_overrides, "train.steps=3", "schedule.freq=2", "train.seeds_per_step=2"]
    cfg = load_config("sandbox", [*common, f"output_dir={tmp_path}"])
    ref = train(cfg.model_copy(update={"name": "ref"}), log=lambda *a: None)

    save = loop.Run.save_state

    def killed_in_save(self, next_step):
        (self.run_dir / "state.tmp").mkdir()
        (self.run_dir / "state.tmp" / "meta.json").write_text('{"next_')  # half written
        raise Killed

    monkeypatch.setattr(loop.Run, "save_state", killed_in_save)
    with pytest.raises(Killed):
        train(cfg.model_copy(update={"name": "killed"}), log=lambda *a: None)
    monkeypatch.setattr(loop.Run, "save_state", save)
    run = tmp_path / "killed"
    # what the kill leaves: the switch's checkpoint, two logged steps, no state
    assert (run / "checkpoints" / "step-000002").is_dir() and not (run / "state").exists()
    assert len(_rows(run / "metrics.jsonl")) == 2

    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert "starting from step 0" in result.output
    assert _no_time(_rows(run / "metrics.jsonl")) == _no_time(_rows(ref / "metrics.jsonl"))
    assert (run / "replay.jsonl").read_bytes() == (ref / "replay.jsonl").read_bytes()
    assert _files(run / "checkpoints") == _files(ref / "checkpoints")


# -- the divergence guard --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_diverging_run_stops_before_the_update_and_saves_nothing(tiny_overrides, tmp_path):
    args = [
        "train",
        *tiny_overrides,
        "train.steps=4",
        "schedule.freq=2",
        "train.seeds_per_step=4",
        "reward.truncation=penalize",
        "defender.lr=1e6",  # step 0's update blows the weights up; step 1's gradient is NaN
        f"output_dir={tmp_path}",
        "name=d",
    ]
    result = runner.invoke(app, args)
    line = one_error(result)
    assert "step 1: defender: non-finite" in line and "not applied" in line, line
    assert "defender.lr (now 1e+06)" in line and f"--resume {tmp_path / 'd'}" in line, line
    run = tmp_path / "d"
    text = (run / "metrics.jsonl").read_text()
    assert [r["step"] for r in _rows(run / "metrics.jsonl")] == [0]
    assert "NaN" not in text and "Infinity" not in text
    assert not (run / "state").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000000"]


@pytest.mark.slow
def test_a_saved_state_with_nan_weights_is_refused_on_resume(small_run, tmp_path):
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    weights = run / "state" / "defender" / "model.safetensors"
    tensors = load_file(str(weights))
    name = sorted(tensors)[0]
    tensors[name].fill_(float("nan"))
    save_file(tensors, str(weights), metadata={"format": "pt"})
    before = _files(run)
    result = runner.invoke(app, ["train", "--resume", str(run), "train.steps=3"])
    line = one_error(result)
    assert f"{run / 'state' / 'defender'}: 1 weight tensors hold NaN or inf" in line, line
    assert _files(run) == before


def test_ctrl_c_before_training_is_reported_with_exit_130(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # typer turns a KeyboardInterrupt into a silent exit 130; the error boundary says what happened
    monkeypatch.setattr(loop, "preflight", interrupted)
    result = runner.invoke(app, ["train", "name=x"])
    assert result.exit_code == 130, result.output
    assert result.output.strip().splitlines()[-1] == "error: interrupted (Ctrl-C)"


class Escaped(Exception):
    """SIGTERM reached the test's own handler: the command installed none."""


def test_sigterm_before_training_stops_with_a_message_and_exit_143(monkeypatch):
    def escaped(signum, frame):
        raise Escaped

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # while the world is resolved (before any step)

    previous = signal.signal(signal.SIGTERM, escaped)  # no handler in the command: exit 1, not 143
    try:
        monkeypatch.setattr(loop, "preflight", terminated)
        result = runner.invoke(app, ["train", "name=x"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 143, result.output
    assert "SIGTERM before training started: stopped; run the same command again" in result.output


def test_the_guard_stops_a_non_finite_update_before_the_optimiser_step():
    from test_trainer_reference import EPISODES, PAD, REWARDS, _tiny_model

    from magic_rl.config import GRPOConfig, PolicyConfig
    from magic_rl.records import RewardBreakdown, Role
    from magic_rl.trainer import Diverged, GRPOTrainer

    def trainer(model, lr=1e-3):
        policy = type("P", (), {"model": model, "pad_id": PAD})()
        pcfg = PolicyConfig(model="tiny", lr=lr)
        return GRPOTrainer(Role.DEFENDER, policy, pcfg, GRPOConfig(micro_batch_size=3))

    def weights(model):
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    # a NaN gradient: dropped, the weights and the optimiser untouched
    model = _tiny_model()
    t, before = trainer(model), weights(model)
    hook = next(model.parameters()).register_hook(lambda g: g * float("nan"))
    with pytest.raises(Diverged, match="defender: non-finite gradient .*not applied"):
        t.update(EPISODES, REWARDS)
    hook.remove()
    assert all(p.equal(before[n]) for n, p in model.named_parameters())
    assert not t.optimizer.state and all(p.grad is None for p in model.parameters())
    # a NaN loss (here a NaN reward) is named as such
    nan_rewards = [RewardBreakdown(float("nan"), valid=True)] + REWARDS[1:]
    with pytest.raises(Diverged, match="defender: non-finite loss"):
        t.update(EPISODES, nan_rewards)
    assert all(p.equal(before[n]) for n, p in model.named_parameters())
    # weights that overflow in the step (an absurd learning rate) stop the run after it
    with pytest.raises(Diverged, match="non-finite weights after the update"):
        trainer(model, lr=1e308).update(EPISODES, REWARDS)
    # and non-finite weights are refused before any forward
    with pytest.raises(Diverged, match="non-finite weights before the update"):
        trainer(model).update(EPISODES, REWARDS)


def test_a_stop_escaping_another_command_keeps_its_message_and_code(monkeypatch, tmp_path):
    # `magic experiment` (or a report, here) runs training in-process: a stop there reaches the
    # error boundary, which keeps the stop's own line and exit code; no `except Exception` takes it
    import magic_rl.report

    def stopped(*args, **kwargs):
        raise loop.Interrupted("interrupted at step 3; resume with: magic train --resume R", 15)

    assert not isinstance(loop.Interrupted("x", 15), Exception)
    monkeypatch.setattr(magic_rl.report, "render_report", stopped)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 143, result.output
    assert "interrupted at step 3; resume with: magic train --resume R" in result.output


@pytest.mark.slow
def test_a_run_that_stops_early_still_closes_its_tracker(tiny_overrides, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from accelerate import Accelerator

    closed = []
    end = Accelerator.end_training
    monkeypatch.setattr(Accelerator, "end_training", lambda self: closed.append(1) or end(self))
    overrides = ["train.steps=3", "train.seeds_per_step=4", "train.tracker=tensorboard"]
    cfg = load_config("sandbox", [*tiny_overrides, *overrides, f"output_dir={tmp_path}", "name=tb"])

    def fail_at_step_1(run, k):
        if k == 1:
            raise RuntimeError("boom at step 1")

    with pytest.raises(RuntimeError, match="boom at step 1"):
        _train_in_process(cfg, monkeypatch, fail_at_step_1)
    assert closed == [1]
