"""Config loading and validation (magic_rl/config.py): errors name the field; overrides win."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from magic_rl.config import (
    ConfigError,
    RunConfig,
    dump_config,
    load_config,
    parse_override,
    trained_roles,
)
from magic_rl.records import Role

REPO = Path(__file__).resolve().parents[1]


def _yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_are_the_papers():
    cfg = load_config()
    assert (cfg.reward.r_harm, cfg.reward.r_ref, cfg.reward.r_fmt) == (1.0, 0.5, 0.5)
    assert cfg.reward.request_label_source == "rewrite"
    assert cfg.reward.unknown_policy == "drop"
    assert cfg.schedule.freq == 15 and cfg.schedule.start_agent is Role.DEFENDER
    assert cfg.schedule.update_ratio == {Role.DEFENDER: 1, Role.ATTACKER: 1}
    assert (cfg.grpo.group_size, cfg.grpo.clip_eps, cfg.grpo.kl_beta) == (4, 0.2, 0.0)
    assert cfg.train.steps == 300 and cfg.train.seeds_per_step == 64


@pytest.mark.parametrize(
    ("text", "overrides", "match"),
    [
        (
            "schedule:\n  freqq: 3\n",
            [],
            r"run\.yaml: schedule\.freqq: unknown field \(valid here: .*freq,",
        ),
        ("rewards:\n  r_harm: 1\n", [], r"rewards: unknown field \(valid here: .*reward,"),
        ("reward:\n  r_harm: -1\n", [], r"reward\.r_harm: Input should be greater"),
        ("reward:\n  unknown_policy: safe\n", [], r"reward\.unknown_policy"),
        (
            "schedule:\n  train_roles: defender\n  update_ratio: {defender: 1, attacker: 1}\n",
            [],
            r"schedule\.update_ratio names 'attacker'",
        ),
        ("schedule:\n  update_ratio: {defender: 1}\n", [], r"schedule\.update_ratio must give"),
        ("schedule:\n  mode: metric\n  low: 0.95\n  high: 0.9\n", [], r"schedule\.low=0\.95"),
        ("schedule:\n  transitions: {defender: judge}\n", [], r"schedule\.transitions"),
        (
            "schedule:\n  train_roles: attacker\n  start_agent: defender\n",
            [],
            r"schedule\.start_agent='defender'",
        ),
        ("game:\n  attacker: none\n", [], r"game\.attacker='none'.*train_roles=defender"),
        ("{}\n", ["schedule.freq=0"], r"schedule\.freq: Input should be greater"),
        (
            "{}\n",
            ["game.replies_per_attack=2", "game.max_turns=3"],
            r"game\.replies_per_attack > 1 is single-turn only",
        ),
        ("{}\n", ["game.replies_per_attack=0"], r"game\.replies_per_attack: Input should be"),
        ("{}\n", ["reward.reply_score=worst"], r"reward\.reply_score: Input should be"),
        ("{}\n", ["reward.r_novelty=-1"], r"reward\.r_novelty: Input should be greater"),
        (
            "{}\n",
            ["grpo.group_sise=8"],
            r"grpo\.group_sise: unknown field \(valid here: .*group_size",
        ),
    ],
)
def test_validation_errors_name_the_field(tmp_path, text, overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(_yaml(tmp_path, text), overrides)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("schedule.freq", r"'schedule\.freq': expected dotted\.key=value"),
        ("schedule..freq=3", "empty key segment"),
        ("=3", "empty key segment"),
        ("name.first=x", r"name: Input should be a valid string"),
    ],
)
def test_bad_override_syntax(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_override_into_a_yaml_scalar(tmp_path):
    with pytest.raises(ConfigError, match=r"'name' is not a section"):
        load_config(_yaml(tmp_path, "name: run1\n"), ["name.first=x"])


@pytest.mark.parametrize(
    ("text", "match"),
    [("- a\n- b\n", "top level must be a mapping"), ("a: [1,\n", "not valid YAML")],
)
def test_yaml_must_be_a_mapping(tmp_path, text, match):
    path = _yaml(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"run\.yaml(:\d+)?: {match}"):
        load_config(path)


def test_missing_file_and_unknown_preset(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="neither a YAML file nor a preset"):
        load_config("no-such-preset-anywhere")


def test_overrides_beat_yaml(tmp_path):
    path = _yaml(tmp_path, "schedule:\n  freq: 3\nreward:\n  r_ref: 0.25\n")
    cfg = load_config(path, ["schedule.freq=7", "game.max_turns=3", "judge.endpoint=http://x/v1"])
    assert cfg.schedule.freq == 7  # override
    assert cfg.reward.r_ref == 0.25  # YAML
    assert cfg.game.max_turns == 3 and cfg.judge.endpoint == "http://x/v1"
    assert cfg.reward.r_harm == 1.0  # default


def test_parse_override_values_are_yaml_scalars():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=0.5") == (["a"], 0.5)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=x=y") == (["a"], "x=y")
    assert parse_override("a=") == (["a"], "")


@pytest.mark.parametrize("role", ["defender", "attacker"])
def test_single_trained_role_needs_nothing_else(role):
    overrides = [f"schedule.train_roles={role}"]
    if role == "defender":
        overrides.append("game.attacker=none")
    cfg = load_config(None, overrides)
    assert trained_roles(cfg.schedule) == (Role(role),)
    assert cfg.schedule.start_agent is Role(role)
    assert cfg.schedule.update_ratio == {Role(role): 1}
    # The resolved config a run writes must load again.
    assert RunConfig.model_validate(yaml.safe_load(dump_config(cfg))) == cfg


def test_dump_round_trips():
    cfg = load_config(None, ["schedule.mode=metric", "reward.truncation=penalize"])
    assert RunConfig.model_validate(yaml.safe_load(dump_config(cfg))) == cfg


PRESETS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.skipif(
    not (REPO / "configs" / "sandbox.yaml").exists(), reason="configs/sandbox.yaml not added yet"
)
@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_load(preset):
    cfg = load_config(str(preset))
    assert dump_config(cfg)


@pytest.mark.parametrize(
    ("preset", "fraction"),
    [
        ("sandbox", 0.5),
        ("smollm2-cpu", 0.75),  # 6 harmful + 2 benign seeds a step (docs/deviations.md)
        ("paper-qwen2.5-7b", 0.5),
        ("paper-qwen2.5-7b-multiturn", 0.5),
    ],
)
def test_each_preset_keeps_its_harmful_fraction(preset, fraction):
    # users rely on these mixes; a change must be deliberate (and re-measured)
    assert load_config(str(REPO / "configs" / f"{preset}.yaml")).data.harmful_fraction == fraction


def test_the_sandbox_attacker_plays_its_own_batch():
    # the one setting under which the sandbox attacker learns (docs/attacker.md); deliberate
    cfg = load_config(str(REPO / "configs" / "sandbox.yaml"))
    assert (cfg.train.attacker_seeds_per_step, cfg.data.attacker_harmful_fraction) == (32, 1.0)
    assert (cfg.train.seeds_per_step, cfg.attacker.lr) == (16, 5e-4)
    for preset in ("smollm2-cpu", "paper-qwen2.5-7b", "paper-qwen2.5-7b-multiturn"):
        other = load_config(str(REPO / "configs" / f"{preset}.yaml"))
        assert other.train.attacker_seeds_per_step is None  # the paper's one batch
        assert other.data.attacker_harmful_fraction is None


def test_a_saved_config_from_before_a_later_field_loads_with_the_value_it_ran_with(tmp_path):
    saved = yaml.safe_load(dump_config(RunConfig()))
    del saved["game"]["defender_phase_attack"]  # written before the field existed
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(saved))
    assert load_config(str(path), complete=True).game.defender_phase_attack == "greedy"
    del saved["grpo"]["share_prompts"]  # a run from before it resumes with the unshared numerics
    path.write_text(yaml.safe_dump(saved))
    assert RunConfig().grpo.share_prompts is True
    assert load_config(str(path), complete=True).grpo.share_prompts is False
    del saved["sft"]["hybrids_per_seed"], saved["sandbox"]["hybrids_per_seed"]  # no hybrids then
    path.write_text(yaml.safe_dump(saved))
    cfg = load_config(str(path), complete=True)
    assert cfg.sft.hybrids_per_seed == 0 and cfg.sandbox.hybrids_per_seed == 0
    del saved["align"]["contrast_fraction"]  # phase 0 drew benign and contrast seeds alike
    path.write_text(yaml.safe_dump(saved))
    assert load_config(str(path), complete=True).align.contrast_fraction is None
    del saved["game"]["max_turns"]  # not a later field: the file was cut or edited
    path.write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match=r"game\.max_turns: missing"):
        load_config(str(path), complete=True)


def test_the_sandbox_preset_keeps_the_unshared_numerics():
    # its recorded runs (docs/LOG.md) repeat bit for bit only without grpo.share_prompts
    assert load_config(str(REPO / "configs" / "sandbox.yaml")).grpo.share_prompts is False
    assert load_config(str(REPO / "configs" / "smollm2-cpu.yaml")).grpo.share_prompts is True
