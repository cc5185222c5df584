"""The role scheduler (magic_rl/schedule.py): ratio blocks, metric hysteresis, resume."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magic_rl.config import ScheduleConfig
from magic_rl.records import Role
from magic_rl.schedule import Scheduler

D, A = Role.DEFENDER, Role.ATTACKER
METRIC = "defender/reward/harm"


def _run(scheduler: Scheduler, values) -> tuple[list[Role], list[bool]]:
    """Roles trained at each step and whether each advance switched."""
    roles, switches = [], []
    for v in values:
        roles.append(scheduler.role)
        switches.append(scheduler.advance({METRIC: v}))
    return roles, switches


def _blocks(roles: list[Role]) -> list[tuple[Role, int]]:
    return [(role, len(list(group))) for role, group in itertools.groupby(roles)]


# --- ratio ---------------------------------------------------------------------------------------


def test_reference_schedule_first_block_is_full():
    s = Scheduler(ScheduleConfig())  # defender first, 15 steps, 1:1
    roles, switches = _run(s, [0.0] * 60)
    assert _blocks(roles) == [(D, 15), (A, 15), (D, 15), (A, 15)]
    assert [i for i, sw in enumerate(switches) if sw] == [14, 29, 44, 59]


ratio_configs = st.builds(
    lambda freq, rd, ra, start: ScheduleConfig(
        freq=freq, update_ratio={D: rd, A: ra}, start_agent=start
    ),
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from([D, A]),
)


@settings(max_examples=60, deadline=None)
@given(cfg=ratio_configs, steps=st.integers(1, 80))
def test_ratio_blocks(cfg, steps):
    roles, switches = _run(Scheduler(cfg), [0.0] * steps)
    blocks = _blocks(roles)
    assert blocks[0][0] == cfg.start_agent
    for i, (role, length) in enumerate(blocks):
        expected = cfg.freq * cfg.update_ratio[role]
        assert length == expected if i < len(blocks) - 1 else length <= expected
        if i:
            assert role == blocks[i - 1][0].other
    # advance() reports exactly the ends of the completed blocks.
    ends = itertools.accumulate(length for _, length in blocks)
    completed = [
        end
        for end, (role, length) in zip(ends, blocks, strict=True)
        if length == cfg.freq * cfg.update_ratio[role]
    ]
    assert [i + 1 for i, sw in enumerate(switches) if sw] == completed


@settings(max_examples=40, deadline=None)
@given(cfg=ratio_configs, cycles=st.integers(1, 4))
def test_ratio_shares_match_update_ratio(cfg, cycles):
    period = cfg.freq * (cfg.update_ratio[D] + cfg.update_ratio[A])
    roles, _ = _run(Scheduler(cfg), [0.0] * (period * cycles))
    assert roles.count(D) == cycles * cfg.freq * cfg.update_ratio[D]
    assert roles.count(A) == cycles * cfg.freq * cfg.update_ratio[A]


@pytest.mark.parametrize("mode", ["ratio", "metric"])
@pytest.mark.parametrize("role", [D, A])
def test_single_role_never_switches(mode, role):
    s = Scheduler(ScheduleConfig(mode=mode, train_roles=role.value, freq=1, window=1))
    roles, switches = _run(s, [1.0, 0.0] * 20)
    assert set(roles) == {role} and not any(switches)
    assert s.step == 40


def test_single_role_needs_no_metric():
    s = Scheduler(ScheduleConfig(mode="metric", train_roles="defender"))
    assert s.advance({}) is False


def test_ratio_ignores_metrics():
    s = Scheduler(ScheduleConfig(freq=2))
    assert [s.advance({}) for _ in range(4)] == [False, True, False, True]


# --- metric ------------------------------------------------------------------------------------


def _metric_cfg(**kw):
    return ScheduleConfig(mode="metric", **{"window": 3, "high": 0.9, "low": 0.8, **kw})


def test_metric_hysteresis_example():
    s = Scheduler(_metric_cfg(window=2, high=0.75, low=0.25))
    values = [1.0, 0.5, 1.0, 1.0, 0.5, 0.5, 0.0, 1.0, 1.0, 0.0]
    roles, switches = _run(s, values)
    # avg(1, .5) = .75 >= high: switch; the attacker holds while .25 < avg < .75; avg(.5, 0) = .25
    # <= low: switch back; the cleared window needs two fresh values before the next switch.
    assert roles == [D, D] + [A] * 5 + [D, D] + [A]
    assert [i for i, sw in enumerate(switches) if sw] == [1, 6, 8]


def test_metric_missing_names_it():
    s = Scheduler(_metric_cfg(metric="game/asr"))
    with pytest.raises(KeyError, match="schedule.metric 'game/asr'"):
        s.advance({METRIC: 1.0})


def test_metric_nan_is_skipped():
    s = Scheduler(_metric_cfg(window=2))
    assert [s.advance({METRIC: v}) for v in (1.0, float("nan"), 1.0)] == [False, False, True]


def test_metric_transitions_override_destination():
    s = Scheduler(_metric_cfg(window=1, transitions={"attacker": "attacker"}))
    roles, switches = _run(s, [1.0, 0.0, 0.0, 0.0])
    assert roles == [D, A, A, A] and switches == [True, False, False, False]


def _reference_metric_roles(cfg: ScheduleConfig, values: list[float]) -> list[Role]:
    """A direct restatement of the rule, to compare the state machine against."""
    role, since_switch, roles = cfg.start_agent, [], []
    for v in values:
        roles.append(role)
        since_switch.append(v)
        last = since_switch[-cfg.window :]
        if len(last) == cfg.window:
            avg = sum(last) / cfg.window
            if (role is D and avg >= cfg.high) or (role is A and avg <= cfg.low):
                role, since_switch = role.other, []
    return roles


metric_values = st.lists(st.sampled_from([0.0, 0.5, 0.8, 0.85, 0.9, 1.0]), max_size=60)
metric_configs = st.builds(
    lambda w, low, gap, start: _metric_cfg(window=w, low=low, high=low + gap, start_agent=start),
    st.integers(1, 5),
    st.sampled_from([0.0, 0.5, 0.8]),
    st.sampled_from([0.0, 0.1, 0.3]),
    st.sampled_from([D, A]),
)


@settings(max_examples=80, deadline=None)
@given(cfg=metric_configs, values=metric_values)
def test_metric_matches_rule_and_blocks_last_a_window(cfg, values):
    roles, switches = _run(Scheduler(cfg), values)
    assert roles == _reference_metric_roles(cfg, values)
    switch_steps = [i for i, sw in enumerate(switches) if sw]
    for prev, nxt in itertools.pairwise([-1, *switch_steps]):
        assert nxt - prev >= cfg.window  # the window is refilled after every switch
    for i in switch_steps:
        avg = sum(values[i - cfg.window + 1 : i + 1]) / cfg.window
        assert avg >= cfg.high if roles[i] is D else avg <= cfg.low


# --- state ---------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    cfg=st.one_of(ratio_configs, metric_configs),
    values=st.lists(st.sampled_from([0.0, 0.8, 0.9, 1.0]), min_size=1, max_size=50),
    cut=st.integers(0, 50),
)
def test_resume_mid_block_matches_uninterrupted(cfg, values, cut):
    cut = min(cut, len(values))
    full = _run(Scheduler(cfg), values)
    first = Scheduler(cfg)
    head = _run(first, values[:cut])
    state = json.loads(json.dumps(first.state_dict()))
    resumed = Scheduler(cfg)
    resumed.load_state_dict(state)
    tail = _run(resumed, values[cut:])
    assert (head[0] + tail[0], head[1] + tail[1]) == full
    assert resumed.step == len(values)


def test_state_dict_contents():
    s = Scheduler(_metric_cfg())
    s.advance({METRIC: 0.5})
    assert s.state_dict() == {
        "version": 1,
        "mode": "metric",
        "train_roles": "both",
        "role": "defender",
        "step": 1,
        "step_in_block": 1,
        "window": [0.5],
    }


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"mode": "ratio"}, "schedule.mode='ratio'"),
        ({"train_roles": "defender"}, "schedule.train_roles='defender'"),
        ({"version": 99}, "version 99"),
        ({"role": "judge"}, "judge"),
    ],
)
def test_load_state_dict_rejects_mismatch(edit, match):
    s = Scheduler(_metric_cfg())
    with pytest.raises(ValueError, match=match):
        s.load_state_dict({**s.state_dict(), **edit})


def test_load_state_dict_rejects_missing_keys():
    with pytest.raises(ValueError, match="lacks.*window"):
        Scheduler(ScheduleConfig()).load_state_dict({"version": 1, "mode": "ratio"})


def test_bad_config_rejected_by_the_config_itself():
    # the schedule section checks itself, so a Scheduler is never handed an inconsistent one
    with pytest.raises(ValueError, match="update_ratio must give 'attacker'"):
        ScheduleConfig(update_ratio={D: 1})
    with pytest.raises(ValueError, match="start_agent='defender' is not in"):
        ScheduleConfig(train_roles="attacker", start_agent=D)
