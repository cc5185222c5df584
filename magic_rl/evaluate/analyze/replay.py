"""Replay analysis: per training stage, the taxonomy distribution, hybrid ratio, SORRY-Bench
strategies, faithfulness (share still carrying the seed's request) and diversity of a run's attacker
rewrites (`analyze_replay`), written to
RUN_DIR/analysis/strategy.json (`write_analysis`)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from magic_rl.content import carries
from magic_rl.data.files import read_jsonl_rows
from magic_rl.data.outputs import write_output
from magic_rl.evaluate.analyze.diversity import embedding_diversity, self_bleu
from magic_rl.evaluate.analyze.rules import Tagger, rule_tagger, tag_strategy
from magic_rl.evaluate.analyze.taxonomy import (
    FAMILIES,
    TAXONOMY,
    UNKNOWN,
    classes_of,
    is_hybrid,
)


def read_replay(path: str | Path) -> list[dict]:
    """Records of a replay.jsonl; raises ValueError naming the file, line and field of a bad row."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no replay buffer (runs write replay.jsonl)")
    rows = []
    for lineno, row in read_jsonl_rows(path):
        where = f"{path}:{lineno}"
        for key, kind in (("step", int), ("seed", dict), ("turns", list)):
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                raise ValueError(f"{where}: field {key!r} missing or not {kind.__name__}")
        for key in ("label", "text"):
            if not isinstance(row["seed"].get(key), str):
                raise ValueError(f"{where}: field 'seed.{key}' missing or not a string")
        for k, turn in enumerate(row["turns"]):
            if not isinstance(turn, dict) or not isinstance(turn.get("attack"), str):
                raise ValueError(f"{where}: field 'turns[{k}].attack' missing or not a string")
        rows.append(row)
    return rows


def stage_edges(steps: Sequence[int], stages: int) -> list[tuple[int, int]]:
    """Split [min(steps), max(steps)] into `stages` contiguous, equally wide, inclusive step
    ranges (fewer when there are fewer distinct steps)."""
    if stages < 1:
        raise ValueError(f"stages must be >= 1, got {stages}")
    lo, hi = min(steps), max(steps)
    stages = min(stages, hi - lo + 1)
    cuts = np.linspace(lo, hi + 1, stages + 1)
    bounds = [int(math.ceil(c)) for c in cuts]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(stages) if bounds[i + 1] > bounds[i]]


def stage_stats(
    texts: Sequence[str],
    seeds: Sequence[str],
    tagger: Tagger,
    *,
    max_texts: int = 400,
    max_diversity: int = 200,
    rng: random.Random,
) -> dict[str, Any]:
    """Taxonomy distribution, hybrid ratio, distinct codes, SORRY-Bench strategies and diversity
    of one stage's rewrites, tagged on a sample of at most `max_texts` (diversity on at most
    `max_diversity` of those)."""
    idx = list(range(len(texts)))
    if len(idx) > max_texts:
        idx = sorted(rng.sample(idx, max_texts))
    sample = [texts[i] for i in idx]
    sample_seeds = [seeds[i] for i in idx]
    codes = tagger(sample, sample_seeds) if sample else []
    known = [c for c in codes if c != UNKNOWN]
    code_counts = Counter(known)
    # A hybrid's weight is split across its classes, so the class shares sum to 1 (stacked bars).
    class_share: Counter = Counter()
    for c in known:
        parts = classes_of(c)
        for cls in parts:
            class_share[cls] += 1 / len(parts)
    n = len(known)
    div = sample[:max_diversity]
    faithful = [carries(t, s) for t, s in zip(texts, seeds, strict=True)]
    return {
        "n_rewrites": len(texts),
        # share of all the stage's rewrites still carrying their seed's request
        "faithful_rate": sum(faithful) / len(faithful) if faithful else math.nan,
        "n_tagged": len(codes),
        "n_unknown": len(codes) - n,
        "codes": {c: k / n for c, k in code_counts.most_common()} if n else {},
        "classes": {str(c): class_share[c] / n for c in sorted(class_share)} if n else {},
        "families": _family_shares(class_share, n),
        "hybrid_ratio": sum(is_hybrid(c) for c in known) / n if n else math.nan,
        "distinct_codes": len(code_counts),
        "sorry_strategies": dict(
            Counter(
                tag_strategy(t, s) for t, s in zip(sample, sample_seeds, strict=True)
            ).most_common()
        ),
        "self_bleu": self_bleu(div),
        "embedding_diversity": embedding_diversity(div),
    }


def _family_shares(class_share: Counter, n: int) -> dict[str, float]:
    if not n:
        return {}
    return {f: sum(class_share[c] for c in classes) / n for f, classes in FAMILIES.items()}


def analyze_replay(
    run_dir: str | Path,
    stages: int = 4,
    *,
    tagger: Tagger | None = None,
    label: str = "harmful",
    max_texts: int = 400,
    max_diversity: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Per training stage, the attack patterns of the attacker's rewrites of `label` seeds.

    Every turn's attack counts once per (step, seed, text): in defender phases the G replies of a
    group share one greedy rewrite, which would otherwise be counted G times. Stages split the
    run's step range evenly (`stage_edges`). Default tagger: `rule_tagger`.
    """
    run_dir = Path(run_dir)
    rows = read_replay(run_dir / "replay.jsonl")
    tagger = tagger or rule_tagger
    seen: set[tuple] = set()
    items: list[tuple[int, str, str, str]] = []  # (step, attack, seed text, trained role)
    for row in rows:
        if row["seed"]["label"] != label:
            continue
        for turn in row["turns"]:
            key = (row["step"], row["seed"].get("id", row["seed"]["text"]), turn["attack"])
            if turn["attack"].strip() and key not in seen:
                seen.add(key)
                items.append(
                    (
                        row["step"],
                        turn["attack"],
                        row["seed"]["text"],
                        str(row.get("trained_role", "")),
                    )
                )
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "label": label,
        "tagger": "rules" if tagger is rule_tagger else repr(tagger),
        "taxonomy": {str(k): v for k, v in TAXONOMY.items()},
        "n_records": len(rows),
        "n_rewrites": len(items),
        "stages": [],
    }
    if not items:
        return result
    rng = random.Random(seed)
    for lo, hi in stage_edges([s for s, *_ in items], stages):
        sel = [it for it in items if lo <= it[0] <= hi]
        stats = stage_stats(
            [it[1] for it in sel],
            [it[2] for it in sel],
            tagger,
            max_texts=max_texts,
            max_diversity=max_diversity,
            rng=rng,
        )
        roles = Counter(it[3] for it in sel)
        result["stages"].append({"steps": [lo, hi], "trained_roles": dict(roles), **stats})
    return result


def write_analysis(run_dir: str | Path, analysis: dict[str, Any]) -> Path:
    """RUN_DIR/analysis/strategy.json (NaN written as null)."""
    path = Path(run_dir) / "analysis" / "strategy.json"
    text = json.dumps(_nan_to_none(analysis), indent=2) + "\n"
    return write_output(
        path, text, mark='"n_rewrites"', writer="magic analyze", hint="move it away and rerun"
    )


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj
