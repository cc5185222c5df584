"""Hybrid rewrites (strategies/hybrid.py): two framings stacked, outer(inner(seed)), added to
phase 1 by `sft.hybrids_per_seed`."""

from __future__ import annotations

import json

import pytest

from magic_rl.config import load_config
from magic_rl.content import REQUEST_MARKER, carries
from magic_rl.data.seeds import sandbox_seeds
from magic_rl.sandbox.world import held_out, marked_records
from magic_rl.strategies import PROGRAMMATIC, build_pool, has_signature, hybrid_records
from magic_rl.strategies.hybrid import OUTER, components

CFG = load_config("sandbox", [])


def flat(text: str) -> str:
    return " ".join(text.split()).lower()


@pytest.fixture(scope="module")
def pool():
    seeds = sandbox_seeds(fraction=0.02)
    return build_pool(seeds, PROGRAMMATIC, rng_seed=0)


def test_each_seed_gets_its_hybrids_an_outer_frame_around_another_rewrite(pool) -> None:
    hybrids = hybrid_records(pool, 3, rng_seed=0)
    seeds = {r.seed.id for r in pool}
    assert len(hybrids) == 3 * len(seeds)
    inner_of = {(r.seed.id, r.strategy): r for r in pool}
    for h in hybrids:
        outer, inner = components(h.strategy)
        assert outer != inner and outer in OUTER and h.family == "hybrid"
        assert h.id == f"{h.seed.id}/{outer}+{inner}"
        assert has_signature(outer, h.rewrite)
        inner_rec = inner_of[h.seed.id, inner]
        assert h.reasoning.startswith(inner_rec.reasoning) and len(h.reasoning) > len(
            inner_rec.reasoning
        )
        if outer in ("role_play", "question", "authority_endorsement", "logical_appeal"):
            # frames that copy the request verbatim (first letter lowered, whitespace joined)
            assert flat(inner_rec.rewrite).rstrip(".?!") in flat(h.rewrite)
    # distinct pairs per seed, and the same draw for the same rng_seed
    assert len({h.id for h in hybrids}) == len(hybrids)
    assert [h.rewrite for h in hybrid_records(pool, 3, rng_seed=0)] == [h.rewrite for h in hybrids]
    assert [h.rewrite for h in hybrid_records(pool, 3, rng_seed=1)] != [h.rewrite for h in hybrids]
    assert hybrid_records(pool, 0, rng_seed=0) == []
    with pytest.raises(ValueError, match="per_seed"):
        hybrid_records(pool, -1, rng_seed=0)


def test_a_hybrid_keeps_the_request_and_the_marker(pool) -> None:
    plain = hybrid_records(pool, 4, rng_seed=0)
    framing = [h for h in plain if components(h.strategy)[1] not in ("ascii", "caesar", "morse",
               "atbash")]  # fmt: skip
    assert sum(carries(h.rewrite, h.seed.text) for h in framing) / len(framing) > 0.8
    # The sandbox's marked records: an outer edit that breaks `[request]` (misspellings) is dropped.
    # (misspellings rewrites do not copy the request, so they are never marked; as an outer frame
    # it only needs the strategy's name)
    marked = [r for r in marked_records(pool) if r.strategy in ("role_play", "question")]
    misspelt = [r for r in pool if r.strategy == "misspellings"]
    hybrids = hybrid_records(marked + misspelt, 3, rng_seed=0)
    outers = [
        components(h.strategy) for h in hybrids if components(h.strategy)[1] != "misspellings"
    ]
    assert ("misspellings", "role_play") in outers or ("misspellings", "question") in outers
    assert all(REQUEST_MARKER in h.rewrite for h in hybrids if h.strategy.split("+")[1] !=
               "misspellings")  # fmt: skip


def test_phase_1_adds_them_and_never_stacks_a_held_out_strategy(pool, tmp_path, monkeypatch):
    import magic_rl.sft as sft_module

    seen: list = []
    monkeypatch.setattr(sft_module, "load_policy", lambda *a, **k: None)
    monkeypatch.setattr(
        sft_module, "sft", lambda _p, examples, *a, **k: seen.extend(examples) or {}
    )
    records = marked_records(pool)
    cfg = CFG.model_copy(update={"sft": CFG.sft.model_copy(update={"hybrids_per_seed": 2})})
    sft_module.attacker_sft(cfg, records, "unused", tmp_path)
    summary = json.loads((tmp_path / "sft.json").read_text())
    seeds = {r.seed.id for r in records}
    assert summary["hybrid_examples"] == 2 * len(seeds)
    skip = held_out(CFG)
    kept = [r for r in records if r.strategy not in skip]
    assert len(seen) == len(kept) + 2 * len(seeds)
    # no held-out strategy's frame in any phase-1 target: the hybrids stack kept framings only
    held_out_texts = {r.rewrite for r in records if r.strategy in skip}
    assert not [t for t in (ex.target for ex in seen) for h in held_out_texts if h in t]
    assert json.loads((tmp_path / "sft.json").read_text())["hybrid_examples"] > 0
    seen.clear()
    sft_module.attacker_sft(CFG, records, "unused", tmp_path)  # the preset: none
    assert len(seen) == len(kept)


def test_the_base_model_can_be_shown_hybrids_that_fool_it_when_either_framing_would(pool):
    from magic_rl.prompts import load_templates
    from magic_rl.sandbox.world import VULNERABILITY, base_examples, vulnerability

    assert vulnerability("role_play") == VULNERABILITY["role_play"]
    assert vulnerability("slang+question") == pytest.approx(1 - (1 - 0.5) * (1 - 0.3))
    assert vulnerability("role_play+question") > max(VULNERABILITY["role_play"], 0.3)
    seeds = list({r.seed.id: r.seed for r in pool}.values())
    templates = load_templates(CFG.game.template_set, CFG.game.templates_dir)
    skip = held_out(CFG)
    plain = base_examples(seeds, pool, templates, skip, 0)
    assert plain == base_examples(seeds, pool, templates, skip, 0, 0)  # the default: none
    with_hybrids = base_examples(seeds, pool, templates, skip, 0, 2)
    assert len(with_hybrids) == len(plain) + 2 * len(seeds)
    kept = [r for r in pool if r.strategy not in skip]
    prompts = {m["content"] for ex in with_hybrids for m in ex.messages}
    hybrids = hybrid_records(kept, 2, 0)
    assert all(any(h.rewrite in p for p in prompts) for h in hybrids)
    assert not any(set(components(h.strategy)) & skip for h in hybrids)
