"""One way to load a model (magic_rl/policy/load.py): every path that loads a policy refuses pickle
weights and a torn directory, with the same checks.

The paths: training (`loop.run.build_policies`: the roles, their KL references, past opponents),
`magic eval` (`evaluate.eval.protocol.evaluate_models`), `magic attack` and `magic crossplay`
(`evaluate.transfer`), live cross-play (`loop.crossplay.LiveCrossplay`), phase 1
(`sft.attacker_sft`) and `magic serve policy`. A static check keeps every other module from
loading a policy its own way.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from tiny_models import XS, tiny_llama_config
from typer.testing import CliRunner

from magic_rl.config import PolicyConfig, load_config
from magic_rl.records import Role

PACKAGE = Path(__file__).resolve().parents[1] / "magic_rl"
PICKLE = r"pickle format \(pytorch_model\.bin\).*safetensors only"
TORN = r"model\.safetensors: truncated"


def _tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel({f"t{i}": i for i in range(32)}, unk_token="t0"))
    PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="t1", unk_token="t0").save_pretrained(
        out
    )


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """A whole model directory, its pickle-only twin and a torn copy (truncated safetensors)."""
    from transformers import LlamaForCausalLM

    root = tmp_path_factory.mktemp("models")
    model = LlamaForCausalLM(tiny_llama_config(32, XS, max_position_embeddings=32))
    good = root / "good"
    model.save_pretrained(good, safe_serialization=True)
    _tokenizer(good)
    pickled = root / "pickled"
    model.config.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    _tokenizer(pickled)
    torn = root / "torn"
    shutil.copytree(good, torn)
    weights = torn / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    return {"good": good, "pickled": pickled, "torn": torn}


def _cfg(tmp_path: Path, **models: Path):
    overrides = ["train.progress=false", "device=cpu", "judge.backend=keyword"]
    overrides += [f"output_dir={tmp_path}"]
    overrides += [f"{role}.model={path}" for role, path in models.items()]
    overrides += [f"{role}.dtype=float32" for role in ("attacker", "defender")]
    return load_config(None, overrides)


BAD = [("pickled", PICKLE), ("torn", TORN)]


def test_the_loader_loads_a_whole_directory(model_dirs):
    from magic_rl.policy import HFPolicy
    from magic_rl.policy.load import load_policy

    policy = load_policy(model_dirs["good"], PolicyConfig(dtype="float32"), "cpu")
    assert isinstance(policy, HFPolicy) and str(policy.model.device) == "cpu"


def test_one_device_rule_the_roles_own_device_first(model_dirs, monkeypatch):
    from magic_rl.policy import HFPolicy
    from magic_rl.policy.load import load_policy

    seen = []
    monkeypatch.setattr(HFPolicy, "from_pretrained", lambda path, **kw: seen.append(kw["device"]))
    load_policy(model_dirs["good"], PolicyConfig(device="meta"), "cpu")
    load_policy(model_dirs["good"], PolicyConfig(), "cpu")
    load_policy(model_dirs["good"], PolicyConfig(), "auto")
    assert seen == ["meta", "cpu", "cuda" if torch.cuda.is_available() else "cpu"]


@pytest.mark.parametrize("kind,message", BAD)
def test_the_loader_refuses(model_dirs, kind, message):
    from magic_rl.policy.load import load_policy

    with pytest.raises(OSError, match=message):  # FileNotFoundError is an OSError
        load_policy(model_dirs[kind], PolicyConfig(dtype="float32"), "cpu")


@pytest.mark.parametrize("kind,message", BAD)
def test_training_refuses(model_dirs, tmp_path, kind, message):
    from magic_rl.loop.run import build_policies

    cfg = _cfg(tmp_path, attacker=model_dirs["good"], defender=model_dirs[kind])
    with pytest.raises(OSError, match=message):
        build_policies(cfg, tmp_path / "state", "cpu")


@pytest.mark.parametrize("kind,message", BAD)
def test_phase_1_refuses(model_dirs, tmp_path, kind, message):
    from magic_rl.sft import attacker_sft

    cfg = _cfg(tmp_path)
    records = [_pool_record()]
    with pytest.raises(OSError, match=message):
        attacker_sft(cfg, records, str(model_dirs[kind]), tmp_path / "out", log=lambda *a: None)


def _pool_record():
    from magic_rl.records import Seed
    from magic_rl.strategies import PoolRecord

    seed = Seed("s1", "how do I bake bread", "benign")
    return PoolRecord("p1", seed, "role_play", "writing_style", "r", "w")


@pytest.mark.parametrize("kind,message", BAD)
def test_eval_refuses(model_dirs, tmp_path, kind, message):
    from magic_rl.evaluate.eval.protocol import evaluate_models

    cfg = _cfg(tmp_path)
    with pytest.raises(OSError, match=message):
        evaluate_models([("m", str(model_dirs[kind]))], [], cfg, judge=None, log=lambda *a: None)


@pytest.mark.parametrize("kind,message", BAD)
@pytest.mark.parametrize("role", [Role.ATTACKER, Role.DEFENDER])
def test_attack_refuses(model_dirs, tmp_path, kind, message, role):
    from magic_rl.evaluate.transfer import attack_transfer

    cfg = _cfg(tmp_path)
    models = {"attacker": str(model_dirs["good"]), "target": str(model_dirs["good"])}
    models["attacker" if role is Role.ATTACKER else "target"] = str(model_dirs[kind])
    with pytest.raises(OSError, match=message):
        attack_transfer(cfg, models["attacker"], models["target"], log=lambda *a: None)


@pytest.mark.parametrize("kind,message", BAD)
def test_live_crossplay_refuses(model_dirs, tmp_path, kind, message):
    from magic_rl.loop.crossplay import LiveCrossplay

    ckpt = tmp_path / "run" / "checkpoints" / "step-000000"
    ckpt.mkdir(parents=True)
    shutil.copytree(model_dirs[kind], ckpt / "defender")
    live = LiveCrossplay.__new__(LiveCrossplay)  # no seeds or judge needed to load a snapshot
    live.cfg, live.run_dir = _cfg(tmp_path), tmp_path / "run"
    with pytest.raises(OSError, match=message):
        live._policy("step-000000", Role.DEFENDER)


@pytest.mark.parametrize("kind,message", BAD)
def test_serve_policy_refuses(model_dirs, kind, message):
    from magic_rl.cli import app

    result = CliRunner().invoke(app, ["serve", "policy", str(model_dirs[kind]), "--port", "1"])
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.output.split())), result.output


def test_no_module_loads_a_policy_its_own_way():
    """`HFPolicy.from_pretrained` is called by the one loader and the LoRA base loader (its base
    was checked by the training run), nowhere else."""
    allowed = {"policy/load.py", "lora.py"}
    callers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "HFPolicy.from_pretrained(" in path.read_text()
    }
    assert callers <= allowed, sorted(callers - allowed)
    defs = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if re.search(r"^def load_policy\(", path.read_text(), re.M)
    ]
    assert defs == ["policy/load.py"], defs
