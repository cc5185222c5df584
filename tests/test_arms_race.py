"""`magic experiment arms-race`: the plan's phase count, the Fig. 3 contrasts on hand-made matrices,
the attacker phases' gains, and a tiny end-to-end run that reuses its finished runs."""

from __future__ import annotations

import json
import math
import time

import pytest

from magic_rl.config import load_config
from magic_rl.experiment.arms_race import (
    attacker_phase_gains,
    check_plan,
    faced,
    later_attackers,
    later_defenders,
    mean_matrix,
    phase_lengths,
)

NAMES = ["step-000000", "step-000010", "step-000020", "step-000030"]


def test_the_preset_at_90_steps_plans_six_phases_and_60_is_refused():
    cfg = load_config("sandbox", ["schedule.freq=15"])
    assert phase_lengths(cfg, 90) == [15] * 6
    assert check_plan(cfg, 90) == 6
    with pytest.raises(ValueError, match=r"60 steps at schedule.freq=15 give 4 .* --steps 90"):
        check_plan(cfg, 60)
    assert check_plan(cfg, 60, allow_short=True) == 4  # the user asked
    assert phase_lengths(cfg, 50) == [15, 15, 15, 5]  # the last phase cut
    single = load_config("sandbox", ["schedule.train_roles=defender"])
    with pytest.raises(ValueError, match="trains one role"):
        check_plan(single, 300)
    metric = load_config("sandbox", ["schedule.mode=metric"])
    with pytest.raises(ValueError, match="schedule.mode=metric"):
        check_plan(metric, 300)


def test_the_command_refuses_a_short_plan_before_anything_runs(tmp_path):
    from cli_errors import one_error
    from typer.testing import CliRunner

    from magic_rl.cli import app

    out = tmp_path / "arms"
    args = ["experiment", "arms-race", "--steps", "60", "--out", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert "give 4 role phase(s)" in one_error(result) and "--allow-short" in result.output
    assert not out.exists()


def test_later_attackers_is_last_minus_first_attacker_on_the_earlier_defenders():
    # rows: attackers by step, columns: defenders by step
    m = [
        [0.5, 0.2, 0.1, 0.0],
        [0.6, 0.3, 0.2, 0.1],
        [0.7, 0.5, 0.3, 0.1],
        [0.9, 0.6, 0.4, 0.9],  # the last defender's column is left out
    ]
    assert later_attackers(m) == pytest.approx(((0.9 - 0.5) + (0.6 - 0.2) + (0.4 - 0.1)) / 3)
    flipped = m[::-1]  # a stronger first attacker: the contrast turns negative
    assert later_attackers(flipped) < 0


def test_later_defenders_compares_each_earlier_attacker_with_the_defender_it_faced():
    m = [
        [0.8, 0.6, 0.4, 0.2],  # attacker 0 faced defender 0: 0.8 - 0.2
        [0.9, 0.7, 0.5, 0.3],  # attacker 10 faced defender 10: 0.7 - 0.3
        [0.9, 0.9, 0.6, 0.1],  # attacker 20 faced defender 20: 0.6 - 0.1
        [1.0, 1.0, 1.0, 1.0],  # the last attacker is left out
    ]
    assert faced(NAMES, NAMES) == [0, 1, 2, 3]
    assert later_defenders(m, NAMES, NAMES) == pytest.approx((0.6 + 0.4 + 0.5) / 3)
    # a last defender weaker than the ones before: negative
    rev = [row[::-1] for row in m]
    assert later_defenders(rev, NAMES, NAMES) < 0
    # an attacker saved between two defenders faced the earlier one
    assert faced(["step-000015"], NAMES) == [1]


def test_mean_matrix_is_cellwise_over_seeds():
    a = {"asr": [[0.0, 1.0], [0.5, math.nan]]}
    b = {"asr": [[1.0, 0.0], [0.25, math.nan]]}
    assert mean_matrix([a, b]) == [[0.5, 0.5], [0.375, None]]


def test_the_crossplay_phase_gain_is_the_phase_end_minus_its_start_on_the_faced_defender():
    from magic_rl.experiment.arms_race import crossplay_phase_gain

    names = [f"step-{s:06d}" for s in (0, 2, 4, 6)]  # defender 0-1, attacker 2-3, defender 4-5
    m = [[0.9, 0.5, 0.5, 0.3], [0.9, 0.5, 0.5, 0.3], [0.9, 0.7, 0.7, 0.4], [0.9, 0.7, 0.7, 0.2]]
    doc = {"attackers": names, "defenders": names, "asr": m}
    # the phase's attacker starts at step 2 (row 1), ends at step 4 (row 2), faced defender step 2
    assert crossplay_phase_gain(doc, 2, 3) == pytest.approx(0.7 - 0.5)
    assert math.isnan(crossplay_phase_gain(doc, 6, 7))  # no checkpoint at the phase's end


def test_each_attacker_phase_gain_is_its_last_window_minus_its_first():
    rows = [{"step": s, "schedule/role": "defender", "game/asr": 0.9} for s in range(3)]
    rows += [
        {"step": 3 + k, "schedule/role": "attacker", "game/asr": x}
        for k, x in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.7])
    ]
    rows += [{"step": 9, "schedule/role": "defender", "game/asr": 0.0}]
    rows += [{"step": 10, "schedule/role": "attacker", "game/asr": 0.6}]
    rows += [{"step": 11 + k, "schedule/role": "attacker", "game/asr": 0.2} for k in range(3)]
    gains = attacker_phase_gains(rows, window=2)
    assert [(g["first_step"], g["last_step"]) for g in gains] == [(3, 8), (10, 13)]
    assert gains[0]["gain"] == pytest.approx((0.5 + 0.7) / 2 - (0.1 + 0.2) / 2)
    assert gains[1]["gain"] == pytest.approx(0.2 - 0.4)  # a falling phase is negative
    one = attacker_phase_gains([{"step": 0, "schedule/role": "attacker", "game/asr": 1.0}])
    assert math.isnan(one[0]["gain"])


@pytest.mark.slow
def test_tiny_arms_race_end_to_end_reuses_finished_runs(tiny_overrides, tmp_path):
    from magic_rl.experiment.arms_race import run_arms_race

    out = tmp_path / "arms"
    overrides = [
        *tiny_overrides,
        "train.seeds_per_step=4",
        "grpo.group_size=2",
        "schedule.freq=2",
    ]
    kw = dict(seeds=[0, 1], steps=12, out=out, limit=4, log=lambda *a: None)
    path = run_arms_race("sandbox", overrides, **kw)

    doc = json.loads(path.read_text())
    names = [f"step-{s:06d}" for s in range(0, 13, 2)]  # a checkpoint at every switch
    assert doc["attackers"] == doc["defenders"] == names
    assert doc["provenance"]["phases"] == 6
    assert set(doc["per_seed"]) == {"0", "1"}
    for s, m in doc["per_seed"].items():
        assert m == json.loads((out / f"magic-s{s}" / "crossplay" / "crossplay.json").read_text())["asr"]  # fmt: skip
    cell = doc["mean"][3][5]
    assert cell == pytest.approx((doc["per_seed"]["0"][3][5] + doc["per_seed"]["1"][3][5]) / 2)
    for key in ("later_attackers", "later_defenders"):
        c = doc["contrasts"][key]
        assert c["n"] == 2 and len(c["values"]) == 2
        assert c["mean"] == pytest.approx(sum(c["values"]) / 2)
    assert [g["phase"] for g in doc["phase_gains"]] == [
        1,
        2,
        3,
    ]  # defender first: 3 attacker phases
    assert [g["steps"] for g in doc["phase_gains"]] == [[2, 3], [6, 7], [10, 11]]
    md = (out / "arms_race.md").read_text()
    assert "later_attackers" in md and "| 3 | 10–11 | 2 |" in md
    for g in doc["phase_gains"]:  # each seed's cross-play gain, read off its own matrix
        first = doc["attackers"].index(f"step-{g['steps'][0]:06d}")
        want = [m[first + 1][first] - m[first][first] for m in doc["per_seed"].values()]
        assert g["crossplay"]["values"] == pytest.approx(want)
    for png in ("arms_race_heatmap.png", "arms_race_gains.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    from magic_rl.report import render_report

    html, md_path = render_report([out / "magic-s0"], out=tmp_path / "r.html", arms_race=out)
    assert (
        "Arms race (Fig. 3 over seeds)" in html.read_text()
        and "later_defenders" in md_path.read_text()
    )
    assert (tmp_path / "r_files" / "arms-race.png").is_file()

    # a rerun finds every run and cross-play complete: no training, no model loaded
    mtimes = {p: p.stat().st_mtime for p in out.glob("*/crossplay/crossplay.json")}
    t = time.perf_counter()
    again = json.loads(run_arms_race("sandbox", overrides, **kw).read_text())
    assert time.perf_counter() - t < 5
    assert {p: p.stat().st_mtime for p in out.glob("*/crossplay/crossplay.json")} == mtimes
    assert again["per_seed"] == doc["per_seed"] and again["contrasts"] == doc["contrasts"]

    # another limit plays cross-play again on the finished runs (no training)
    metrics = (out / "magic-s0" / "metrics.jsonl").read_text()
    run_arms_race("sandbox", overrides, **{**kw, "seeds": [0], "limit": 2})
    cp = json.loads((out / "magic-s0" / "crossplay" / "crossplay.json").read_text())
    assert cp["seeds"] == 2 and (out / "magic-s0" / "metrics.jsonl").read_text() == metrics
    # ... and so does another --samples, which the markdown names
    run_arms_race("sandbox", overrides, **{**kw, "seeds": [0], "limit": 2, "samples": 2})
    cp = json.loads((out / "magic-s0" / "crossplay" / "crossplay.json").read_text())
    assert cp["samples"] == 2 and cp["n"][0][0] + cp["n_unknown"][0][0] == 4
    assert "--samples 2" in (out / "arms_race.md").read_text()

    # too few phases is refused before anything trains
    with pytest.raises(ValueError, match="give 3 role phase"):
        run_arms_race("sandbox", overrides, **{**kw, "out": tmp_path / "short", "steps": 6})
    assert not (tmp_path / "short").exists()
