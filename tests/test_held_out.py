"""The sandbox's held-out strategies (configs/sandbox.yaml `data.held_out_strategies`): the project's
own `novel` framings are registered beside the ciphers, reach no training input (the base model's
data, the learnability classifier's, the phase-1 attacker's SFT, the static attack pool), are in
the world's pool and the held-out eval set, and count as the `other` family there."""

from __future__ import annotations

import json

import pytest

from magic_rl.config import load_config
from magic_rl.data.benchmarks.sandbox import held_out_family, sandbox_sets
from magic_rl.data.seeds import sandbox_seeds
from magic_rl.prompts import load_templates
from magic_rl.sandbox.checks import learnability_sets
from magic_rl.sandbox.world import base_examples, held_out, marked_records
from magic_rl.strategies import FAMILIES, PROGRAMMATIC, build_pool, write_pool

NOVEL = FAMILIES["novel"]
CFG = load_config("sandbox", [])


@pytest.fixture(scope="module")
def world_pool():
    """The world's pool (every strategy the programmatic rewriter makes) for a few seeds."""
    seeds = sandbox_seeds(fraction=0.02)
    return seeds, build_pool(seeds, PROGRAMMATIC, rng_seed=0)


def test_the_sandbox_holds_out_three_or_more_framings_that_are_not_ciphers() -> None:
    skip = held_out(CFG)
    assert set(NOVEL) <= skip and len(NOVEL) >= 3
    assert {"ascii", "caesar", "morse", "atbash", "misspellings", "expert_endorsement"} <= skip
    assert {held_out_family(s) for s in NOVEL} == {"other"}
    assert {held_out_family(s) for s in FAMILIES["encoding"]} == {"ciphers"}


def test_the_world_pool_has_them_and_the_default_pool_does_not(world_pool) -> None:
    seeds, pool = world_pool
    assert {r.strategy for r in pool} >= set(NOVEL)
    assert not {r.strategy for r in build_pool(seeds[:3])} & set(NOVEL)


def test_no_training_input_sees_them(world_pool) -> None:
    seeds, pool = world_pool
    skip = held_out(CFG)
    novel_texts = {r.rewrite for r in pool if r.strategy in NOVEL}
    assert novel_texts
    templates = load_templates(CFG.game.template_set, CFG.game.templates_dir)
    # the base model's SFT rows
    rows = base_examples(seeds, pool, templates, skip, 0)
    prompts = {m["content"] for ex in rows for m in ex.messages}
    assert not any(text in p for text in novel_texts for p in prompts)
    # the learnability classifier's training pairs; its held-out test rows do have them
    ids = {s.id for s in seeds}
    train, tests = learnability_sets(pool, seeds, ids, ids, skip)
    assert not {t for t, _ in train} & novel_texts
    assert {s for _, _, s in tests["held_out_strategies"]} >= set(NOVEL)
    assert not {s for _, _, s in tests["held_out_requests"]} & set(NOVEL)


def test_the_attacker_sft_and_the_static_pool_leave_them_out(world_pool, tmp_path, monkeypatch):
    import magic_rl.sft as sft_module
    from magic_rl.loop.run import load_static_attacks

    seeds, pool = world_pool
    seen: list = []
    monkeypatch.setattr(sft_module, "load_policy", lambda *a, **k: None)
    monkeypatch.setattr(
        sft_module, "sft", lambda _p, examples, *a, **k: seen.extend(examples) or {}
    )
    records = marked_records(pool)
    assert {r.strategy for r in records} >= set(NOVEL)  # they embed the request verbatim
    sft_module.attacker_sft(CFG, records, "unused", tmp_path)
    targets = [ex.target for ex in seen]
    assert targets and not [t for t in targets for r in records if r.strategy in NOVEL and
                            r.rewrite in t]  # fmt: skip
    assert set(json.loads((tmp_path / "sft.json").read_text())["excluded_strategies"]) >= set(NOVEL)

    path = write_pool(pool, tmp_path / "pool.jsonl")
    attacks = load_static_attacks(CFG.model_copy(update={"game": CFG.game.model_copy(
        update={"static_attacks": str(path)})}))  # fmt: skip
    kept = {text for texts in attacks.values() for text in texts}
    assert kept and not kept & {r.rewrite for r in pool if r.strategy in NOVEL}


def test_the_held_out_eval_set_draws_them_as_other() -> None:
    ((_, items, _),) = sandbox_sets(
        ["held_out_strategies"],
        held_out_strategies=CFG.data.held_out_strategies,
        world_seed=0,
        log=lambda *_: None,
    )
    strategies = {i.category for i in items}
    assert set(NOVEL) <= strategies
    families = [held_out_family(s) for s in strategies]
    assert families.count("other") >= len(NOVEL) and "ciphers" in families
