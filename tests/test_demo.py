"""`make demo` trains `demo.DEMO_STEPS` steps, not the preset's `train.steps`: it stops where the
preset's last phase (the attacker's) begins, so the defender it evaluates is the preset's final one."""

from __future__ import annotations

from pathlib import Path

import pytest

from magic_rl.config import load_config
from magic_rl.demo import DEMO_STEPS
from magic_rl.loop.run import schedule_for
from magic_rl.records import Role
from magic_rl.schedule import Scheduler


def _roles(cfg, steps: int) -> list[Role]:
    scheduler, roles = Scheduler(schedule_for(cfg.schedule)), []
    for _ in range(steps):
        roles.append(scheduler.role)
        scheduler.advance({})
    return roles


def test_the_demo_stops_where_the_preset_last_attacker_phase_begins():
    cfg = load_config("sandbox")
    roles = _roles(cfg, cfg.train.steps)
    assert cfg.train.steps > DEMO_STEPS
    assert roles[DEMO_STEPS - 1] is Role.DEFENDER  # the demo's last step trains the defender
    # the steps it leaves out train only the attacker
    assert set(roles[DEMO_STEPS:]) == {Role.ATTACKER}
    assert Role.ATTACKER in roles[:DEMO_STEPS]  # ...and the demo still has an attacker phase


@pytest.mark.slow
def test_a_run_cut_before_its_last_attacker_phase_ends_with_the_same_defender(
    tiny_overrides, tmp_path
):
    from safetensors.torch import load_file
    from sandbox_train import train

    def final_defender(steps: int) -> dict:
        cfg = load_config(
            "sandbox",
            [
                *tiny_overrides,
                f"train.steps={steps}",
                "schedule.freq=2",
                "train.seeds_per_step=4",
                # every group gets reward variance, so each update moves the weights
                "reward.truncation=penalize",
                f"output_dir={tmp_path}",
                f"name=steps{steps}",
            ],
        )
        run = train(cfg, log=lambda *a: None)
        last = max((run / "checkpoints").iterdir())
        assert last.name == f"step-{steps:06d}"
        return load_file(str(Path(last) / "defender" / "model.safetensors"))

    cut, full = final_defender(6), final_defender(8)  # D A D  vs  D A D A
    assert cut.keys() == full.keys() and all(cut[k].equal(full[k]) for k in cut)
    first = load_file(str(tmp_path / "steps6/checkpoints/step-000000/defender/model.safetensors"))
    assert not all(cut[k].equal(first[k]) for k in cut)  # the defender did train
