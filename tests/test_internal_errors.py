"""The "internal error" exits the last probe found, each now a user error naming its file:
`magic serve policy` on a truncated checkpoint, a damaged sandbox world (with the command that
rebuilds it), `magic export` of a misshapen results.json, a JSON line nested 100,000 deep, and the
served policy's answer to an empty prompt (400, not 500).

Run: `python -m pytest -q tests/test_internal_errors.py` (a minute: the tiny world is built once).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from cli_errors import one_error
from test_serve_policy import policy, served  # noqa: F401 (fixtures)
from typer.testing import CliRunner

from magic_rl.cli import app
from magic_rl.data.files import DatasetError, read_json, read_jsonl_rows

runner = CliRunner()


def _cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_serve_policy_refuses_a_truncated_checkpoint_naming_the_file(policy, tmp_path):  # noqa: F811
    policy.save_pretrained(tmp_path / "model")
    _cut(tmp_path / "model" / "model.safetensors")
    argv = ["serve", "policy", str(tmp_path / "model"), "--port", "0", "--device", "cpu"]
    line = one_error(runner.invoke(app, argv))
    assert str(tmp_path / "model" / "model.safetensors") in line, line


def test_an_empty_prompt_is_a_400(served):  # noqa: F811
    server, _ = served
    r = httpx.post(
        f"{server.url}/completions", json={"model": "tiny", "prompt": "", "max_tokens": 2}
    )
    assert r.status_code == 400, r.text
    assert "prompt" in r.json()["error"]["message"]
    ok = httpx.post(
        f"{server.url}/completions", json={"model": "tiny", "prompt": "the", "max_tokens": 2}
    )
    assert ok.status_code == 200  # the server is still fine


@pytest.fixture
def world_copy(tiny_overrides, tmp_path) -> list[str]:
    """The tiny world's cache copied (each case damages its own copy)."""
    cache = next(o for o in tiny_overrides if o.startswith("sandbox.cache_dir=")).split("=", 1)[1]
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    return [o for o in tiny_overrides if not o.startswith("sandbox.cache_dir=")] + [
        f"sandbox.cache_dir={copy}"
    ]


@pytest.mark.parametrize(
    ("damage", "names"),
    [
        (lambda w: _cut(w / "base" / "model.safetensors"), "base/model.safetensors"),
        (lambda w: (w / "judge" / "judge_config.json").write_text(""), "judge/judge_config.json"),
        (lambda w: (w / "build.json").write_text("{"), "build.json"),
        (lambda w: _cut(w / "tokenizer" / "tokenizer.json"), "tokenizer/tokenizer.json"),
        (
            lambda w: _cut(next(w.glob("attacker-*")) / "model.safetensors", 0.1),
            "model.safetensors",
        ),
    ],
    ids=["base", "judge", "build-json", "tokenizer", "attacker"],
)
def test_a_damaged_world_names_its_file_and_the_rebuild_command(world_copy, damage, names):
    from magic_rl.config import load_config
    from magic_rl.sandbox.resolve import WorldDamaged, resolve_model
    from magic_rl.sandbox.world import world_for

    cfg = load_config("sandbox", world_copy)
    root = world_for(cfg).root
    damage(root)
    line = one_error(runner.invoke(app, ["sandbox", "build", *world_copy]))
    assert names in line and "magic sandbox build --force" in line, line
    with pytest.raises(WorldDamaged, match="magic sandbox build --force"):
        resolve_model("sandbox:attacker", cfg, log=lambda *a: None)


def _eval_output(tmp_path: Path, results) -> Path:
    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(results))
    row = {
        "model": "m", "id": "1", "prompt": "p", "label": "harmful", "source": "s", "subset": "x",
        "metric": "asr", "reply": "r", "verdict": {},
    }  # fmt: skip
    (out / "items.jsonl").write_text(json.dumps(row) + "\n")
    return out


@pytest.mark.parametrize(
    "results",
    [{"models": ["m"]}, {"models": {"m": 5}}, {"models": {"m": {}}, "provenance": 3}],
    ids=["models-list", "model-number", "provenance-number"],
)
def test_export_of_a_misshapen_results_json_names_it(tmp_path, results):
    out = _eval_output(tmp_path, results)
    line = one_error(runner.invoke(app, ["export", str(out), "--out", str(tmp_path / "x")]))
    assert str(out / "results.json") in line and "not shaped" in line, line


def test_a_json_line_nested_100000_deep_is_a_dataset_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.jsonl"
    path.write_text('{"prompt": "ok"}\n{"prompt": ' + deep + "}\n")
    with pytest.raises(DatasetError, match=r"deep\.jsonl:2: JSON nested too deeply"):
        list(read_jsonl_rows(path))
    (tmp_path / "deep.json").write_text(deep)
    with pytest.raises(DatasetError, match=r"deep\.json: JSON nested too deeply"):
        read_json(tmp_path / "deep.json")


def test_a_deep_seed_file_is_one_error_line_through_the_cli(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text('{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "label": "harmful"}\n')
    argv = ["pool", "build", "--out", str(tmp_path / "p.jsonl"), "--no-progress"]
    line = one_error(runner.invoke(app, [*argv, f"data.seeds={path}"]))
    assert "seeds.jsonl:1" in line and "nested too deeply" in line, line
