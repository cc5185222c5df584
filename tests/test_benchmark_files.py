"""Every benchmark loader on a few-row synthetic file per format (tests/data/benchmarks), laid out as
the public files: runs on a clean clone, without ../shared/data. Counts and gold labels are written
by hand from the files (each file is a handful of rows: read it to check a number).

The tests on the real files (tests/test_benchmarks.py, `real_` tests) are the second layer.
Run: `python -m pytest -q tests/test_benchmark_files.py` (under a second).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from magic_rl.data.benchmarks import (
    BENCHMARKS,
    load_benchmark,
    load_harmbench,
    load_jailbreakbench,
)

SYN = Path(__file__).parent / "data" / "benchmarks"

# name, rows, {(subset, metric): count}, labels -- counted by hand from the synthetic files
SYNTH = [
    (
        "harmbench",
        5,
        {("standard", "asr"): 2, ("contextual", "asr"): 1, ("copyright", "asr"): 2},
        {"harmful"},
    ),
    ("harmbench_attacks", 3, {("PAIR", "asr"): 2, ("DirectRequest", "asr"): 1}, {"harmful"}),
    (
        "harmbench_classifier_val",
        5,
        {("vanilla", "judge_f1"): 3, ("adversarial", "judge_f1"): 2},
        {"harmful"},
    ),
    (
        "wildguardtest",
        4,
        {
            ("vanilla_harmful", "asr"): 1,
            ("adversarial_harmful", "asr"): 1,
            ("vanilla_benign", "compliance"): 1,
            ("adversarial_benign", "compliance"): 1,
        },
        {"harmful", "benign"},
    ),
    (
        "wildguardtest_judge",
        5,
        {("vanilla", "judge_f1"): 2, ("adversarial", "judge_f1"): 3},
        {"harmful", "benign"},
    ),
    ("wildjailbreak_harmful", 3, {("adversarial_harmful", "compliance_asr"): 3}, {"harmful"}),
    ("wildjailbreak_benign", 2, {("adversarial_benign", "compliance"): 2}, {"benign"}),
    ("or_bench_hard", 3, {("hard", "compliance"): 3}, {"benign"}),
    ("or_bench_toxic", 2, {("toxic", "rta"): 2}, {"harmful"}),
    ("strongreject", 3, {("full", "rta"): 3}, {"harmful"}),
    ("strongreject_small", 2, {("small", "rta"): 2}, {"harmful"}),
    ("dan", 2, {("adversarial_harmful", "compliance_asr"): 2}, {"harmful"}),
    ("trustllm", 3, {("QBB", "compliance_asr"): 2, ("ITC", "compliance_asr"): 1}, {"harmful"}),
    ("openai_moderation", 4, {("all", "judge_f1"): 4}, {"harmful", "benign"}),
    ("xstest", 4, {("safe", "compliance"): 2, ("unsafe", "rta"): 2}, {"harmful", "benign"}),
    # 4 rows, the last without a response: left out of the judge set
    ("jailbreakbench_artifacts", 3, {("PAIR:black_box", "judge_f1"): 3}, {"harmful"}),
]


def test_every_bundled_benchmark_has_a_synthetic_file():
    bundled = {name for name, b in BENCHMARKS.items() if b.path is not None}
    # magic_validation is parquet, built in a temporary folder below
    assert bundled == {row[0] for row in SYNTH} | {"magic_validation"}


@pytest.mark.parametrize(("name", "rows", "subsets", "labels"), SYNTH, ids=[r[0] for r in SYNTH])
def test_synthetic_counts_subsets_and_metrics(name, rows, subsets, labels):
    items = load_benchmark(name, data_root=SYN)
    assert len(items) == rows
    assert Counter((i.subset, i.metric) for i in items) == Counter(subsets)
    assert {i.label for i in items} == labels
    assert len({i.id for i in items}) == rows, "ids must be unique"
    assert all(i.prompt.startswith("PLACEHOLDER") for i in items)


def test_harmbench_judge_gold_is_the_majority_of_three_human_votes():
    # votes per completion: (1,0,0) (1,1,0) (0,0,0) (1,1,1) (0,1,0): two have a majority; four have
    # at least one vote, so "any vote" would give 4.
    items = load_benchmark("harmbench_classifier_val", data_root=SYN)
    gold = [i.reference["gold"]["response_harmful"] for i in items]
    assert gold == [False, True, False, True, False]
    assert [i.id for i in items] == [
        "syn_behaviour_a/0",
        "syn_behaviour_a/1",
        "syn_behaviour_b/0",
        "syn_behaviour_b/1",
        "syn_behaviour_b/2",
    ]
    # vanilla = DirectRequest or the "default" experiment
    assert [i.subset for i in items] == [
        "vanilla",
        "adversarial",
        "adversarial",
        "vanilla",
        "vanilla",
    ]
    assert items[0].reference["response"] == "PLACEHOLDER completion 0"


def test_harmbench_copyright_and_contextual_rows():
    path = SYN / BENCHMARKS["harmbench"].path
    plain = {i.id: i for i in load_harmbench(path)}
    ctx = {i.id: i for i in load_harmbench(path, include_context=True)}
    assert {k: i.reference["tags"] for k, i in plain.items() if i.subset == "copyright"} == {
        "syn_copyright_book": "book, hash_check",
        "syn_copyright_lyrics": "lyrics, hash_check",
    }
    contextual = ctx["syn_contextual_1"]
    passage = "PLACEHOLDER passage, line one\r\nPLACEHOLDER passage, line two"
    assert contextual.prompt == f"{passage}\n\n---\n\nPLACEHOLDER request about the passage above"
    assert contextual.judge_prompt == plain["syn_contextual_1"].prompt
    assert plain["syn_contextual_1"].judge_prompt == ""  # without context the judge sees the prompt
    assert ctx["syn_standard_1"].prompt == plain["syn_standard_1"].prompt
    assert plain["syn_standard_2"].category == "misinformation_disinformation"


def test_wildguardtest_gold_labels_by_hand():
    judge = load_benchmark("wildguardtest_judge", data_root=SYN)
    # the row without a prompt label (file line 7) is dropped; ids are file lines
    assert [i.id for i in judge] == [f"wildguardtest-{n}" for n in (2, 3, 4, 5, 6)]
    gold = [i.reference["gold"] for i in judge]
    assert [g["prompt_harmful"] for g in gold] == [True, True, True, False, False]
    assert [g["response_harmful"] for g in gold] == [True, False, None, False, False]
    assert [g["response_refusal"] for g in gold] == [False, True, True, False, True]
    gen = load_benchmark("wildguardtest", data_root=SYN)
    # the generation view also drops line 4 (no response label)
    assert [i.id for i in gen] == [f"wildguardtest-{n}" for n in (2, 3, 5, 6)]
    assert gen[1].prompt == "PLACEHOLDER adversarial harmful, with a comma"


def test_openai_moderation_harmful_when_any_category_is_one():
    items = load_benchmark("openai_moderation", data_root=SYN)
    assert [i.reference["gold"]["prompt_harmful"] for i in items] == [False, True, False, True]
    assert [i.category for i in items] == ["", "SH", "", "H,V"]


def test_vanilla_request_goes_to_the_judge_for_wildjailbreak_and_dan():
    for name in ("wildjailbreak_harmful", "wildjailbreak_benign", "dan"):
        for item in load_benchmark(name, data_root=SYN):
            assert item.judge_request == item.judge_prompt != item.prompt
            assert "vanilla" in item.judge_prompt
    dan = load_benchmark("dan", data_root=SYN)
    assert [i.reference["community_name"] for i in dan] == [None, "Syn Community"]  # NaN -> None
    assert [i.category for i in dan] == ["", "Syn Community"]
    xs = load_benchmark("xstest", data_root=SYN)
    assert all(i.judge_request == i.prompt for i in xs)


def test_trustllm_strongreject_orbench_and_xstest_fields():
    trust = load_benchmark("trustllm", data_root=SYN)
    assert [(i.id, i.subset, i.category) for i in trust] == [
        ("trustllm-0", "QBB", "bad words"),
        ("trustllm-1", "QBB", "cot,leetspeak"),
        ("trustllm-2", "ITC", "url encoded"),
    ]
    strong = load_benchmark("strongreject", data_root=SYN)
    assert [i.reference["origin"] for i in strong] == ["custom", "AdvBench", "custom"]
    hard = load_benchmark("or_bench_hard", data_root=SYN)
    assert hard[1].prompt == "PLACEHOLDER hard 2, quoted" and hard[1].category == "privacy"
    xs = load_benchmark("xstest", data_root=SYN)
    assert [(i.id, i.subset, i.label) for i in xs] == [
        ("v2-1", "safe", "benign"),
        ("v2-2", "safe", "benign"),
        ("v2-3", "unsafe", "harmful"),
        ("v2-4", "unsafe", "harmful"),
    ]


def test_jailbreakbench_harmful_and_benign_files():
    harmful = load_jailbreakbench(SYN / "jailbreakbench" / "harmful-behaviors.csv")
    benign = load_benchmark(SYN / "jailbreakbench" / "benign-behaviors.csv")  # sniffed by header
    assert [(i.id, i.label, i.metric, i.category) for i in harmful] == [
        ("jbb_harmful-1", "harmful", "asr", "Privacy"),
        ("jbb_harmful-2", "harmful", "asr", "Harassment/Discrimination"),
    ]
    assert [(i.id, i.label, i.metric) for i in benign] == [
        ("jbb_benign-1", "benign", "compliance"),
        ("jbb_benign-2", "benign", "compliance"),
    ]


def test_generic_file_with_a_label_column():
    items = load_benchmark(
        SYN / "generic" / "mine.csv",
        prompt_field="text",
        label_field="verdict",
        id_field="id",
        category_field="topic",
    )
    assert [(i.id, i.label, i.metric, i.category) for i in items] == [
        ("g1", "harmful", "asr", "a"),
        ("g2", "benign", "compliance", "b"),
        ("g3", "harmful", "asr", "a"),
    ]


def test_magic_validation_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "data_source": "syn",
            "prompt": [{"role": "user", "content": f"PLACEHOLDER adversarial benign {i}"}],
            "question": f"PLACEHOLDER vanilla {i}",
            "data_type": "adversarial_benign",
        }
        for i in range(3)
    ]
    path = tmp_path / BENCHMARKS["magic_validation"].path
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    items = load_benchmark("magic_validation", data_root=tmp_path)
    assert [(i.id, i.prompt, i.judge_prompt) for i in items] == [
        (
            f"magic_validation-{i + 1}",
            f"PLACEHOLDER adversarial benign {i}",
            f"PLACEHOLDER vanilla {i}",
        )
        for i in range(3)
    ]
    assert {(i.subset, i.metric, i.label) for i in items} == {
        ("adversarial_benign", "compliance", "benign")
    }
