"""Benchmark loaders on the real public files (second layer: skipped when ../shared/data is absent,
failing when it is present but a file is missing) and on synthetic malformed files. The loaders' first
layer, a synthetic file per format, is tests/test_benchmark_files.py."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from magic_rl.data.benchmarks import (
    BENCHMARKS,
    DatasetError,
    EvalItem,
    file_sha256,
    list_benchmarks,
    load_benchmark,
    load_generic,
    load_harmbench,
    load_jailbreakbench,
    load_orbench,
    load_wildguardtest,
    load_xstest,
)

DATA = Path(
    os.environ.get("MAGIC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _need(name: str) -> None:
    """Skip when the shared data folder is absent (a clean clone); fail when it is there but the
    benchmark's file is not, so a stale path in BENCHMARKS cannot hide behind a skip."""
    if not DATA.is_dir():
        pytest.skip(f"public benchmark files not found at {DATA}")
    path = DATA / BENCHMARKS[name].path
    assert path.is_file(), f"{path} missing from {DATA}: is BENCHMARKS[{name!r}].path stale?"


# name, rows, {(subset, metric): count}, labels
REAL = [
    (
        "harmbench",
        320,
        {("standard", "asr"): 159, ("contextual", "asr"): 81, ("copyright", "asr"): 80},
        {"harmful"},
    ),
    ("harmbench_attacks", 1500, {("PAIR", "asr"): 100, ("DirectRequest", "asr"): 100}, {"harmful"}),
    (
        "harmbench_classifier_val",
        602,
        {("vanilla", "judge_f1"): 33, ("adversarial", "judge_f1"): 569},
        {"harmful"},
    ),
    (
        "wildguardtest",
        1689,
        {
            ("vanilla_harmful", "asr"): 412,
            ("adversarial_harmful", "asr"): 337,
            ("vanilla_benign", "compliance"): 489,
            ("adversarial_benign", "compliance"): 451,
        },
        {"harmful", "benign"},
    ),
    (
        "wildguardtest_judge",
        1699,
        {("vanilla", "judge_f1"): 903, ("adversarial", "judge_f1"): 796},
        {"harmful", "benign"},
    ),
    ("wildjailbreak_harmful", 2000, {("adversarial_harmful", "compliance_asr"): 2000}, {"harmful"}),
    ("wildjailbreak_benign", 250, {("adversarial_benign", "compliance"): 250}, {"benign"}),
    ("or_bench_hard", 1319, {("hard", "compliance"): 1319}, {"benign"}),
    ("or_bench_toxic", 655, {("toxic", "rta"): 655}, {"harmful"}),
    ("strongreject", 313, {("full", "rta"): 313}, {"harmful"}),
    ("strongreject_small", 60, {("small", "rta"): 60}, {"harmful"}),
    ("dan", 300, {("adversarial_harmful", "compliance_asr"): 300}, {"harmful"}),
    (
        "trustllm",
        400,
        {("QBB", "compliance_asr"): 200, ("ITC", "compliance_asr"): 200},
        {"harmful"},
    ),
    ("openai_moderation", 1680, {("all", "judge_f1"): 1680}, {"harmful", "benign"}),
    ("xstest", 450, {("safe", "compliance"): 250, ("unsafe", "rta"): 200}, {"harmful", "benign"}),
    ("magic_validation", 250, {("adversarial_benign", "compliance"): 250}, {"benign"}),
]


@pytest.mark.parametrize(("name", "rows", "subsets", "labels"), REAL, ids=[r[0] for r in REAL])
def test_real_benchmark_counts_subsets_and_metrics(name, rows, subsets, labels):
    _need(name)
    items = load_benchmark(name, data_root=DATA)
    assert len(items) == rows
    counts = Counter((i.subset, i.metric) for i in items)
    for key, n in subsets.items():
        assert counts[key] == n, key
    assert {i.label for i in items} == labels
    assert len({i.id for i in items}) == rows, "ids must be unique"
    assert all(i.prompt.strip() for i in items)


def test_real_labels_follow_the_metric_semantics():
    for name in ("xstest", "wildguardtest"):
        _need(name)
        for item in load_benchmark(name, data_root=DATA):
            if item.metric in ("asr", "rta", "compliance_asr"):
                assert item.label == "harmful", item.id
            else:
                assert item.label == "benign", item.id


def test_real_judge_gold_counts_match_the_readme():
    for name in ("openai_moderation", "harmbench_classifier_val", "wildguardtest_judge"):
        _need(name)
    moderation = load_benchmark("openai_moderation", data_root=DATA)
    assert sum(i.reference["gold"]["prompt_harmful"] for i in moderation) == 522
    val = load_benchmark("harmbench_classifier_val", data_root=DATA)
    assert sum(i.reference["gold"]["response_harmful"] for i in val) == 273
    judge = load_benchmark("wildguardtest_judge", data_root=DATA)
    gold = Counter(i.reference["gold"]["response_refusal"] for i in judge)
    assert gold[True] + gold[False] + gold[None] == 1699 and gold[True] > 500


def test_real_wildjailbreak_and_dan_give_the_judge_the_vanilla_request():
    for name in ("wildjailbreak_harmful", "dan"):
        _need(name)
        items = load_benchmark(name, data_root=DATA, limit=20)
        assert all(i.judge_prompt and i.judge_prompt != i.prompt for i in items)
        assert all(i.judge_request == i.judge_prompt for i in items)
    xs = load_benchmark("xstest", data_root=DATA, limit=3)
    assert all(i.judge_request == i.prompt for i in xs)


def test_real_magic_validation_equals_wildjailbreak_benign_in_order():
    _need("magic_validation")
    _need("wildjailbreak_benign")
    parquet = load_benchmark("magic_validation", data_root=DATA)
    jsonl = load_benchmark("wildjailbreak_benign", data_root=DATA)
    assert [i.prompt for i in parquet] == [i.prompt for i in jsonl]
    assert [i.judge_prompt for i in parquet] == [i.judge_prompt for i in jsonl]


def test_real_harmbench_context_is_optional():
    _need("harmbench")
    path = DATA / BENCHMARKS["harmbench"].path
    plain = {i.id: i for i in load_harmbench(path)}
    with_context = {i.id: i for i in load_harmbench(path, include_context=True)}
    contextual = [k for k, i in plain.items() if i.subset == "contextual"]
    assert len(contextual) == 81
    for key in contextual:
        assert with_context[key].prompt.endswith(plain[key].prompt)
        assert len(with_context[key].prompt) > len(plain[key].prompt)
        assert with_context[key].judge_prompt == plain[key].prompt
    standard = next(k for k, i in plain.items() if i.subset == "standard")
    assert with_context[standard].prompt == plain[standard].prompt


def test_real_limit_path_and_checksum():
    _need("xstest")
    full = load_benchmark("xstest", data_root=DATA)
    assert load_benchmark("xstest", data_root=DATA, limit=5) == full[:5]
    assert load_benchmark("xstest", data_root=DATA, limit=0) == []
    # A path to a known file is read by that benchmark's loader.
    assert load_benchmark(DATA / "xstest" / "exaggerated_safety.json") == full
    assert (
        file_sha256(DATA / "xstest" / "exaggerated_safety.json")
        == "63e3eeacc79640f2f98fd13612ee75a8c121d12737a2e0cd0177e28279c5ca32"
    )


def test_real_generic_loader_reads_a_public_file_with_a_mapping():
    _need("wildjailbreak_benign")
    items = load_benchmark(
        DATA / "wildjailbreak" / "benign.jsonl",
        prompt_field="vanilla",
        label="benign",
        source="wjb_vanilla",
        limit=7,
    )
    assert len(items) == 7
    assert {(i.source, i.subset, i.metric, i.label) for i in items} == {
        ("wjb_vanilla", "benign", "compliance", "benign")
    }


def test_list_benchmarks_and_unknown_names():
    assert "xstest" in list_benchmarks() and list_benchmarks() == sorted(BENCHMARKS)
    with pytest.raises(DatasetError, match="not a known benchmark"):
        load_benchmark("no_such_benchmark")
    with pytest.raises(ValueError, match="no bundled file"):
        load_benchmark("jailbreakbench")


# ------------------------------------------------------------------------------------------------
# Synthetic files (placeholders only).


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def test_jailbreakbench_csv_label_from_file_name_and_sniffed_by_header(tmp_path):
    header = "Index,Goal,Target,Behavior,Category,Source\r\n"
    harmful = _write(
        tmp_path,
        "harmful-behaviors.csv",
        header + "1,PLACEHOLDER goal,Sure,Phish,Privacy,custom\r\n",
    )
    benign = _write(
        tmp_path,
        "benign-behaviors.csv",
        header + "1,PLACEHOLDER benign goal,Sure,Poem,Art,custom\r\n",
    )
    (h,) = load_jailbreakbench(harmful)
    (b,) = load_jailbreakbench(benign)
    assert (h.label, h.metric, h.category, h.reference["behavior"]) == (
        "harmful",
        "asr",
        "Privacy",
        "Phish",
    )
    assert (b.label, b.metric, b.subset) == ("benign", "compliance", "benign")
    renamed = _write(
        tmp_path, "jbb.csv", header + "7,PLACEHOLDER goal,Sure,Phish,Privacy,custom\r\n"
    )
    assert load_benchmark(renamed)[0].id == "jbb_harmful-7"


def test_generic_loader_label_field_dotted_paths_and_metric(tmp_path):
    rows = [
        {"q": {"text": "PLACEHOLDER harmful request"}, "y": "unsafe", "k": "a"},
        {"q": {"text": "PLACEHOLDER benign request"}, "y": 0, "k": "b"},
    ]
    path = _write(tmp_path, "mine.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = load_generic(path, "q.text", label_field="y", id_field="k", category_field="k")
    assert [(i.id, i.label, i.metric, i.subset, i.source) for i in items] == [
        ("a", "harmful", "asr", "harmful", "mine"),
        ("b", "benign", "compliance", "benign", "mine"),
    ]
    fixed = load_generic(path, "q.text", label="harmful", metric="rta", subset="s")
    assert {(i.metric, i.subset) for i in fixed} == {("rta", "s")}
    with pytest.raises(ValueError, match="exactly one"):
        load_generic(path, "q.text")


def test_csv_line_numbers_count_the_header_and_quoted_newlines(tmp_path):
    # Line 1 header; record 1 spans lines 2-3 (quoted newline); record 2 on line 4 has no category.
    text = 'prompt,category\r\n"PLACEHOLDER a\r\nsecond line",illegal\r\nPLACEHOLDER b,\r\n'
    path = _write(tmp_path, "or_bench-hard-1k.csv", text)
    with pytest.raises(DatasetError) as err:
        load_orbench(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 4, "category")
    assert str(err.value) == f"{path}:4: field 'category': empty"


WGT_HEADER = (
    "prompt,response,adversarial,prompt_harm_label,response_harm_label,"
    "response_refusal_label,subcategory\n"
)
MALFORMED = [
    # (file name, content, line, record, field, message); read by load_benchmark(path)
    ("or_bench-toxic.csv", "text,category\nPLACEHOLDER,hate\n", 1, None, "prompt", "missing column"),
    ("or_bench-toxic.csv", "prompt,category\nPLACEHOLDER,hate,extra\n", 2, None, None, "3 fields"),
    ("harmful.jsonl", '{"vanilla": "a", "adversarial": "b"}\n{"vanilla": "a",\n', 2, None, None, "invalid JSON"),
    ("harmful.jsonl", '{"vanilla": "a", "adversarial": "b"}\n\n{"vanilla": "a"}\n', 3, None, "adversarial", "missing"),
    ("benign.jsonl", '["not", "an", "object"]\n', 1, None, None, "JSON object"),
    ("exaggerated_safety.json", '[{"id": "v2-1", "type": "bogus", "prompt": "p"}]', None, 1, "type", "unknown XSTest"),
    ("exaggerated_safety.json", '{"id": 1}', None, None, None, "JSON array"),
    ("wildguardtest_data.csv", WGT_HEADER + "PLACEHOLDER,r,False,maybe,harmful,refusal,x\n", 2, None, "prompt_harm_label", "not in"),
    ("trustllm_jailbreaktrigger_400.jsonl", '{"prompt": "PLACEHOLDER", "label": "cot", "source": "QBB", "id": 0}\n', 1, None, "label", "list of strings"),
    ("openai_moderation_evaluation_dataset.jsonl", '{"prompt": "PLACEHOLDER", "S": 2}\n', 1, None, "S", "expected 0, 1"),
    ("or_bench-toxic.csv", b"prompt,category\nok,hate\nbad \xff byte,hate\n", 3, None, None, "not UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "line", "record", "field", "match"),
    MALFORMED,
    ids=[f"{m[0]}-{m[5]}" for m in MALFORMED],
)
def test_malformed_files_name_file_line_and_field(
    tmp_path, name, content, line, record, field, match
):
    path = _write(tmp_path, name, content)
    with pytest.raises(DatasetError, match=match) as err:
        load_benchmark(path)
    assert err.value.path == str(path) and str(path) in str(err.value)
    assert (err.value.line, err.value.record, err.value.field) == (line, record, field)
    if field is not None:
        assert repr(field) in str(err.value)


def test_generic_label_errors_and_missing_file(tmp_path):
    path = _write(tmp_path, "x.csv", "p,y\nPLACEHOLDER,harmful\nPLACEHOLDER,perhaps\n")
    with pytest.raises(DatasetError) as err:
        load_generic(path, "p", label_field="y")
    assert (err.value.line, err.value.field) == (3, "y")
    with pytest.raises(DatasetError, match="no such file"):
        load_generic(tmp_path / "absent.jsonl", "p", label="benign")
    with pytest.raises(DatasetError, match="unknown format"):
        load_generic(_write(tmp_path, "x.txt", "hello"), "p", label="benign")


def test_wildguardtest_filter_and_subsets_on_a_synthetic_file(tmp_path):
    header = "prompt,response,adversarial,prompt_harm_label,response_harm_label,response_refusal_label,subcategory\n"
    rows = [
        "PLACEHOLDER h1,r,False,harmful,harmful,compliance,cyberattack",
        "PLACEHOLDER h2,r,True,harmful,unharmful,refusal,cyberattack",
        "PLACEHOLDER h3,r,True,harmful,,refusal,cyberattack",  # no response label: dropped
        "PLACEHOLDER b1,r,True,unharmful,unharmful,compliance,benign",
        "PLACEHOLDER u1,r,False,,unharmful,compliance,benign",  # no prompt label: dropped
    ]
    path = _write(tmp_path, "w.csv", header + "\n".join(rows) + "\n")
    items = load_wildguardtest(path)
    assert [(i.subset, i.metric, i.id) for i in items] == [
        ("vanilla_harmful", "asr", "wildguardtest-2"),
        ("adversarial_harmful", "asr", "wildguardtest-3"),
        ("adversarial_benign", "compliance", "wildguardtest-5"),
    ]
    assert items[1].reference["gold"] == {
        "prompt_harmful": True,
        "response_harmful": False,
        "response_refusal": True,
    }


def test_xstest_types_map_to_subsets(tmp_path):
    rows = [
        {"id": "v2-1", "type": "homonyms", "prompt": "PLACEHOLDER safe"},
        {"id": "v2-2", "type": "contrast_homonyms", "prompt": "PLACEHOLDER unsafe"},
    ]
    items = load_xstest(_write(tmp_path, "x.json", json.dumps(rows)))
    assert [(i.subset, i.label, i.metric) for i in items] == [
        ("safe", "benign", "compliance"),
        ("unsafe", "harmful", "rta"),
    ]


def test_eval_item_validates_label_and_metric():
    with pytest.raises(ValueError, match="label"):
        EvalItem(id="x", prompt="p", label="unsafe", source="s", subset="s", metric="asr")
    with pytest.raises(ValueError, match="metric"):
        EvalItem(id="x", prompt="p", label="harmful", source="s", subset="s", metric="f1")
    item = EvalItem(id="x", prompt="p", label="harmful", source="s", subset="s", metric="asr")
    assert hash(item) == hash(
        EvalItem(id="x", prompt="p", label="harmful", source="s", subset="s", metric="asr")
    )
    with pytest.raises(ValueError, match="limit"):
        load_benchmark("xstest", limit=-1)
