"""`Run`: one training run in memory — both roles' policies and trainers, the judge, the scheduler,
the accelerator — and `Run.step`, the step program; saving and loading its state.

`Run.step` holds the seven stages in order, each a line or two (seeds, rollout, judge, rewards,
update, schedule, log; docs/ARCHITECTURE.md), with one helper per stage below it. `Run.__init__`
reads as the run's parts, each from a named builder: `build_policies` (saved state or model; LoRA
adapters on a shared base; shared weights), `build_trainers` (with `reference_model_for`, the KL
reference), `judge.make_judge`, `build_players`. Data-parallel bookkeeping (seed shards, sampling
streams, reduced metrics, gathered replay) is one helper, `loop.shards.Shards`.

Checkpoints and state/ are written to a temporary folder and renamed (`resume.replace_dir`), so a
kill never leaves a half-written one under its final name. A step whose judge labels are mostly
unknown (`judge.max_unknown_fraction`) raises `JudgeUnusable` after the judge stage, before any
update or log line: a run against a misconfigured or failing judge stops instead of training on
nothing.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from magic_rl import game, rundir
from magic_rl.config import RunConfig, ScheduleConfig, trained_roles
from magic_rl.data.outputs import writing
from magic_rl.data.seeds import load_seeds
from magic_rl.judge import make_judge
from magic_rl.judge.keyword import apply_request_labels
from magic_rl.loop.crossplay import LiveCrossplay
from magic_rl.loop.hardcases import CaseBuffer, case_of, is_hard, mix_in
from magic_rl.loop.league import League, OpponentCache, Snapshots
from magic_rl.loop.resume import ResumeError, last_good_checkpoint, replace_dir, truncate_logs
from magic_rl.loop.shards import Shards
from magic_rl.loop.stages import (
    SeedSampler,
    StepJudge,
    Timer,
    diversity_metrics,
    game_metrics,
    novelty_of,
    replay_records,
)
from magic_rl.policy import HFPolicy
from magic_rl.policy.load import load_policy, require_safetensors
from magic_rl.prompts import load_templates
from magic_rl.records import Episode, RewardBreakdown, Role, Seed, Verdict
from magic_rl.rewards import compute_rewards, pool_replies, summarize
from magic_rl.schedule import Scheduler
from magic_rl.strategies import read_pool, resolve_strategies


class JudgeUnusable(RuntimeError):
    """Most of a step's judge labels are unknown: the run stops rather than train on nothing."""


@dataclass(frozen=True)
class Played:
    """One role's rollout of a step (stages 0-3): what its update, metrics and replay read."""

    role: Role
    episodes: list[Episode]
    verdicts: list[Verdict]
    rewards: dict[Role, list[RewardBreakdown]]
    # what the role's update reads: its episodes and rewards, one per rewrite when an attacker's
    # rewrite met K replies (`rewards.pool_replies`), else `episodes` and `rewards[role]`
    trained: tuple[list[Episode], list[RewardBreakdown]]
    fixed: list[str | None]  # per seed: the stored attack replayed, or None
    extra: dict[str, float]  # stage 0's own metrics (replay share, attacks collected)
    judge_calls: int


class Run:
    """Everything a training run holds: players, trainers, judge, schedule, files."""

    def __init__(
        self, cfg: RunConfig, run_dir: Path, *, seeds: list[Seed] | None = None, log=print
    ) -> None:
        import torch
        from accelerate import Accelerator

        self.cfg, self.run_dir, self.log = cfg, run_dir, log
        log_with = None if cfg.train.tracker == "none" else cfg.train.tracker
        self.accelerator = Accelerator(
            cpu=use_cpu(cfg), log_with=log_with, project_dir=str(run_dir)
        )
        self.main = self.accelerator.is_main_process
        self.shards = Shards(self.accelerator)
        self.device = str(self.accelerator.device)
        torch.manual_seed(cfg.seed)

        self.seeds = seeds if seeds is not None else load_rl_seeds(cfg)
        self.samplers = SeedSampler.per_role(cfg, self.seeds)
        self.static_attacks = load_static_attacks(cfg) if cfg.game.attacker == "static" else None
        self.policies = build_policies(cfg, run_dir / rundir.STATE, self.device)
        self.trainers = build_trainers(cfg, self.policies, self.device, self.accelerator)
        self.judge = make_judge(cfg.judge)
        self.players = build_players(cfg, self.policies)
        self.scheduler = Scheduler(schedule_for(cfg.schedule))

        # beyond latest-only play (docs/deviations.md): league, hard cases, live cross-play
        self.snapshots = Snapshots()
        self.league = League(cfg.league, self.snapshots, cfg.seed)
        self.opponents = OpponentCache(run_dir, self._load_frozen)
        self.hard_cases = CaseBuffer(cfg.replay.max_size)
        hardening = cfg.schedule.protocol == "victim_hardening"
        self.pending = CaseBuffer(None) if hardening else None  # attacks since the last hardening
        self.crossplay = LiveCrossplay(cfg, run_dir, self.judge) if cfg.crossplay.probe else None

        self.start_step = 0
        self.saved_at: int | None = None  # the step state/ resumes at, once this run saved it
        self._logs_cut = False  # a resume cuts the logs with its first write (`_cut_logs`)
        self._judge_counts: dict[str, float] = {}
        # timings of work outside a step's own stages, logged with the next row: the step-0
        # switch's cross-play (with step 0), the previous step's log stage (`time/log`)
        self._carried: dict[str, float] = {}

    def _load_frozen(self, path: Path, role: Role):
        """A past opponent from its checkpoint directory (a LoRA role's is an adapter dir, which
        transformers loads onto its base)."""
        return load_policy(path, getattr(self.cfg, role.value), self.device)

    # -- one step ----------------------------------------------------------------------------------

    def step(self, step: int) -> dict:
        """One training step, its seven stages in order, each timed (docs/ARCHITECTURE.md); returns
        the step's metrics row as logged. Under `schedule.protocol=concurrent` stages 0-3 run once
        per role (both rollouts before either update) and stage 4 updates both."""
        t0, timer, roles = time.perf_counter(), Timer(), self.roles_at()
        opponents = {role: self._opponent(step, role) for role in roles}  # league: past or None
        played: list[Played] = []
        for k, role in enumerate(roles):
            judge = StepJudge(self.judge, self.cfg.judge.max_response_tokens, self.cfg.game)
            with timer("seeds"):
                batch, fixed, extra = self._seeds(step, role)  # 0. seeds
            players = self._players(role, opponents[role])
            with timer("rollout"):
                episodes = self._rollout(step, k, role, batch, fixed, players, judge)  # 1. rollout
            with timer("judge"):
                verdicts = self._judge(step, episodes, judge)  # 2. judge
            with timer("rewards"):
                rewards, trained = self._rewards(role, episodes, verdicts)  # 3. rewards
            played.append(
                Played(role, episodes, verdicts, rewards, trained, fixed, extra, judge.calls)
            )
        with timer("update"):  # 4. update: GRPO on the scheduled role(s); the other stays frozen
            updates = [self.trainers[p.role].update(*p.trained) for p in played]
        stats = self._stats(played, updates, opponents)  # over all ranks
        replay = self._replay(step, played, opponents)  # over all ranks
        step_s = time.perf_counter() - t0
        with timer("schedule"):  # 5. schedule
            switched, scheduled = self._schedule(
                step, roles, opponents, stats, replay, timer, step_s
            )
        metrics = self._row(step, roles, stats, timer, step_s, scheduled)  # the one row builder
        with timer("log"):  # 6. log
            self._log(step, metrics, replay, switched)
        self._carried["time/log"] = timer.times["time/log"]  # logged with the next step
        return metrics

    def _opponent(self, step: int, role: Role) -> str | None:
        """The past snapshot of the other role that `role` meets at `step` (league), or None."""
        if not self.cfg.league.enabled:
            return None
        return self.league.pick(role, step, latest_in_pool=not self.concurrent)

    def _seeds(self, step: int, role: Role) -> tuple[list[Seed], list[str | None], dict]:
        """Stage 0 for `role`: this rank's share of the step's seeds and, per seed, a stored
        attack to replay (defender: hard cases, or the attacks collected for victim hardening)."""
        batch = self.samplers[role].batch(step)
        fixed: list[str | None] = [None] * len(batch)
        extra: dict[str, float] = {}
        rng = random.Random(f"{self.cfg.seed}:replay:{step}")
        if role is Role.DEFENDER and self.pending is not None:  # victim hardening
            cases = self.pending.draw(len(batch), rng)
            if cases:
                batch, fixed = [c.seed for c in cases], [c.attack for c in cases]
            extra["hardening/collected"] = float(len(self.pending))
        elif role is Role.DEFENDER and self.cfg.replay.share > 0:
            batch, fixed = mix_in(batch, self.hard_cases, self.cfg.replay.share, rng)
            extra["replay/share"] = sum(f is not None for f in fixed) / max(len(batch), 1)
        return self.shards.take(batch), self.shards.take(fixed), extra

    def _players(self, role: Role, opponent: str | None) -> game.Players:
        """The players of `role`'s rollout: the current ones, or a past opponent (loaded from its
        checkpoint on demand) in the other role's seat."""
        if opponent is None:
            return self.players
        return replace(self.players, **{role.other.value: self.opponents.get(role.other, opponent)})

    def _rollout(
        self, step: int, k: int, role: Role, batch, fixed, players, judge: StepJudge
    ) -> list[Episode]:
        """Stage 1: attacker -> defender on every seed of the batch; the trained role samples
        `grpo.group_size` per seed (an attacker's rewrites each answered
        `game.replies_per_attack` times). `k`: the rollout's index in the step (its own stream)."""
        G, K = self.cfg.grpo.group_size, self.cfg.game.replies_per_attack
        return game.play(
            batch,
            players,
            self.cfg.game,
            attack_samples=G if role is Role.ATTACKER else 1,
            reply_samples=K if role is Role.ATTACKER else G,
            rng_seed=self.shards.rng_seed(self.cfg.seed, step) + k * 7_919_000_003,
            static_attacks=self.static_attacks,
            judge_turn=judge,
            fixed_attacks=fixed if any(f is not None for f in fixed) else None,
        )

    def _judge(self, step: int, episodes: list[Episode], judge: StepJudge) -> list[Verdict]:
        """Stage 2: the step's judge on each episode's last exchange, the request label as
        configured, whether each reply and each rewrite carries its seed's request
        (`game.carries_request`, `game.rewrite_carries_request`); mostly unknown labels stop the
        run here (`JudgeUnusable`)."""
        verdicts = judge(
            [e.last.attack for e in episodes],
            [game.reply_for_judge(e.last.reply, self.cfg.game) for e in episodes],
        )
        verdicts = apply_request_labels(self.judge, verdicts, [e.seed.label for e in episodes])
        verdicts = [  # the stage's own labels, read from the texts (rewards read no text)
            replace(
                v,
                reply_carries_request=game.carries_request(e, self.cfg.game),
                rewrite_carries_request=game.rewrite_carries_request(e),
            )
            for e, v in zip(episodes, verdicts, strict=True)
        ]
        self._check_verdicts(step, verdicts)
        return verdicts

    def _rewards(
        self, role: Role, episodes: list[Episode], verdicts: list[Verdict]
    ) -> tuple[dict[Role, list[RewardBreakdown]], tuple[list[Episode], list[RewardBreakdown]]]:
        """Stage 3: both roles' rewards per episode (the rewrites' novelty read from their text
        first when `reward.r_novelty` > 0), and what `role`'s update reads: an attacker's rewrite
        that met K replies scored once on their mean or best (`reward.reply_score`)."""
        cfg, K = self.cfg.reward, self.cfg.game.replies_per_attack
        novelty = novelty_of(episodes, K if role is Role.ATTACKER else 1) if cfg.r_novelty else None
        rewards = compute_rewards(episodes, verdicts, cfg, novelty)
        if role is Role.ATTACKER and K > 1:
            return rewards, pool_replies(episodes, rewards[role], K, cfg.reply_score)
        return rewards, (episodes, rewards[role])

    def _check_verdicts(self, step: int, verdicts: list[Verdict]) -> None:
        """Raise JudgeUnusable when more than `judge.max_unknown_fraction` of the step's
        exchanges (over all data-parallel ranks) have an unknown label."""
        unknown, total = self.shards.sum(sum(v.any_unknown for v in verdicts), len(verdicts))
        limit = self.cfg.judge.max_unknown_fraction
        if not total or unknown <= limit * total:
            return
        errors = Counter(v.error for v in verdicts if v.any_unknown and v.error)
        why = f"; most common error: {errors.most_common(1)[0][0][:200]}" if errors else ""
        raise JudgeUnusable(
            f"judge.max_unknown_fraction: step {step}: {unknown}/{total} judge labels unknown "
            f"(limit {limit:.0%}){why}. The run stopped before training on them (nothing of "
            f"this step was written); check judge.backend={self.cfg.judge.backend}, "
            f"judge.model={self.cfg.judge.model!r} and judge.endpoint, then resume with "
            f"`magic train --resume {self.run_dir}`"
        )

    def _stats(self, played: Sequence[Played], updates: Sequence[dict], opponents: dict) -> dict:
        """The step's statistics, reduced over ranks: the game, rewards and updates, the judge's
        request counters, the league."""
        metrics: dict[str, float] = {}
        for k, p in enumerate(played):
            m = {
                **game_metrics(p.episodes, p.verdicts),
                **diversity_metrics(p.episodes),
                **summarize(p.rewards),
                **p.extra,
            }
            if p.trained[0] is not p.episodes:  # K replies per rewrite: what the update read
                pooled = [b.total for b in p.trained[1] if b.valid]
                m[f"{p.role.value}/reward/pooled"] = (
                    sum(pooled) / len(pooled) if pooled else float("nan")
                )
            m["judge/calls"] = float(p.judge_calls)
            if k == 0:
                metrics.update(m)
                continue
            for key, value in m.items():  # the second rollout's own role keys replace the
                if key.startswith(f"{p.role.value}/"):  # first's; the rest are kept apart
                    metrics[key] = value
                elif key == "judge/calls":
                    metrics[key] += value
                else:
                    metrics[f"{p.role.value}_rollout/{key}"] = value
        for update in updates:
            metrics.update(update)
        judge_stats = getattr(self.judge, "stats", None)
        if judge_stats is not None:  # endpoint / HF judges count requests, retries, failures
            now = judge_stats.metrics()
            metrics.update({k: v - self._judge_counts.get(k, 0.0) for k, v in now.items()})
            self._judge_counts = now
        if self.cfg.league.enabled:
            for role, opponent in opponents.items():
                metrics[f"league/{role.value}/past_opponent"] = float(opponent is not None)
        return self.shards.reduce(metrics)

    def _row(
        self,
        step: int,
        roles: Sequence[Role],
        stats: dict,
        timer: Timer,
        step_s: float,
        scheduled: dict[str, float],
    ) -> dict:
        """The step's metrics row, built here only: the step and its trained role, the statistics,
        the stage timings (`time/step`: stages 0-4), what stage 5 did (hard-case buffer size,
        cross-play time at a switch) and the timings carried from outside the step's stages."""
        role_name = "both" if self.concurrent else roles[0].value
        times = {k: v for k, v in timer.times.items() if k not in ("time/schedule", "time/log")}
        row = {"step": step, "schedule/role": role_name, **stats, **times, "time/step": step_s}
        row.update(scheduled)
        if "time/schedule" in timer.times:
            row["time/schedule"] = timer.times["time/schedule"]
        return row

    def _replay(self, step: int, played: Sequence[Played], opponents: dict) -> list[dict]:
        """The step's replay records, every rank's, numbered in the whole step's order."""
        replay: list[dict] = []
        for p in played:
            recs = list(replay_records(step, p.role, p.episodes, p.verdicts, p.rewards))
            for rec in recs:
                rec["replayed"] = p.fixed[rec["group"]] is not None
                if opponents[p.role] is not None:
                    rec["opponent"] = opponents[p.role]
            replay += self.shards.gather(recs)
        for k, rec in enumerate(replay):
            rec["episode"] = k
        return replay

    def _schedule(
        self,
        step: int,
        roles: Sequence[Role],
        opponents: dict,
        stats: dict,
        replay: list[dict],
        timer: Timer,
        step_s: float,
    ) -> tuple[bool, dict[str, float]]:
        """Stage 5: what the next steps play. The hard-case buffers and the league's statistics
        learn from this step, the scheduler picks the next role (reading the row as it stands); at
        a switch (and after the last step) both roles' checkpoint, and the roles that trained join
        their snapshot lists (live cross-play plays them). Returns (switched, the stage's metrics
        with the carried timings)."""
        self._cut_logs()  # the step's first write: a resume that failed before changed nothing
        scheduled = {**self._feed(roles, opponents, replay, stats), **self._carried}
        self._carried = {}
        switched = self.advance(self._row(step, roles, stats, timer, step_s, scheduled))
        last = step + 1 == self.cfg.train.steps
        if (switched and self.cfg.train.checkpoint_at_switch) or last:
            self.save_checkpoint(step + 1)
            scheduled.update(self.on_switch(step + 1, roles))
        return switched, scheduled

    def _feed(
        self, roles: Sequence[Role], opponents: dict, replay: list[dict], stats: dict
    ) -> dict[str, float]:
        """The hard-case buffers and the league's statistics learn from the finished step; returns
        the buffer's size when hard-case replay is on."""
        fed: dict[str, float] = {}
        if self.cfg.replay.share > 0:
            self.hard_cases.add(case_of(r) for r in replay if is_hard(r))
            fed["replay/buffer_size"] = float(len(self.hard_cases))
        if self.pending is not None:
            if Role.DEFENDER in roles:
                self.pending.clear()
            else:
                k = self.cfg.game.replies_per_attack  # a rewrite's K replies: one case
                cases = (case_of(r) for r in replay if r["member"] % k == 0)
                self.pending.add(cases, distinct=False)
        for k, role in enumerate(roles):  # the asr of the rollout this role trained on
            if opponents.get(role) is not None:
                key = "game/asr" if k == 0 else f"{role.value}_rollout/game/asr"
                self.league.record(role.other, opponents[role], stats.get(key))
        return fed

    def _log(self, step: int, metrics: dict, replay: list[dict], switched: bool) -> None:
        """Stage 6: metrics.jsonl, replay.jsonl and the tracker (main process), then the state
        resume needs, at a switch, after the last step and every `train.checkpoint_every` steps."""
        if self.main:
            rundir.append_jsonl(self.run_dir / rundir.REPLAY, replay)
            rundir.append_jsonl(self.run_dir / rundir.METRICS, [metrics])
            if self.cfg.train.tracker != "none":
                floats = {k: v for k, v in metrics.items() if isinstance(v, float)}
                self.accelerator.log(floats, step=step)
        every, last = self.cfg.train.checkpoint_every, step + 1 == self.cfg.train.steps
        if switched or last or (every and (step + 1) % every == 0):
            self.save_state(step + 1)

    # -- protocols ---------------------------------------------------------------------------------

    @property
    def concurrent(self) -> bool:
        return self.cfg.schedule.protocol == "concurrent"

    def roles_at(self) -> tuple[Role, ...]:
        """The roles updated at the current step."""
        return (Role.DEFENDER, Role.ATTACKER) if self.concurrent else (self.scheduler.role,)

    def advance(self, metrics: dict) -> bool:
        """Schedule the next step; True at a switch (concurrent: every `schedule.freq` steps)."""
        switched = self.scheduler.advance(metrics)
        if self.concurrent:
            return self.scheduler.step % self.cfg.schedule.freq == 0
        return switched

    def on_switch(self, step: int, trained: Sequence[Role]) -> dict[str, float]:
        """After the checkpoint at `step`: the roles that trained since join their snapshot lists
        (the league's pools) and live cross-play plays the new snapshots. Returns timings."""
        name = rundir.checkpoint_name(step)
        new = [r for r in trained if self.snapshots.add(r, name)]
        if self.crossplay is None or not new:
            return {}
        t0 = time.perf_counter()
        if self.main:
            self.crossplay.update(step, self.snapshots.names, new)
        self.accelerator.wait_for_everyone()
        return {"time/crossplay": time.perf_counter() - t0}

    def begin(self) -> None:
        """Before the first step of a fresh run: the step-0 checkpoint, which joins the snapshot
        lists (and live cross-play) like a switch's; its timings are logged with the first step."""
        if self.start_step == 0:
            self._cut_logs()  # a resume that restarts from step 0 (no state was saved)
            self.save_checkpoint(0)
            self._carried = self.on_switch(0, trained_roles(self.cfg.schedule))

    def _cut_logs(self) -> None:
        """A resume's logs lose their records of steps from `start_step` on (replayed identically),
        just before its first write: a resume that stops earlier (a wrong judge endpoint, a refused
        state) leaves them byte-identical."""
        if not self._logs_cut and self.main:
            truncate_logs(self.run_dir, self.start_step)
        self._logs_cut = True

    def save_state_at(self, step: int) -> None:
        """On a stop before `step`: the state resume needs, unless state/ already holds it."""
        if step == self.saved_at:
            self.log(f"state/ already holds step {step}: resume starts there")
        elif step == self.start_step:
            self.log(f"no step ran: nothing to save (resume starts at step {step})")
        else:
            self.save_state(step)
            self.log(f"state saved: resume starts at step {step}")

    def diverged_message(self, step: int, err: Exception) -> str:
        """`Diverged` at `step`, with what is on disk and how to go on."""
        saved = (
            f"state/ holds step {self.saved_at}, a resume starts there"
            if self.saved_at
            else "no state was saved yet, a resume starts at step 0"
        )
        role = str(err).split(":", 1)[0]
        lr = getattr(getattr(self.cfg, role, None), "lr", None)
        fix = f"lower {role}.lr (now {lr:g}) or grpo.grad_clip" if lr else "lower the learning rate"
        return (
            f"step {step}: {err}. The run stopped: nothing of step {step} was written (no log "
            f"row, checkpoint or state), and {saved}; {fix}, then `magic train --resume "
            f"{self.run_dir} {role}.lr=...`"
        )

    # -- checkpoints -------------------------------------------------------------------------------

    def save_checkpoint(self, step: int) -> Path:
        """Both roles in Hugging Face format at a switch boundary (loadable with from_pretrained)."""
        out = rundir.checkpoint_dir(self.run_dir, step)
        if self.main:
            tmp = out.with_name(f".tmp-{out.name}")  # hidden: readers list step-* only
            shutil.rmtree(tmp, ignore_errors=True)
            for role, policy in self.policies.items():
                if policy is not None:
                    policy.save_pretrained(tmp / role.value)
            replace_dir(tmp, out)
        return out

    def save_state(self, next_step: int) -> None:
        """Everything resume needs, written atomically (a kill mid-save keeps the previous state)."""
        self.accelerator.wait_for_everyone()
        if not self.main:
            return
        import torch

        tmp = self.run_dir / rundir.STATE_TMP
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for role in self.trainers:
            self.policies[role].save_pretrained(tmp / role.value)
        with writing(tmp / rundir.OPTIM):  # torch names no file when the disk is full
            torch.save(
                {r.value: t.state_dict() for r, t in self.trainers.items()}, tmp / rundir.OPTIM
            )
        meta = {
            "next_step": next_step,
            "scheduler": self.scheduler.state_dict(),
            "snapshots": self.snapshots.state_dict(),
            "league": self.league.state_dict(),
            "hard_cases": self.hard_cases.state_dict(),
            "pending": None if self.pending is None else self.pending.state_dict(),
        }
        (tmp / rundir.META).write_text(json.dumps(meta))
        replace_dir(tmp, self.run_dir / rundir.STATE, self.run_dir / rundir.STATE_OLD)
        self.saved_at = next_step

    def load_state(self, next_step: int) -> None:
        """Optimisers and schedule from state/ (checked whole by `resume.check_resume`, which
        gave `next_step`; 0 = the run never saved a state)."""
        import torch

        state = self.run_dir / rundir.STATE
        if next_step == 0 and not state.exists():
            self.log("no saved state (none was written whole): starting from step 0")
            return
        self._check_finite(state)
        try:
            meta = json.loads((state / rundir.META).read_text())
            self.scheduler.load_state_dict(meta["scheduler"])
            self.snapshots.load_state_dict(meta.get("snapshots", {}))
            self.league.load_state_dict(meta.get("league", {}))
            self.hard_cases.load_state_dict(meta.get("hard_cases", []))
            if self.pending is not None:
                self.pending.load_state_dict(meta.get("pending") or [])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ResumeError(
                f"{state / rundir.META}: scheduler, league or hard-case state: unreadable "
                f"({e!r}). " + last_good_checkpoint(self.run_dir)
            ) from e
        optim_path = state / rundir.OPTIM
        try:
            # on CPU first: a GPU rank must not load the main process's tensors onto cuda:0
            optim = torch.load(optim_path, map_location="cpu", weights_only=True)
            for role, trainer in self.trainers.items():
                trainer.load_state_dict(optim[role.value])
        except Exception as e:  # torch raises RuntimeError, KeyError, pickle errors...
            raise ResumeError(
                f"{optim_path}: unreadable optimiser state ({type(e).__name__}: {e}). "
                + last_good_checkpoint(self.run_dir)
            ) from e
        self.start_step = self.saved_at = next_step

    def _check_finite(self, state: Path) -> None:
        """A saved state whose weights hold NaN or inf (a run that diverged before the guard
        existed) is refused: it would train on nothing and save NaN checkpoints."""
        for role in self.trainers:
            params = self.policies[role].model.named_parameters()
            bad = [name for name, p in params if not bool(p.isfinite().all())]
            if bad:
                raise ResumeError(
                    f"{state / role.value}: {len(bad)} weight tensors hold NaN or inf "
                    f"(first: {bad[0]}): the run diverged before this state was saved; nothing "
                    f"was changed; " + last_good_checkpoint(self.run_dir)
                )


def build_policies(cfg: RunConfig, state_dir: Path, device: str) -> dict[Role, HFPolicy | None]:
    """Both roles' policies, each from its saved state (resume) or its model. LoRA roles on the
    same base share one frozen copy, one adapter each; under `schedule.shared_weights` the
    defender's model plays both roles; a static or absent attacker has no policy (None)."""
    policies: dict[Role, HFPolicy | None] = {Role.ATTACKER: None, Role.DEFENDER: None}
    lora_roles = {}
    shared = cfg.schedule.shared_weights
    for role in (Role.ATTACKER, Role.DEFENDER):
        if role is Role.ATTACKER and (cfg.game.attacker != "policy" or shared):
            continue
        pcfg = getattr(cfg, role.value)  # the role's PolicyConfig
        saved = state_dir / role.value if (state_dir / role.value).exists() else None
        if pcfg.lora is not None:  # the saved state of a LoRA role is its adapter alone
            from magic_rl.lora import LoraRole

            require_safetensors(pcfg.model)
            lora_roles[role] = LoraRole(pcfg.model, pcfg, saved)
        else:
            policies[role] = load_policy(saved or pcfg.model, pcfg, device, rollouts=True)
    if lora_roles:
        from magic_rl.lora import load_lora_policies

        policies.update(load_lora_policies(lora_roles, device))
    if shared:  # one model plays both roles; each role has its own optimiser state
        policies[Role.ATTACKER] = policies[Role.DEFENDER]
    for policy in policies.values():
        if isinstance(policy, HFPolicy):  # a group's rollouts prefill their prompt once
            policy.share_prompts = cfg.grpo.share_prompts
    return policies


def build_trainers(cfg: RunConfig, policies: dict, device: str, accelerator) -> dict:
    """A `GRPOTrainer` per trained role, with its KL reference (`reference_model_for`; under
    shared weights one reference serves both roles); the policies that do not train are frozen."""
    from magic_rl.trainer import GRPOTrainer

    trainers: dict[Role, GRPOTrainer] = {}
    ref = None
    for role in trained_roles(cfg.schedule):
        pcfg = getattr(cfg, role.value)
        if not (cfg.schedule.shared_weights and ref is not None):
            ref = reference_model_for(cfg, role, policies[role], device)
        trainers[role] = GRPOTrainer(
            role, policies[role], pcfg, cfg.grpo, ref_model=ref, accelerator=accelerator
        )
    for role, policy in policies.items():
        if policy is not None and role not in trainers:
            policy.model.requires_grad_(False)
    return trainers


def reference_model_for(cfg: RunConfig, role: Role, policy, device: str):
    """The frozen model `role`'s KL term is measured against (None at `grpo.kl_beta=0`): a LoRA
    role's base with its adapters off (no copy), else a fresh copy of the role's starting model
    (the defender's under shared weights)."""
    pcfg = getattr(cfg, role.value)
    if cfg.grpo.kl_beta <= 0:
        return None
    if pcfg.lora is not None:
        from magic_rl.lora import reference_model

        return reference_model(policy)
    start = cfg.defender.model if cfg.schedule.shared_weights else pcfg.model
    ref = load_policy(start, pcfg, device).model.eval()
    ref.requires_grad_(False)
    return ref


def build_players(cfg: RunConfig, policies: dict) -> game.Players:
    """The game's players: both policies, the chat templates and each role's sampling."""
    return game.Players(
        attacker=policies[Role.ATTACKER],
        defender=policies[Role.DEFENDER],
        templates=load_templates(cfg.game.template_set, cfg.game.templates_dir),
        attacker_sampling=cfg.attacker.sampling,
        defender_sampling=cfg.defender.sampling,
    )


def schedule_for(cfg: ScheduleConfig) -> ScheduleConfig:
    """The block schedule a protocol runs: victim hardening is `harden_every` attacker steps, then
    one defender step, attacker first; the other protocols keep the configured schedule."""
    if cfg.protocol != "victim_hardening":
        return cfg
    return cfg.model_copy(
        update={
            "freq": 1,
            "update_ratio": {Role.ATTACKER: cfg.harden_every, Role.DEFENDER: 1},
            "start_agent": Role.ATTACKER,
        }
    )


def use_cpu(cfg: RunConfig) -> bool:
    import torch

    return cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())


def load_rl_seeds(cfg: RunConfig) -> list[Seed]:
    """The run's RL seeds: a seed file, or the built-in seed set of `data.seeds`."""
    return load_seeds(
        cfg.data.seeds,
        split=cfg.data.split,
        include_contrast=cfg.data.include_contrast,
        fraction=cfg.sandbox.fraction,
    )


def load_static_attacks(cfg: RunConfig) -> dict[str, list[str]]:
    """seed id -> pre-written rewrites (`game.static_attacks`, a pool JSONL), held-out strategies
    removed."""
    skip = set(resolve_strategies(cfg.data.held_out_strategies))
    out: dict[str, list[str]] = {}
    for rec in read_pool(cfg.game.static_attacks):
        if rec.strategy not in skip:
            out.setdefault(rec.seed.id, []).append(rec.rewrite)
    return out
