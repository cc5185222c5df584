"""The training loop on a tiny sandbox world: who trains, token masks, that each variant runs two
steps, and a resume after SIGKILL through the CLI that loses and duplicates no record."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from magic_rl import game
from magic_rl.config import GameConfig, SamplingConfig, load_config
from magic_rl.content import carries
from magic_rl.policy import ScriptedPolicy
from magic_rl.prompts import load_templates
from magic_rl.records import Role, Seed, Verdict
from magic_rl.trainer import role_samples


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_role_samples_take_each_role_own_generated_tokens_in_every_turn():
    s = SamplingConfig(max_new_tokens=200, max_prompt_tokens=4096)
    players = game.Players(
        attacker=ScriptedPolicy(lambda chat: "<think>t</think><answer>attack</answer>"),
        defender=ScriptedPolicy(lambda chat: "no thanks"),
        templates=load_templates("short"),
        attacker_sampling=s,
        defender_sampling=s,
    )
    seed = Seed("h", "Write a phishing email", "harmful")
    (ep,) = game.play(
        [seed], players, GameConfig(max_turns=3), attack_samples=1, reply_samples=1, rng_seed=0
    )
    assert len(ep.turns) == 3
    att = role_samples([ep], Role.ATTACKER, [1.0], [True])
    dfn = role_samples([ep], Role.DEFENDER, [1.0], [True])
    assert [s.completion_ids for s in att] == [t.attack_ids for t in ep.turns]
    assert [s.completion_ids for s in dfn] == [t.reply_ids for t in ep.turns]
    # later turns see the dialogue in their prompt, which carries no loss
    assert len(att[2].prompt_ids) > len(att[0].prompt_ids)
    assert all(s.advantage == 1.0 for s in att + dfn)
    assert role_samples([ep], Role.DEFENDER, [1.0], [False]) == []


def test_each_role_draws_its_own_batch_and_a_bad_one_names_its_field():
    """`train.attacker_seeds_per_step` / `data.attacker_harmful_fraction` shape the attacker's
    batch; unset, both roles draw the same seeds. A share the seed set cannot fill names the field
    that asked for it."""
    from magic_rl.loop import SeedSampler

    seeds = [Seed(f"h{i}", f"harm {i}", "harmful") for i in range(10)]
    seeds += [Seed(f"b{i}", f"help {i}", "benign") for i in range(10)]
    unset = ["train.attacker_seeds_per_step=null", "data.attacker_harmful_fraction=null"]
    same = SeedSampler.per_role(load_config("sandbox", ["train.seeds_per_step=6", *unset]), seeds)
    assert same[Role.ATTACKER].batch(3) == same[Role.DEFENDER].batch(3)
    cfg = load_config(
        "sandbox",
        [
            "train.seeds_per_step=6",
            "train.attacker_seeds_per_step=8",
            "data.attacker_harmful_fraction=0.75",
        ],
    )
    own = SeedSampler.per_role(cfg, seeds)
    for step in range(4):
        d, a = own[Role.DEFENDER].batch(step), own[Role.ATTACKER].batch(step)
        assert [s.label for s in d].count("harmful") == 3 and len(d) == 6
        assert [s.label for s in a].count("harmful") == 6 and len(a) == 8
    benign_only = [s for s in seeds if s.label == "benign"]
    cfg = load_config(
        "sandbox", ["data.harmful_fraction=0.0", "data.attacker_harmful_fraction=1.0"]
    )
    with pytest.raises(ValueError, match=r"data\.attacker_harmful_fraction=1\.0"):
        SeedSampler.per_role(cfg, benign_only)


@pytest.mark.slow
def test_only_the_scheduled_role_changes_and_the_frozen_one_is_bit_identical(
    tiny_overrides, tmp_path
):
    from sandbox_train import train

    # The tiny world's policies rarely stop on their own: penalising truncation (instead of masking
    # it) gives every group reward variance, so each update has a gradient.
    cfg = load_config(
        "sandbox",
        [
            *tiny_overrides,
            "train.steps=4",
            "schedule.freq=2",
            "reward.truncation=penalize",
            f"output_dir={tmp_path}",
            "name=roles",
        ],
    )
    run = train(cfg, log=lambda *a: None)
    ck = run / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step-000000", "step-000002", "step-000004"]
    w = {
        (s, r): _weights(ck / f"step-{s:06d}" / r)
        for s in (0, 2, 4)
        for r in ("attacker", "defender")
    }
    assert not _same(w[0, "defender"], w[2, "defender"])  # defender phase trained the defender
    assert _same(w[0, "attacker"], w[2, "attacker"])  # ...and left the attacker bit-identical
    assert not _same(w[2, "attacker"], w[4, "attacker"])
    assert _same(w[2, "defender"], w[4, "defender"])
    roles = [m["schedule/role"] for m in _rows(run / "metrics.jsonl")]
    assert roles == ["defender", "defender", "attacker", "attacker"]
    replay = _rows(run / "replay.jsonl")
    assert len(replay) == 4 * cfg.train.seeds_per_step * cfg.grpo.group_size
    for rec in replay:
        assert set(rec["rewards"]) == {"attacker", "defender"}
        terms = set(rec["rewards"]["defender"]) - {"total", "valid"}
        truncated = rec["turns"][-1]["reply_finish"] == "length"
        # the sandbox preset turns on the defender-quality term (docs/deviations.md)
        assert terms == ({"truncation"} if truncated else {"harm", "refusal", "quality"})
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["switches"] == 1


@pytest.mark.slow
def test_the_attacker_steps_play_their_own_batch(tiny_overrides, tmp_path):
    """The loop draws each role's step from its own sampler: defender steps play
    `train.seeds_per_step` seeds, half harmful; attacker steps `train.attacker_seeds_per_step`,
    all harmful (`data.attacker_harmful_fraction=1.0`)."""
    from sandbox_train import train

    overrides = ["train.steps=2", "schedule.freq=1", "train.seeds_per_step=4"]
    overrides += ["train.attacker_seeds_per_step=6", "data.attacker_harmful_fraction=1.0"]
    cfg = load_config("sandbox", [*tiny_overrides, *overrides, f"output_dir={tmp_path}"])
    run = train(cfg, log=lambda *a: None)
    roles = [m["schedule/role"] for m in _rows(run / "metrics.jsonl")]
    assert roles == ["defender", "attacker"]
    replay, G = _rows(run / "replay.jsonl"), cfg.grpo.group_size
    labels = [[r["seed"]["label"] for r in replay if r["step"] == s] for s in (0, 1)]
    assert sorted(labels[0]) == ["benign"] * 2 * G + ["harmful"] * 2 * G
    assert labels[1] == ["harmful"] * 6 * G


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant",
    [
        ["game.attacker=none", "schedule.train_roles=defender"],
        ["game.attacker=static", "game.static_attacks=sandbox", "schedule.train_roles=defender"],
        ["schedule.train_roles=attacker"],
        ["game.max_turns=3"],
        ["game.defender_format=think_answer"],
        ["grpo.kl_beta=0.05", "train.seeds_per_step=4", "reward.truncation=penalize"],
        ["grpo.kl_beta=0"],
        # a group's prompt computed once (tests/test_prefix_share.py checks the maths)
        ["grpo.share_prompts=true", "grpo.kl_beta=0.05", "game.max_turns=2"],
    ],
    ids=[
        "no-game",
        "static",
        "attacker-only",
        "multi-turn",
        "defender-cot",
        "kl",
        "no-kl",
        "shared",
    ],
)
def test_variants_run(tiny_overrides, tmp_path, variant):
    from sandbox_train import train

    cfg = load_config(
        "sandbox",
        [
            *tiny_overrides,
            "train.steps=2",
            "train.seeds_per_step=8",
            f"output_dir={tmp_path}",
            "name=v",
            *variant,
        ],
    )
    run = train(cfg, log=lambda *a: None)
    rows = _rows(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1]
    # every stage of the step program is timed; a row is written inside its own log stage, so
    # stage 6's time comes with the next row
    stages = ("seeds", "rollout", "judge", "rewards", "update", "schedule", "step")
    assert all({f"time/{s}" for s in stages} <= r.keys() for r in rows)
    assert "time/log" not in rows[0] and rows[1]["time/log"] > 0
    replay = _rows(run / "replay.jsonl")
    if cfg.game.attacker == "none":
        assert all(r["turns"][0]["attack"] == r["seed"]["text"] for r in replay)
    if cfg.game.max_turns == 3:
        assert all(1 <= len(r["turns"]) <= 3 for r in replay)
    if "grpo.kl_beta=0.05" in variant:
        # the loop wires the reference model in: the update logs a KL term (its value and gradient
        # are checked against a hand-written loss in tests/test_trainer_reference.py)
        role = rows[0]["schedule/role"]
        assert f"{role}/update/kl" in rows[0]


def test_the_step_judge_reads_replies_as_the_runs_game(tiny_overrides, tmp_path, monkeypatch):
    # the sandbox's `[request]` marker is expanded before the judge (judge.score.score_exchanges)
    # only when the step's judge is given the run's game config: the sandbox preset turns it on
    from sandbox_train import train

    from magic_rl.loop import run as run_module

    games = []

    class Recording(run_module.StepJudge):
        def __init__(self, judge, max_response_words, game=None):
            games.append(game)
            super().__init__(judge, max_response_words, game)

    monkeypatch.setattr(run_module, "StepJudge", Recording)
    overrides = ["train.steps=1", "train.seeds_per_step=4", f"output_dir={tmp_path}", "name=g"]
    cfg = load_config("sandbox", [*tiny_overrides, *overrides])
    train(cfg, log=lambda *a: None)
    assert games and all(g is not None and g.request_marker for g in games)


def test_unfaithful_rewrites_fail_and_leave_the_defender_update(
    tiny_overrides, tmp_path, monkeypatch
):
    """reward.unfaithful=failed through the loop: the judge stage labels each rewrite by
    `game.rewrite_carries_request` (the tiny world's untrained attacker drops every request, so
    the rule is replaced here by one that calls even members faithful); an unfaithful rewrite is a
    failed attack for the attacker and no sample for the defender, a faithful one is scored as
    judged."""
    from sandbox_train import train

    from magic_rl import game

    monkeypatch.setattr(game, "rewrite_carries_request", lambda e: e.member % 2 == 0)
    overrides = ["train.steps=1", "train.seeds_per_step=8", "reward.truncation=keep"]
    cfg = load_config(
        "sandbox",
        [*tiny_overrides, *overrides, "reward.unfaithful=failed", f"output_dir={tmp_path}"],
    )
    run = train(cfg, log=lambda *a: None)
    replay = _rows(run / "replay.jsonl")
    assert {r["member"] % 2 for r in replay} == {0, 1}
    for r in replay:
        d, a = r["rewards"]["defender"], r["rewards"]["attacker"]
        faithful = r["member"] % 2 == 0
        assert d["valid"] is faithful and a["valid"]
        if not faithful:
            assert (a["harm"], a["refusal"]) == (-1.0, -0.5)
        else:  # as judged: the attacker's terms are the defender's negated
            assert (a["harm"], a["refusal"]) == (-d["harm"], -d["refusal"])
    row = _rows(run / "metrics.jsonl")[0]
    assert row["defender/reward/invalid"] == sum(r["member"] % 2 for r in replay)


@pytest.mark.slow
def test_attacker_levers_k_replies_best_and_novelty(tiny_overrides, tmp_path):
    """game.replies_per_attack=2 with reward.reply_score=best and reward.r_novelty: each rewrite
    is answered twice (replay), the update reads one pooled sample per rewrite, its reward the
    best of the two; faithful rewrites carry the novelty term, unfaithful ones 0."""
    from sandbox_train import train

    cfg = load_config(
        "sandbox",
        [
            *tiny_overrides,
            "train.steps=2",
            "train.seeds_per_step=4",
            "schedule.train_roles=attacker",
            "game.replies_per_attack=2",
            "reward.reply_score=best",
            "reward.r_novelty=0.5",
            "reward.truncation=keep",
            f"output_dir={tmp_path}",
            "name=levers",
        ],
    )
    run = train(cfg, log=lambda *a: None)
    rows, replay = _rows(run / "metrics.jsonl"), _rows(run / "replay.jsonl")
    G = cfg.grpo.group_size
    assert len(replay) == 2 * 4 * G * 2
    for row in rows:
        recs = [r for r in replay if r["step"] == row["step"]]
        best: dict[tuple[int, int], float] = {}
        for r in recs:
            key = (r["group"], r["member"] // 2)
            a = r["rewards"]["attacker"]
            if a["valid"]:
                best[key] = max(best.get(key, -math.inf), a["total"])
            faithful = carries(r["turns"][-1]["attack"], r["seed"]["text"])
            assert 0.0 <= a["novelty"] <= 0.5 and (faithful or a["novelty"] == 0.0)
        pairs = {}
        for r in recs:
            pairs.setdefault((r["group"], r["member"] // 2), set()).add(r["turns"][-1]["attack"])
        assert all(len(texts) == 1 for texts in pairs.values())  # two replies, one rewrite
        assert row["attacker/update/samples"] == len(best)  # one per rewrite, not per reply
        assert row["attacker/reward/pooled"] == pytest.approx(sum(best.values()) / len(best))


def _train_cmd(overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "magic_rl.cli", "train", "--config", "sandbox", *overrides]


@pytest.mark.slow
def test_resume_after_sigkill_mid_phase_has_no_gap_and_no_duplicate(tiny_overrides, tmp_path):
    common = [
        *tiny_overrides,
        "train.steps=7",
        "schedule.freq=3",
        "train.checkpoint_every=2",
        "train.seeds_per_step=4",
        "reward.truncation=penalize",  # reward variance, so the updates move the weights
        f"output_dir={tmp_path}",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # the reference: one uninterrupted run
    subprocess.run(_train_cmd([*common, "name=ref"]), check=True, env=env, capture_output=True)
    ref = tmp_path / "ref"

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd([*common, "name=killed"]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill inside the second block (steps 3-5), past a saved state
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(_rows(metrics)) < 7, "the run finished before it could be killed"
    subprocess.run(
        [sys.executable, "-m", "magic_rl.cli", "train", "--resume", str(run)],
        check=True,
        env=env,
        capture_output=True,
    )

    got, want = _rows(run / "metrics.jsonl"), _rows(ref / "metrics.jsonl")
    assert [r["step"] for r in got] == list(range(7))
    assert [r["schedule/role"] for r in got] == [r["schedule/role"] for r in want]
    replay, ref_replay = _rows(run / "replay.jsonl"), _rows(ref / "replay.jsonl")
    keys = [(r["step"], r["episode"]) for r in replay]
    assert len(keys) == len(set(keys)) == len(ref_replay)
    assert sorted(keys) == sorted((r["step"], r["episode"]) for r in ref_replay)
    # same seeds in the same steps and the same exchange texts; the weights and optimiser state of
    # a resumed run are compared bit for bit in tests/test_resume_trains.py
    assert [(r["step"], r["seed"]["id"]) for r in replay] == [
        (r["step"], r["seed"]["id"]) for r in ref_replay
    ]
    assert [r["turns"] for r in replay] == [r["turns"] for r in ref_replay]


def test_step_judge_cuts_replies_to_the_budget_keeping_line_breaks_and_memoises():
    from magic_rl.loop import StepJudge

    seen: list[tuple[str, str]] = []

    class Recorder:
        def judge(self, prompts, responses):
            seen.extend(zip(prompts, responses, strict=True))
            return [Verdict(False, False, False) for _ in prompts]

    step_judge = StepJudge(Recorder(), max_response_words=3)
    reply = "Step 1:\n  mix\nStep 2: wait"
    step_judge(["q", "q", "r"], [reply, reply, "ok"])
    step_judge(["q"], [reply + " more"])  # the same first 3 words: already judged this step
    assert seen == [("q", "Step 1:\n  mix"), ("r", "ok")]
    assert step_judge.calls == 2


@pytest.mark.slow
def test_tensorboard_tracker_gets_every_step(tiny_overrides, tmp_path):
    pytest.importorskip("tensorboard")
    from sandbox_train import train
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = ["train.steps=2", "train.seeds_per_step=4", "train.tracker=tensorboard"]
    cfg = load_config("sandbox", [*tiny_overrides, *overrides, f"output_dir={tmp_path}", "name=tb"])
    lines = []
    run = train(cfg, log=lines.append)
    events = sorted((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert events, f"no TensorBoard events under {run / 'tensorboard'}"
    assert not (run / "tb").exists()  # not RUN_DIR/<name> (runs/tb/tb)
    assert f"tensorboard --logdir {run / 'tensorboard'}" in "\n".join(map(str, lines))
    scalars: dict[str, list[int]] = {}
    for event_file in events:
        acc = EventAccumulator(str(event_file))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.step for e in acc.Scalars(tag))
    assert sorted(scalars["game/asr"]) == [0, 1]
    assert sorted(scalars["time/step"]) == [0, 1]


def test_tracker_config_is_flat_scalars():
    from magic_rl.loop import tracker_config

    flat = tracker_config(load_config("sandbox", ["data.held_out_strategies=[slang, caesar]"]))
    assert all(isinstance(v, bool | int | float | str) for v in flat.values())
    assert flat["grpo.kl_beta"] == 0.1 and flat["schedule.freq"] == 15
    assert flat["data.held_out_strategies"] == '["slang", "caesar"]'
