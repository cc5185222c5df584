"""The step's stage helpers: the seed sampler (stage 0), the memoised step judge (stage 2), the
rewrites' novelty for the attacker's novelty term (read from text before stage 3, so the rewards
read numbers only), the game and diversity metrics and replay records (stage 6, log), and the
stage timer."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from magic_rl.config import GameConfig, RunConfig
from magic_rl.content import REQUEST_MARKER, request_core
from magic_rl.evaluate.analyze.diversity import novelty_ranks, self_bleu, tokenize
from magic_rl.evaluate.analyze.rules import is_hybrid_tags, tag_strategies
from magic_rl.game import rewrite_carries_request
from magic_rl.judge.score import score_exchanges
from magic_rl.records import Episode, Role, Seed, Verdict
from magic_rl.rewards import Novelty

OPENING_WORDS = 3  # an attack's opening: its first words, the seed's request masked


class SeedSampler:
    """Deterministic batches: step s draws the next slice of a per-epoch shuffle of each label."""

    def __init__(
        self,
        seeds: Sequence[Seed],
        per_step: int,
        harmful_fraction: float,
        run_seed: int,
        field: str = "data.harmful_fraction",
    ):
        self.by_label = {
            label: [s for s in seeds if s.label == label] for label in ("harmful", "benign")
        }
        n_harm = round(per_step * harmful_fraction)
        self.per_label = {"harmful": n_harm, "benign": per_step - n_harm}
        for label, n in self.per_label.items():
            if n and not self.by_label[label]:
                raise ValueError(
                    f"the batch needs {label} seeds ({field}={harmful_fraction}) "
                    "but the seed set has none"
                )
        self.run_seed = run_seed

    @classmethod
    def per_role(cls, cfg: RunConfig, seeds: Sequence[Seed]) -> dict[Role, SeedSampler]:
        """One sampler per role: an attacker step's batch is `train.attacker_seeds_per_step` seeds,
        `data.attacker_harmful_fraction` of them harmful (each null: the defender's numbers).
        Both draw with the run seed, so at equal numbers the two roles see the same batches."""
        train, data = cfg.train, cfg.data
        n_att = train.attacker_seeds_per_step or train.seeds_per_step
        if data.attacker_harmful_fraction is None:
            f_att, field = data.harmful_fraction, "data.harmful_fraction"
        else:
            f_att, field = data.attacker_harmful_fraction, "data.attacker_harmful_fraction"
        return {
            Role.DEFENDER: cls(seeds, train.seeds_per_step, data.harmful_fraction, cfg.seed),
            Role.ATTACKER: cls(seeds, n_att, f_att, cfg.seed, field),
        }

    def batch(self, step: int) -> list[Seed]:
        out: list[Seed] = []
        for label, n in self.per_label.items():
            pool = self.by_label[label]
            for i in range(step * n, (step + 1) * n):
                epoch, pos = divmod(i, len(pool))
                order = list(range(len(pool)))
                random.Random(f"{self.run_seed}:{label}:{epoch}").shuffle(order)
                out.append(pool[order[pos]])
        return out


class StepJudge:
    """Judges exchanges once per step: multi-turn early stopping and the reward stage share verdicts
    (`judge.score.score_exchanges` with a memo that lives as long as the step; replies read as
    `game` reads them, the sandbox's `[request]` marker expanded under `game.request_marker`)."""

    def __init__(self, judge, max_response_words: int, game: GameConfig | None = None):
        self.judge = judge
        self.max_words = max_response_words
        self.game = game
        self.memo: dict[tuple[str, str | None], Verdict] = {}
        self.calls = 0

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]:
        before = len(self.memo)
        verdicts = score_exchanges(
            self.judge, prompts, responses, self.max_words, self.memo, self.game
        )
        self.calls += len(self.memo) - before
        return verdicts


def novelty_of(episodes: Sequence[Episode], replies_per_attack: int = 1) -> list[Novelty]:
    """Per episode, its rewrite's in-group novelty rank among its seed's distinct rewrites
    (`novelty_ranks`; the K episodes of one rewrite, members m*K .. m*K+K-1, count once) and
    whether it still carries the seed's request."""
    by_group: dict[int, dict[int, str]] = {}
    for e in episodes:
        by_group.setdefault(e.group, {}).setdefault(e.member // replies_per_attack, e.last.attack)
    rank: dict[tuple[int, int], float] = {}
    for group, rewrites in by_group.items():
        for m, r in zip(rewrites, novelty_ranks(list(rewrites.values())), strict=True):
            rank[group, m] = r
    return [
        Novelty(rank[e.group, e.member // replies_per_attack], rewrite_carries_request(e))
        for e in episodes
    ]


def template_of(attack: str, seed_text: str) -> str:
    """The attack with its seed's request masked back to the marker: what the attacker chose."""
    core = request_core(seed_text)
    return attack.replace(core, REQUEST_MARKER) if core else attack


def diversity_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """How varied the step's rewrites are (docs/metrics.md): distinct strategies (the rule
    tagger's) and openings among them, the share of hybrids (two or more strategies' signatures,
    `tag_strategies`), and two input->output distinguishability proxies over one
    rewrite per seed (its first member), the request masked: the share of distinct templates
    (1 = each seed its own, 1/n = one framing for every seed) and their self-BLEU (1 = collapse)."""
    rewrites = {(e.last.attack, e.seed.text) for e in episodes}
    found = [tag_strategies(attack, seed) for attack, seed in rewrites]  # each rewrite tagged once
    tags = {t[0] for t in found if t}  # tag_strategy's tag: the first in its order
    openings = {
        tuple(tokenize(template_of(attack, seed))[:OPENING_WORDS]) for attack, seed in rewrites
    }
    firsts: dict[int, str] = {}
    for e in sorted(episodes, key=lambda e: e.member):
        firsts.setdefault(e.group, template_of(e.last.attack, e.seed.text))
    m = {
        "attacker/diversity/strategies": float(len(tags)),
        "attacker/diversity/openings": float(len(openings)),
    }
    if found:
        m["attacker/diversity/hybrid_share"] = sum(map(is_hybrid_tags, found)) / len(found)
    if firsts:
        m["attacker/diversity/template_share"] = len(set(firsts.values())) / len(firsts)
    if len(firsts) > 1:
        m["attacker/diversity/cross_seed_bleu"] = self_bleu(list(firsts.values()))
    return m


def game_metrics(episodes: Sequence[Episode], verdicts: Sequence[Verdict]) -> dict[str, float]:
    """The run's vocabulary for what happened in the game (see docs/metrics.md)."""
    m: dict[str, float] = {}
    for label in ("harmful", "benign"):
        idx = [i for i, e in enumerate(episodes) if e.seed.label == label]
        refusals = [verdicts[i].response_refusal for i in idx]
        known = [r for r in refusals if r is not None]
        if known:
            m[f"defender/refusal_rate/{label}"] = sum(known) / len(known)
        if label == "harmful":
            harms = [
                verdicts[i].response_harmful
                for i in idx
                if verdicts[i].response_harmful is not None
            ]
            if harms:
                m["game/asr"] = sum(harms) / len(harms)
    if {"defender/refusal_rate/harmful", "defender/refusal_rate/benign"} <= m.keys():
        m["game/refusal_gap"] = (
            m["defender/refusal_rate/harmful"] - m["defender/refusal_rate/benign"]
        )
    m["attacker/format_rate"] = sum(e.last.attack_format_ok for e in episodes) / max(
        len(episodes), 1
    )
    m["attacker/faithful_rate"] = sum(map(rewrite_carries_request, episodes)) / max(
        len(episodes), 1
    )
    m["judge/unknown"] = float(sum(v.any_unknown for v in verdicts))
    m["game/turns"] = sum(len(e.turns) for e in episodes) / max(len(episodes), 1)
    m["tokens/attacker"] = float(sum(len(t.attack_ids) for e in episodes for t in e.turns))
    m["tokens/defender"] = float(sum(len(t.reply_ids) for e in episodes for t in e.turns))
    m["game/truncated/defender"] = sum(e.last.reply_finish == "length" for e in episodes) / max(
        len(episodes), 1
    )
    return m


def is_count(key: str) -> bool:
    """Metrics that add up over the shards of a data-parallel step (the rest are averaged)."""
    return key.startswith(("tokens/", "judge/")) or key.endswith(
        ("/invalid", "/truncated", "reward/dropped", "/update/samples", "/update/tokens")
    )


def replay_records(step: int, role: Role, episodes, verdicts, rewards) -> Iterator[dict]:
    for k, (ep, v) in enumerate(zip(episodes, verdicts, strict=True)):
        yield {
            "step": step,
            "trained_role": role.value,
            "episode": k,
            "group": ep.group,
            "member": ep.member,
            "seed": {
                "id": ep.seed.id,
                "label": ep.seed.label,
                "category": ep.seed.category,
                "text": ep.seed.text,
            },
            "turns": [
                {
                    "reasoning": t.reasoning,
                    "attack": t.attack,
                    "reply": t.reply,
                    "format_ok": t.attack_format_ok,
                    "attack_finish": t.attack_finish,
                    "reply_finish": t.reply_finish,
                }
                for t in ep.turns
            ],
            "verdict": {
                "prompt_harmful": v.prompt_harmful,
                "response_refusal": v.response_refusal,
                "response_harmful": v.response_harmful,
                "score": v.score,
                "error": v.error,
            },
            "rewards": {
                r.value: {
                    "total": rewards[r][k].total,
                    "valid": rewards[r][k].valid,
                    **rewards[r][k].components,
                }
                for r in Role
            },
        }


class Timer:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        t = time.perf_counter()
        yield
        key = f"time/{stage}"  # a stage run twice in a step (concurrent protocol) adds up
        self.times[key] = self.times.get(key, 0.0) + time.perf_counter() - t
