"""The sandbox world as a user builds it: `magic sandbox build` at reduced size is deterministic and
cached, `magic pool build` writes a strict-format pool, and the helpers that make the build fast
(batched chat encoding, pre-labelled SFT rows, the CPU allocator setting) change nothing else."""

from __future__ import annotations

import ctypes.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magic_rl.cli import app
from magic_rl.config import load_config
from magic_rl.prompts import is_format_ok
from magic_rl.sandbox.resolve import resolve_model, resolve_world
from magic_rl.sandbox.world import world_for
from magic_rl.sft import SFTExample, tokenize_sft
from magic_rl.strategies import read_pool, resolve_strategies

runner = CliRunner()


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)


def _cache_dir(overrides: list[str]) -> Path:
    return Path(load_config("sandbox", overrides).sandbox.cache_dir)


@pytest.mark.slow
def test_reduced_build_from_the_cli_is_deterministic_and_cached(tiny_overrides, tmp_path):
    first = load_config("sandbox", tiny_overrides)  # built by the session fixture
    overrides = [o for o in tiny_overrides if not o.startswith("sandbox.cache_dir=")]
    overrides.append(f"sandbox.cache_dir={tmp_path}")
    cfg = load_config("sandbox", overrides)
    world, built = world_for(cfg), world_for(first)

    result = runner.invoke(app, ["sandbox", "build", *overrides])
    assert result.exit_code == 0, result.output
    assert "sandbox world" in result.output and str(world.root.name) in result.output
    assert world.root.name == built.root.name  # the cache key does not depend on where it lives
    for part in ("base", "judge"):
        assert _same_weights(world.root / part, built.root / part), part
    assert _same_weights(world.attacker(cfg), built.attacker(first))
    assert world.pool.read_bytes() == built.pool.read_bytes()
    info = world.info
    assert info["parameters"] > 0 and set(info["judge_accuracy"]) >= {"prompt_harmful"}
    assert set(info["timings_s"]) == {"pool", "tokenizer", "judge", "base_model", "learnability"}
    # the game-is-winnable checks are printed and stored
    assert 0.0 <= info["learnability"]["held_out_requests"] <= 1.0
    assert "learnability" in result.output and "attacker check" in result.output
    # and per held-out strategy, the project's own framings included
    per = {k.split("/", 1)[1] for k in info["learnability"] if k.startswith("held_out_strategies/")}
    assert per == set(resolve_strategies(cfg.data.held_out_strategies)) >= {"system_override"}
    assert "per held-out strategy:" in result.output and "nested_fiction" in result.output
    check = json.loads((world.attacker(cfg) / "check.json").read_text())
    assert check["n"] > 0 and 0.0 <= check["format_rate"] <= 1.0
    assert 0.0 <= check["faithful_rate"] <= 1.0

    stamp = (world.base / "model.safetensors").stat().st_mtime_ns
    again = runner.invoke(app, ["sandbox", "build", *overrides])
    assert again.exit_code == 0, again.output
    assert (world.base / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rebuilt


@pytest.mark.slow
def test_the_learnability_check_waits_for_sandbox_build_and_measures_the_same(
    tiny_overrides, tmp_path
):
    import shutil

    from magic_rl.sandbox.world import build_checked, build_world

    fixture = world_for(load_config("sandbox", tiny_overrides))
    # a world as the demo and training leave it: built, its learnability check not run
    shutil.copytree(fixture.root, tmp_path / "lazy" / fixture.root.name)
    info = json.loads((tmp_path / "lazy" / fixture.root.name / "build.json").read_text())
    info.pop("learnability", None)
    info["timings_s"].pop("learnability", None)
    (tmp_path / "lazy" / fixture.root.name / "build.json").write_text(json.dumps(info))
    base = [o for o in tiny_overrides if not o.startswith("sandbox.cache_dir=")]
    lazy = [*base, f"sandbox.cache_dir={tmp_path / 'lazy'}"]
    world = world_for(load_config("sandbox", lazy))
    assert "learnability" not in build_world(load_config("sandbox", lazy), log=print).info
    stamp = (world.base / "model.safetensors").stat().st_mtime_ns

    result = runner.invoke(app, ["sandbox", "build", "--no-attacker", *lazy])
    assert result.exit_code == 0, result.output
    assert "learnability" in result.output and "reused from the cache" not in result.output
    assert (world.base / "model.safetensors").stat().st_mtime_ns == stamp  # the world is kept
    # the same figures as a fresh build that runs the check
    fresh = [*base, f"sandbox.cache_dir={tmp_path / 'fresh'}"]
    built, _ = build_checked(load_config("sandbox", fresh), attacker=False, log=print)
    assert world.info["learnability"] == built.info["learnability"]
    assert set(world.info["timings_s"]) == set(built.info["timings_s"])


def test_resolve_world_turns_what_the_run_uses_into_paths_once(tiny_overrides):
    cfg = load_config("sandbox", tiny_overrides)
    world = world_for(cfg)
    quiet = lambda *a: None  # noqa: E731
    out = resolve_world(cfg, log=quiet)
    assert out.attacker.model == str(world.attacker(cfg))
    assert out.defender.model == str(world.base)
    assert out.judge.model == str(world.judge)
    assert resolve_world(out, log=quiet) == out  # paths stay paths
    assert cfg.attacker.model == "sandbox:attacker"  # the given config is left as it was
    static = load_config(
        "sandbox",
        [
            *tiny_overrides,
            "game.attacker=static",
            "game.static_attacks=sandbox",
            "schedule.train_roles=defender",
        ],
    )
    out = resolve_world(static, log=quiet)
    assert out.game.static_attacks == str(world.pool)
    assert out.attacker.model == "sandbox:attacker"  # not played: not resolved, not built


def test_a_data_parallel_launch_never_builds_the_world(tiny_overrides, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    built = load_config("sandbox", tiny_overrides)
    assert resolve_world(built, log=lambda *a: None).defender.model == str(world_for(built).base)
    empty = load_config("sandbox", [*tiny_overrides, f"sandbox.cache_dir={tmp_path}"])
    with pytest.raises(RuntimeError, match="not built"):
        resolve_world(empty, log=lambda *a: None)
    assert not any(tmp_path.iterdir())


def test_resolve_model_passes_real_names_and_rejects_unknown_sandbox_parts(tiny_overrides):
    cfg = load_config("sandbox", tiny_overrides)
    assert resolve_model("Qwen/Qwen2.5-7B-Instruct", cfg) == "Qwen/Qwen2.5-7B-Instruct"
    assert resolve_model("sandbox:judge", cfg, log=lambda *a: None).endswith("judge")
    with pytest.raises(ValueError, match="sandbox:base, sandbox:attacker or sandbox:judge"):
        resolve_model("sandbox:critic", cfg, log=lambda *a: None)


def test_pool_build_writes_strict_format_records_of_the_chosen_strategies(tmp_path):
    out = tmp_path / "pool.jsonl"
    args = ["pool", "build", "--out", str(out), "--strategies", "family:encoding,slang"]
    result = runner.invoke(app, [*args, "--split", "test", "sandbox.fraction=0.1"])
    assert result.exit_code == 0, result.output
    records = read_pool(out)
    assert records and {r.strategy for r in records} == set(
        resolve_strategies(["family:encoding", "slang"])
    )
    assert all(is_format_ok(r.target) for r in records)
    again = tmp_path / "again.jsonl"
    args[3] = str(again)
    assert runner.invoke(app, [*args, "--split", "test", "sandbox.fraction=0.1"]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # deterministic


def test_pool_build_names_an_unknown_strategy(tmp_path):
    result = runner.invoke(
        app, ["pool", "build", "--out", str(tmp_path / "p.jsonl"), "--strategies", "nope"]
    )
    assert result.exit_code == 2
    assert "unknown strategy" in result.output and "nope" in result.output


@pytest.mark.parametrize("completion_only", [True, False])
def test_sft_rows_label_the_target_or_everything(tiny_overrides, completion_only):
    from magic_rl.policy import HFPolicy

    policy = HFPolicy.from_pretrained(world_for(load_config("sandbox", tiny_overrides)).base)
    chat = ({"role": "user", "content": "Rewrite this request."},)
    (row,) = tokenize_sft(policy, [SFTExample(chat, "<answer>ok</answer>")], 512, completion_only)
    prompt = policy.encode_chat(list(chat))
    target = policy.tokenizer("<answer>ok</answer>", add_special_tokens=False)["input_ids"]
    target = [*target, policy.tokenizer.eos_token_id]
    assert row["input_ids"] == prompt + target
    expected = [-100] * len(prompt) + target if completion_only else prompt + target
    assert row["labels"] == expected
    assert tokenize_sft(policy, [SFTExample(chat, "x " * 600)], 512, completion_only) == []


@pytest.mark.slow
def test_gradient_checkpointing_changes_the_cost_not_the_weights(tiny_overrides, tmp_path):
    from magic_rl.policy import HFPolicy
    from magic_rl.sft import sft, sft_arguments

    base = world_for(load_config("sandbox", tiny_overrides)).base
    examples = [
        SFTExample(({"role": "user", "content": f"Rewrite request {i}."},), f"<answer>{i}</answer>")
        for i in range(8)
    ]
    cfg = load_config("sandbox", tiny_overrides).sft.model_copy(update={"batch_size": 4})
    weights = {}
    for on in (True, False):
        out = tmp_path / f"checkpointing-{on}"
        each = cfg.model_copy(update={"gradient_checkpointing": on})
        assert sft_arguments(each, out, 3, 0, False).gradient_checkpointing is on  # reaches TRL
        sft(HFPolicy.from_pretrained(base), examples, each, out, max_steps=3, progress=False)
        weights[on] = _weights(out)
    assert _same_weights(tmp_path / "checkpointing-True", tmp_path / "checkpointing-False")
    assert not all(weights[True][k].equal(_weights(base)[k]) for k in weights[True])  # it trained


def test_encode_chats_equals_encoding_each_chat(tiny_overrides):
    from magic_rl.policy import HFPolicy

    world = world_for(load_config("sandbox", tiny_overrides))
    policy = HFPolicy.from_pretrained(world.base)
    chats = [
        [{"role": "user", "content": "How do I kill a stuck process?"}],
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me a story."},
            {"role": "assistant", "content": "Once upon a time."},
            {"role": "user", "content": "Go on."},
        ],
    ]
    one_by_one = [
        list(
            policy.tokenizer.apply_chat_template(
                chat, tokenize=True, add_generation_prompt=True, return_dict=False
            )
        )
        for chat in chats
    ]
    assert policy.encode_chats(chats) == one_by_one
    assert policy.encode_chat(chats[1]) == one_by_one[1]
    assert policy.encode_chats([]) == []


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") != "libc.so.6",
    reason="glibc only",
)
def test_keep_freed_memory_takes_effect_once_and_stays():
    from magic_rl.cpu import keep_freed_memory

    assert keep_freed_memory() is True
    assert keep_freed_memory() is True


def test_alongside_hands_back_the_stage_result_and_raises_its_error():
    import torch

    from magic_rl.sandbox.stages import alongside

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with alongside(divmod, 7, 2) as result:
            assert torch.get_num_threads() == 1  # one thread here too while the second one runs
            assert result() == (3, 1)
        assert torch.get_num_threads() == 2  # ...and back after the block
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ZeroDivisionError), alongside(divmod, 1, 0) as result:
        result()
