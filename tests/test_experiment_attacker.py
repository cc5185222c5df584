"""`magic experiment attacker`: the windows, the aggregation over seeds, the curve's band, and the
wiring end to end on the tiny world (a Defender-only run, then Attacker-only runs against it and
against the base, the table, the curve, the report)."""

from __future__ import annotations

import json
import math

import pytest

from magic_rl.experiment.attacker import (
    COLUMNS,
    aggregate,
    attacker_overrides,
    curve_band,
    markdown,
    parse_defenders,
    run_values,
)


def _rows(asr: list[float]) -> list[dict]:
    return [
        {"game/asr": a, "attacker/format_rate": 1.0, "attacker/faithful_rate": 0.5,
         "attacker/update/kl": 0.01 * i}
        for i, a in enumerate(asr)
    ]  # fmt: skip


def test_run_values_are_the_first_and_last_window_and_their_gain():
    rows = _rows([0.1, 0.2, 0.3, 0.5, 0.6, 0.7])
    v = run_values(rows, window=2)
    assert v["sampled_first"] == pytest.approx(0.15)
    assert v["sampled_last"] == pytest.approx(0.65)
    assert v["sampled_gain"] == pytest.approx(0.5)
    assert v["format_last"] == 1.0 and v["faithful_first"] == 0.5
    assert v["kl_last"] == pytest.approx(0.045)
    assert math.isnan(v["hybrid_first"])  # a run from before the hybrid share was logged
    for i, row in enumerate(rows):
        row["attacker/diversity/hybrid_share"] = 0.1 * i
    v = run_values(rows, window=2)
    assert v["hybrid_first"] == pytest.approx(0.05) and v["hybrid_last"] == pytest.approx(0.45)


def test_run_values_skip_steps_without_a_value():
    rows = _rows([0.2, 0.4, 0.6])
    rows[0]["game/asr"] = None  # no harmful seed judged at that step
    v = run_values(rows, window=2)
    assert v["sampled_first"] == pytest.approx(0.4)


def test_aggregate_gives_a_t_interval_and_keeps_a_negative_gain():
    runs = [run_values(_rows([0.5, 0.5, 0.2, 0.2]), 2), run_values(_rows([0.6, 0.6, 0.2, 0.2]), 2)]
    row = aggregate(runs)
    assert set(row) == {c.key for c in COLUMNS}
    gain = row["sampled_gain"]
    assert gain["mean"] == pytest.approx(-0.35) and gain["n"] == 2
    assert gain["lo"] < -0.35 < gain["hi"]  # not clipped to [0, 1]: a gain may be negative
    first = row["sampled_first"]
    assert first["lo"] == 0.0 and first["hi"] <= 1.0  # a rate is clipped
    assert row["greedy_test_before"]["mean"] is None  # not measured: null, never NaN
    json.dumps(row, allow_nan=False)


def test_curve_band_is_the_mean_per_step_over_runs_of_any_length():
    band = curve_band([[0.0, 0.2, 0.4], [0.2, 0.4]])
    assert [b["n"] for b in band] == [2, 2, 1]
    assert band[0]["mean"] == pytest.approx(0.1) and band[2]["mean"] == pytest.approx(0.4)
    assert band[2]["lo"] is None  # one run: no interval
    assert band[1]["lo"] <= band[1]["mean"] <= band[1]["hi"]
    assert curve_band([[math.nan], [0.5]])[0]["n"] == 1


def test_parse_defenders_checks_names():
    assert parse_defenders("trained, base,trained") == ("trained", "base")
    with pytest.raises(ValueError, match="unknown"):
        parse_defenders("base,league")


def test_a_run_is_attacker_only_against_the_given_defender(tmp_path):
    from magic_rl.config import load_config
    from magic_rl.records import Role

    cfg = load_config("sandbox", attacker_overrides("/x/defender", 3, 12, tmp_path))
    assert cfg.schedule.train_roles == "attacker" and cfg.schedule.start_agent is Role.ATTACKER
    assert cfg.defender.model == "/x/defender" and cfg.seed == 3 and cfg.train.steps == 12


def test_markdown_shows_each_defender_with_its_gain_signed():
    runs = [run_values(_rows([0.1, 0.1, 0.4, 0.4]), 2), run_values(_rows([0.2, 0.2, 0.4, 0.4]), 2)]
    prov = {"seeds": [0, 1], "steps": 4, "preset": "sandbox", "overrides": [], "git_commit": "x",
            "window": 2, "greedy_test_seeds": 9, "defenders": {"trained": "/d"}, "command": "c"}  # fmt: skip
    md = markdown({"trained": aggregate(runs)}, prov)
    assert "| trained | 2 |" in md and "+0.25 [" in md


@pytest.mark.slow
def test_tiny_attacker_experiment_end_to_end(tiny_overrides, tmp_path):
    from magic_rl.experiment.attacker import run_attacker_experiment
    from magic_rl.report import render_report

    out = tmp_path / "att"
    overrides = [*tiny_overrides, "train.seeds_per_step=4", "grpo.group_size=2"]
    kw = dict(seeds=[0, 1], steps=2, defender_steps=2, window=1, out=out, log=lambda *a: None)
    path = run_attacker_experiment("sandbox", overrides, **kw)

    doc = json.loads(path.read_text())
    assert list(doc["variants"]) == ["base", "trained"]
    for row in doc["variants"].values():
        assert row["sampled_first"]["n"] == 2 and row["greedy_test_after"]["n"] == 2
        assert 0.0 <= row["greedy_test_before"]["mean"] <= 1.0
        assert row["greedy_test_before"]["values"][0] == row["greedy_test_before"]["values"][1]
    # the trained defender is the Defender-only run's last one, and every run faced its defender
    prov = json.loads((out / "provenance.json").read_text())
    trained = out / "defender-only" / "checkpoints" / "step-000002" / "defender"
    assert prov["defenders"]["trained"] == str(trained)
    for name in ("base-s0", "base-s1", "trained-s0", "trained-s1"):
        cfg = (out / name / "config.yaml").read_text()
        assert "train_roles: attacker" in cfg
        assert (out / name / "checkpoints" / "step-000002" / "attacker").is_dir()
    assert str(trained) in (out / "trained-s1" / "config.yaml").read_text()
    curve = json.loads((out / "curve.json").read_text())
    assert [len(c) for c in curve["asr_per_step"]["trained"].values()] == [2, 2]
    assert (out / "attacker_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "| trained | 2 |" in (out / "attacker.md").read_text()

    # a rerun trains nothing and writes the same table
    mtime = (out / "trained-s0" / "metrics.jsonl").stat().st_mtime
    assert json.loads(run_attacker_experiment("sandbox", overrides, **kw).read_text()) == doc
    assert (out / "trained-s0" / "metrics.jsonl").stat().st_mtime == mtime
    # another step count in the same --out is refused, naming the field
    with pytest.raises(ValueError, match="train.steps"):
        run_attacker_experiment("sandbox", overrides, **{**kw, "steps": 3})

    html, md = render_report([out / "trained-s0"], out=tmp_path / "r.html", attacker=out)
    text = html.read_text()
    assert 'id="attacker"' in text and 'id="fig-attacker-curve"' in text
    assert (
        "| trained |" in md.read_text() and (tmp_path / "r_files" / "attacker-curve.png").is_file()
    )
