"""The ablation's metric columns, spelled once: each column's key in ablation.json, the metric it
reads, its readable name and whether higher is better. Every header is derived from the name and
the direction: ablation.md's "held-out strategy ASR ↓", the terminal's "held-out ASR↓", the
report's Ablation section's "held-out strategy ASR ↓" (`NAMES`, read by `report.tables.metric_name`).

`experiment.design` aggregates these columns over training seeds and `experiment.render` writes
them; the report (a floor below the experiment) reads the same names. Pure data, no imports of the
package.
"""

from __future__ import annotations

from dataclasses import dataclass

# The training-log column (attacker faithfulness) is the mean over a run's last this many steps.
FAITHFUL_WINDOW = 15


def arrow(higher_is_better: bool | None) -> str:
    """ " ↑" / " ↓" after a metric's name; "" when its direction is unknown."""
    return "" if higher_is_better is None else (" ↑" if higher_is_better else " ↓")


@dataclass(frozen=True)
class Metric:
    """One column: its key in ablation.json, the metric it reads (`source` "eval": a key of an
    evaluation's results.json; "train": of the run's metrics.jsonl; a run metric: of the run
    directory), its readable name, its direction and its terminal abbreviation."""

    key: str
    eval_key: str
    name: str
    higher_is_better: bool
    abbrev: str  # the terminal table's narrow header, before its arrow
    source: str = "eval"

    @property
    def header(self) -> str:
        """ablation.md's header: the name and its direction; a training-log column names its
        window instead (it describes the attacker, not the defender the ablation ranks)."""
        if self.source == "train":
            return f"{self.name} (last {FAITHFUL_WINDOW} steps)"
        return f"{self.name}{arrow(self.higher_is_better)}"

    @property
    def short(self) -> str:
        """The terminal table's header: the abbreviation and its arrow, without the space."""
        return (
            self.abbrev
            if self.source == "train"
            else self.abbrev + arrow(self.higher_is_better)[1:]
        )


# All are rates in [0, 1]: intervals are clipped to that range.
METRICS: tuple[Metric, ...] = (
    Metric(
        "held_out_asr",
        "sandbox/held_out_strategies/asr",
        "held-out strategy ASR",
        False,
        "held-out ASR",
    ),
    Metric(
        "held_out_asr_ciphers",
        "sandbox/held_out_strategies/ciphers/asr",
        "held-out ASR, ciphers",
        False,
        "ciphers",
    ),
    Metric(
        "held_out_asr_other",
        "sandbox/held_out_strategies/other/asr",
        "held-out ASR, other framings",
        False,
        "other",
    ),
    Metric("train_asr", "sandbox/train_strategies/asr", "train strategy ASR", False, "train ASR"),
    Metric(
        "vanilla_asr", "sandbox/vanilla_harmful/asr", "vanilla harmful ASR", False, "vanilla ASR"
    ),
    Metric("rta", "sandbox/vanilla_harmful/rta", "RTA", True, "RTA"),
    Metric("benign_compliance", "sandbox/benign/compliance", "benign compliance", True, "benign"),
    Metric(
        "adversarial_benign_compliance",
        "sandbox/adversarial_benign/compliance",
        "adversarial-benign compliance",
        True,
        "adv. benign",
    ),
    Metric(
        "contrast_compliance",
        "sandbox/contrast/compliance",
        "contrast compliance",
        True,
        "contrast",
    ),
    Metric(
        "attacker_faithful",
        "attacker/faithful_rate",
        "attacker faithful",
        True,
        "faithful",
        source="train",
    ),
)


EVAL_METRICS = tuple(m for m in METRICS if m.source == "eval")


# Read from the run directory, not the evaluation: present when the runs played live cross-play.
RUN_METRICS: tuple[Metric, ...] = (
    Metric("forgetting", "crossplay/forgetting", "forgetting (cross-play)", False, "forget"),
)


# Readable name and direction of an ablation.json key: the columns above, and the plain metric
# names a hand-written ablation file may use.
NAMES: dict[str, tuple[str, bool]] = {
    **{m.key: (m.name, m.higher_is_better) for m in METRICS + RUN_METRICS},
    "asr": ("ASR", False),
    "compliance": ("compliance", True),
}
