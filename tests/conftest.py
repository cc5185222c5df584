"""Shared fixtures: a tiny sandbox world built once per test session (seconds, not minutes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Tiny models run fastest on one thread on a shared 2-core machine; the tests only check behaviour.
os.environ.setdefault("OMP_NUM_THREADS", "1")

TINY = [
    "sandbox.fraction=0.1",
    "sandbox.base_steps=20",
    "sandbox.judge_epochs=1",
    "sandbox.learnability_steps=5",
    "sft.max_steps=10",
    "train.progress=false",
    "attacker.sampling.max_new_tokens=48",
    "defender.sampling.max_new_tokens=24",
    # both roles play train.seeds_per_step, as the tests size it (the preset's attacker batch is
    # larger: tests/test_loop.py checks a batch per role)
    "train.attacker_seeds_per_step=null",
    "data.attacker_harmful_fraction=null",
]


@pytest.fixture(scope="session")
def tiny_overrides(tmp_path_factory) -> list[str]:
    """Overrides for a tiny sandbox run; the world (and phase-1 attacker) is built once here."""
    from magic_rl.config import load_config
    from magic_rl.sandbox.world import build_attacker, build_world

    cache = tmp_path_factory.mktemp("magic_cache")
    overrides = [*TINY, f"sandbox.cache_dir={cache}"]
    cfg = load_config("sandbox", overrides)
    build_attacker(cfg, build_world(cfg, log=lambda *a: None), log=lambda *a: None)
    return overrides


@pytest.fixture
def shared_data() -> Path:
    root = Path(
        os.environ.get("MAGIC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    if not root.is_dir():
        pytest.skip(f"public benchmark files not found at {root}")
    return root


@pytest.fixture
def cli_server():
    """Start `magic ARGS...` in a subprocess and return the URL it prints as `KEY=URL` (waiting at
    most 120 s); every server started is terminated at teardown."""
    procs = []

    def start(args: list[str], key: str) -> str:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "300"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "magic_rl.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        procs.append(proc)
        url, deadline, seen = None, time.monotonic() + 120, []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            url = next((w.split("=", 1)[1] for w in line.split() if w.startswith(f"{key}=")), None)
        assert url, "".join(seen)
        start.output = "".join(seen)  # what the server printed up to its URL line
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)
