"""Data-parallel training on CPU: two processes (gloo) train the tiny sandbox and stay identical.

`accelerate launch --cpu` starts a single process whatever `--num_processes` says, so the test uses
the torchrun launcher (`distributed_type: MULTI_GPU`) with no GPU visible: the Accelerator then runs
MULTI_CPU over gloo. tests/distributed_train.py runs `loop.train` and dumps each rank's weights.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from magic_rl.config import load_config
from magic_rl.loop import SeedSampler, is_count, load_rl_seeds

SCRIPT = Path(__file__).with_name("distributed_train.py")


@pytest.mark.parametrize(
    ("key", "count"),
    [
        ("tokens/defender", True),
        ("judge/calls", True),
        ("judge/unknown", True),
        ("reward/dropped", True),
        ("attacker/reward/invalid", True),
        ("defender/reward/truncated", True),
        ("defender/update/samples", True),
        ("attacker/update/tokens", True),
        ("game/asr", False),
        ("game/truncated/defender", False),
        ("defender/refusal_rate/benign", False),
        ("defender/reward/total", False),
        ("defender/update/grad_norm", False),
        ("attacker/update/pg_loss", False),
    ],
)
def test_counts_add_up_over_shards_and_rates_are_averaged(key, count):
    assert is_count(key) is count


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp: Path, args: list[str]) -> None:
    config = tmp / "accelerate.yaml"
    config.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_machines: 1\n"
        f"num_processes: 2\nmain_process_port: {_free_port()}\nmixed_precision: 'no'\n"
        "dynamo_backend: 'NO'\ngpu_ids: all\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        str(SCRIPT),
        *args,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


def _load(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_a_two_process_update_equals_the_one_process_update_of_the_whole_batch(tmp_path):
    # uneven shares, then a rank with no sample at all; different initial weights per rank
    import torch

    _launch(tmp_path, ["--update", str(tmp_path / "dp")])
    one = subprocess.run(
        [sys.executable, str(SCRIPT), "--update", str(tmp_path / "one")],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert one.returncode == 0, one.stderr[-4000:]
    ref = torch.load(tmp_path / "one" / "update-rank0.pt")
    for rank in (0, 1):
        got = torch.load(tmp_path / "dp" / f"update-rank{rank}.pt")
        assert got["grad_norms"] == pytest.approx(ref["grad_norms"], rel=1e-12)
        for key, value in ref["weights"].items():
            torch.testing.assert_close(got["weights"][key], value, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_two_processes_train_the_sandbox_in_lockstep_and_resume(tiny_overrides, tmp_path):
    overrides = [
        *tiny_overrides,
        "train.steps=2",
        "schedule.freq=2",
        "reward.truncation=penalize",
        f"output_dir={tmp_path}",
        "name=dp",
    ]
    run = tmp_path / "dp"
    _launch(tmp_path, [str(tmp_path / "w2"), *overrides])
    _launch(tmp_path, [str(tmp_path / "w4"), "--resume", str(run), "train.steps=4"])

    cfg = load_config(str(run / "config.yaml"), ["train.steps=4"])
    ck = run / "checkpoints"
    for out, step in ((tmp_path / "w2", 2), (tmp_path / "w4", 4)):
        for role in ("attacker", "defender"):
            rank0, rank1 = (_load(out / f"rank{i}-{role}.safetensors") for i in (0, 1))
            assert _same(rank0, rank1), f"{role} weights differ across ranks after step {step}"
            saved = _load(ck / f"step-{step:06d}" / role / "model.safetensors")
            # save_pretrained leaves out tied weights: compare what the checkpoint holds
            assert _same({k: rank0[k] for k in saved}, saved)
    w = {
        (s, r): _load(ck / f"step-{s:06d}" / r / "model.safetensors")
        for s in (0, 2, 4)
        for r in ("attacker", "defender")
    }
    assert not _same(w[0, "defender"], w[2, "defender"])  # the update did something
    assert not _same(w[2, "attacker"], w[4, "attacker"])
    assert _same(w[2, "defender"], w[4, "defender"])

    metrics = _rows(run / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [0, 1, 2, 3]
    assert [m["schedule/role"] for m in metrics] == ["defender"] * 2 + ["attacker"] * 2

    # replay holds both shards: every seed of the step's batch, G episodes each, numbered globally
    replay = _rows(run / "replay.jsonl")
    G, n = cfg.grpo.group_size, cfg.train.seeds_per_step
    sampler = SeedSampler(load_rl_seeds(cfg), n, cfg.data.harmful_fraction, cfg.seed)
    for step, m in enumerate(metrics):
        recs = [r for r in replay if r["step"] == step]
        assert [r["episode"] for r in recs] == list(range(n * G))
        batch = sampler.batch(step)
        assert [r["seed"]["id"] for r in recs] == [batch[r["group"]].id for r in recs]
        assert Counter(r["group"] for r in recs) == Counter({g: G for g in range(n)})
        # counts are summed over the two shards, not averaged
        role = m["schedule/role"]
        assert m[f"{role}/reward/invalid"] == sum(not r["rewards"][role]["valid"] for r in recs)
