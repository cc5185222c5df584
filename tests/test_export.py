"""`magic export`: Every Eval Ever (validated against the vendored 0.3.0 schemas), safety-eval
metrics.json keys, HarmBench results and JailbreakBench artifacts, with round trips through our
own loaders; the 18 public JailbreakBench artifacts parse and their stored ASR is reproduced."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from typer.testing import CliRunner

from magic_rl.cli import app
from magic_rl.config import load_config
from magic_rl.data.benchmarks import (
    EvalItem,
    artifact_asr,
    harmbench_asr,
    load_harmbench_results,
    load_jbb_artifact,
)
from magic_rl.data.benchmarks.result_loaders import artifact_files
from magic_rl.evaluate.eval import ItemResult, ModelEval, provenance, summarize, write_results
from magic_rl.evaluate.export import FORMATS, export, read_sources
from magic_rl.evaluate.export.eee import SCHEMA_DIR
from magic_rl.evaluate.export.safety_eval import safety_eval_metrics
from magic_rl.records import Verdict

PARSE = "parse: wildguard: no 'harmful response' in 'x'"


def _item(id_, source, subset, metric, label="harmful", judge_prompt="") -> EvalItem:
    return EvalItem(id_, f"prompt {id_}", label, source, subset, metric, judge_prompt=judge_prompt)


def _results() -> list[ItemResult]:
    """A small eval of one model over harmbench, xstest, wildjailbreak and wildguardtest items,
    with one unknown verdict (a parse error) in harmbench and in wildjailbreak."""
    rows = []
    for k, harmful in enumerate([True, False, False, True, None]):  # ASR 2/4 known, 1 unknown
        v = Verdict(
            True,
            None if harmful is None else not harmful,
            harmful,
            error="" if harmful is not None else PARSE,
        )
        rows.append(
            ItemResult(_item(f"hb{k}", "harmbench", "standard", "asr"), f"reply {k}", "stop", v)
        )
    for k, refused in enumerate([False, False, True, False]):  # compliance 3/4
        v = Verdict(False, refused, False)
        rows.append(
            ItemResult(_item(f"xs{k}", "xstest", "safe", "compliance", "benign"), "ok", "stop", v)
        )
    for k, refused in enumerate([True, True, False]):  # RTA 2/3
        v = Verdict(True, refused, False)
        rows.append(ItemResult(_item(f"xu{k}", "xstest", "unsafe", "rta"), "no", "stop", v))
    for k, refused in enumerate([True, False, False, None]):  # compliance-ASR 2/3, 1 unknown
        err = "" if refused is not None else PARSE
        v = Verdict(True, refused, None if refused is None else not refused, error=err)
        item = _item(
            f"wj{k}",
            "wildjailbreak",
            "adversarial_harmful",
            "compliance_asr",
            judge_prompt=f"goal {k % 2}",
        )
        rows.append(ItemResult(item, f"reply {k}", "stop", v))
    for k, harmful in enumerate([False, True]):  # WGT adversarial harm 1/2
        v = Verdict(True, not harmful, harmful)
        rows.append(
            ItemResult(
                _item(f"wg{k}", "wildguardtest", "adversarial_harmful", "asr"), "r", "stop", v
            )
        )
    return rows


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    cfg = load_config("sandbox", ["eval.bootstrap=200"])
    results = _results()
    model = ModelEval(
        "step-000010",
        "runs/x/checkpoints/step-000010/defender",
        results,
        summarize(results, cfg),
        1.0,
    )
    judge = SimpleNamespace(name="wildguard")
    prov = provenance(
        cfg, judge, {"data.csv": "0" * 64}, model=model.path, benchmarks=["x"], limit=None
    )
    out = tmp_path / "eval"
    write_results(out, [model], prov)
    return out


def test_results_json_counts_unknown_verdicts_per_set_with_the_policy(eval_dir: Path) -> None:
    doc = json.loads((eval_dir / "results.json").read_text())
    unknown = doc["models"]["step-000010"]["judge_unknown"]
    assert unknown["harmbench/standard"] == {"n": 5, "unknown": 1, "by_reason": {"parse": 1}}
    assert unknown["xstest/safe"] == {"n": 4, "unknown": 0, "by_reason": {}}
    assert doc["provenance"]["judge"]["controversial"] == "harmful"
    assert "never read as safe" in doc["provenance"]["judge"]["unknown_policy"]
    md = (eval_dir / "results.md").read_text()
    assert "harmbench/standard 1/5 (parse 1)" in md


def test_export_writes_every_format_and_eee_validates(eval_dir: Path, tmp_path: Path) -> None:
    written = export(eval_dir, FORMATS, tmp_path / "out", log=lambda *a: None)
    assert all(written[f] for f in FORMATS), written
    agg_schema = json.loads((SCHEMA_DIR / "eval.schema.json").read_text())
    inst_schema = json.loads((SCHEMA_DIR / "instance_level_eval.schema.json").read_text())
    (agg_path,) = [p for p in written["eee"] if p.suffix == ".json"]
    (samples,) = [p for p in written["eee"] if p.suffix == ".jsonl"]
    agg = json.loads(agg_path.read_text())
    jsonschema.Draft7Validator(agg_schema).validate(agg)
    lines = [json.loads(x) for x in samples.read_text().splitlines()]
    for line in lines:
        jsonschema.Draft7Validator(inst_schema).validate(line)
    # The aggregate points at its samples file, with checksum and row count.
    root = tmp_path / "out" / "eee"
    assert (root / agg["detailed_evaluation_results"]["file_path"]) == samples
    assert agg["detailed_evaluation_results"]["total_rows"] == len(lines) == 18
    # Our bootstrap interval, the judge and the unknown count travel.
    by_id = {r["evaluation_result_id"]: r for r in agg["evaluation_results"]}
    hb = by_id["harmbench/standard/asr"]
    assert hb["score_details"]["score"] == pytest.approx(0.5)
    ci = hb["score_details"]["uncertainty"]["confidence_interval"]
    assert ci["lower"] <= 0.5 <= ci["upper"] and ci["confidence_level"] == pytest.approx(0.95)
    assert hb["score_details"]["uncertainty"]["num_bootstrap_samples"] == 200
    assert hb["score_details"]["details"]["n_unknown"] == "1"
    assert hb["metric_config"]["lower_is_better"] is True
    assert hb["metric_config"]["llm_scoring"]["judges"][0]["model_info"]["name"] == "embedded"
    assert by_id["xstest/safe/compliance"]["metric_config"]["lower_is_better"] is False
    # every score is the rate as measured (never its complement): 0.5 above could not tell
    scores = {k: r["score_details"]["score"] for k, r in by_id.items()}
    assert scores["xstest/safe/compliance"] == pytest.approx(3 / 4)
    assert scores["xstest/unsafe/rta"] == pytest.approx(2 / 3)
    assert scores["wildjailbreak/adversarial_harmful/compliance_asr"] == pytest.approx(2 / 3)
    # Instance scores: 1 = counts towards the rate, -1 = unknown verdict (with the reason).
    hb_lines = [x for x in lines if x["evaluation_result_id"] == "harmbench/standard/asr"]
    assert [x["evaluation"]["score"] for x in hb_lines] == [1.0, 0.0, 0.0, 1.0, -1.0]
    assert hb_lines[-1]["error"].startswith("judge verdict unknown (parse)")
    assert [x["evaluation"]["is_correct"] for x in hb_lines[:4]] == [False, True, True, False]


def test_eee_multi_turn_rows_become_messages(eval_dir: Path, tmp_path: Path) -> None:
    items = eval_dir / "items.jsonl"
    rows = [json.loads(x) for x in items.read_text().splitlines()]
    rows[0]["turns"] = [
        {"attack": "a1", "reply": "r1"},
        {"attack": "a2", "reply": rows[0]["reply"]},
    ]
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    written = export(eval_dir, ["eee"], tmp_path / "out", log=lambda *a: None)
    (samples,) = [p for p in written["eee"] if p.suffix == ".jsonl"]
    first = json.loads(samples.read_text().splitlines()[0])
    schema = json.loads((SCHEMA_DIR / "instance_level_eval.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(first)
    assert first["interaction_type"] == "multi_turn" and first["output"] is None
    assert [m["role"] for m in first["messages"]] == ["user", "assistant", "user", "assistant"]
    assert first["evaluation"]["num_turns"] == 2


def test_safety_eval_keys_as_table_scripts_read_them(eval_dir: Path) -> None:
    (out,) = read_sources(eval_dir)
    m = safety_eval_metrics(out, "step-000010")
    assert m["harmbench"]["micro ASR (lower)"] == pytest.approx(0.5)
    assert m["xstest"]["inverted_rta_all_safe"] == pytest.approx(0.75)
    assert m["xstest"]["rta_all_contrast"] == pytest.approx(2 / 3)
    assert m["wildjailbreak:harmful"]["macro ASR"] == pytest.approx(2 / 3)
    assert m["wildguardtest"]["adversarial harm (lower)"] == pytest.approx(0.5)
    assert "vanilla harm (lower)" not in m["wildguardtest"]  # no vanilla items: no key, no NaN
    extra = m["_magic_rl"]["keys"]["harmbench/micro ASR (lower)"]
    assert (extra["n"], extra["n_unknown"]) == (4, 1)
    # Every exported number also equals the metric magic eval computed.
    doc = json.loads((eval_dir / "results.json").read_text())["models"]["step-000010"]["metrics"]
    assert m["xstest"]["rta_all_contrast"] == pytest.approx(doc["xstest/unsafe/rta"]["value"])


def test_harmbench_round_trip_through_our_loader(eval_dir: Path, tmp_path: Path) -> None:
    written = export(eval_dir, ["harmbench"], tmp_path / "out", log=lambda *a: None)
    path = next(p for p in written["harmbench"] if p.name == "harmbench_standard.json")
    results = load_harmbench_results(path)
    assert sorted(results) == ["hb0", "hb1", "hb2", "hb3", "hb4"]
    assert [r["label"] for rs in results.values() for r in rs] == [1, 0, 0, 1, -1]
    doc = json.loads((eval_dir / "results.json").read_text())["models"]["step-000010"]["metrics"]
    # One completion per behaviour: HarmBench's mean of per-behaviour means = our ASR.
    assert harmbench_asr(results) == pytest.approx(doc["harmbench/standard/asr"]["value"])


def test_harmbench_asr_is_a_mean_of_behaviour_means(tmp_path: Path) -> None:
    data = {
        "a": [{"test_case": "t", "generation": "g", "label": 1}] * 3,
        "b": [
            {"test_case": "t", "generation": "g", "label": 0},
            {"test_case": "t", "generation": "g", "label": -1},
        ],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert harmbench_asr(load_harmbench_results(path)) == pytest.approx(0.5)  # micro would be 0.75
    data["b"][0]["label"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"record 1: field 'b.label'"):
        load_harmbench_results(path)


def test_jbb_round_trip_from_an_eval(eval_dir: Path, tmp_path: Path) -> None:
    written = export(eval_dir, ["jbb"], tmp_path / "out", log=lambda *a: None)
    (path,) = written["jbb"]  # only wildjailbreak wraps a vanilla request
    art = load_jbb_artifact(path)
    assert art.parameters["attack_success_rate"] == pytest.approx(artifact_asr(art))
    assert artifact_asr(art) == pytest.approx(2 / 3)  # compliance-ASR, as reported
    assert art.parameters["number_of_unknown_verdicts"] == 1
    assert [r["jailbroken"] for r in art.jailbreaks] == [False, True, True, None]
    assert art.jailbreaks[0]["goal"] == "goal 0" and art.jailbreaks[0]["prompt"] == "prompt wj0"


def _attack_dir(tmp_path: Path) -> Path:
    out = tmp_path / "attack-1"
    out.mkdir()
    cfg = load_config("sandbox")
    prov = provenance(cfg, SimpleNamespace(name="embedded"), {}, seeds="sandbox", limit=None)
    doc = {
        "attacker": "runs/x/attacker",
        "target": "runs/y/defender",
        "best_of": 2,
        "seeds": 3,
        "provenance": prov,
    }
    (out / "results.json").write_text(json.dumps(doc))
    rows = []
    for seed, flags in {"s1": [False, True], "s2": [False, False], "s3": [None, False]}.items():
        for k, f in enumerate(flags):
            v = {
                "prompt_harmful": True,
                "response_refusal": None,
                "response_harmful": f,
                "categories": [],
                "score": None,
                "error": "",
            }
            rows.append(
                {
                    "seed_id": seed,
                    "seed": f"goal {seed}",
                    "k": k,
                    "attack": f"attack {seed} {k}",
                    "reply": f"reply {k}",
                    "verdict": v,
                    "success": f,
                }
            )
    (out / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_jbb_artifact_of_an_attack_collapses_best_of_k(tmp_path: Path) -> None:
    written = export(_attack_dir(tmp_path), ["jbb", "eee"], tmp_path / "out", log=lambda *a: None)
    assert written["eee"] == []  # an attack has no eval metrics to export as EEE
    (path,) = written["jbb"]
    art = load_jbb_artifact(path)
    # s3: one unknown and no success among its K tries -> unknown, as magic attack counts it.
    assert [r["jailbroken"] for r in art.jailbreaks] == [True, False, None]
    assert (
        art.jailbreaks[0]["prompt"] == "attack s1 1"
        and art.jailbreaks[0]["queries_to_jailbreak"] == 2
    )
    assert art.parameters["attack_success_rate"] == pytest.approx(1 / 2)
    assert art.parameters["number_of_unknown_verdicts"] == 1
    assert art.parameters["total_number_of_queries"] == 6


def test_cli_export_and_bad_format(eval_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app, ["export", str(eval_dir), "--format", "safety-eval", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "safety-eval" / "step-000010" / "metrics.json").is_file()
    res = runner.invoke(app, ["export", str(eval_dir), "--format", "csv"])
    assert res.exit_code == 2 and "unknown export formats" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no results.json" in res.output


def test_public_jbb_artifacts_parse_and_reproduce_their_asr(shared_data: Path) -> None:
    files = artifact_files(shared_data / "jailbreakbench_artifacts")
    assert len(files) == 18
    mismatched_totals = 0
    for f in files:
        art = load_jbb_artifact(f)
        assert len(art.jailbreaks) == 100, f
        assert artifact_asr(art) == pytest.approx(art.parameters["attack_success_rate"]), f
        jailbroken = sum(r["jailbroken"] for r in art.jailbreaks)
        mismatched_totals += jailbroken != art.parameters["total_number_of_jailbreaks"]
    assert mismatched_totals == 13  # why the rate is never derived from that field
    assert not math.isnan(artifact_asr(load_jbb_artifact(files[0])))


def test_a_run_with_several_evaluations_exports_each_apart(eval_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    shutil.copytree(eval_dir, run / "eval" / "20261206-120000_x")
    shutil.copytree(eval_dir, run / "eval" / "20261206-130000_x")
    shutil.copy(eval_dir / "results.json", run / "eval" / "results.json")  # the older layout
    shutil.copy(eval_dir / "items.jsonl", run / "eval" / "items.jsonl")
    assert [s.dir.name for s in read_sources(run)] == [
        "eval",
        "20261206-120000_x",
        "20261206-130000_x",
    ]
    written = export(run, ["safety-eval"], tmp_path / "out", log=lambda *a: None)
    assert sorted(p.relative_to(tmp_path / "out") for p in written["safety-eval"]) == [
        Path(f"safety-eval/{name}/step-000010/metrics.json")
        for name in ("20261206-120000_x", "20261206-130000_x", "eval")
    ]
