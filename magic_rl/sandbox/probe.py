"""Measure a defender of the sandbox world per attack strategy: ASR, refusal and compliance rates.

For every strategy, the test-split seeds' pool rewrites are sent to the defender under the training
chat view (`Question:\\n{attack}`); replies are greedy (the evaluation protocol) or sampled at the
rollout temperature (`sampled=True`, what the game sees), and judged by the world's embedded judge.
Vanilla seeds form the `vanilla` row. `carried` is the share of the replies that are not refusals
and still carry the seed's request (`magic_rl.content.carries`): harm needs content, so a compliance
that fails to restate the request is not harmful. This is the base defender's vulnerability table
in docs/sandbox.md.

Each row's headline is its ASR (harmful seeds) or compliance (benign seeds), shown with its 95%
bootstrap interval in the same cell. `write_probe` saves the rows (probe.json) and their markdown
table (probe.md).

Run: `magic sandbox probe [--model PATH] [--sampled] [--out DIR]`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from magic_rl.config import PolicyConfig, RunConfig
from magic_rl.content import carries
from magic_rl.data.seeds import split_of
from magic_rl.evaluate.metrics import bootstrap_ci
from magic_rl.game import reply_as_read
from magic_rl.judge import make_judge
from magic_rl.loop import StepJudge
from magic_rl.policy.load import load_policy
from magic_rl.prompts import defender_messages, load_templates
from magic_rl.sandbox.world import build_world
from magic_rl.strategies import read_pool


@dataclass(frozen=True)
class ProbeRow:
    strategy: str
    label: str
    n: int
    harmful_rate: float
    refusal_rate: float
    carried_rate: float  # of the non-refusals: share carrying the seed's request
    ci: tuple[float, float]  # of the row's headline rate: ASR for harmful, compliance for benign

    @property
    def headline(self) -> float:
        """ASR for harmful seeds, compliance (1 - refusal) for benign ones: what `ci` brackets."""
        return self.harmful_rate if self.label == "harmful" else 1 - self.refusal_rate


def probe_defender(
    cfg: RunConfig,
    model: str | None = None,
    *,
    sampled: bool = False,
    per_strategy: int = 60,
    split: str = "test",
    log=print,
) -> list[ProbeRow]:
    world = build_world(cfg, log=log)
    policy = load_policy(model or world.base, PolicyConfig(dtype="float32"), "cpu")
    # the world's own judge, whatever judge the config trains with
    judge_cfg = cfg.judge.model_copy(
        update={"backend": "embedded", "model": str(world.judge), "endpoint": None}
    )
    marked = cfg.game.model_copy(update={"request_marker": True})  # the world's replies mark
    judge = StepJudge(make_judge(judge_cfg), cfg.judge.max_response_tokens, marked)
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)

    items: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    seen_seeds = set()
    for rec in read_pool(world.pool):
        if split_of(rec.seed) != split:
            continue
        key = (rec.strategy, rec.seed.label)
        if len(items[key]) < per_strategy:
            items[key].append((rec.rewrite, rec.seed.text))
        if rec.seed.id not in seen_seeds and len(items["vanilla", rec.seed.label]) < per_strategy:
            seen_seeds.add(rec.seed.id)
            items["vanilla", rec.seed.label].append((rec.seed.text, rec.seed.text))

    keys = sorted(items, key=lambda k: (k[0] != "vanilla", k[1], k[0]))
    prompts = [p for k in keys for p, _ in items[k]]
    requests = [r for k in keys for _, r in items[k]]
    s = cfg.defender.sampling
    gens = policy.generate(
        [defender_messages(templates, [], p) for p in prompts],
        temperature=s.temperature if sampled else 0.0,
        top_p=s.top_p,
        max_new_tokens=s.max_new_tokens,
        max_prompt_tokens=s.max_prompt_tokens,
        seed=cfg.seed,
    )
    verdicts = judge(prompts, [g.text for g in gens])
    carried = [
        carries(reply_as_read(g.text, p, marked), r)
        for g, p, r in zip(gens, prompts, requests, strict=True)
    ]
    rows, i = [], 0
    for strategy, label in keys:
        vs = verdicts[i : i + len(items[strategy, label])]
        cs = carried[i : i + len(vs)]
        i += len(vs)
        harmful = [float(v.response_harmful is True) for v in vs]
        refused = [float(v.response_refusal is True) for v in vs]
        headline = harmful if label == "harmful" else [1 - r for r in refused]
        answered = [c for c, r in zip(cs, refused, strict=True) if not r]
        rows.append(
            ProbeRow(
                strategy,
                label,
                len(vs),
                sum(harmful) / len(vs),
                sum(refused) / len(vs),
                sum(answered) / len(answered) if answered else float("nan"),
                bootstrap_ci(headline, seed=cfg.seed),
            )
        )
    return rows


HEADERS = ("strategy", "seeds", "n", "ASR / compliance [95% CI]", "refusal", "carried")


def table_rows(rows: list[ProbeRow]) -> list[list[str]]:
    """One line per row: the headline (ASR for harmful seeds, compliance for benign ones) beside
    its interval, so the interval always brackets the value next to it."""
    out = []
    for r in rows:
        what = "ASR" if r.label == "harmful" else "compliance"
        head = "{} {:.2f} [{:.2f}, {:.2f}]".format(what, r.headline, *r.ci)
        carried = "-" if math.isnan(r.carried_rate) else f"{r.carried_rate:.2f}"
        out.append([r.strategy, r.label, str(r.n), head, f"{r.refusal_rate:.2f}", carried])
    return out


def markdown_table(rows: list[ProbeRow]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows)]
    return "\n".join(lines)


def rich_table(rows: list[ProbeRow], title: str = ""):
    from magic_rl.tables import key_table

    return key_table(title or None, HEADERS, table_rows(rows), keys=2)


def write_probe(rows: list[ProbeRow], out_dir: Path, provenance: dict) -> Path:
    """probe.json (`provenance` and the rows) and probe.md under `out_dir`; returns probe.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "provenance": provenance,
        "rows": [{**asdict(r), "headline": r.headline} for r in rows],
    }
    path = out_dir / "probe.json"
    path.write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")
    (out_dir / "probe.md").write_text(markdown_table(rows) + "\n")
    return path
