"""`magic judge audit`: a judge scored against human- or reference-labelled exchanges, so a change
to a judge that moves its agreement is seen (judge regression).

Labelled sets (any `judge_f1` benchmark whose items carry `reference["response"]` and gold signals):
- `jailbreakbench_artifacts`: 1,637 (goal, response, jailbroken) rows of the 18 public
  JailbreakBench artifacts; gold `response_harmful` = JailbreakBench's judge label `jailbroken`.
- `wildguardtest_judge`: WildGuardTest's human labels of prompt harm, response refusal and response
  harm (a signal left unlabelled on a row is skipped for that signal).

For every set (pooled per benchmark, and per subset) and every gold signal: accuracy and F1 (the
harmful/refusal label is the positive class) with 95% percentile-bootstrap CIs
(`evaluate.metrics`), the confusion counts, and the items whose prediction was unknown, by reason
(`judge.failures`: parse, endpoint, missing line, unsupported signal). Unknowns are left out of
accuracy and F1, never scored as "no". Where the gold signal is `response_harmful`, a second row
`response_harmful<-not_refused` scores "the reply was not refused" as the harm prediction: this is
how refusal-string matching is used as a jailbreak judge (HarmBench's `advbench` column), and the
only harm-like signal the keyword detector has.

The judge sees exactly what `magic eval` gives it: the request, and the reply with any <think> block
removed cut to `judge.max_response_tokens` words; a row without a response is a prompt-only call.

Departure: this module lives in `evaluate/`, not `judge/`, because it reads benchmarks and metrics,
which sit below the judge in the one-way import order.

Run:
    magic judge audit --judge keyword --judge embedded --data-root ../shared/data
    python -m pytest -q tests/test_judge_audit.py
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from magic_rl.config import GameConfig
from magic_rl.data.benchmarks import EvalItem
from magic_rl.evaluate.eval.protocol import judge_replies
from magic_rl.evaluate.metrics import MetricResult, bootstrap_ci, f1_score
from magic_rl.judge.failures import unknown_reason
from magic_rl.records import Verdict

DEFAULT_SETS = ("jailbreakbench_artifacts", "wildguardtest_judge")
PROXY = "response_harmful<-not_refused"
CHUNK = 256  # exchanges per judge call, so a progress callback can advance


@dataclass(frozen=True)
class SignalScore:
    """One judge's agreement with gold labels on one signal of one set."""

    set: str
    signal: str
    n: int  # labelled items whose prediction is known
    n_unknown: int
    unknown_by_reason: dict[str, int]
    tp: int
    fp: int
    fn: int
    tn: int
    accuracy: MetricResult
    f1: MetricResult

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["accuracy"], d["f1"] = self.accuracy.to_dict(), self.f1.to_dict()
        return d


@dataclass(frozen=True)
class AuditResult:
    judge: str
    scores: list[SignalScore] = field(default_factory=list)
    n_items: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "n_items": self.n_items,
            "scores": [s.to_dict() for s in self.scores],
        }


def judge_items(
    judge,
    items: Sequence[EvalItem],
    max_words: int,
    *,
    game: GameConfig | None = None,
    advance: Callable[[int], None] = lambda k: None,
) -> list[Verdict]:
    """The judge's verdict on every item's (request, stored response), as `magic eval` judges
    (replies read as `game` reads them); an item without a response is a prompt-only call."""
    verdicts: list[Verdict] = []
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        replies = [i.reference.get("response") or None for i in chunk]
        requests = [i.judge_request for i in chunk]
        verdicts += judge_replies(judge, requests, replies, max_words, game)
        advance(len(chunk))
    return verdicts


def _prediction(verdict: Verdict, signal: str) -> tuple[bool | None, str | None]:
    """(prediction, unknown reason) of a signal; the proxy reads the refusal label."""
    if signal == PROXY:
        refusal = verdict.response_refusal
        pred = None if refusal is None else not refusal
        return pred, unknown_reason(verdict, "response_refusal")
    return getattr(verdict, signal), unknown_reason(verdict, signal)


def score_signal(
    set_name: str,
    signal: str,
    items: Sequence[EvalItem],
    verdicts: Sequence[Verdict],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> SignalScore:
    """Agreement of one signal's predictions with the gold labels of `items`."""
    gold_signal = "response_harmful" if signal == PROXY else signal
    pred: list[bool | None] = []
    gold: list[bool] = []
    reasons: dict[str, int] = {}
    for item, verdict in zip(items, verdicts, strict=True):
        g = item.reference.get("gold", {}).get(gold_signal)
        if g is None:
            continue
        p, reason = _prediction(verdict, signal)
        if p is None:
            reasons[reason or "other"] = reasons.get(reason or "other", 0) + 1
        pred.append(p)
        gold.append(bool(g))
    known = np.array([(p, g) for p, g in zip(pred, gold, strict=True) if p is not None], dtype=bool)
    known = known.reshape(-1, 2)
    p_arr, g_arr = known[:, 0], known[:, 1]
    hits = (p_arr == g_arr).astype(float)
    acc_value = float(hits.mean()) if len(hits) else float("nan")
    accuracy = MetricResult(
        "accuracy",
        acc_value,
        bootstrap_ci(hits, n_resamples, seed=seed),
        len(hits),
        len(pred) - len(hits),
        True,
        source=set_name,
        subset=signal,
    )
    f1 = f1_score(pred, gold, name="f1", n_resamples=n_resamples, seed=seed)
    return SignalScore(
        set=set_name,
        signal=signal,
        n=len(hits),
        n_unknown=len(pred) - len(hits),
        unknown_by_reason=reasons,
        tp=int((p_arr & g_arr).sum()),
        fp=int((p_arr & ~g_arr).sum()),
        fn=int((~p_arr & g_arr).sum()),
        tn=int((~p_arr & ~g_arr).sum()),
        accuracy=accuracy,
        f1=f1,
    )


def audit(
    judge,
    items: Sequence[EvalItem],
    *,
    max_words: int = 512,
    n_resamples: int = 1000,
    seed: int = 0,
    game: GameConfig | None = None,
    advance: Callable[[int], None] = lambda k: None,
) -> AuditResult:
    """Score `judge` on labelled `judge_f1` items: per benchmark (pooled) and per subset, every
    gold signal (plus the not-refused proxy where the gold is response_harmful)."""
    bad = [i.id for i in items if "gold" not in i.reference]
    if bad:
        raise ValueError(f"{len(bad)} items carry no reference['gold'] (first: {bad[0]!r})")
    verdicts = judge_items(judge, items, max_words, game=game, advance=advance)
    groups: dict[str, list[int]] = {}
    for k, item in enumerate(items):
        groups.setdefault(item.source, []).append(k)
        groups.setdefault(f"{item.source}/{item.subset}", []).append(k)
    scores = []
    for name, idx in groups.items():
        if "/" in name and len({items[k].subset for k in groups[name.split("/")[0]]}) == 1:
            continue  # a benchmark with one subset: the pooled row says it all
        chosen = [items[k] for k in idx]
        signals = sorted({s for i in chosen for s in i.reference["gold"]})
        if "response_harmful" in signals:
            signals.append(PROXY)
        for signal in signals:
            scores.append(
                score_signal(
                    name,
                    signal,
                    chosen,
                    [verdicts[k] for k in idx],
                    n_resamples=n_resamples,
                    seed=seed,
                )
            )
    return AuditResult(getattr(judge, "name", type(judge).__name__), scores, len(items))


def _ci(m: MetricResult) -> str:
    if m.n == 0 or m.value != m.value:
        return "n/a"
    return f"{m.value:.3f} [{m.ci[0]:.3f}, {m.ci[1]:.3f}]"


def audit_rows(result: AuditResult) -> list[list[str]]:
    """[set, signal, n, accuracy, F1, tp/fp/fn/tn, unknown (reasons)] per score."""
    rows = []
    for s in result.scores:
        why = ", ".join(f"{r} {k}" for r, k in sorted(s.unknown_by_reason.items()))
        rows.append(
            [
                s.set,
                s.signal,
                str(s.n),
                _ci(s.accuracy),
                _ci(s.f1),
                f"{s.tp}/{s.fp}/{s.fn}/{s.tn}",
                f"{s.n_unknown}" + (f" ({why})" if why else ""),
            ]
        )
    return rows


AUDIT_HEADER = ["set", "signal", "n", "accuracy [95% CI]", "F1 [95% CI]", "tp/fp/fn/tn", "unknown"]


def markdown(result: AuditResult) -> str:
    lines = [
        f"Judge `{result.judge}` on {result.n_items} labelled items.\n",
        "| " + " | ".join(AUDIT_HEADER) + " |",
        "|" + "---|" * len(AUDIT_HEADER),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in audit_rows(result)]
    return "\n".join(lines) + "\n"
