"""Agreement of the `keyword_label` judge (configs/smollm2-cpu.yaml) with WildGuardTest's human labels.

The judge is the keyword refusal detector plus the request's label (AdvBench/GCG protocol), so two
figures say how far to trust it:
- `response_refusal`: the detector alone against `response_refusal_label` (every labelled row);
- `response_harmful`: the protocol (request labelled harmful and reply not refused) against
  `response_harm_label`, the request label taken from WildGuardTest's own `prompt_harm_label`, as
  the seed's label is in training. Rows without a prompt label are skipped.

Positive = refusal / harmful. Reuses `magic judge audit` (`magic_rl.evaluate.audit`): the same
reader, reply cut and statistics (95% bootstrap CIs).

Run: `python benchmarks/keyword_label_agreement.py [--data-root PATH]` (seconds; prints a table).
"""

from __future__ import annotations

import argparse

from magic_rl.data.benchmarks import load_benchmark
from magic_rl.evaluate.audit import audit, markdown
from magic_rl.judge.keyword import LabelledRefusalJudge, apply_request_labels


class ItemLabelled:
    """The keyword_label judge, each request given its WildGuardTest prompt label as seed label."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.inner = LabelledRefusalJudge()
        self.name = self.inner.name
        self.labels = labels

    def judge(self, prompts, responses):
        verdicts = self.inner.judge(prompts, responses)
        return apply_request_labels(self.inner, verdicts, [self.labels[p] for p in prompts])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="public benchmark folder (../shared/data)")
    args = ap.parse_args()
    items = load_benchmark("wildguardtest_judge", data_root=args.data_root)
    judge = ItemLabelled({i.judge_request: i.label for i in items})
    result = audit(judge, items)
    keep = {"response_refusal", "response_harmful"}
    result.scores[:] = [s for s in result.scores if s.signal in keep]
    print(markdown(result))


if __name__ == "__main__":
    main()
