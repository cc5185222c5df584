"""Evaluation metrics: hand-computed cases, unknown handling, bootstrap and t intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from magic_rl.data.benchmarks import EvalItem
from magic_rl.evaluate.metrics import (
    MetricResult,
    asr,
    bootstrap_ci,
    compliance,
    compliance_asr,
    diff_ci,
    f1_score,
    mean_ci,
    rta,
    student_t_ppf,
    summarize_items,
)
from magic_rl.records import Verdict

T, F, U = True, False, None

RATES = [
    # (function, flags, value, n, n_unknown, higher_is_better)
    (asr, [T, F, U, T], 2 / 3, 3, 1, False),
    (asr, [F, F, F, F], 0.0, 4, 0, False),
    (compliance_asr, [T, F, F, U, U], 2 / 3, 3, 2, False),
    (rta, [T, F, F, T, T], 3 / 5, 5, 0, True),
    (compliance, [T, F, F, T, T], 2 / 5, 5, 0, True),
    (compliance, [T, T, U], 0.0, 2, 1, True),
]


@pytest.mark.parametrize(("fn", "flags", "value", "n", "n_unknown", "higher"), RATES)
def test_rates_by_hand(fn, flags, value, n, n_unknown, higher):
    r = fn(flags)
    assert r.value == pytest.approx(value)
    assert (r.n, r.n_unknown, r.higher_is_better, r.name) == (n, n_unknown, higher, fn.__name__)
    assert r.ci[0] <= r.value <= r.ci[1]


def test_all_unknown_gives_nan_not_zero():
    r = asr([U, U, U])
    assert math.isnan(r.value) and math.isnan(r.ci[0]) and (r.n, r.n_unknown) == (0, 3)


def test_f1_by_hand_skips_missing_gold_and_counts_unknown_predictions():
    # pairs with gold: (1,1) tp, (1,0) fp, (0,1) fn, (0,0) tn, (None,1) unknown; (1,None) skipped.
    r = f1_score([T, T, F, F, U, T], [T, F, T, F, T, U])
    assert r.value == pytest.approx(0.5)  # 2*1 / (2*1 + 1 + 1)
    assert (r.n, r.n_unknown, r.higher_is_better) == (4, 1, True)
    assert f1_score([T, T], [T, T]).value == 1.0
    assert math.isnan(f1_score([F, F], [F, F]).value)  # no positives anywhere: undefined
    with pytest.raises(ValueError, match="length"):
        f1_score([T], [T, F])


def test_bootstrap_ci_contains_estimate_narrows_with_n_and_is_deterministic():
    rng = np.random.default_rng(1)
    small = rng.random(40) < 0.3
    large = rng.random(4000) < 0.3
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4  # width ~ 1/sqrt(n): 10x narrower, allow slack
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)
    assert bootstrap_ci(small, seed=3) != bootstrap_ci(small, seed=4)
    # A wider confidence level gives a wider interval.
    lo90, hi90 = bootstrap_ci(small, alpha=0.10)
    assert lo_s <= lo90 and hi90 <= hi_s


def test_bootstrap_ci_edge_cases():
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci([1.0], alpha=1.5)
    lo, hi = bootstrap_ci(
        np.array([[1, 1], [0, 1], [1, 0], [0, 0]] * 10), statistic=lambda p: p[:, 0].mean()
    )
    assert 0.2 < lo <= 0.5 <= hi < 0.8


@pytest.mark.parametrize(
    ("q", "df", "expected"),
    [
        (0.975, 1, 12.7062),
        (0.975, 2, 4.3027),
        (0.975, 4, 2.7764),
        (0.975, 29, 2.0452),
        (0.95, 10, 1.8125),
        (0.025, 4, -2.7764),
    ],
)
def test_student_t_quantiles_match_tables(q, df, expected):
    assert student_t_ppf(q, df) == pytest.approx(expected, abs=1e-3)


def test_mean_ci_and_diff_ci_by_hand():
    r = mean_ci([0.1, 0.2, 0.3])
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert (r.mean, r.n) == (pytest.approx(0.2), 3)
    assert (r.lo, r.hi) == (
        pytest.approx(0.2 - half, abs=1e-5),
        pytest.approx(0.2 + half, abs=1e-5),
    )
    one = mean_ci([0.4])
    assert one.mean == 0.4 and math.isnan(one.lo) and math.isnan(one.hi)
    assert mean_ci([0.1, math.nan, 0.3]).n == 2
    # Paired: differences are all 0.1 -> zero-width interval; unpaired: wide (Welch).
    a, b = [0.5, 0.6, 0.7], [0.4, 0.5, 0.6]
    paired = diff_ci(a, b, paired=True)
    assert paired.mean == pytest.approx(0.1) and paired.hi - paired.lo == pytest.approx(
        0.0, abs=1e-12
    )
    welch = diff_ci(a, b, paired=False)
    assert welch.mean == pytest.approx(0.1) and welch.lo < 0 < welch.hi
    with pytest.raises(ValueError, match="equal lengths"):
        diff_ci([1.0], [1.0, 2.0], paired=True)


def _item(
    i: int, subset: str, metric: str, label: str = "harmful", category: str = "", **ref
) -> EvalItem:
    return EvalItem(
        id=str(i),
        prompt="PLACEHOLDER",
        label=label,
        source="bench",
        subset=subset,
        metric=metric,
        category=category,
        reference=ref,
    )


def test_summarize_items_reads_the_right_verdict_signal_and_pools_subsets():
    items = [
        _item(0, "vanilla_harmful", "asr", category="a"),
        _item(1, "vanilla_harmful", "asr", category="b"),
        _item(2, "adversarial_harmful", "asr", category="a"),
        _item(3, "adversarial_harmful", "asr", category="a"),
        _item(4, "adversarial_benign", "compliance", label="benign"),
        _item(5, "adversarial_benign", "compliance", label="benign"),
    ]
    v = Verdict
    outcomes = [
        v(True, False, True),  # harmful reply
        v(True, True, False),
        v(True, False, None),  # unknown harm label: excluded, counted
        v(True, False, False),
        v(False, True, False),  # refused a benign prompt
        v(False, False, False),
    ]
    out = summarize_items(items, outcomes, n_resamples=200)
    assert set(out) == {
        "bench/vanilla_harmful/asr",
        "bench/adversarial_harmful/asr",
        "bench/all/asr",
        "bench/adversarial_benign/compliance",
    }
    assert out["bench/vanilla_harmful/asr"].value == 0.5
    assert (
        out["bench/adversarial_harmful/asr"].value,
        out["bench/adversarial_harmful/asr"].n_unknown,
    ) == (0.0, 1)
    pooled = out["bench/all/asr"]
    assert (pooled.value, pooled.n, pooled.n_unknown) == (pytest.approx(1 / 3), 3, 1)
    benign = out["bench/adversarial_benign/compliance"]
    assert (benign.value, benign.higher_is_better, benign.source, benign.subset) == (
        0.5,
        True,
        "bench",
        "adversarial_benign",
    )
    # The same numbers from bare flags.
    flags = [True, False, None, False, True, False]
    assert summarize_items(items, flags, n_resamples=200)["bench/all/asr"].value == pooled.value
    by_cat = summarize_items(items, outcomes, by_category=True, n_resamples=200)
    assert by_cat["bench/vanilla_harmful/a/asr"].value == 1.0
    assert by_cat["bench/all/a/asr"].n == 2
    assert isinstance(out["bench/all/asr"], MetricResult)
    assert out["bench/all/asr"].to_dict()["ci"] == list(pooled.ci)


def test_summarize_items_judge_f1_and_errors():
    items = [
        _item(0, "all", "judge_f1", gold={"prompt_harmful": True, "response_harmful": False}),
        _item(1, "all", "judge_f1", gold={"prompt_harmful": False, "response_harmful": None}),
        _item(2, "all", "judge_f1", gold={"prompt_harmful": True, "response_harmful": True}),
    ]
    verdicts = [Verdict(True, None, False), Verdict(True, None, True), Verdict(None, None, True)]
    out = summarize_items(items, verdicts, n_resamples=100)
    assert set(out) == {"bench/all/f1/prompt_harmful", "bench/all/f1/response_harmful"}
    prompt = out["bench/all/f1/prompt_harmful"]
    assert (prompt.value, prompt.n, prompt.n_unknown) == (pytest.approx(2 / 3), 2, 1)
    response = out["bench/all/f1/response_harmful"]
    assert (response.value, response.n) == (1.0, 2)
    with pytest.raises(ValueError, match="pass a Verdict"):
        summarize_items(items, [True, False, True])
    with pytest.raises(ValueError, match="outcomes"):
        summarize_items(items, [True])
    with pytest.raises(TypeError, match="outcome"):
        summarize_items([_item(0, "s", "asr")], ["harmful"])


def test_bootstrap_95_percent_interval_matches_the_normal_interval_on_a_large_bernoulli_sample():
    # n = 2000, p ~ 0.3: the normal (Wald) interval p +- 1.96 sqrt(p(1-p)/n) is accurate here, so
    # the 95% percentile bootstrap must agree with it. Tolerance: 8% of the half-width (the
    # Monte-Carlo error of B = 4000 resamples was at most 4.3% over ten samples). A 97.5% interval
    # is 14% wider and an 80% interval 35% narrower, so a wrong level fails.
    x = (np.random.default_rng(7).random(2000) < 0.3).astype(float)
    p = x.mean()
    half = 1.959964 * math.sqrt(p * (1 - p) / len(x))
    lo, hi = bootstrap_ci(x, n_resamples=4000, seed=0)
    assert abs(lo - (p - half)) <= 0.08 * half, (lo, p - half)
    assert abs(hi - (p + half)) <= 0.08 * half, (hi, p + half)
    # the same with alpha = 0.2 against z = 1.2816 (80%)
    half80 = 1.281552 * math.sqrt(p * (1 - p) / len(x))
    lo80, hi80 = bootstrap_ci(x, n_resamples=4000, alpha=0.2, seed=0)
    assert abs(lo80 - (p - half80)) <= 0.08 * half80 and abs(hi80 - (p + half80)) <= 0.08 * half80


def _slow_f1_ci(pred: list[bool], gold: list[bool], n_resamples: int) -> tuple[float, float]:
    """Percentile bootstrap of F1 written out: resample pairs, count tp/fp/fn, sort, read the
    2.5th and 97.5th percentiles (linear interpolation, as numpy's default)."""
    import random

    rng = random.Random(12345)
    n, stats = len(pred), []
    for _ in range(n_resamples):
        tp = fp = fn = 0
        for _ in range(n):
            i = rng.randrange(n)
            tp += pred[i] and gold[i]
            fp += pred[i] and not gold[i]
            fn += gold[i] and not pred[i]
        if tp + fp + fn:
            stats.append(2 * tp / (2 * tp + fp + fn))
    stats.sort()

    def percentile(q: float) -> float:
        pos = q * (len(stats) - 1)
        k = int(pos)
        return stats[k] + (stats[min(k + 1, len(stats) - 1)] - stats[k]) * (pos - k)

    return percentile(0.025), percentile(0.975)


def test_f1_ci_matches_an_explicit_resampling_loop():
    # 300 pairs: 120 gold positives, recall 0.5, precision 0.8 -> F1 = 2*60/(75+120) = 0.6154.
    # Accuracy (0.78), precision and recall differ from F1, so a CI of the wrong statistic fails.
    pred = [True] * 60 + [False] * 60 + [True] * 15 + [False] * 165
    gold = [True] * 120 + [False] * 180
    order = np.random.default_rng(0).permutation(300)
    pred, gold = [pred[i] for i in order], [gold[i] for i in order]
    result = f1_score(pred, gold, n_resamples=2000)
    assert result.value == pytest.approx(2 * 60 / (75 + 120))
    want = _slow_f1_ci(pred, gold, 2000)
    # two independent Monte-Carlo runs of B = 2000: endpoints agree within 0.02 (width ~0.13)
    assert result.ci[0] == pytest.approx(want[0], abs=0.02)
    assert result.ci[1] == pytest.approx(want[1], abs=0.02)
    assert result.ci[0] < result.value < result.ci[1]
