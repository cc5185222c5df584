"""The ablation experiment: design, aggregation over seeds, resumability, a tiny end-to-end run."""

from __future__ import annotations

import json
import math
import time

import pytest

from magic_rl.experiment.ablation import (
    RunSpec,
    check_overrides,
    config_mismatch,
    parse_seeds,
    parse_variants,
    run_config,
    run_specs,
)
from magic_rl.experiment.design import METRICS, aggregate, paired
from magic_rl.experiment.render import cell_text


@pytest.mark.parametrize(
    "text, seeds",
    [("0,1,2", (0, 1, 2)), ("5", (5,)), (" 3, 4 ", (3, 4))],
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "0,0", "a,1"])
def test_parse_seeds_rejects(text):
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds(text)


def test_parse_variants_checks_names():
    assert parse_variants("magic,base,magic") == ("magic", "base")
    with pytest.raises(ValueError, match="nope"):
        parse_variants("base,nope")


def test_design_evaluates_base_once_and_every_trained_variant_per_seed():
    specs = run_specs(["base", "no_game", "magic"], [0, 1])
    assert [s.name for s in specs] == ["base", "no_game-s0", "magic-s0", "no_game-s1", "magic-s1"]
    assert [s.trained for s in specs] == [False, True, True, True, True]


@pytest.mark.parametrize("item", ["seed=3", "name=x", "output_dir=y", "train.steps=5"])
def test_overrides_the_experiment_owns_are_refused(item):
    with pytest.raises(ValueError, match=item.split("=")[0]):
        check_overrides([item])
    check_overrides(["schedule.freq=5", "grpo.group_size=2"])


@pytest.mark.parametrize(
    "variant, attacker, roles",
    [
        ("no_game", "none", "defender"),
        ("defender_only", "policy", "defender"),
        ("static", "static", "defender"),
        ("magic", "policy", "both"),
    ],
)
def test_each_variant_is_its_overrides_on_the_preset(tmp_path, variant, attacker, roles):
    cfg = run_config("sandbox", ["schedule.freq=5"], RunSpec(variant, 7), 11, tmp_path)
    assert (cfg.game.attacker, cfg.schedule.train_roles) == (attacker, roles)
    assert (cfg.seed, cfg.name, cfg.train.steps, cfg.schedule.freq) == (7, f"{variant}-s7", 11, 5)
    assert cfg.output_dir == str(tmp_path)


def test_magic_eq_trains_as_many_defender_steps_as_defender_only(tmp_path):
    from magic_rl.schedule import Scheduler

    eq = run_config("sandbox", [], RunSpec("magic_eq", 0), 60, tmp_path)
    only = run_config("sandbox", [], RunSpec("defender_only", 0), 60, tmp_path)
    assert (eq.train.steps, eq.schedule.train_roles) == (120, "both")

    def defender_steps(cfg):
        scheduler, n = Scheduler(cfg.schedule), 0
        for _ in range(cfg.train.steps):
            n += scheduler.role.value == "defender"
            scheduler.advance({})
        return n

    assert defender_steps(eq) == defender_steps(only) == 60


def test_a_run_dir_with_another_config_is_reported_by_field(tmp_path):
    from magic_rl.config import dump_config

    cfg = run_config("sandbox", [], RunSpec("magic", 0), 10, tmp_path)
    run_dir = tmp_path / "magic-s0"
    assert config_mismatch(run_dir, cfg) == []  # no run yet
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(dump_config(cfg.model_copy(update={"seed": 1})))
    assert config_mismatch(run_dir, cfg) == ["seed"]
    progress_off = cfg.model_copy(deep=True)
    progress_off.train.progress = not cfg.train.progress
    (run_dir / "config.yaml").write_text(dump_config(progress_off))
    assert config_mismatch(run_dir, cfg) == []  # display-only field


def _run(**values: float) -> dict[str, float]:
    return {m.eval_key: values.get(m.key, 0.5) for m in METRICS}


def test_aggregate_gives_the_t_interval_over_seeds_and_null_where_undefined():
    table = aggregate(
        {
            "magic": [_run(held_out_asr=0.1), _run(held_out_asr=0.2), _run(held_out_asr=0.3)],
            "base": [_run(held_out_asr=0.6, rta=math.nan)],
        }
    )
    cell = table["magic"]["held_out_asr"]
    # mean 0.2, sd 0.1, t(0.975, 2) = 4.3027 -> half-width 0.2484; a rate's interval stops at 0
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(0.2)
    assert (cell["lo"], cell["hi"]) == pytest.approx((0.0, 0.2 + 0.24841), abs=1e-4)
    assert cell["sd"] == pytest.approx(0.1)
    assert table["base"]["held_out_asr"] == {
        "mean": 0.6,
        "lo": None,
        "hi": None,
        "n": 1,
        "sd": None,
        "values": [0.6],
    }
    assert table["base"]["rta"]["mean"] is None and table["base"]["rta"]["n"] == 0
    json.dumps(table, allow_nan=False)  # strict JSON: no NaN anywhere
    assert cell_text(cell) == "0.20 [0.00, 0.45]"
    assert cell_text(table["base"]["held_out_asr"]) == "0.60"
    assert cell_text(table["base"]["rta"]) == "–"


def test_the_table_headers_are_derived_from_name_and_direction():
    # ablation.md's and the terminal's headers as the experiment wrote them before the table was
    # spelled once (magic_rl/ablation_metrics.py): derived now, byte for byte the same
    from magic_rl.experiment.render import markdown, rich_table

    table = aggregate({"magic": [{**_run(), "crossplay/forgetting": 0.1}] * 2})
    prov = {"seeds": [0, 1], "steps": 2, "preset": "sandbox", "overrides": [], "git_commit": "x"}
    assert (
        "| variant | n | held-out strategy ASR ↓ | held-out ASR, ciphers ↓ | held-out ASR, other "
        "framings ↓ | train strategy ASR ↓ | vanilla harmful ASR ↓ | RTA ↑ | benign compliance ↑ | "
        "adversarial-benign compliance ↑ | contrast compliance ↑ | attacker faithful (last 15 "
        "steps) | forgetting (cross-play) ↓ |"
    ) in markdown(table, prov).splitlines()
    assert rich_table(table).headers == [
        *("variant", "n", "held-out ASR↓", "ciphers↓", "other↓", "train ASR↓", "vanilla ASR↓"),
        *("RTA↑", "benign↑", "adv. benign↑", "contrast↑", "faithful", "forget↓"),
    ]


def test_paired_differences_remove_what_a_seed_does_to_every_variant():
    # Seeds move both variants alike (0.2, 0.5, 0.8) and magic_eq is 0.1 lower in every one:
    # the per-variant intervals overlap, the paired one is exactly -0.1 and excludes 0.
    table = aggregate(
        {
            "base": [_run(held_out_asr=0.9)],
            "defender_only": [_run(held_out_asr=x) for x in (0.3, 0.6, 0.9)],
            "magic_eq": [_run(held_out_asr=x) for x in (0.2, 0.5, 0.8)],
        }
    )
    lo, hi = table["defender_only"]["held_out_asr"]["lo"], table["magic_eq"]["held_out_asr"]["hi"]
    assert lo < hi  # the unpaired intervals overlap
    diff = paired(table)["magic_eq"]["held_out_asr"]
    assert diff["n"] == 3 and diff["mean"] == pytest.approx(-0.1)
    assert diff["lo"] == pytest.approx(-0.1) and diff["hi"] == pytest.approx(-0.1)
    assert set(paired(table)) == {"magic_eq"}  # neither the reference nor the untrained base
    assert cell_text(diff, signed=True) == "-0.10 [-0.10, -0.10]"
    assert paired({"magic": table["magic_eq"]}) == {}  # no reference, no pairs


@pytest.mark.slow
def test_tiny_ablation_end_to_end_resumes_and_renders(tiny_overrides, tmp_path):
    from magic_rl.experiment.ablation import run_ablation
    from magic_rl.report import render_report

    out = tmp_path / "abl"
    kw = dict(
        variants=["base", "no_game", "magic"],
        seeds=[0, 1],
        steps=2,
        out=out,
        limit=8,
        log=lambda *a: None,
    )
    overrides = [*tiny_overrides, "train.seeds_per_step=4", "grpo.group_size=2"]
    path = run_ablation("sandbox", overrides, **kw)

    doc = json.loads(path.read_text())
    variants = doc["variants"]
    assert list(variants) == ["base", "no_game", "magic"]
    for variant, row in variants.items():
        assert set(row) == {m.key for m in METRICS}
        for m in METRICS:
            cell = row[m.key]
            assert {"mean", "lo", "hi", "n"} <= set(cell)
            if variant == "base" and m.source == "train":
                assert cell["n"] == 0 and cell["mean"] is None  # no run: no training metric
                continue
            assert cell["n"] == (1 if variant == "base" else 2)
            assert 0.0 <= cell["mean"] <= 1.0
            if variant != "base":
                assert 0.0 <= cell["lo"] <= cell["mean"] <= cell["hi"] <= 1.0
    for name in ("no_game-s0", "no_game-s1", "magic-s0", "magic-s1"):
        assert (out / name / "checkpoints" / "step-000002" / "defender").is_dir()
        assert (out / name / "eval" / "results.json").is_file()
    md = (out / "ablation.md").read_text()
    assert "held-out strategy ASR" in md and "| magic | 2 |" in md and "| base | 1 |" in md
    prov = json.loads((out / "provenance.json").read_text())
    assert (
        prov["seeds"] == [0, 1]
        and prov["steps"] == 2
        and set(prov["runs"]) == {"base", "no_game-s0", "magic-s0", "no_game-s1", "magic-s1"}
    )

    # a rerun finds every run and eval complete: no training, no model loaded
    mtimes = {p: p.stat().st_mtime for p in out.glob("*/eval/results.json")}
    t = time.perf_counter()
    assert json.loads(run_ablation("sandbox", overrides, **kw).read_text()) == doc
    assert time.perf_counter() - t < 5
    assert {p: p.stat().st_mtime for p in out.glob("*/eval/results.json")} == mtimes

    # a run killed before its summary resumes from its saved state (nothing left to train)
    (out / "magic-s1" / "summary.json").unlink()
    run_ablation("sandbox", overrides, **kw)
    assert (out / "magic-s1" / "summary.json").is_file()
    assert len((out / "magic-s1" / "metrics.jsonl").read_text().splitlines()) == 2

    # the same --out with other steps is refused, naming the field
    with pytest.raises(ValueError, match="train.steps"):
        run_ablation("sandbox", overrides, **{**kw, "steps": 3})

    html, _ = render_report([out / "magic-s0"], out=tmp_path / "report.html", ablation=path)
    assert "Ablation" in html.read_text()


def test_ablation_reads_held_out_asr_per_family():
    runs = [
        {
            "sandbox/held_out_strategies/asr": 0.5,
            "sandbox/held_out_strategies/ciphers/asr": c,
            "sandbox/held_out_strategies/other/asr": o,
        }
        for c, o in ((0.9, 0.2), (0.7, 0.4))
    ]
    row = aggregate({"magic": runs})["magic"]
    assert row["held_out_asr_ciphers"]["mean"] == pytest.approx(0.8)
    assert row["held_out_asr_other"]["mean"] == pytest.approx(0.3)
    old = aggregate({"magic": [{"sandbox/held_out_strategies/asr": 0.5}]})["magic"]
    assert old["held_out_asr_ciphers"]["mean"] is None  # results from before the split
    ref = [{**r, "sandbox/held_out_strategies/other/asr": 0.5} for r in runs]
    diff = paired(aggregate({"magic": runs, "defender_only": ref}))["magic"]
    assert diff["held_out_asr_other"]["mean"] == pytest.approx(-0.2)  # generalisation, paired


def test_a_reused_run_with_another_config_is_refused_naming_the_key(tmp_path):
    """Every experiment that reuses runs (ablation, attacker, arms race) asks
    `require_same_config`: an absent run and an equal config pass, a different one is refused
    with the run's path and the differing key."""
    from magic_rl import rundir
    from magic_rl.config import load_config, save_config
    from magic_rl.experiment.ablation import require_same_config

    cfg = load_config("sandbox")
    run = tmp_path / "magic-s0"
    require_same_config(run, cfg)  # no run yet
    run.mkdir()
    save_config(cfg, run / rundir.CONFIG)
    require_same_config(run, cfg)
    other = load_config("sandbox", ["defender.lr=1e-3"])
    with pytest.raises(ValueError, match=r"magic-s0/config.yaml differs .*defender\.lr"):
        require_same_config(run, other)
