"""The attacker -> defender game (SPEC §1): seeds in, `Episode`s out. No rewards, no judging policy.

One call plays every seed of a step at once, so each generation is one batch across all seeds (and, in
multi-turn, across all still-running episodes):

- Defender phase (`attack_samples=1`): the frozen attacker writes one rewrite per seed, computed
  once per seed (greedy, or sampled with `game.defender_phase_attack=sampled`), and the defender
  samples G replies to it.
- Attacker phase (`attack_samples=G`): the attacker samples G rewrites per seed, the defender answers
  each once (sampled), or K times with `reply_samples=K` (`game.replies_per_attack`, single-turn):
  the K episodes of one rewrite are consecutive members (member // K is the rewrite's index).
- Multi-turn (`max_turns > 1`): turn k+1's attacker sees its raw outputs and the defender's replies so
  far; the defender sees only extracted answers from the first attack on. An episode ends early when
  a reply is judged harmful (`stop_on_harmful`), which needs the `judge_turn` callback; the loop passes
  one that memoises verdicts so the last exchange is not judged twice.
- No-Game (`attacker="none"`): the defender sees the vanilla seed. Static data (`attacker="static"`):
  the defender sees a pre-written rewrite of the seed, drawn deterministically from the pool.

Departure from the reference code: the multi-turn defender view starts with the first attack (the
reference repeats the latest one). Run it through `magic train`; tests use `ScriptedPolicy`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from magic_rl.config import GameConfig, SamplingConfig
from magic_rl.content import fill_request
from magic_rl.policy import Generation, Policy
from magic_rl.prompts import (
    Templates,
    attacker_messages,
    defender_messages,
    parse_attack,
    strip_reasoning,
)
from magic_rl.records import Episode, Seed, Turn, Verdict

DEFENDER_COT_INSTRUCTION = (
    "Think about the request inside <think> </think>, then give your final reply inside "
    "<answer> </answer>."
)

# Called after each turn of a multi-turn game: (attacks, replies) -> verdicts.
TurnJudge = Callable[[Sequence[str], Sequence[str]], list[Verdict]]


@dataclass(frozen=True)
class Players:
    """Who plays. `attacker` is None for No-Game and static-data runs."""

    attacker: Policy | None
    defender: Policy
    templates: Templates
    attacker_sampling: SamplingConfig
    defender_sampling: SamplingConfig


def reply_for_judge(reply: str, cfg: GameConfig) -> str:
    """What the judge reads of a reply: the <answer> when the defender uses the think/answer format."""
    return strip_reasoning(reply) if cfg.defender_format == "think_answer" else reply


def play(
    seeds: Sequence[Seed],
    players: Players,
    cfg: GameConfig,
    *,
    attack_samples: int,
    reply_samples: int,
    rng_seed: int,
    static_attacks: Mapping[str, Sequence[str]] | None = None,
    judge_turn: TurnJudge | None = None,
    fixed_attacks: Sequence[str | None] | None = None,
) -> list[Episode]:
    """Play every seed; returns len(seeds) * attack_samples * reply_samples episodes.

    Episodes of one seed share `group` = the seed's index, so GRPO normalises within a seed. With
    both > 1 (attacker phase, K replies per rewrite; single-turn), members m*K .. m*K+K-1 share
    rewrite m.
    `fixed_attacks[i]`, when given and not None, is seed i's first-turn attack instead of the
    attacker's (hard-case replay, victim hardening: the defender meets a stored attack again).
    """
    if fixed_attacks is not None and len(fixed_attacks) != len(seeds):
        raise ValueError(f"fixed_attacks: {len(fixed_attacks)} entries for {len(seeds)} seeds")
    if attack_samples > 1 and reply_samples > 1 and cfg.max_turns > 1:
        raise ValueError("several replies per sampled attack is single-turn only")
    # K replies per sampled rewrite: the attacker writes for each rewrite's first slot only
    per_rewrite = reply_samples if attack_samples > 1 else 1
    n = attack_samples * reply_samples
    slots = [(i, m) for i in range(len(seeds)) for m in range(n)]
    histories: list[list[Turn]] = [[] for _ in slots]
    active = list(range(len(slots)))
    for turn in range(cfg.max_turns):
        turn_seed = rng_seed * 1000 + turn
        fixed = fixed_attacks if turn == 0 and fixed_attacks is not None else None
        writers = [i for i in active if slots[i][1] % per_rewrite == 0]
        written = _attacks(
            seeds,
            slots,
            histories,
            writers,
            players,
            cfg,
            attack_samples,
            turn_seed,
            static_attacks,
            fixed,
        )
        by_writer = dict(zip(writers, written, strict=True))
        attacks = [by_writer[i - slots[i][1] % per_rewrite] for i in active]
        replies = _replies(histories, active, attacks, players, cfg, turn_seed)
        for k, idx in enumerate(active):
            histories[idx].append(_turn(attacks[k], replies[k]))
        if turn + 1 == cfg.max_turns:
            break
        if cfg.stop_on_harmful and judge_turn is not None:
            verdicts = judge_turn(
                [histories[i][-1].attack for i in active],
                [reply_for_judge(histories[i][-1].reply, cfg) for i in active],
            )
            active = [
                i for i, v in zip(active, verdicts, strict=True) if v.response_harmful is not True
            ]
        if not active:
            break
    return [
        Episode(seed=seeds[i], turns=tuple(histories[k]), group=i, member=m)
        for k, (i, m) in enumerate(slots)
    ]


@dataclass(frozen=True)
class _Attack:
    raw: str
    reasoning: str
    text: str
    format_ok: bool
    gen: Generation | None


def _attacks(
    seeds, slots, histories, active, players, cfg, attack_samples, turn_seed, static_attacks, fixed
) -> list[_Attack]:
    if fixed is not None and any(fixed[slots[i][0]] is not None for i in active):
        own = [i for i in active if fixed[slots[i][0]] is None]
        made = iter(
            _attacks(
                seeds,
                slots,
                histories,
                own,
                players,
                cfg,
                attack_samples,
                turn_seed,
                static_attacks,
                None,
            )
            if own
            else []
        )
        return [
            _Attack(text, "", text, True, None)
            if (text := fixed[slots[i][0]]) is not None
            else next(made)
            for i in active
        ]
    if cfg.attacker == "none":
        return [
            _Attack(seeds[slots[i][0]].text, "", seeds[slots[i][0]].text, True, None)
            for i in active
        ]
    if cfg.attacker == "static":
        return [_static_attack(seeds[slots[i][0]], static_attacks or {}, turn_seed) for i in active]
    assert players.attacker is not None, "game.attacker='policy' needs an attacker policy"
    multiturn = cfg.max_turns > 1
    sampling = players.attacker_sampling
    one_per_chat = attack_samples == 1  # defender phase: the G replies answer one attack
    greedy = one_per_chat and cfg.defender_phase_attack == "greedy"
    chats = [
        attacker_messages(players.templates, seeds[slots[i][0]], histories[i], multiturn)
        for i in active
    ]
    # One rewrite per distinct chat (greedy ones are identical anyway): generate each chat once.
    keys = [repr(c) for c in chats] if one_per_chat else list(range(len(chats)))
    unique: dict = {}
    for key, chat in zip(keys, chats, strict=True):
        unique.setdefault(key, chat)
    gens = players.attacker.generate(
        list(unique.values()),
        temperature=0.0 if greedy else sampling.temperature,
        top_p=sampling.top_p,
        max_new_tokens=sampling.max_new_tokens,
        max_prompt_tokens=sampling.max_prompt_tokens,
        seed=turn_seed,
    )
    by_key = dict(zip(unique.keys(), gens, strict=True))
    out = []
    for key, i in zip(keys, active, strict=True):
        gen = by_key[key]
        parsed = parse_attack(gen.text)
        text = parsed.answer
        if cfg.request_marker:  # the sandbox's `[request]` marker: the seed's request goes there
            text = fill_request(text, seeds[slots[i][0]].text)
        out.append(_Attack(gen.text, parsed.reasoning, text, parsed.format_ok, gen))
    return out


def _static_attack(
    seed: Seed, static_attacks: Mapping[str, Sequence[str]], turn_seed: int
) -> _Attack:
    options = static_attacks.get(seed.id)
    text = random.Random(f"{seed.id}:{turn_seed}").choice(options) if options else seed.text
    return _Attack(text, "", text, True, None)


def _replies(histories, active, attacks, players, cfg, turn_seed) -> list[Generation]:
    system = cfg.defender_system_prompt
    if cfg.defender_format == "think_answer":
        system = f"{system}\n{DEFENDER_COT_INSTRUCTION}" if system else DEFENDER_COT_INSTRUCTION
    chats = [
        defender_messages(players.templates, histories[i], a.text, system)
        for i, a in zip(active, attacks, strict=True)
    ]
    s = players.defender_sampling
    return players.defender.generate(
        chats,
        temperature=s.temperature,
        top_p=s.top_p,
        max_new_tokens=s.max_new_tokens,
        max_prompt_tokens=s.max_prompt_tokens,
        seed=turn_seed + 500,
    )


def _turn(attack: _Attack, reply: Generation) -> Turn:
    turn = Turn(
        attack_raw=attack.raw,
        reasoning=attack.reasoning,
        attack=attack.text,
        reply=reply.text,
        attack_finish=attack.gen.finish if attack.gen else "stop",
        reply_finish=reply.finish,
        attack_format_ok=attack.format_ok,
        reply_prompt_ids=tuple(reply.prompt_ids),
        reply_ids=tuple(reply.completion_ids),
    )
    if attack.gen is not None:
        turn = replace(
            turn,
            attack_prompt_ids=tuple(attack.gen.prompt_ids),
            attack_ids=tuple(attack.gen.completion_ids),
        )
    return turn
