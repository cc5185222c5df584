"""Writing commands never replace a file they did not write (magic_rl/data/outputs.py).

`magic report --out X.html` writes X.md beside it: a README.md, an evaluation's results.md or a
run's metrics.jsonl in the way is refused (exit 2, one `error:` line naming it, nothing changed)
unless `--force`; a report's own files are replaced on a rerun. The same rule in `magic export`,
`magic judge audit`, `magic pool build` (its --out and --report), `magic attack --out`,
`magic analyze` and the ablation's tables.

Run: `python -m pytest -q tests/test_outputs.py` (seconds; no model is loaded).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_error
from test_export import _results
from test_report import make_run
from typer.testing import CliRunner

from magic_rl.cli import app
from magic_rl.data.outputs import OutputExists, claim, write_output

runner = CliRunner()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- the helper ------------------------------------------------------------------------------------


def test_claim_refuses_a_foreign_file_and_accepts_its_own_an_empty_one_or_force(tmp_path):
    foreign = tmp_path / "README.md"
    foreign.write_text("# my project\n")
    with pytest.raises(OutputExists, match=r"README\.md: exists and was not written by magic x"):
        claim(foreign, "MARK", writer="magic x")
    claim(foreign, "MARK", writer="magic x", force=True)
    ours = tmp_path / "ours.md"
    ours.write_text("head\n" + "x" * 200_000 + "\nMARK\n")  # the mark in the last 64 KiB counts
    claim(ours, "MARK", writer="magic x")
    (tmp_path / "empty").touch()
    claim(tmp_path / "empty", "MARK", writer="magic x")
    with pytest.raises(OutputExists, match="directory"):
        claim(tmp_path, "MARK", writer="magic x", force=True)


def test_write_output_is_atomic_and_keeps_the_mode(tmp_path):
    path = tmp_path / "a" / "out.txt"
    write_output(path, "MARK one\n", mark="MARK", writer="w")
    path.chmod(0o640)
    write_output(path, "MARK two\n", mark="MARK", writer="w")
    assert path.read_text() == "MARK two\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]  # no temporary left


# --- magic report ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "victim"),
    [
        ("README.html", "README.md"),  # the markdown twin over a project's README
        ("run/eval/results.html", "run/eval/results.md"),  # over an evaluation's results.md
    ],
)
def test_report_never_replaces_a_markdown_twin_it_did_not_write(tmp_path, out, victim):
    run = make_run(tmp_path)
    target = tmp_path / victim
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("precious\n")
    before = _snapshot(tmp_path)
    line = one_error(runner.invoke(app, ["report", str(run), "--out", str(tmp_path / out)]))
    assert str(target) in line and "--force" in line, line
    assert _snapshot(tmp_path) == before  # not even the HTML was written
    result = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / out), "--force"])
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("# MAGIC run report: ")


def test_report_out_must_be_an_html_file(tmp_path):
    run = make_run(tmp_path)
    before = _snapshot(tmp_path)
    line = one_error(runner.invoke(app, ["report", str(run), "--out", str(run / "metrics.jsonl")]))
    assert "metrics.jsonl" in line and ".html" in line
    assert _snapshot(tmp_path) == before


def test_report_replaces_its_own_files_on_a_rerun(tmp_path):
    run = make_run(tmp_path)
    for _ in range(2):
        result = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "r.html")])
        assert result.exit_code == 0, result.output
        assert "r.md" in result.output  # the twin is named, not written silently
    assert (tmp_path / "r.md").read_text().startswith("# MAGIC run report: ")
    assert list((tmp_path / "r_files").glob("*.png"))


def test_report_refuses_a_foreign_plot_file(tmp_path):
    run = make_run(tmp_path)
    runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "r.html")])
    png = next((tmp_path / "r_files").glob("*.png"))
    png.write_bytes(b"\x89PNG my own picture")
    line = one_error(runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "r.html")]))
    assert str(png) in line
    assert png.read_bytes() == b"\x89PNG my own picture"


# --- magic export, judge audit, analyze, attack, pool build, ablation -----------------------------


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    from types import SimpleNamespace

    from magic_rl.config import load_config
    from magic_rl.evaluate.eval import ModelEval, provenance, summarize, write_results

    cfg = load_config("sandbox", ["eval.bootstrap=200"])
    results = _results()
    model = ModelEval("m", "runs/x/m", results, summarize(results, cfg), 1.0)
    prov = provenance(cfg, SimpleNamespace(name="wildguard"), {}, model="m", benchmarks=["x"])
    write_results(tmp_path / "eval", [model], prov)
    return tmp_path / "eval"


def test_export_refuses_a_foreign_file_and_reruns_over_its_own(eval_dir, tmp_path, monkeypatch):
    import magic_rl.evaluate.export.eee as eee

    monkeypatch.setattr(eee.time, "time", lambda: 1_700_000_000.0)  # eee's file names: one uuid
    out = tmp_path / "exp"
    for fmt in ("safety-eval", "harmbench", "jbb", "eee"):
        argv = ["export", str(eval_dir), "--format", fmt, "--out", str(out)]
        assert runner.invoke(app, argv).exit_code == 0
        written = sorted(p for p in (out / fmt).rglob("*") if p.is_file())
        assert written
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output  # its own files: replaced
        for victim in written:
            kept = victim.read_bytes()
            victim.write_text("someone else's file\n")
            line = one_error(runner.invoke(app, argv))
            assert str(victim) in line, line
            assert victim.read_text() == "someone else's file\n"
            victim.write_bytes(kept)
        victim.write_text("someone else's file\n")
        assert runner.invoke(app, [*argv, "--force"]).exit_code == 0
        assert victim.read_text() != "someone else's file\n"


def test_judge_audit_refuses_a_foreign_audit_md_before_auditing(tmp_path):
    (tmp_path / "audit.md").write_text("my notes\n")
    result = runner.invoke(
        app, ["judge", "audit", "--benchmarks", "nowhere.jsonl", "--out", str(tmp_path)]
    )
    line = one_error(result)
    assert "audit.md" in line  # refused before the benchmark (missing too) is even read
    assert (tmp_path / "audit.md").read_text() == "my notes\n"


def test_analyze_refuses_a_foreign_strategy_json(tmp_path):
    from magic_rl.evaluate.analyze import write_analysis

    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "strategy.json").write_text('{"mine": 1}\n')
    with pytest.raises(OutputExists, match="strategy.json"):
        write_analysis(tmp_path, {"n_rewrites": 0, "stages": []})
    (tmp_path / "analysis" / "strategy.json").unlink()
    write_analysis(tmp_path, {"n_rewrites": 0, "stages": []})
    write_analysis(tmp_path, {"n_rewrites": 1, "stages": []})  # its own: replaced
    assert json.loads((tmp_path / "analysis" / "strategy.json").read_text())["n_rewrites"] == 1


def test_attack_out_refuses_an_evaluation_directory_before_any_model(eval_dir):
    before = _snapshot(eval_dir)
    result = runner.invoke(
        app, ["attack", "--attacker", "nowhere", "--target", "nowhere", "--out", str(eval_dir)]
    )
    line = one_error(result)
    assert "results.json" in line and "magic attack" in line, line
    assert _snapshot(eval_dir) == before


def test_pool_build_refuses_to_cut_and_append_to_a_non_pool_file(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# project\nno trailing newline")  # a 'torn last line' to a resume
    argv = ["pool", "build", "--limit", "1", "--strategies", "role_play", "--no-progress"]
    line = one_error(runner.invoke(app, [*argv, "--out", str(readme)]))
    assert str(readme) in line
    assert readme.read_text() == "# project\nno trailing newline"
    report = tmp_path / "notes.json"
    report.write_text("{}\n")
    out = tmp_path / "pool.jsonl"
    line = one_error(runner.invoke(app, [*argv, "--out", str(out), "--report", str(report)]))
    assert str(report) in line and not out.exists()  # refused before the build
    report.unlink()
    for _ in range(2):  # a pool and its report are the builder's own: resumed, replaced
        result = runner.invoke(app, [*argv, "--out", str(out), "--report", str(report)])
        assert result.exit_code == 0, result.output


def test_ablation_refuses_a_foreign_table_before_training(tmp_path):
    from magic_rl.experiment.ablation import run_ablation

    (tmp_path / "ablation.md").write_text("my table\n")
    with pytest.raises(OutputExists, match="ablation.md"):
        run_ablation("sandbox", [], seeds=[0], steps=1, variants=["base"], out=tmp_path)
    assert (tmp_path / "ablation.md").read_text() == "my table\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ablation.md"]  # refused before any run
