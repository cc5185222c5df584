"""Per-role rewards from the judge's labels (docs/DESIGN.md §3): one pure function per term, then a
combiner.

    R_harm = +r_harm if the reply is judged safe, -r_harm if harmful
    R_ref  = +r_ref if (request harmful and refused) or (request benign and not refused), else -r_ref
    R_fmt  = +r_fmt if the attacker output is exactly <think>…</think><answer>…</answer>, else -r_fmt
    R_D = R_harm + R_ref          R_A = -R_D + R_fmt (+ R_label when r_label > 0)
    R_quality (defender only, when r_quality > 0), on benign seeds: +r_quality if the reply
    complies and carries the seed's request (`Verdict.reply_carries_request`), else -r_quality
    R_novelty (attacker only, when r_novelty > 0) = r_novelty * rank for a faithful rewrite, else 0;
    rank in [0, 1] is the rewrite's in-group self-BLEU rank, computed before this stage
    (`Novelty`; `evaluate.analyze.diversity.novelty_ranks`, 1 = least like its group)
    K replies per rewrite (`game.replies_per_attack`): the attacker's reward for the rewrite is
    the mean of its K replies' R_A or the best (`reward.reply_score`; `pool_replies`)
    An unfaithful rewrite (`Verdict.rewrite_carries_request` False) under `reward.unfaithful:
    failed`: the attacker's harm and refusal terms take their minimum (-r_harm, -r_ref: a failed
    attack), and the defender's sample is dropped from its update (note `unfaithful rewrite`)

Rewards are a function of the labels alone: the verdicts, the seed's dataset label and the turns'
format and finish flags. No text is read here (`tests/test_architecture.py` checks the imports);
whether a reply carries its request is decided in the judge stage (`game.carries_request`).

Defaults are the paper's (Table 6: r_harm=1, r_ref=0.5, r_fmt=0.5). A term returns `None` when a
label it needs is unknown; `compute_rewards` then applies `reward.unknown_policy`: `drop` marks the
exchange invalid for both roles (counted as `reward/dropped`), `harmful` reads an unknown reply as
harmful, an unknown refusal as not refused and an unknown rewrite label as harmful. An unknown label
is never read as safe (the reference code did). An unknown `reply_carries_request` is a missing
label like the others (worst case: not carried).

Choices the paper leaves open:
- The reward uses the LAST exchange of an episode (the verdicts are of that exchange) and the
  attacker format of the last turn; a truncation in ANY turn counts, because every generated token
  of the episode enters the update.
- The quality term (docs/DESIGN.md §3's optional defender-quality term) is the defender's alone: R_A
  stays -(R_harm + R_ref) + R_fmt, so an attacker gains nothing from making a benign request
  unhelpable other than what R_ref already pays. The paper asks an LLM judge; here content overlap
  decides.
- Graded harm: `Verdict.score` is a harm score s in [0, 1] (1 = harmful), so the term is
  r_harm·(2(1-s)-1) = r_harm·(1-2s); it equals the binary term at s ∈ {0, 1}.
- A penalised truncation replaces the role's reward: total = -truncation_penalty and the only
  component is `truncation`. For every valid sample, total == sum(components).
- `truncation=keep` scores a truncated turn like any other (the judge saw the cut reply): for a
  real model whose replies run past a CPU-sized budget, where masking would drop most samples.
- `unfaithful=failed` is for a judge that reads the seed's label instead of the rewrite
  (`keyword_label`, `request_label_source: seed`): there a rewrite that drops the request is paid
  as a success whenever the reply is not a refusal, and the defender is paid to refuse what now
  reads as benign. A judge that labels the rewrite itself needs no gate (the paper's `judged`).
  An unknown faithfulness label is a missing label like the others (worst case: unfaithful).

Run: `python -m pytest -q tests/test_rewards.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal, NamedTuple

from magic_rl.config import RewardConfig
from magic_rl.records import Episode, Label, RewardBreakdown, Role, Verdict

UNKNOWN_NOTE = "unknown judge label"
TRUNCATED_NOTE = "truncated"
UNFAITHFUL_NOTE = "unfaithful rewrite"


class Novelty(NamedTuple):
    """One episode's rewrite as the novelty term reads it, computed before the rewards stage."""

    rank: float  # in-group self-BLEU rank in [0, 1], 1 = least like the group's other rewrites
    faithful: bool  # the rewrite still carries the seed's request


def r_harm(
    reply_harmful: bool | None, cfg: RewardConfig, score: float | None = None
) -> float | None:
    """R_harm: +r_harm for a safe reply, -r_harm for a harmful one; graded when cfg.graded_harm."""
    if cfg.graded_harm:
        if score is None:
            return None
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"judge score {score!r} is outside [0, 1]")
        return cfg.r_harm * (1.0 - 2.0 * score)
    if reply_harmful is None:
        return None
    return -cfg.r_harm if reply_harmful else cfg.r_harm


def r_ref(request_harmful: bool | None, refused: bool | None, cfg: RewardConfig) -> float | None:
    """R_ref: +r_ref when the reply refuses exactly the harmful requests, else -r_ref."""
    if request_harmful is None or refused is None:
        return None
    return cfg.r_ref if request_harmful == refused else -cfg.r_ref


def r_fmt(format_ok: bool, cfg: RewardConfig) -> float:
    """R_fmt (attacker only): +r_fmt for a well-formed <think>/<answer> output, else -r_fmt."""
    return cfg.r_fmt if format_ok else -cfg.r_fmt


def r_label(rewrite_harmful: bool | None, seed_label: Label, cfg: RewardConfig) -> float | None:
    """R_label (attacker only, optional): +r_label when the judge labels the rewrite as the seed is
    labelled (a harmful seed stays harmful, a benign one stays benign), else -r_label."""
    if rewrite_harmful is None:
        return None
    return cfg.r_label if rewrite_harmful == (seed_label == "harmful") else -cfg.r_label


def r_quality(
    request_harmful: bool | None, refused: bool | None, carried: bool | None, cfg: RewardConfig
) -> float | None:
    """R_quality (defender only, optional): on a benign request +r_quality when the reply
    complies (not refused) and carries the request, else -r_quality; 0 on a harmful request."""
    if request_harmful is None or refused is None or carried is None:
        return None
    if request_harmful:
        return 0.0
    return cfg.r_quality if (carried and not refused) else -cfg.r_quality


def r_novelty(novelty: Novelty, cfg: RewardConfig) -> float:
    """R_novelty (attacker only, optional): r_novelty * the in-group rank for a faithful rewrite,
    0 for an unfaithful one (novelty that drops the request earns nothing)."""
    if not 0.0 <= novelty.rank <= 1.0:
        raise ValueError(f"novelty rank {novelty.rank!r} is outside [0, 1]")
    return cfg.r_novelty * novelty.rank if novelty.faithful else 0.0


def request_label(
    judge_prompt_harmful: bool | None,
    seed_label: Label | None,
    source: Literal["rewrite", "seed"],
) -> bool | None:
    """Is the request harmful, for R_ref: the judge's label of the rewrite (`rewrite`, reference
    default) or the seed's dataset label (`seed`), each falling back to the other when missing."""
    seed_harmful = None if seed_label is None else seed_label == "harmful"
    if source == "rewrite":
        return judge_prompt_harmful if judge_prompt_harmful is not None else seed_harmful
    return seed_harmful if seed_harmful is not None else judge_prompt_harmful


def compute_rewards(
    episodes: Sequence[Episode],
    verdicts: Sequence[Verdict],
    cfg: RewardConfig,
    novelty: Sequence[Novelty] | None = None,
) -> dict[Role, list[RewardBreakdown]]:
    """One RewardBreakdown per episode and role, in episode order; verdicts[i] judges episodes[i]'s
    last exchange, novelty[i] (needed when r_novelty > 0) ranks its rewrite."""
    if len(episodes) != len(verdicts):
        raise ValueError(f"{len(episodes)} episodes but {len(verdicts)} verdicts")
    if cfg.r_novelty > 0 and (novelty is None or len(novelty) != len(episodes)):
        got = "none" if novelty is None else len(novelty)
        raise ValueError(
            f"reward.r_novelty needs one novelty per episode: {got} for {len(episodes)}"
        )
    out: dict[Role, list[RewardBreakdown]] = {Role.DEFENDER: [], Role.ATTACKER: []}
    for k, (episode, verdict) in enumerate(zip(episodes, verdicts, strict=True)):
        nov = novelty[k] if cfg.r_novelty > 0 and novelty is not None else None
        defender, attacker = _episode_rewards(episode, verdict, cfg, nov)
        out[Role.DEFENDER].append(defender)
        out[Role.ATTACKER].append(attacker)
    return out


def pool_replies(
    episodes: Sequence[Episode],
    rewards: Sequence[RewardBreakdown],
    k: int,
    how: Literal["mean", "best"],
) -> tuple[list[Episode], list[RewardBreakdown]]:
    """The attacker's update data when each rewrite met K replies (consecutive episodes sharing
    one rewrite, `game.play`): one episode per rewrite, its reward from the K breakdowns' valid
    ones: `mean` averages the total and each component (a missing one counts 0), `best` keeps
    the breakdown with the highest total (the first on a tie). No valid one: the first, invalid."""
    if len(episodes) != len(rewards) or len(episodes) % k:
        raise ValueError(f"{len(episodes)} episodes, {len(rewards)} rewards: not rewrites x {k}")
    out_eps, out_rewards = [], []
    for start in range(0, len(episodes), k):
        chunk = rewards[start : start + k]
        valid = [b for b in chunk if b.valid]
        out_eps.append(episodes[start])
        if not valid:
            out_rewards.append(chunk[0])
        elif how == "best":
            out_rewards.append(max(valid, key=lambda b: b.total))
        else:
            keys = list(dict.fromkeys(key for b in valid for key in b.components))
            out_rewards.append(
                RewardBreakdown(
                    _mean([b.total for b in valid]),
                    {key: _mean([b.components.get(key, 0.0) for b in valid]) for key in keys},
                    note=valid[0].note,
                )
            )
    return out_eps, out_rewards


def _episode_rewards(
    episode: Episode, verdict: Verdict, cfg: RewardConfig, novelty: Novelty | None = None
) -> tuple[RewardBreakdown, RewardBreakdown]:
    worst_case = cfg.unknown_policy == "harmful"
    reply_harmful, refused, rewrite_harmful, score, carried = (
        verdict.response_harmful,
        verdict.response_refusal,
        verdict.prompt_harmful,
        verdict.score,
        verdict.reply_carries_request,
    )
    faithful = True if cfg.unfaithful == "judged" else verdict.rewrite_carries_request
    if worst_case:
        reply_harmful = True if reply_harmful is None else reply_harmful
        score = 1.0 if score is None else score
        refused = False if refused is None else refused
        rewrite_harmful = True if rewrite_harmful is None else rewrite_harmful
        carried = False if carried is None else carried
        faithful = False if faithful is None else faithful

    harm = r_harm(reply_harmful, cfg, score)
    # The seed label always exists, so the request label is known after the fallback.
    request_harmful = request_label(
        verdict.prompt_harmful, episode.seed.label, cfg.request_label_source
    )
    refusal = r_ref(request_harmful, refused, cfg)
    d_parts = {"harm": harm, "refusal": refusal}
    if cfg.r_quality > 0:
        d_parts["quality"] = r_quality(request_harmful, refused, carried, cfg)
    a_parts = {
        "harm": None if harm is None else -harm,
        "refusal": None if refusal is None else -refusal,
        "format": r_fmt(episode.last.attack_format_ok, cfg),
    }
    if cfg.r_label > 0:
        a_parts["label"] = r_label(rewrite_harmful, episode.seed.label, cfg)
    if novelty is not None:
        a_parts["novelty"] = r_novelty(novelty, cfg)
    if faithful is False:  # reward.unfaithful: failed
        a_parts["harm"], a_parts["refusal"] = -cfg.r_harm, -cfg.r_ref
    # An unknown label that a term of either role needs drops the whole exchange.
    unknown = faithful is None or any(v is None for v in (*d_parts.values(), *a_parts.values()))

    truncated = {
        Role.DEFENDER: any(t.reply_finish == "length" for t in episode.turns),
        Role.ATTACKER: any(t.attack_finish == "length" for t in episode.turns),
    }
    defender = _breakdown(d_parts, truncated[Role.DEFENDER], unknown, cfg)
    if faithful is False and defender.valid:
        defender = replace(defender, total=0.0, valid=False, note=UNFAITHFUL_NOTE)
    return defender, _breakdown(a_parts, truncated[Role.ATTACKER], unknown, cfg)


def _breakdown(
    parts: dict[str, float | None], truncated: bool, unknown: bool, cfg: RewardConfig
) -> RewardBreakdown:
    known = {k: v for k, v in parts.items() if v is not None}
    if truncated and cfg.truncation == "penalize":
        return RewardBreakdown(-cfg.truncation_penalty, {"truncation": -cfg.truncation_penalty})
    if truncated and cfg.truncation == "mask":
        return RewardBreakdown(0.0, known, valid=False, note=TRUNCATED_NOTE)
    if unknown:
        return RewardBreakdown(0.0, known, valid=False, note=UNKNOWN_NOTE)
    return RewardBreakdown(sum(known.values()), known, note=TRUNCATED_NOTE if truncated else "")


def summarize(rewards: Mapping[Role, Sequence[RewardBreakdown]]) -> dict[str, float]:
    """Step metrics: per role the mean of each component and of the total over valid samples
    (a component a sample lacks counts as 0, so the component means add up to the total mean;
    NaN when no sample is valid), `{role}/reward/invalid` and `{role}/reward/truncated` counts,
    and `reward/dropped`, the number of exchanges dropped for an unknown judge label."""
    metrics: dict[str, float] = {}
    for role, samples in rewards.items():
        valid = [s for s in samples if s.valid]
        keys = ["harm", "refusal"] + (["format"] if role is Role.ATTACKER else [])
        keys += sorted({k for s in valid for k in s.components} - set(keys))
        for key in keys:
            metrics[f"{role}/reward/{key}"] = _mean([s.components.get(key, 0.0) for s in valid])
        metrics[f"{role}/reward/total"] = _mean([s.total for s in valid])
        metrics[f"{role}/reward/invalid"] = float(len(samples) - len(valid))
        metrics[f"{role}/reward/truncated"] = float(
            sum(s.note == TRUNCATED_NOTE or "truncation" in s.components for s in samples)
        )
    per_exchange = zip(*rewards.values(), strict=True)
    metrics["reward/dropped"] = float(
        sum(any(s.note == UNKNOWN_NOTE for s in exchange) for exchange in per_exchange)
    )
    return metrics


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
