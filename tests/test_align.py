"""Phase 0, the aligned start (magic_rl/align.py, `magic align`): which examples it makes, its cache
key, and the command on the tiny sandbox base model (the real model's run: tests/test_real_model.py).

Run: `OMP_NUM_THREADS=1 python -m pytest -q tests/test_align.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magic_rl import align
from magic_rl.cli import app
from magic_rl.config import load_config
from magic_rl.data.seeds import is_contrast, load_seeds
from magic_rl.judge.keyword import is_refusal

TINY_ALIGN = ["align.max_steps=2", "align.batch_size=4", "align.max_new_tokens=8"]


def _seeds(cfg):
    return load_seeds(cfg.data.seeds, split="train", include_contrast=True, fraction=0.1)


def test_choose_seeds_draws_the_share_of_harmful_without_repeats():
    cfg = load_config("smollm2-cpu", ["align.max_steps=5", "align.batch_size=4"])
    harmful, benign = align.choose_seeds(cfg, _seeds(cfg))
    assert len(harmful) == 10 and len(benign) == 10
    assert all(s.label == "harmful" for s in harmful)
    assert all(s.label == "benign" for s in benign)
    assert len({s.id for s in harmful + benign}) == 20
    assert align.choose_seeds(cfg, _seeds(cfg)) == (harmful, benign)  # deterministic per seed
    skewed = load_config(
        "smollm2-cpu", ["align.max_steps=5", "align.batch_size=4", "align.harmful_fraction=0.25"]
    )
    h, b = align.choose_seeds(skewed, _seeds(skewed))
    assert (len(h), len(b)) == (5, 15)
    only_harmful = [s for s in _seeds(cfg) if s.label == "harmful"]
    with pytest.raises(ValueError, match="0 benign"):
        align.choose_seeds(cfg, only_harmful)


def test_contrast_fraction_draws_that_share_of_the_benign_examples_from_the_look_alikes():
    cfg = load_config(
        "smollm2-cpu", ["align.max_steps=5", "align.batch_size=4", "align.contrast_fraction=0.7"]
    )
    harmful, benign = align.choose_seeds(cfg, _seeds(cfg))
    assert len(harmful) == 10 and len(benign) == 10
    assert sum(is_contrast(s) for s in benign) == 7
    assert all(s.source == "sandbox/contrast" for s in benign if is_contrast(s))
    assert len({s.id for s in benign}) == 10
    none = load_config(
        "smollm2-cpu", ["align.max_steps=5", "align.batch_size=4", "align.contrast_fraction=0"]
    )
    assert not any(is_contrast(s) for s in align.choose_seeds(none, _seeds(none))[1])
    no_contrast = [s for s in _seeds(cfg) if not is_contrast(s)]
    with pytest.raises(ValueError, match="no contrast seeds"):
        align.choose_seeds(cfg, no_contrast)


def test_cache_key_covers_base_seeds_and_settings(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "fetch.json").write_text('{"sha256": "a"}')
    cfg = load_config("smollm2-cpu")
    harmful, benign = align.choose_seeds(cfg, _seeds(cfg))
    key = align.cache_key(cfg, base, harmful, benign)
    assert align.cache_key(cfg, base, harmful, benign) == key
    # an unset contrast_fraction leaves the key of a phase 0 made before the setting existed
    assert "contrast_fraction" not in align.key_payload(cfg, base, harmful, benign)["align"]
    for change in (
        "align.lr=1e-4",
        "align.refusal=No.",
        "game.defender_system_prompt=Be safe.",
        "align.contrast_fraction=0.5",
    ):
        other = load_config("smollm2-cpu", [change])
        assert align.cache_key(other, base, harmful, benign) != key, change
    assert align.cache_key(cfg, base, harmful, benign[1:]) != key
    (base / "fetch.json").write_text('{"sha256": "b"}')
    assert align.cache_key(cfg, base, harmful, benign) != key


def test_an_answer_cut_by_the_token_limit_ends_at_its_last_sentence():
    assert (
        align.cut_to_sentence("Paris is the capital. It has a river cal") == "Paris is the capital."
    )
    assert align.cut_to_sentence("no sentence end here") == "no sentence end here"


@pytest.mark.slow
def test_magic_align_trains_once_and_reuses_its_cache(tiny_overrides):
    runner = CliRunner()
    args = ["align", "--config", "sandbox", "--model", "sandbox:base", *tiny_overrides, *TINY_ALIGN]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    cfg = load_config("sandbox", [*tiny_overrides, *TINY_ALIGN])
    base = Path(cfg.sandbox.cache_dir)
    (out,) = (base / "aligned").glob("*-*")
    assert str(out.name) in res.output.replace("\n", "")
    summary = json.loads((out / align.DONE).read_text())
    assert summary["steps"] == 2 and summary["harmful"] == 4 and summary["benign"] == 4
    rows = [json.loads(line) for line in (out / align.EXAMPLES).read_text().splitlines()]
    harmful = [r for r in rows if r["label"] == "harmful"]
    benign = [r for r in rows if r["label"] != "harmful"]
    assert len(harmful) == 4 and all(r["target"] == cfg.align.refusal for r in harmful)
    assert len(benign) == 4 - summary["benign_dropped_refusals"]
    assert all(r["target"] and not is_refusal(r["target"]) for r in benign)
    weights = (out / "model.safetensors").stat().st_mtime_ns

    # the same base, seeds and settings: reused, not retrained; the config name resolves to it
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "cached" in res.output, res.output
    assert (out / "model.safetensors").stat().st_mtime_ns == weights
    from magic_rl.sandbox.resolve import resolve_model

    assert resolve_model("aligned:sandbox:base", cfg, log=lambda *a: None) == str(out)
    # another setting: another directory
    res = runner.invoke(app, [*args, "align.lr=1e-4"])
    assert res.exit_code == 0, res.output
    assert len(list((base / "aligned").glob("*-*"))) == 2
    assert not list((base / "aligned").glob(".*"))  # no temporary sibling left behind


def test_a_malformed_aligned_name_is_one_error():
    cfg = load_config("smollm2-cpu")
    from magic_rl.sandbox.resolve import resolve_model

    with pytest.raises(ValueError, match="aligned:<model>"):
        resolve_model("aligned:", cfg)
