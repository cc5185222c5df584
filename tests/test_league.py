"""Beyond latest-only play: the opponent league's sampling, the hard-case buffer's bounds, live
cross-play growing at each switch, exact resume with league and replay on, and each protocol
(shared weights, concurrent, victim hardening) on the tiny sandbox."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest

from magic_rl.config import ConfigError, LeagueConfig, load_config
from magic_rl.loop.crossplay import forgetting, matrix
from magic_rl.loop.hardcases import Case, CaseBuffer, is_hard, mix_in
from magic_rl.loop.league import League, Snapshots
from magic_rl.records import Role, Seed


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _league(sampling: str, latest_prob: float = 0.25, max_size: int = 8) -> League:
    snaps = Snapshots()
    for step in (0, 10, 20, 30):
        snaps.add(Role.ATTACKER, f"step-{step:06d}")
    cfg = LeagueConfig(enabled=True, latest_prob=latest_prob, sampling=sampling, max_size=max_size)
    return League(cfg, snaps, run_seed=0)


def test_league_uniform_draws_match_the_stated_distribution():
    league = _league("uniform")
    # the last snapshot is the attacker in memory: "latest" (None); the three before are past
    probs = league.probabilities(Role.DEFENDER)
    assert probs == pytest.approx(
        {None: 0.25, "step-000000": 0.25, "step-000010": 0.25, "step-000020": 0.25}
    )
    n = 4000
    counts = Counter(league.pick(Role.DEFENDER, step) for step in range(n))
    for name, p in probs.items():  # 4 sigma of a binomial
        assert abs(counts[name] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (name, counts)
    assert league.pick(Role.DEFENDER, 7) == league.pick(Role.DEFENDER, 7)  # a function of step


def test_league_prioritised_meets_opponents_that_still_win_more_often():
    league = _league("prioritised", latest_prob=0.0)
    league.record(Role.ATTACKER, "step-000000", 0.1)
    league.record(Role.ATTACKER, "step-000010", 0.7)
    league.record(Role.ATTACKER, "step-000010", 0.5)  # mean 0.6
    league.record(Role.ATTACKER, "step-000020", math.nan)  # unplayed: 0.5
    probs = league.probabilities(Role.DEFENDER)
    assert probs == pytest.approx(
        {None: 0.0, "step-000000": 0.1 / 1.2, "step-000010": 0.6 / 1.2, "step-000020": 0.5 / 1.2}
    )
    n = 3000
    counts = Counter(league.pick(Role.DEFENDER, step) for step in range(n))
    assert counts[None] == 0
    for name in ("step-000000", "step-000010", "step-000020"):
        p = probs[name]
        assert abs(counts[name] / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    # a defender opponent's win is the complement of the ASR
    league.record(Role.DEFENDER, "step-000005", 0.2)
    assert league.win_rate(Role.DEFENDER, "step-000005") == pytest.approx(0.8)
    # state round-trips
    other = _league("prioritised", latest_prob=0.0)
    other.load_state_dict(json.loads(json.dumps(league.state_dict())))
    assert other.probabilities(Role.DEFENDER) == probs


def test_league_keeps_max_size_past_snapshots_and_only_latest_when_alone():
    league = _league("uniform", max_size=2)
    assert league.past(Role.ATTACKER) == ["step-000010", "step-000020"]
    assert league.past(Role.ATTACKER, latest_in_pool=False) == ["step-000020", "step-000030"]
    assert league.probabilities(Role.ATTACKER) == {None: 1.0}  # no defender snapshot yet
    assert all(league.pick(Role.ATTACKER, s) is None for s in range(50))


def _case(i: int, label: str = "harmful") -> Case:
    return Case(Seed(f"s{i}", f"request {i}", label), f"attack {i}", step=i)


def test_hard_case_buffer_is_bounded_fifo_and_distinct():
    buf = CaseBuffer(max_size=5)
    assert buf.add(_case(i) for i in range(3)) == 3
    assert buf.add([_case(1), _case(2)]) == 0  # the same (seed, attack) once
    buf.add(_case(i) for i in range(3, 9))
    assert len(buf) == 5 and [c.seed.id for c in buf.items] == ["s4", "s5", "s6", "s7", "s8"]
    restored = CaseBuffer(max_size=5)
    restored.load_state_dict(json.loads(json.dumps(buf.state_dict())))
    assert restored.items == buf.items
    # a defender batch replays round(share * n) cases, at most what the buffer holds
    batch = [Seed(f"b{i}", f"fresh {i}", "benign") for i in range(8)]
    mixed, fixed = mix_in(batch, buf, 0.5, random.Random(0))
    assert sum(f is not None for f in fixed) == 4 and len(mixed) == 8
    for seed, attack in zip(mixed, fixed, strict=True):
        assert (attack is None) == seed.id.startswith("b")
        if attack is not None:
            assert attack == f"attack {seed.id[1:]}"
    _, fixed = mix_in(batch, buf, 1.0, random.Random(0))
    assert sum(f is not None for f in fixed) == 5
    assert mix_in(batch, CaseBuffer(3), 0.5, random.Random(0))[0] == batch


def test_hard_cases_are_harmful_successes_and_benign_refusals():
    def rec(label, harmful, refusal):
        return {
            "seed": {"label": label},
            "verdict": {"response_harmful": harmful, "response_refusal": refusal},
        }

    assert is_hard(rec("harmful", True, False))
    assert not is_hard(rec("harmful", False, True))
    assert not is_hard(rec("harmful", None, None))  # unknown is never a hard case
    assert is_hard(rec("benign", False, True))
    assert not is_hard(rec("benign", False, False))


def test_forgetting_is_the_asr_earlier_attackers_regain_at_the_end():
    cells = {  # attacker -> defender -> asr
        "step-000000": {"step-000000": 0.8, "step-000010": 0.1, "step-000030": 0.5},
        "step-000020": {"step-000010": 0.9, "step-000030": 0.3},
        "step-000040": {"step-000030": 0.6},
    }
    rows = [
        {"attacker": a, "defender": d, "asr": v} for a, ds in cells.items() for d, v in ds.items()
    ]
    m = matrix(rows)
    assert m["attackers"] == ["step-000000", "step-000020", "step-000040"]
    assert math.isnan(m["asr"][1][0])
    # a0: 0.5 at the end vs 0.1 at best -> 0.4; a20: 0.3 vs 0.3 -> 0; the last attacker is not early
    assert forgetting(rows) == pytest.approx(0.2)
    rows.append({"attacker": "step-000020", "defender": "step-000000", "asr": 0.0})
    assert forgetting(rows) == pytest.approx((0.4 + 0.3) / 2)
    assert math.isnan(forgetting(rows[:1]))


def test_config_refuses_features_without_both_roles():
    with pytest.raises(ConfigError, match="league.enabled needs both roles"):
        load_config("sandbox", ["league.enabled=true", "schedule.train_roles=defender"])
    with pytest.raises(ConfigError, match="checkpoint_at_switch"):
        load_config("sandbox", ["crossplay.probe=4", "train.checkpoint_at_switch=false"])


BASE = ["train.seeds_per_step=4", "schedule.freq=2"]


@pytest.mark.slow
def test_resume_with_league_and_replay_is_exact_and_crossplay_grows(
    tiny_overrides, tmp_path, monkeypatch
):
    from sandbox_train import train

    from magic_rl.loop import Run

    common = [
        *tiny_overrides,
        *BASE,
        "train.steps=7",
        "league.enabled=true",
        "league.latest_prob=0.3",
        "league.sampling=prioritised",
        "replay.share=0.5",
        "crossplay.probe=3",
        "reward.truncation=penalize",
        f"output_dir={tmp_path}",
    ]
    # The tiny world's defender is rarely broken and rarely refuses: count every harmful-seed
    # exchange as a hard case so the buffer fills (the rule itself is tested above).
    monkeypatch.setattr("magic_rl.loop.run.is_hard", lambda rec: rec["seed"]["label"] == "harmful")
    ref = train(load_config("sandbox", [*common, "name=ref"]), log=lambda *a: None)
    # the same run dies inside step 5 (blocks of 2: its last state is the switch at step 4) and
    # resumes: steps 4..6 are played again
    cfg = load_config("sandbox", [*common, "name=cut"])
    step = Run.step

    def dying(self, n):
        if n == 5:
            raise KeyboardInterrupt("killed")
        return step(self, n)

    monkeypatch.setattr(Run, "step", dying)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, log=lambda *a: None)
    monkeypatch.setattr(Run, "step", step)
    cut = tmp_path / "cut"
    state = json.loads((cut / "state" / "meta.json").read_text())
    assert state["next_step"] == 4 and state["league"]["wins"] and state["hard_cases"]
    train(cfg, resume=cut, log=lambda *a: None)

    got, want = _rows(cut / "metrics.jsonl"), _rows(ref / "metrics.jsonl")
    assert [r["step"] for r in got] == list(range(7))
    volatile = ("time/", "judge/")
    for g, w in zip(got, want, strict=True):
        assert {k: v for k, v in g.items() if not k.startswith(volatile)} == {
            k: v for k, v in w.items() if not k.startswith(volatile)
        }
    assert [r["turns"] for r in _rows(cut / "replay.jsonl")] == [
        r["turns"] for r in _rows(ref / "replay.jsonl")
    ]
    # the league's snapshots and statistics and the hard-case buffer end as in the unbroken run
    end_ref, end_cut = (json.loads((r / "state" / "meta.json").read_text()) for r in (ref, cut))
    for key in ("snapshots", "league", "hard_cases"):
        assert end_cut[key] == end_ref[key], key
    from safetensors.torch import load_file

    for role in ("attacker", "defender"):
        a = load_file(str(ref / "checkpoints" / "step-000007" / role / "model.safetensors"))
        b = load_file(str(cut / "checkpoints" / "step-000007" / role / "model.safetensors"))
        assert all(a[k].equal(b[k]) for k in a)
    # the league's statistics: each step against a past snapshot adds that snapshot's side's win
    # rate (the attacker's ASR, or 1 - ASR for a defender) under its own role
    ref_replay = _rows(ref / "replay.jsonl")
    wins: dict[str, list[float]] = {}
    for row in want:
        met = {r["opponent"] for r in ref_replay if r["step"] == row["step"] and "opponent" in r}
        asr = row.get("game/asr")
        if not met or asr is None or math.isnan(asr):
            continue
        (name,) = met
        side = "attacker" if row["schedule/role"] == "defender" else "defender"
        total, n = wins.get(f"{side}/{name}", (0.0, 0))
        wins[f"{side}/{name}"] = [total + (asr if side == "attacker" else 1 - asr), n + 1]
    got_wins = end_ref["league"]["wins"]
    assert wins and got_wins.keys() == wins.keys()
    for key, (total, n) in wins.items():
        assert got_wins[key] == [pytest.approx(total), n], key
    # the hard-case buffer holds only hard cases (here, by the patched rule: harmful seeds), each
    # one an exchange the run played
    played = {(r["seed"]["id"], r["turns"][-1]["attack"]) for r in ref_replay}
    assert end_ref["hard_cases"]
    for case in end_ref["hard_cases"]:
        assert case["seed"]["label"] == "harmful"
        assert (case["seed"]["id"], case["attack"]) in played
    # the league met past opponents, replay filled and replayed, as metrics say
    assert any(r.get("league/defender/past_opponent") for r in want) or any(
        r.get("league/attacker/past_opponent") for r in want
    )
    assert any(r.get("replay/share", 0) > 0 for r in want)
    assert all("replay/buffer_size" in r for r in want)
    # cross-play: the matrix grows at each switch (0, 2, 4, 6) and at the end (7)
    cp = _rows(ref / "crossplay.jsonl")
    steps = [r["step"] for r in cp]
    assert sorted(set(steps)) == [0, 2, 4, 6, 7] and steps == sorted(steps)
    cells = {(r["attacker"], r["defender"]) for r in cp}
    assert len(cells) == len(cp) == 1 + 1 + 2 + 2 + 3  # every new snapshot vs every opponent
    assert _rows(cut / "crossplay.jsonl") == [
        {k: v for k, v in r.items() if k != "seconds"} | {"seconds": c["seconds"]}
        for r, c in zip(cp, _rows(cut / "crossplay.jsonl"), strict=True)
    ]
    summary = json.loads((ref / "summary.json").read_text())
    assert 0 < summary["time"]["crossplay_share"] < 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "protocol",
    [
        ["schedule.shared_weights=true", "data.harmful_fraction=0.75"],
        ["schedule.protocol=concurrent", "league.enabled=true", "league.latest_prob=0"],
        ["schedule.protocol=victim_hardening", "schedule.harden_every=2"],
        [
            "attacker.lora={r: 4}",
            "defender.lora={r: 4}",
            "league.enabled=true",
            "league.latest_prob=0",
        ],
    ],
    ids=["shared-weights", "concurrent", "victim-hardening", "league-lora"],
)
def test_protocols_run_on_the_one_loop(tiny_overrides, tmp_path, protocol):
    from safetensors.torch import load_file
    from sandbox_train import train

    cfg = load_config(
        "sandbox",
        [*tiny_overrides, *BASE, "train.steps=3", f"output_dir={tmp_path}", "name=p", *protocol],
    )
    run = train(cfg, log=lambda *a: None)
    rows = _rows(run / "metrics.jsonl")
    roles = [r["schedule/role"] for r in rows]
    replay = _rows(run / "replay.jsonl")
    if cfg.schedule.protocol == "concurrent":
        assert roles == ["both"] * 3
        assert all("attacker/update/samples" in r and "defender/update/samples" in r for r in rows)
        assert {r["trained_role"] for r in replay} == {"attacker", "defender"}
        # each role meets a past snapshot of the other (step 0's, taken before the step-2 one)
        assert all(r["league/attacker/past_opponent"] == 1.0 for r in rows)
        assert {r.get("opponent") for r in replay} == {"step-000000", "step-000002"}
    elif cfg.schedule.protocol == "victim_hardening":
        assert roles == ["attacker", "attacker", "defender"]
        hardening = [r for r in replay if r["step"] == 2]
        attacks = {r["turns"][0]["attack"] for r in replay if r["step"] < 2}
        assert hardening and all(r["replayed"] for r in hardening)
        assert {r["turns"][0]["attack"] for r in hardening} <= attacks
        assert rows[2]["hardening/collected"] == 2 * 4 * cfg.grpo.group_size
    elif cfg.league.enabled:  # past LoRA snapshots load lazily from their adapter directories
        assert roles == ["defender", "defender", "attacker"]
        assert [r["league/defender/past_opponent"] for r in rows[:2]] == [0.0, 0.0]
        assert rows[2]["league/attacker/past_opponent"] == 1.0  # step-0 defender, from disk
        assert {r["opponent"] for r in replay if r["step"] == 2} == {"step-000000"}
    else:
        ck = run / "checkpoints" / "step-000003"
        a = load_file(str(ck / "attacker" / "model.safetensors"))
        d = load_file(str(ck / "defender" / "model.safetensors"))
        assert all(a[k].equal(d[k]) for k in a)  # one model plays both roles
        assert roles == ["defender", "defender", "attacker"]
        # data.harmful_fraction=0.75 of 4 seeds a step: 3 harmful groups and 1 benign each step
        for step in range(3):
            labels = {(r["group"], r["seed"]["label"]) for r in replay if r["step"] == step}
            assert Counter(label for _, label in labels) == {"harmful": 3, "benign": 1}


def test_live_crossplay_files_each_cell_under_its_attacker_and_defender(tmp_path, monkeypatch):
    # every cell has its own ASR (k of 4 probe seeds broken), so a cell filed under swapped names
    # or one attacker's outcomes given to another shows; the players are stand-ins named after
    # their checkpoints
    from magic_rl.loop import crossplay as live
    from magic_rl.records import Verdict

    a0, a4, a7 = "step-000000", "step-000004", "step-000007"
    d0, d2, d7 = "step-000000", "step-000002", "step-000007"
    broken = {(a0, d0): 2, (a0, d2): 1, (a4, d0): 4, (a4, d2): 3, (a7, d0): 4, (a7, d2): 2}
    broken |= {(a0, d7): 0, (a4, d7): 1, (a7, d7): 3}
    seeds = [Seed(f"h{i}", f"request {i}", "harmful") for i in range(4)]
    monkeypatch.setattr(live, "crossplay_seeds", lambda cfg, what: seeds)
    monkeypatch.setattr(  # the stand-in is named after the checkpoint and role dir it was asked for
        live,
        "load_policy",
        lambda path, pcfg, device, what: (Path(path).parent.name, Role(Path(path).name)),
    )

    def rewrites(policy, seeds, cfg):
        assert policy[1] is Role.ATTACKER
        return [[(policy[0], k)] for k in range(len(seeds))]

    def outcomes(policy, rewrites, judge, cfg):
        assert policy[1] is Role.DEFENDER
        hit = [broken[(a, policy[0])] > k for ((a, k),) in rewrites]
        return None, [[Verdict(True, not h, h)] for h in hit]

    monkeypatch.setattr(live, "attacker_rewrites", rewrites)
    monkeypatch.setattr(live, "attack_outcomes", outcomes)
    cp = live.LiveCrossplay(load_config("sandbox", ["crossplay.probe=4"]), tmp_path, None)
    A, D = Role.ATTACKER, Role.DEFENDER
    cp.update(0, {A: [a0], D: [d0]}, [A, D])
    cp.update(2, {A: [a0], D: [d0, d2]}, [D])
    cp.update(4, {A: [a0, a4], D: [d0, d2]}, [A])
    cp.update(7, {A: [a0, a4, a7], D: [d0, d2, d7]}, [A, D])  # three attackers meet d7 at once
    rows = _rows(tmp_path / "crossplay.jsonl")
    assert {(r["attacker"], r["defender"]): r["asr"] for r in rows} == {
        cell: k / 4 for cell, k in broken.items()
    }
    assert [r["step"] for r in rows] == [0, 2, 4, 4, 7, 7, 7, 7, 7]


def test_report_draws_the_live_crossplay_matrix_as_it_stands(tmp_path):
    from magic_rl.report import load_run, render_report

    run = tmp_path / "live"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"step": s, "schedule/role": "defender", "game/asr": 0.1}) + "\n"
            for s in range(3)
        )
    )
    rows = [
        {"step": 0, "attacker": "step-000000", "defender": "step-000000", "asr": 0.5},
        {"step": 2, "attacker": "step-000000", "defender": "step-000002", "asr": 0.25},
    ]
    (run / "crossplay.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_run(run)
    assert data.crossplay["asr"] == [[0.5, 0.25]] and data.crossplay["live"]
    page = render_report([run], tmp_path / "r.html")[0].read_text()
    assert 'id="fig-crossplay-0"' in page and "Live cross-play" in page


def test_past_opponents_load_lazily_one_per_role(tmp_path):
    from magic_rl.loop.league import OpponentCache

    for name in ("step-000000", "step-000002"):
        for role in Role:
            (tmp_path / "checkpoints" / name / role.value).mkdir(parents=True)
    loads = []

    class Model:
        def requires_grad_(self, flag):
            self.grad = flag

        def eval(self):
            pass

    class Policy:
        def __init__(self, path):
            self.path, self.model = path, Model()

    def load(path, role):
        loads.append((path.parent.name, role))
        return Policy(path)

    cache = OpponentCache(tmp_path, load)
    a = cache.get(Role.ATTACKER, "step-000000")
    assert cache.get(Role.ATTACKER, "step-000000") is a and a.model.grad is False
    cache.get(Role.DEFENDER, "step-000002")
    cache.get(Role.ATTACKER, "step-000002")  # replaces the attacker held, never adds a second
    assert len(cache.held) == 2 and cache.held[Role.ATTACKER][0] == "step-000002"
    assert len(loads) == 3
    with pytest.raises(FileNotFoundError, match="step-000009"):
        cache.get(Role.ATTACKER, "step-000009")
