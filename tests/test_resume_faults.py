"""Fault suite, part 2: resume with each part of `state/` or the logs missing or torn, torn
checkpoints under the readers, and a judge that answers nothing usable.

One tiny real run (2 steps, a switch every step: checkpoints at steps 0, 1, 2 and state/ after step
2) is trained once; each case damages a copy. A refused resume must exit 2 with one error line
naming the damaged file and leave every file of the run as it was. Run:
`python -m pytest -q tests/test_resume_faults.py` (about a minute with the tiny world built).
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_errors import one_error
from typer.testing import CliRunner

from magic_rl.cli import app
from magic_rl.config import load_config
from magic_rl.evaluate.eval import find_evaluations
from magic_rl.loop import Run, check_resume
from magic_rl.loop.resume import ResumeError

runner = CliRunner()


@pytest.fixture(scope="module")
def base_run(tiny_overrides, tmp_path_factory) -> Path:
    from sandbox_train import two_step_run

    return two_step_run(tiny_overrides, tmp_path_factory.mktemp("resume_faults"))


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(base_run, copy)
    return copy


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _keep_lines(path: Path, n: int) -> None:
    path.write_text("".join(f"{line}\n" for line in path.read_text().splitlines()[:n]))


def _corrupt_line(path: Path, i: int) -> None:
    lines = path.read_text().splitlines()
    lines[i] = lines[i][: len(lines[i]) // 2]
    path.write_text("".join(f"{line}\n" for line in lines))


# (id, damage(run_dir), the file the error line must name)
DAMAGE = [
    ("meta-missing", lambda r: (r / "state/meta.json").unlink(), "state/meta.json"),
    ("meta-empty", lambda r: (r / "state/meta.json").write_text(""), "state/meta.json"),
    ("meta-truncated", lambda r: _cut(r / "state/meta.json"), "state/meta.json"),
    (
        "meta-bad-step",
        lambda r: (r / "state/meta.json").write_text('{"next_step": "x"}'),
        "state/meta.json",
    ),
    ("meta-not-object", lambda r: (r / "state/meta.json").write_text("[]"), "state/meta.json"),
    ("optim-missing", lambda r: (r / "state/optim.pt").unlink(), "state/optim.pt"),
    ("optim-empty", lambda r: (r / "state/optim.pt").write_bytes(b""), "state/optim.pt"),
    ("optim-truncated", lambda r: _cut(r / "state/optim.pt"), "state/optim.pt"),
    (
        "weights-missing",
        lambda r: (r / "state/defender/model.safetensors").unlink(),
        "state/defender",
    ),
    (
        "weights-empty",
        lambda r: (r / "state/defender/model.safetensors").write_bytes(b""),
        "state/defender/model.safetensors",
    ),
    (
        "weights-truncated",
        lambda r: _cut(r / "state/attacker/model.safetensors"),
        "state/attacker/model.safetensors",
    ),
    (
        "weights-header-only",
        lambda r: _cut(r / "state/defender/model.safetensors", 0.001),
        "state/defender/model.safetensors",
    ),
    (
        "model-config-empty",
        lambda r: (r / "state/attacker/config.json").write_text(""),
        "state/attacker/config.json",
    ),
    (
        "tokenizer-truncated",
        lambda r: _cut(r / "state/defender/tokenizer.json"),
        "state/defender/tokenizer.json",
    ),
    ("role-dir-missing", lambda r: shutil.rmtree(r / "state/defender"), "state/defender"),
    ("state-missing", lambda r: shutil.rmtree(r / "state"), "state"),
    ("metrics-missing", lambda r: (r / "metrics.jsonl").unlink(), "metrics.jsonl"),
    ("metrics-cut", lambda r: _keep_lines(r / "metrics.jsonl", 1), "metrics.jsonl"),
    ("replay-cut", lambda r: _keep_lines(r / "replay.jsonl", 3), "replay.jsonl"),
    ("metrics-torn-middle", lambda r: _corrupt_line(r / "metrics.jsonl", 0), "metrics.jsonl:1"),
    ("replay-torn-middle", lambda r: _corrupt_line(r / "replay.jsonl", 2), "replay.jsonl:3"),
    ("config-truncated", lambda r: _cut(r / "config.yaml", 0.3), "config.yaml"),
]


@pytest.mark.parametrize(("damage", "names"), [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_a_damaged_run_is_refused_whole_and_left_untouched(run, damage, names):
    damage(run)
    before = _snapshot(run)
    line = one_error(runner.invoke(app, ["train", "--resume", str(run), "train.steps=3"]))
    assert str(run / names) in line, line
    if names != "config.yaml":  # the way on: the last whole checkpoint
        assert str(run / "checkpoints" / "step-000002") in line
    assert _snapshot(run) == before, "a refused resume changed the run directory"


def test_resume_keeps_config_yaml_and_records_overrides_beside_it(run):
    config = (run / "config.yaml").read_bytes()
    result = runner.invoke(app, ["train", "--resume", str(run), "train.steps=3"])
    assert result.exit_code == 0, result.output
    assert (run / "config.yaml").read_bytes() == config
    (record,) = (run / "overrides").glob("resume-step-000002-*.yaml")
    assert "train.steps: 3" in record.read_text()
    assert [r["step"] for r in _rows(run / "metrics.jsonl")] == [0, 1, 2]
    assert sorted({r["step"] for r in _rows(run / "replay.jsonl")}) == [0, 1, 2]


def _resume_with_judge(run: Path, endpoint: str, *extra: str):
    """`magic train --resume RUN` one step further, judged by a WildGuard endpoint that fails."""
    overrides = ["train.steps=3", "judge.backend=wildguard", f"judge.endpoint={endpoint}"]
    args = ["train", "--resume", str(run), *overrides, *extra, "judge.retries=0"]
    return runner.invoke(app, args)


def test_a_failed_resume_keeps_the_original_config_and_logs(run):
    config, metrics = (run / "config.yaml").read_bytes(), (run / "metrics.jsonl").read_bytes()
    result = _resume_with_judge(run, "http://127.0.0.1:1/v1")
    assert result.exit_code == 2, result.output
    assert "127.0.0.1:1" in result.output and "Traceback" not in result.output
    assert (run / "config.yaml").read_bytes() == config
    assert (run / "metrics.jsonl").read_bytes() == metrics
    (record,) = (run / "overrides").glob("resume-*.yaml")
    assert "judge.endpoint: http://127.0.0.1:1/v1" in record.read_text()


def test_a_torn_last_log_line_is_the_only_thing_dropped(run):
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 2, "schedule/ro')  # killed mid-write
    result = runner.invoke(app, ["train", "--resume", str(run), "train.steps=3"])
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in _rows(run / "metrics.jsonl")] == [0, 1, 2]


def test_a_kill_between_the_state_renames_is_repaired(run):
    (run / "state").rename(run / "state.old")
    result = runner.invoke(app, ["train", "--resume", str(run), "train.steps=3"])
    assert result.exit_code == 0, result.output
    assert not (run / "state.old").exists()
    assert json.loads((run / "state/meta.json").read_text())["next_step"] == 3


def test_a_run_that_never_saved_state_restarts_from_step_0(run):
    # A kill during the first state save (at the switch after step 0) leaves the switch's
    # checkpoint step-000001 and one logged step, but no state: nothing whole was saved.
    shutil.rmtree(run / "state")
    shutil.rmtree(run / "checkpoints/step-000002")
    _keep_lines(run / "metrics.jsonl", 1)
    cfg = load_config(str(run / "config.yaml"), complete=True)
    assert check_resume(run, cfg) == 0
    # a step logged after that save proves the state existed: it was lost, the resume is refused
    # (here the change of role between the logged steps shows the switch, and its save)
    shutil.rmtree(run / "checkpoints/step-000001")
    shutil.copy(run / "metrics.jsonl", run / "one.jsonl")
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 1, "schedule/role": "attacker"}) + "\n")
    with pytest.raises(ResumeError, match="state: missing, but metrics.jsonl holds step 1"):
        check_resume(run, cfg)
    # the logged steps reaching train.checkpoint_every are no proof on their own either
    (run / "one.jsonl").replace(run / "metrics.jsonl")
    every = cfg.model_copy(update={"train": cfg.train.model_copy(update={"checkpoint_every": 1})})
    assert check_resume(run, every) == 0


def test_a_resume_that_fails_before_its_first_step_ends_leaves_the_logs_untouched(run, stub_judge):
    # the run was killed after logging step 2, past its saved state (step 2): a good resume would
    # cut that step and run it again; this one fails inside step 2 (its judge answers 400)
    for name in ("metrics.jsonl", "replay.jsonl"):
        rows = _rows(run / name)
        extra = [{**r, "step": 2} for r in rows if r["step"] == 1]
        with (run / name).open("a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in extra))
    logs = {name: (run / name).read_bytes() for name in ("metrics.jsonl", "replay.jsonl")}
    result = _resume_with_judge(run, stub_judge("400"), "judge.model=whatever")
    assert result.exit_code == 2, result.output
    assert "judge.max_unknown_fraction: step 2" in result.output
    for name, data in logs.items():
        assert (run / name).read_bytes() == data, f"{name} changed by a failed resume"


def test_the_report_reader_drops_a_torn_last_line_as_resume_does(run):
    from magic_rl.loop import read_metrics

    whole = read_metrics(run)
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 2, "schedule/ro')  # killed mid-write
    assert read_metrics(run) == whole
    result = runner.invoke(app, ["report", str(run), "--out", str(run.parent / "r.html")])
    assert result.exit_code == 0, result.output
    _corrupt_line(run / "metrics.jsonl", 0)  # a torn line in the middle is still an error
    with pytest.raises(ValueError, match="metrics.jsonl:1"):
        read_metrics(run)


def test_checkpoints_are_written_whole_or_not_at_all(tmp_path):
    """A kill while the second role is saved leaves no step-NNNNNN directory, only a hidden tmp."""

    class Saver:
        def __init__(self, fail: bool) -> None:
            self.fail = fail

        def save_pretrained(self, path: Path) -> None:
            if self.fail:
                raise KeyboardInterrupt  # the kill
            path.mkdir(parents=True)
            (path / "config.json").write_text("{}")

    from magic_rl.records import Role

    fake = SimpleNamespace(run_dir=tmp_path, main=True, policies={})
    fake.policies = {Role.ATTACKER: Saver(False), Role.DEFENDER: Saver(False)}
    Run.save_checkpoint(fake, 4)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000004"]
    fake.policies = {Role.ATTACKER: Saver(False), Role.DEFENDER: Saver(True)}
    with pytest.raises(KeyboardInterrupt):
        Run.save_checkpoint(fake, 5)
    assert not (tmp_path / "checkpoints/step-000005").exists()
    fake.policies = {Role.ATTACKER: Saver(False), Role.DEFENDER: Saver(False)}
    Run.save_checkpoint(fake, 4)  # re-saving a step replaces it whole
    assert (tmp_path / "checkpoints/step-000004/defender/config.json").exists()


# --- readers of torn checkpoints ----------------------------------------------------------------


def _tear(run: Path) -> None:
    (run / "checkpoints/step-000002/defender/config.json").write_text("")


def test_eval_of_a_run_skips_a_torn_last_checkpoint(run):
    _tear(run)
    result = runner.invoke(
        app,
        ["eval", "--model", str(run), "--benchmarks", "sandbox/vanilla_harmful", "--limit", "2"],
    )
    assert result.exit_code == 0, result.output
    assert "skipping incomplete checkpoint step-000002" in result.output
    (evaluation,) = find_evaluations(run)
    results = json.loads((evaluation / "results.json").read_text())
    assert "step-000001" in json.dumps(results["provenance"])


def test_eval_of_a_torn_checkpoint_names_the_file(run):
    _tear(run)
    result = runner.invoke(
        app, ["eval", "--model", str(run / "checkpoints/step-000002"), "--limit", "2"]
    )
    assert result.exit_code == 2, result.output
    assert "step-000002/defender/config.json: empty" in result.output


def test_crossplay_leaves_out_a_torn_checkpoint(run):
    _tear(run)
    result = runner.invoke(app, ["crossplay", str(run), "--limit", "2"])
    assert result.exit_code == 0, result.output
    doc = json.loads((run / "crossplay" / "crossplay.json").read_text())
    assert doc["defenders"] == doc["attackers"] == ["step-000000", "step-000001"]
    assert "skipping incomplete checkpoint step-000002" in result.output


# --- a judge with no usable answers ------------------------------------------------------------


class _Stub(http.server.BaseHTTPRequestHandler):
    mode = "400"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "400":
            code, body = 400, {"error": {"message": "The model `whatever` does not exist."}}
        else:  # 200 with an answer in no guard format
            code, body = 200, {"choices": [{"text": "I like turtles", "index": 0}]}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # the judge client opens judge.concurrency connections at once
    daemon_threads = True


@pytest.fixture
def stub_judge():
    servers = []

    def start(mode: str) -> str:
        handler = type("Stub", (_Stub,), {"mode": mode})
        server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _train_against(url: str, tiny_overrides, out: Path, *extra: str):
    return runner.invoke(
        app,
        [
            "train",
            *tiny_overrides,
            "train.steps=2",
            "train.seeds_per_step=4",
            f"output_dir={out}",
            "name=j",
            "judge.backend=wildguard",
            f"judge.endpoint={url}",
            "judge.model=whatever",
            "judge.retries=0",
            *extra,
        ],
    )


@pytest.mark.parametrize(("mode", "why"), [("400", "HTTP 400"), ("garbage", "parse")])
def test_a_run_whose_judge_answers_nothing_usable_stops(
    stub_judge, tiny_overrides, tmp_path, mode, why
):
    line = one_error(_train_against(stub_judge(mode), tiny_overrides, tmp_path))
    assert "judge.max_unknown_fraction" in line and "16/16" in line and why in line, line
    assert not (tmp_path / "j" / "metrics.jsonl").exists()  # nothing of the step was logged


def test_the_unknown_limit_is_a_config_knob(stub_judge, tiny_overrides, tmp_path):
    result = _train_against(
        stub_judge("400"), tiny_overrides, tmp_path, "judge.max_unknown_fraction=1.0"
    )
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "j" / "metrics.jsonl")
    assert [r["judge/unknown"] for r in rows] == [16.0, 16.0]


def test_model_dir_checks_read_headers_and_name_the_file(tmp_path):
    from magic_rl.data.model_files import model_dir_problem

    empty_tensors = b"\x02" + b"\x00" * 7 + b"{}"  # a whole safetensors file holding no tensor
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(empty_tensors)
    assert model_dir_problem(tmp_path) is None
    index = {
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002.safetensors"}
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert "model-00002.safetensors: missing" in model_dir_problem(tmp_path)
    (tmp_path / "model.safetensors.index.json").unlink()
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    torn = len(header).to_bytes(8, "little") + header + b"\x00" * 8  # 8 of 16 data bytes
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(torn)
    assert "truncated" in model_dir_problem(tmp_path)
