"""Resume of a run that trains: stopped at several points, the resumed run ends bit-identical to the
uninterrupted one — every checkpoint of both roles and the saved optimiser state.

The run: 6 steps, roles D D A A D D (schedule.freq=2), state saved after steps 2 (switch), 3
(checkpoint_every=3), 4 (switch) and 6 (end). `reward.truncation=penalize` gives the tiny world's
groups reward variance, so updates have a gradient (asserted: weights move). One run is stopped by
an exception at the start of step 1 (before any saved state: it restarts from step 0), resumed and
stopped at step 3 (state after step 3 holds the attacker's Adam moments of step 2), resumed and
stopped at step 5 (state after step 4 holds the defender's moments of steps 0-1), and resumed to
the end. A resume that lost the optimiser state, the schedule or the data order would diverge.

This stops the run in-process with an exception between steps; tests/test_loop.py covers a real
SIGKILL through the CLI. Run: `python -m pytest -q tests/test_resume_trains.py` (about 20 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sandbox_train import train

from magic_rl import loop
from magic_rl.config import load_config


class Stop(Exception):
    """Stands for a kill between two steps."""


def _train(overrides: list[str], run_dir: Path, *, resume: bool, stop_at: int | None, monkeypatch):
    step = loop.Run.step

    def stopping_step(self, k):
        if k == stop_at:
            raise Stop(k)
        return step(self, k)

    monkeypatch.setattr(loop.Run, "step", stopping_step)
    cfg = load_config(str(run_dir / "config.yaml")) if resume else load_config("sandbox", overrides)
    try:
        train(cfg, resume=run_dir if resume else None, log=lambda *a: None)
    except Stop:
        return False
    finally:
        monkeypatch.setattr(loop.Run, "step", step)
    return True


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _flat(obj, prefix="") -> dict[str, object]:
    """Nested optimiser state -> {dotted key: leaf} for an exact comparison."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, list | tuple):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flat(v, f"{prefix}{i}."))
        return out
    return {prefix: obj}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.equal(b)
    return a == b


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_resumed_run_ends_bit_identical_to_the_uninterrupted_one(
    tiny_overrides, tmp_path, monkeypatch
):
    common = [
        *tiny_overrides,
        "train.steps=6",
        "schedule.freq=2",
        "train.checkpoint_every=3",
        "train.seeds_per_step=4",
        "reward.truncation=penalize",
        f"output_dir={tmp_path}",
    ]
    ref, run = tmp_path / "ref", tmp_path / "stopped"
    assert _train([*common, "name=ref"], ref, resume=False, stop_at=None, monkeypatch=monkeypatch)
    assert not _train(
        [*common, "name=stopped"], run, resume=False, stop_at=1, monkeypatch=monkeypatch
    )
    assert not (run / "state").exists()  # stopped before the first save: resume starts over
    for stop_at, next_step in ((3, 3), (5, 4), (None, 6)):
        done = _train([], run, resume=True, stop_at=stop_at, monkeypatch=monkeypatch)
        assert done == (stop_at is None)
        meta = json.loads((run / "state" / "meta.json").read_text())
        assert meta["next_step"] == next_step

    want = _rows(ref / "metrics.jsonl")
    got = _rows(run / "metrics.jsonl")
    assert [r["schedule/role"] for r in want] == ["defender"] * 2 + ["attacker"] * 2 + [
        "defender"
    ] * 2
    # the run trains: both roles take steps with a gradient, and their weights move
    for role in ("defender", "attacker"):
        norms = [r[f"{role}/update/grad_norm"] for r in want if r["schedule/role"] == role]
        assert max(norms) > 0, f"{role}: every grad_norm is 0, nothing trains"
    ck_ref, ck_run = ref / "checkpoints", run / "checkpoints"
    steps = ["step-000000", "step-000002", "step-000004", "step-000006"]
    assert sorted(p.name for p in ck_ref.iterdir()) == steps
    assert sorted(p.name for p in ck_run.iterdir()) == steps
    for role in ("defender", "attacker"):
        first, last = _tensors(ck_ref / steps[0] / role), _tensors(ck_ref / steps[-1] / role)
        assert any(not first[k].equal(last[k]) for k in first), f"{role} never changed"

    # the resumed run: same rows, same weights at every checkpoint, same optimiser state
    assert [r["step"] for r in got] == list(range(6))
    for a, b in zip(got, want, strict=True):
        for key in a.keys() - {k for k in a if k.startswith("time/")}:
            assert a[key] == b[key] or (a[key] != a[key] and b[key] != b[key]), (a["step"], key)
    for step in steps:
        for role in ("defender", "attacker"):
            w_run, w_ref = _tensors(ck_run / step / role), _tensors(ck_ref / step / role)
            assert w_run.keys() == w_ref.keys()
            assert all(w_run[k].equal(w_ref[k]) for k in w_ref), f"{step}/{role} differs"
    opt_run = torch.load(run / "state" / "optim.pt", weights_only=True)
    opt_ref = torch.load(ref / "state" / "optim.pt", weights_only=True)
    flat_run, flat_ref = _flat(opt_run), _flat(opt_ref)
    assert flat_run.keys() == flat_ref.keys()
    assert any(k.endswith("exp_avg_sq.") for k in flat_ref)
    assert all(_equal(flat_run[k], flat_ref[k]) for k in flat_ref)
    replay, ref_replay = _rows(run / "replay.jsonl"), _rows(ref / "replay.jsonl")
    assert [(r["step"], r["episode"]) for r in replay] == [
        (r["step"], r["episode"]) for r in ref_replay
    ]
    assert [r["turns"] for r in replay] == [r["turns"] for r in ref_replay]
