"""The attacker -> defender game (docs/DESIGN.md §1): seeds in, `Episode`s out. No rewards, no
judging policy.

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
from magic_rl.content import carries, expand_reply, fill_request
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
        first = fixed_attacks if turn == 0 and fixed_attacks is not None else None
        writers = [i for i in active if slots[i][1] % per_rewrite == 0]
        written = _attacks(
            [seeds[slots[i][0]] for i in writers],
            [histories[i] for i in writers],
            [None if first is None else first[slots[i][0]] for i in writers],
            players,
            cfg,
            attack_samples=attack_samples,
            turn_seed=turn_seed,
            static_attacks=static_attacks,
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
class Attack:
    """One attacker output and what the defender reads of it (`text`). `gen` is None for an attack
    the attacker did not write this turn (a vanilla seed, a pool rewrite, a stored attack)."""

    raw: str
    reasoning: str
    text: str
    format_ok: bool
    gen: Generation | None

    @classmethod
    def given(cls, text: str) -> Attack:
        return cls(text, "", text, True, None)


# --- the sandbox's `[request]` marker: read here alone (the judge reads replies through
# `reply_as_read` too: `judge.score.score_exchanges` applies it after the word cut) ----------------


def attack_as_read(answer: str, seed_text: str, cfg: GameConfig) -> str:
    """What the defender reads of an attacker's `<answer>`: as written, or under
    `game.request_marker` (the sandbox) with `[request]` replaced by the seed's request
    (`content.fill_request`: the tiny attacker refers to the request, the world copies it in)."""
    return fill_request(answer, seed_text) if cfg.request_marker else answer


def reply_as_read(reply: str, prompt: str, cfg: GameConfig) -> str:
    """A reply as read for its content: as written, or under `game.request_marker` with a
    compliance's `[request]` replaced by the prompt it answers (`content.expand_reply`): the attack
    here, the judge's prompt where a judge reads it (`judge.score.score_exchanges`)."""
    return expand_reply(reply, prompt) if cfg.request_marker else reply


def carries_request(episode: Episode, cfg: GameConfig) -> bool:
    """Does the episode's last reply carry its seed's request (content overlap of the reply as
    read, `content.carries`)? The judge stage records it as `Verdict.reply_carries_request`."""
    last = episode.last
    return carries(reply_as_read(last.reply, last.attack, cfg), episode.seed.text)


def rewrite_carries_request(episode: Episode) -> bool:
    """Is the episode's last rewrite faithful: does it still carry its seed's request
    (`content.carries`)? The judge stage records it as `Verdict.rewrite_carries_request`; the
    step's `attacker/faithful_rate` and the novelty term read the same rule."""
    return carries(episode.last.attack, episode.seed.text)


# --- the attacker half of the game: chat -> generate -> parse -> the attack read ----------------


def rewrite(
    attacker: Policy,
    templates: Templates,
    seeds: Sequence[Seed],
    cfg: GameConfig,
    sampling: SamplingConfig,
    *,
    greedy: bool,
    seed: int,
    histories: Sequence[Sequence[Turn]] | None = None,
    once_per_chat: bool = False,
) -> list[Attack]:
    """One attack per seed, in one `generate` call: the attacker's chat view of the seed (the
    single-turn view, or with `histories` the game's view of each episode so far), its output
    greedy or sampled at `sampling`, parsed into `<think>`/`<answer>`, the answer as the defender
    reads it. `once_per_chat` generates each distinct chat once (a defender phase's one rewrite per
    seed: the G replies answer the same attack). Training (`play`), attacker transfer and
    cross-play (`evaluate.transfer.attacker_rewrites`) rewrite through here."""
    multiturn = histories is not None and cfg.max_turns > 1
    chats = [
        attacker_messages(templates, s, histories[k] if histories else [], multiturn)
        for k, s in enumerate(seeds)
    ]
    keys = [repr(c) for c in chats] if once_per_chat else list(range(len(chats)))
    unique: dict = {}
    for key, chat in zip(keys, chats, strict=True):
        unique.setdefault(key, chat)
    gens = attacker.generate(
        list(unique.values()),
        temperature=0.0 if greedy else sampling.temperature,
        top_p=1.0 if greedy else sampling.top_p,
        max_new_tokens=sampling.max_new_tokens,
        max_prompt_tokens=sampling.max_prompt_tokens,
        seed=seed,
    )
    by_key = dict(zip(unique.keys(), gens, strict=True))
    out = []
    for key, s in zip(keys, seeds, strict=True):
        gen = by_key[key]
        parsed = parse_attack(gen.text)
        text = attack_as_read(parsed.answer, s.text, cfg)
        out.append(Attack(gen.text, parsed.reasoning, text, parsed.format_ok, gen))
    return out


# --- one turn's attacks, by source ---------------------------------------------------------------


def _attacks(
    seeds: Sequence[Seed],
    histories: Sequence[Sequence[Turn]],
    fixed: Sequence[str | None],
    players: Players,
    cfg: GameConfig,
    *,
    attack_samples: int,
    turn_seed: int,
    static_attacks: Mapping[str, Sequence[str]] | None,
) -> list[Attack]:
    """The attack of each running episode (`seeds[k]`, `histories[k]`) this turn, by its source:
    a stored attack (`fixed[k]`, first turn only), the vanilla seed (No-Game), a pool rewrite
    (static data), or the attacker policy (all of its episodes in one batch)."""
    by_policy = [k for k, f in enumerate(fixed) if f is None and cfg.attacker == "policy"]
    written = _policy_attacks(
        [seeds[k] for k in by_policy],
        [histories[k] for k in by_policy],
        players,
        cfg,
        attack_samples,
        turn_seed,
    )
    made = dict(zip(by_policy, written, strict=True))
    out = []
    for k, seed in enumerate(seeds):
        if fixed[k] is not None:
            out.append(Attack.given(fixed[k]))
        elif cfg.attacker == "none":
            out.append(Attack.given(seed.text))
        elif cfg.attacker == "static":
            out.append(_static_attack(seed, static_attacks or {}, turn_seed))
        else:
            out.append(made[k])
    return out


def _policy_attacks(
    seeds: Sequence[Seed],
    histories: Sequence[Sequence[Turn]],
    players: Players,
    cfg: GameConfig,
    attack_samples: int,
    turn_seed: int,
) -> list[Attack]:
    """The attacker policy's attacks of these episodes, in one batch: G samples per seed in an
    attacker phase; in a defender phase one per seed (greedy, or sampled with
    `defender_phase_attack=sampled`)."""
    if not seeds:
        return []
    assert players.attacker is not None, "game.attacker='policy' needs an attacker policy"
    one_per_chat = attack_samples == 1  # defender phase: the G replies answer one attack
    return rewrite(
        players.attacker,
        players.templates,
        seeds,
        cfg,
        players.attacker_sampling,
        greedy=one_per_chat and cfg.defender_phase_attack == "greedy",
        seed=turn_seed,
        histories=histories,
        once_per_chat=one_per_chat,
    )


def _static_attack(
    seed: Seed, static_attacks: Mapping[str, Sequence[str]], turn_seed: int
) -> Attack:
    options = static_attacks.get(seed.id)
    text = random.Random(f"{seed.id}:{turn_seed}").choice(options) if options else seed.text
    return Attack.given(text)


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


def _turn(attack: Attack, reply: Generation) -> Turn:
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
