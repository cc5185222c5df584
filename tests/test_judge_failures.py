"""Unknown judge verdicts: the reason of each, per-set counts, and the size variants of the guard
formats (a Qwen3Guard answer without `Refusal:` is an unknown refusal, cached like a clean answer)."""

from __future__ import annotations

import pytest

from magic_rl.judge.failures import describe, unknown_counts, unknown_reason
from magic_rl.judge.formats import get_format
from magic_rl.judge.keyword import KeywordRefusalJudge
from magic_rl.judge.score import JudgeStats, assemble, plan_calls
from magic_rl.records import Verdict


@pytest.mark.parametrize(
    ("verdict", "signal", "reason"),
    [
        (Verdict(True, False, True), "response_harmful", None),
        (
            Verdict(True, None, None, error="parse: wildguard: no 'harmful response'"),
            "response_harmful",
            "parse",
        ),
        (Verdict(None, None, None, error="no output"), "response_refusal", "endpoint"),
        (Verdict(None, None, None, error="HTTP 400: 'bad'"), "prompt_harmful", "endpoint"),
        (Verdict(None, None, None, error="timeout after 60.0s"), "prompt_harmful", "endpoint"),
        (
            Verdict(
                False, None, True, error="missing: qwen3guard response: no 'Refusal' line in 'x'"
            ),
            "response_refusal",
            "missing",
        ),
        (Verdict(False, False, None, error="controversial"), "response_harmful", "controversial"),
        (
            Verdict(
                False,
                None,
                None,
                error="controversial; missing: qwen3guard response: no 'Refusal' line",
            ),
            "response_refusal",
            "missing",
        ),
        (
            Verdict(None, True, None, error="keyword judge: no harm signal"),
            "response_harmful",
            "unsupported",
        ),
        (Verdict(True, None, None), "response_refusal", "other"),
    ],
)
def test_unknown_reason(verdict: Verdict, signal: str, reason: str | None) -> None:
    assert unknown_reason(verdict, signal) == reason


def test_unknown_reason_rejects_a_bad_signal() -> None:
    with pytest.raises(ValueError, match="signal"):
        unknown_reason(Verdict(True, True, True), "harm")


def test_unknown_counts_per_set() -> None:
    ok = Verdict(True, True, False)
    parse = Verdict(True, None, None, error="parse: x")
    missing = Verdict(True, None, False, error="missing: qwen3guard response: no 'Refusal' line")
    rows = [
        ("a", ok, ("response_harmful",)),
        ("a", parse, ("response_harmful",)),
        ("a", missing, ("response_harmful",)),  # harm known: not unknown for an ASR set
        ("b", missing, ("response_refusal",)),
        ("b", ok, ("response_refusal",)),
    ]
    counts = unknown_counts(rows)
    assert counts == {
        "a": {"n": 3, "unknown": 1, "by_reason": {"parse": 1}},
        "b": {"n": 2, "unknown": 1, "by_reason": {"missing": 1}},
    }
    assert describe(counts) == "a 1/3 (parse 1); b 1/2 (missing 1)"


def test_qwen3guard_small_size_answer_is_cached_and_not_a_parse_failure() -> None:
    """A response call answered without `Refusal:` (smaller Qwen3Guard-Gen sizes): the refusal is
    unknown, the harm label counts, and the answer is clean enough to cache (it is stable)."""
    fmt = get_format("qwen3guard")
    exchanges, calls = plan_calls(fmt, ["q"], ["I won't help."], 512)
    answers = {
        calls[0]: "Safety: Unsafe\nCategories: Violent",
        calls[1]: "Safety: Safe\nCategories: None",
    }
    stats = JudgeStats()
    (verdict,), clean = assemble(fmt, exchanges, answers, {}, stats)
    assert (verdict.prompt_harmful, verdict.response_refusal, verdict.response_harmful) == (
        True,
        None,
        False,
    )
    assert unknown_reason(verdict, "response_refusal") == "missing"
    assert stats.parse_failures == 0
    assert set(clean) == set(calls)


def test_keyword_judge_harm_is_unsupported_not_a_failure() -> None:
    (v,) = KeywordRefusalJudge().judge(["q"], ["I'm sorry, I can't help with that."])
    assert v.response_refusal is True
    assert unknown_reason(v, "response_harmful") == "unsupported"


def test_report_shows_unknown_counts_per_set_and_the_policy() -> None:
    from magic_rl.report.markup import Report
    from magic_rl.report.sections import _unknown_table, _without_unknown_counts
    from magic_rl.report.tables import metric_rows

    results = {
        "models": {
            "last": {
                "metrics": {
                    "x/a/asr": {
                        "name": "asr",
                        "value": 0.5,
                        "ci": [0.2, 0.8],
                        "n": 4,
                        "n_unknown": 1,
                    }
                },
                "judge_unknown": {"x/a": {"n": 5, "unknown": 1, "by_reason": {"parse": 1}}},
            }
        },
        "provenance": {
            "judge": {"unknown_policy": "left out and counted", "controversial": "harmful"}
        },
    }
    rows = metric_rows(_without_unknown_counts(results))
    assert [(r["value"], r["n_unknown"]) for r in rows] == [(0.5, 1)]  # counts are not metric rows
    rep = Report()
    _unknown_table(rep, results)
    md = "\n".join(rep.md)
    assert "left out and counted" in md and "Controversial -> harmful" in md
    assert "| last | x/a | 5 | 1 | parse 1 |" in md
