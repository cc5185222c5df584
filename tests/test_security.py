"""Security defaults: no remote code unless asked, safetensors only, API keys never written down."""

from __future__ import annotations

import inspect
import re
import secrets
from pathlib import Path

import pytest
import torch
from tiny_models import XS, tiny_llama_config

from magic_rl.config import JudgeConfig, PolicyConfig, dump_config, load_config

PACKAGE = Path(__file__).resolve().parents[1] / "magic_rl"


# --- trust_remote_code ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset", ["sandbox", "paper-qwen2.5-7b", "paper-qwen2.5-7b-multiturn", None]
)
def test_configs_do_not_trust_remote_code(preset):
    cfg = load_config(preset)
    assert cfg.attacker.trust_remote_code is False and cfg.defender.trust_remote_code is False
    assert PolicyConfig().trust_remote_code is False


def _default(fn, name):
    return inspect.signature(fn).parameters[name].default


def test_loaders_default_to_no_remote_code():
    from magic_rl.judge.hf import HFGuardJudge
    from magic_rl.policy import HFPolicy

    assert _default(HFPolicy.from_pretrained, "trust_remote_code") is False
    assert _default(HFGuardJudge.__init__, "trust_remote_code") is False


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))]


def test_no_module_hard_codes_trust_remote_code_or_unsafe_torch_load():
    offenders = []
    for path, text in _sources():
        for lineno, line in enumerate(text.splitlines(), 1):
            if re.search(r"trust_remote_code\s*=\s*True", line):
                offenders.append(f"{path.name}:{lineno}: {line.strip()}")
            if "torch.load(" in line and "weights_only=True" not in line:
                offenders.append(f"{path.name}:{lineno}: {line.strip()}")
    assert not offenders, offenders


# --- safetensors only ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pickle_only_dir(tmp_path_factory) -> Path:
    """A model directory whose weights exist only as pytorch_model.bin (a pickle)."""
    from transformers import LlamaForCausalLM

    out = tmp_path_factory.mktemp("pickle_only")
    cfg = tiny_llama_config(32, XS, max_position_embeddings=32)
    model = LlamaForCausalLM(cfg)
    cfg.save_pretrained(out)
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel({f"t{i}": i for i in range(32)}, unk_token="t0"))
    PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="t1", unk_token="t0").save_pretrained(
        out
    )
    return out


def test_pickle_weights_are_refused_with_a_clear_error(pickle_only_dir):
    from magic_rl.policy.load import load_policy

    with pytest.raises(OSError, match=r"pickle format \(pytorch_model\.bin\).*safetensors only"):
        load_policy(pickle_only_dir, PolicyConfig(dtype="float32"), "cpu")


def test_the_policy_loader_never_falls_back_to_pickle(pickle_only_dir):
    from magic_rl.policy import HFPolicy

    # Past our own check, transformers is asked for safetensors only and must not read the .bin.
    with pytest.raises(OSError, match="model.safetensors"):
        HFPolicy.from_pretrained(pickle_only_dir)


# --- API keys ------------------------------------------------------------------------------------


def test_config_holds_the_name_of_the_key_variable_never_a_key():
    key_fields = [f for f in JudgeConfig.model_fields if "key" in f]
    assert key_fields == ["api_key_env"]
    with pytest.raises(Exception, match="api_key"):
        load_config(None, ["judge.api_key=sk-123"])


@pytest.mark.slow
def test_api_key_is_sent_but_never_written(tiny_overrides, tmp_path, monkeypatch):
    from sandbox_train import train

    from magic_rl.cli import served_judge
    from magic_rl.judge import make_judge
    from magic_rl.judge.endpoint import JudgeUnavailable
    from magic_rl.judge.serve import start_server_in_thread

    key = "sk-test-" + secrets.token_hex(16)
    monkeypatch.setenv("MAGIC_TEST_JUDGE_KEY", key)
    judge = served_judge(load_config("sandbox", tiny_overrides), log=lambda *a: None)
    server, url = start_server_in_thread(judge, model_name="sandbox-judge", api_key=key)
    logged: list[str] = []
    try:
        endpoint = [
            "judge.backend=wildguard",
            f"judge.endpoint={url}",
            "judge.model=sandbox-judge",
            "judge.api_key_env=MAGIC_TEST_JUDGE_KEY",
            "judge.retries=0",
        ]
        cfg = load_config(
            "sandbox",
            [
                *tiny_overrides,
                *endpoint,
                "train.steps=1",
                "train.seeds_per_step=2",
                f"output_dir={tmp_path}",
                "name=keyed",
            ],
        )
        # The server answers 401 without the key, so a completed run proves the key was sent.
        run_dir = train(cfg, log=lambda *a: logged.append(" ".join(map(str, a))))
        client = make_judge(cfg.judge)
        assert key not in repr(client) and key not in dump_config(cfg)
        monkeypatch.setenv("MAGIC_TEST_JUDGE_KEY", "sk-not-the-key-42")
        with pytest.raises(JudgeUnavailable, match="401") as err:
            make_judge(cfg.judge).judge(["hello"], ["hi"])
        assert "sk-not-the-key-42" not in str(err.value)
    finally:
        server.shutdown()
        server.server_close()
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"config.yaml", "metrics.jsonl", "replay.jsonl"}
    leaks = [str(p) for p in written if key.encode() in p.read_bytes()]
    assert not leaks
    assert "MAGIC_TEST_JUDGE_KEY" in (run_dir / "config.yaml").read_text()  # the name, not the key
    assert not any(key in line for line in logged)
