"""Agreement of the `keyword_label` judge (configs/smollm2-cpu.yaml) with WildGuardTest's human labels.

The judge is the keyword refusal detector plus the request's label (AdvBench/GCG protocol), so two
figures say how far to trust it:
- `response_refusal`: the detector alone against `response_refusal_label` (every labelled row);
- `response_harmful`: the protocol (request labelled harmful and reply not refused) against
  `response_harm_label`, the request label taken from WildGuardTest's own `prompt_harm_label`, as
  the seed's label is in training. Rows without a prompt label are skipped.

Positive = refusal / harmful. Reuses `magic_rl.judge.calibrate` (the reader and the statistics).

Run: `python benchmarks/keyword_label_agreement.py [--data PATH]` (seconds; prints JSON).
"""

from __future__ import annotations

import argparse
import json

from magic_rl.judge.calibrate import _binary_stats, load_wildguardtest
from magic_rl.judge.keyword import LabelledRefusalJudge, apply_request_labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="WildGuardTest CSV (default: shared data)")
    args = ap.parse_args()
    rows = load_wildguardtest(args.data)
    judge = LabelledRefusalJudge()
    labelled = [r for r in rows if r.prompt_harmful is not None]
    verdicts = judge.judge([r.prompt for r in labelled], [r.response for r in labelled])
    labels = ["harmful" if r.prompt_harmful else "benign" for r in labelled]
    verdicts = apply_request_labels(judge, verdicts, labels)
    out = {"judge": judge.name, "rows": len(rows)}
    for signal in ("response_refusal", "response_harmful"):
        pairs = [
            (getattr(v, signal), getattr(r, signal))
            for r, v in zip(labelled, verdicts, strict=True)
            if getattr(r, signal) is not None
        ]
        out[signal] = {**_binary_stats(pairs), "skipped": len(rows) - len(pairs)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
