"""`Run`: one training run in memory — both roles' policies and trainers, the judge, the scheduler,
the accelerator — and `Run.step`, the numbered step program; saving and loading its state.

Checkpoints and state/ are written to a temporary folder and renamed (`resume.replace_dir`), so a
kill never leaves a half-written one under its final name. A step whose judge labels are mostly
unknown (`judge.max_unknown_fraction`) raises `JudgeUnusable` after the judge stage, before any
update or log line: a run against a misconfigured or failing judge stops instead of training on
nothing.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from magic_rl import game
from magic_rl.config import RunConfig, ScheduleConfig, trained_roles
from magic_rl.data.seeds import load_seeds
from magic_rl.judge import make_judge
from magic_rl.judge.keyword import apply_request_labels
from magic_rl.loop.crossplay import LiveCrossplay
from magic_rl.loop.hardcases import CaseBuffer, case_of, is_hard, mix_in
from magic_rl.loop.league import League, OpponentCache, Snapshots
from magic_rl.loop.resume import ResumeError, last_good_checkpoint, replace_dir
from magic_rl.loop.stages import (
    SeedSampler,
    StepJudge,
    Timer,
    game_metrics,
    is_count,
    replay_records,
)
from magic_rl.policy import HFPolicy
from magic_rl.prompts import load_templates
from magic_rl.records import Role, Seed, Verdict
from magic_rl.rewards import compute_rewards, summarize
from magic_rl.schedule import Scheduler
from magic_rl.strategies import read_pool, resolve_strategies


class JudgeUnusable(RuntimeError):
    """Most of a step's judge labels are unknown: the run stops rather than train on nothing."""


class Run:
    """Everything a training run holds: players, trainers, judge, schedule, files."""

    def __init__(
        self, cfg: RunConfig, run_dir: Path, *, seeds: list[Seed] | None = None, log=print
    ) -> None:
        import torch
        from accelerate import Accelerator

        from magic_rl.trainer import GRPOTrainer

        self.cfg, self.run_dir, self.log = cfg, run_dir, log
        cpu = use_cpu(cfg)
        log_with = None if cfg.train.tracker == "none" else cfg.train.tracker
        self.accelerator = Accelerator(cpu=cpu, log_with=log_with, project_dir=str(run_dir))
        self.main = self.accelerator.is_main_process
        torch.manual_seed(cfg.seed)
        device = str(self.accelerator.device)

        self.seeds = seeds if seeds is not None else load_rl_seeds(cfg)
        self.sampler = SeedSampler(
            self.seeds, cfg.train.seeds_per_step, cfg.data.harmful_fraction, cfg.seed
        )
        self.static_attacks = load_static_attacks(cfg) if cfg.game.attacker == "static" else None

        self.policies: dict[Role, HFPolicy | None] = {Role.ATTACKER: None, Role.DEFENDER: None}
        state = run_dir / "state"
        lora_roles = {}
        shared = cfg.schedule.shared_weights
        for role, pcfg in ((Role.ATTACKER, cfg.attacker), (Role.DEFENDER, cfg.defender)):
            if role is Role.ATTACKER and (cfg.game.attacker != "policy" or shared):
                continue
            saved = state / role.value if (state / role.value).exists() else None
            if pcfg.lora is not None:  # the saved state of a LoRA role is its adapter alone
                from magic_rl.lora import LoraRole

                require_safetensors(pcfg.model)
                lora_roles[role] = LoraRole(pcfg.model, pcfg, saved)
            else:
                self.policies[role] = load_policy(saved or pcfg.model, pcfg, device)
        if lora_roles:  # roles on the same base share one frozen copy, one adapter each
            from magic_rl.lora import load_lora_policies

            self.policies.update(load_lora_policies(lora_roles, device))
        if shared:  # one model plays both roles; each role has its own optimiser state
            self.policies[Role.ATTACKER] = self.policies[Role.DEFENDER]
        self.trainers: dict[Role, GRPOTrainer] = {}
        ref = None
        for role in trained_roles(cfg.schedule):
            pcfg = cfg.attacker if role is Role.ATTACKER else cfg.defender
            if shared and ref is not None:
                pass  # the shared model's reference serves both roles
            elif cfg.grpo.kl_beta > 0 and pcfg.lora is not None:
                from magic_rl.lora import reference_model

                ref = reference_model(self.policies[role])  # the base, adapters off: no copy
            elif cfg.grpo.kl_beta > 0 and shared:
                ref = load_policy(cfg.defender.model, pcfg, device).model.eval()
                ref.requires_grad_(False)
            elif cfg.grpo.kl_beta > 0:
                ref = load_policy(pcfg.model, pcfg, device).model.eval()
                ref.requires_grad_(False)
            self.trainers[role] = GRPOTrainer(
                role,
                self.policies[role],
                pcfg,
                cfg.grpo,
                ref_model=ref,
                accelerator=self.accelerator,
            )
        for role, policy in self.policies.items():
            if policy is not None and role not in self.trainers:
                policy.model.requires_grad_(False)

        self.judge = make_judge(cfg.judge)
        self.players = game.Players(
            attacker=self.policies[Role.ATTACKER],
            defender=self.policies[Role.DEFENDER],
            templates=load_templates(cfg.game.template_set, cfg.game.templates_dir),
            attacker_sampling=cfg.attacker.sampling,
            defender_sampling=cfg.defender.sampling,
        )
        self.scheduler = Scheduler(schedule_for(cfg.schedule))
        self.start_step = 0
        self._judge_counts: dict[str, float] = {}
        self._switch_times: dict[str, float] = {}  # the step-0 switch's, logged with step 0
        self.device = device
        self.snapshots = Snapshots()
        self.league = League(cfg.league, self.snapshots, cfg.seed)
        self.opponents = OpponentCache(run_dir, self._load_frozen)
        self.hard_cases = CaseBuffer(cfg.replay.max_size)
        hardening = cfg.schedule.protocol == "victim_hardening"
        self.pending = CaseBuffer(None) if hardening else None  # attacks since the last hardening
        self.crossplay = LiveCrossplay(cfg, run_dir, self.judge) if cfg.crossplay.probe else None

    def _load_frozen(self, path: Path, role: Role):
        """A past opponent from its checkpoint directory (a LoRA role's is an adapter dir)."""
        pcfg = self.cfg.attacker if role is Role.ATTACKER else self.cfg.defender
        if pcfg.lora is None:
            return load_policy(path, pcfg.model_copy(update={"backend": "hf"}), self.device)
        return HFPolicy.from_pretrained(path, dtype=pcfg.dtype, device=pcfg.device or self.device)

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
        name = f"step-{step:06d}"
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
            self.save_checkpoint(0)
            self._switch_times = self.on_switch(0, trained_roles(self.cfg.schedule))

    def _schedule(self, step: int, roles: Sequence[Role], metrics: dict) -> bool:
        """Stage 5: the next step's role. At a switch (and after the last step) both roles'
        checkpoint, and the roles that trained join their snapshot lists. True at a switch."""
        metrics.update(self._switch_times)
        self._switch_times = {}
        switched = self.advance(metrics)
        last = step + 1 == self.cfg.train.steps
        if (switched and self.cfg.train.checkpoint_at_switch) or last:
            self.save_checkpoint(step + 1)
            metrics.update(self.on_switch(step + 1, roles))
        return switched

    def _log(self, step: int, metrics: dict, replay: list[dict], switched: bool) -> None:
        """Stage 6: metrics.jsonl, replay.jsonl and the tracker (main process), then the state
        resume needs, at a switch, after the last step and every `train.checkpoint_every` steps."""
        if self.main:
            append_jsonl(self.run_dir / "replay.jsonl", replay)
            append_jsonl(self.run_dir / "metrics.jsonl", [metrics])
            if self.cfg.train.tracker != "none":
                floats = {k: v for k, v in metrics.items() if isinstance(v, float)}
                self.accelerator.log(floats, step=step)
        every, last = self.cfg.train.checkpoint_every, step + 1 == self.cfg.train.steps
        if switched or last or (every and (step + 1) % every == 0):
            self.save_state(step + 1)

    def _batch(self, step: int, role: Role) -> tuple[list[Seed], list[str | None], dict]:
        """Stage 0 for `role`: the step's seeds and, per seed, a stored attack to replay."""
        batch = self.sampler.batch(step)
        fixed: list[str | None] = [None] * len(batch)
        extra: dict[str, float] = {}
        if role is not Role.DEFENDER:
            return batch, fixed, extra
        rng = random.Random(f"{self.cfg.seed}:replay:{step}")
        if self.pending is not None:  # victim hardening: the attacks collected since last time
            cases = self.pending.draw(len(batch), rng)
            if cases:
                batch, fixed = [c.seed for c in cases], [c.attack for c in cases]
            extra["hardening/collected"] = float(len(self.pending))
        elif self.cfg.replay.share > 0:
            batch, fixed = mix_in(batch, self.hard_cases, self.cfg.replay.share, rng)
            extra["replay/share"] = sum(f is not None for f in fixed) / max(len(batch), 1)
        return batch, fixed, extra

    def _after_step(self, roles: Sequence[Role], opponents: dict, replay: list[dict], metrics):
        """Feed the buffers and the league's statistics with the finished step."""
        if self.cfg.replay.share > 0:
            self.hard_cases.add(case_of(r) for r in replay if is_hard(r))
            metrics["replay/buffer_size"] = float(len(self.hard_cases))
        if self.pending is not None:
            if Role.DEFENDER in roles:
                self.pending.clear()
            else:
                self.pending.add((case_of(r) for r in replay), distinct=False)
        for k, role in enumerate(roles):  # the asr of the rollout this role trained on
            if opponents.get(role) is not None:
                key = "game/asr" if k == 0 else f"{role.value}_rollout/game/asr"
                self.league.record(role.other, opponents[role], metrics.get(key))

    # -- one step ----------------------------------------------------------------------------------

    def step(self, step: int) -> dict:
        cfg, timer = self.cfg, Timer()
        roles = self.roles_at()
        t0 = time.perf_counter()
        metrics: dict[str, float] = {}
        played = []
        opponents: dict[Role, str | None] = {}
        for k, role in enumerate(roles):  # concurrent: both rollouts before either update
            opponents[role] = (
                self.league.pick(role, step, latest_in_pool=not self.concurrent)
                if cfg.league.enabled
                else None
            )
            episodes, verdicts, rewards, m, fixed = self._play(step, role, k, opponents, timer)
            played.append((role, episodes, verdicts, rewards, fixed))
            if k == 0:
                metrics.update(m)
            else:  # the second rollout's own role keys replace the first's; the rest kept apart
                for key, value in m.items():
                    if key.startswith(f"{role.value}/"):
                        metrics[key] = value
                    elif key == "judge/calls":
                        metrics[key] += value
                    else:
                        metrics[f"{role.value}_rollout/{key}"] = value
        with timer("update"):  # 4. GRPO update of the scheduled role(s); the other stays frozen
            for role, episodes, _, rewards, _ in played:
                metrics.update(self.trainers[role].update(episodes, rewards[role]))
        judge_stats = getattr(self.judge, "stats", None)
        if judge_stats is not None:  # endpoint / HF judges count requests, retries, failures
            now = judge_stats.metrics()
            metrics.update({k: v - self._judge_counts.get(k, 0.0) for k, v in now.items()})
            self._judge_counts = now
        if cfg.league.enabled:
            for role in roles:
                metrics[f"league/{role.value}/past_opponent"] = float(opponents[role] is not None)
        metrics = self._reduce(metrics)
        metrics.update(timer.times)
        metrics["time/step"] = time.perf_counter() - t0
        role_name = "both" if self.concurrent else roles[0].value
        metrics = {"step": step, "schedule/role": role_name, **metrics}
        replay: list[dict] = []
        for role, episodes, verdicts, rewards, fixed in played:
            recs = list(replay_records(step, role, episodes, verdicts, rewards))
            for rec in recs:
                rec["replayed"] = fixed[rec["group"]] is not None
                if opponents.get(role) is not None:
                    rec["opponent"] = opponents[role]
            replay += self._gather(recs)
        for k, rec in enumerate(replay):
            rec["episode"] = k
        self._after_step(roles, opponents, replay, metrics)
        switched = self._schedule(step, roles, metrics)  # 5. schedule
        self._log(step, metrics, replay, switched)  # 6. log
        return metrics

    def _play(self, step: int, role: Role, k: int, opponents: dict, timer: Timer):
        """Stages 0-3 for one trained role: seeds, rollout, judge, rewards."""
        cfg, G = self.cfg, self.cfg.grpo.group_size
        step_judge = StepJudge(self.judge, cfg.judge.max_response_tokens)
        with timer("seeds"):
            batch, fixed, extra = self._batch(step, role)  # 0. seeds
            n_proc, rank = self.accelerator.num_processes, self.accelerator.process_index
            batch, fixed = batch[rank::n_proc], fixed[rank::n_proc]
        players = self.players
        if opponents.get(role) is not None:  # league: a past opponent from its checkpoint
            opponent = self.opponents.get(role.other, opponents[role])
            players = replace(players, **{role.other.value: opponent})
        with timer("rollout"):
            episodes = game.play(  # 1. rollout
                batch,
                players,
                cfg.game,
                attack_samples=G if role is Role.ATTACKER else 1,
                reply_samples=1 if role is Role.ATTACKER else G,
                rng_seed=self._rng_seed(step) + k * 7_919_000_003,
                static_attacks=self.static_attacks,
                judge_turn=step_judge,
                fixed_attacks=fixed if any(f is not None for f in fixed) else None,
            )
        with timer("judge"):
            verdicts = step_judge(  # 2. judge
                [e.last.attack for e in episodes],
                [game.reply_for_judge(e.last.reply, cfg.game) for e in episodes],
            )
            verdicts = apply_request_labels(self.judge, verdicts, [e.seed.label for e in episodes])
            self._check_verdicts(step, verdicts)
        with timer("rewards"):
            rewards = compute_rewards(episodes, verdicts, cfg.reward)  # 3. rewards
        m = {**game_metrics(episodes, verdicts), **summarize(rewards), **extra}
        m["judge/calls"] = float(step_judge.calls)
        return episodes, verdicts, rewards, m, fixed

    def _gather(self, replay: list[dict]) -> list[dict]:
        n_proc, rank = self.accelerator.num_processes, self.accelerator.process_index
        if n_proc == 1:
            return replay
        from accelerate.utils import gather_object

        for rec in replay:  # the seed's index in the whole step's batch (strided shards)
            rec["group"] = rec["group"] * n_proc + rank
        return sorted(gather_object(replay), key=lambda r: (r["group"], r["member"]))

    def _check_verdicts(self, step: int, verdicts: list[Verdict]) -> None:
        """Raise JudgeUnusable when more than `judge.max_unknown_fraction` of the step's
        exchanges (over all data-parallel ranks) have an unknown label."""
        unknown, total = sum(v.any_unknown for v in verdicts), len(verdicts)
        if self.accelerator.num_processes > 1:
            import torch

            t = torch.tensor([unknown, total], dtype=torch.float64, device=self.accelerator.device)
            unknown, total = (int(x) for x in self.accelerator.reduce(t, reduction="sum").tolist())
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

    def _rng_seed(self, step: int) -> int:
        # Shards draw from distinct streams; one process keeps the (seed, step) stream.
        n_proc, rank = self.accelerator.num_processes, self.accelerator.process_index
        return (self.cfg.seed * 100_003 + step) * n_proc + rank

    def _reduce(self, metrics: dict[str, float]) -> dict[str, float]:
        """Combine the shards' metrics: counts add up; rates and means are averaged over the
        ranks that have them (a rank lacks a key, or holds NaN, when none of its samples is
        valid)."""
        if self.accelerator.num_processes == 1:
            return metrics
        import torch
        from accelerate.utils import gather_object

        keys = sorted(set(gather_object(list(metrics))))
        values = [metrics.get(k, math.nan) for k in keys]
        has = [0.0 if math.isnan(v) else 1.0 for v in values]
        t = torch.tensor(
            [[v if h else 0.0 for v, h in zip(values, has, strict=True)], has],
            dtype=torch.float64,
            device=self.accelerator.device,
        )
        total, n = self.accelerator.reduce(t, reduction="sum").tolist()
        return {
            k: math.nan if not c else s if is_count(k) else s / c
            for k, s, c in zip(keys, total, n, strict=True)
        }

    # -- checkpoints -------------------------------------------------------------------------------

    def save_checkpoint(self, step: int) -> Path:
        """Both roles in Hugging Face format at a switch boundary (loadable with from_pretrained)."""
        out = self.run_dir / "checkpoints" / f"step-{step:06d}"
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

        tmp = self.run_dir / "state.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for role in self.trainers:
            self.policies[role].save_pretrained(tmp / role.value)
        torch.save({r.value: t.state_dict() for r, t in self.trainers.items()}, tmp / "optim.pt")
        meta = {
            "next_step": next_step,
            "scheduler": self.scheduler.state_dict(),
            "snapshots": self.snapshots.state_dict(),
            "league": self.league.state_dict(),
            "hard_cases": self.hard_cases.state_dict(),
            "pending": None if self.pending is None else self.pending.state_dict(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        replace_dir(tmp, self.run_dir / "state", self.run_dir / "state.old")

    def load_state(self, next_step: int) -> None:
        """Optimisers and schedule from state/ (checked whole by `resume.check_resume`, which
        gave `next_step`; 0 = the run never saved a state)."""
        import torch

        state = self.run_dir / "state"
        if next_step == 0 and not state.exists():
            self.log("no saved state: starting from step 0")
            return
        try:
            meta = json.loads((state / "meta.json").read_text())
            self.scheduler.load_state_dict(meta["scheduler"])
            self.snapshots.load_state_dict(meta.get("snapshots", {}))
            self.league.load_state_dict(meta.get("league", {}))
            self.hard_cases.load_state_dict(meta.get("hard_cases", []))
            if self.pending is not None:
                self.pending.load_state_dict(meta.get("pending") or [])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ResumeError(
                f"{state / 'meta.json'}: scheduler, league or hard-case state: unreadable "
                f"({e!r}). " + last_good_checkpoint(self.run_dir)
            ) from e
        optim_path = state / "optim.pt"
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
        self.start_step = next_step


def append_jsonl(path: Path, records: Sequence[dict]) -> None:
    """Append records as JSON lines, synced to disk (a kill loses no logged step)."""
    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


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


def load_policy(path: str | Path, pcfg, device: str):
    """A fully fine-tuned role from a model dir or Hub id, on `pcfg.device` if set, else `device`.

    `pcfg.backend == "vllm"` wraps it with a vLLM engine for rollouts (`magic_rl.vllm_policy`).
    LoRA roles load through `magic_rl.lora.load_lora_policies` instead.
    """
    require_safetensors(path)
    device = pcfg.device or device
    policy = HFPolicy.from_pretrained(
        path, dtype=pcfg.dtype, device=device, trust_remote_code=pcfg.trust_remote_code
    )
    if pcfg.backend == "vllm":
        from magic_rl.vllm_policy import VLLMPolicy

        return VLLMPolicy.from_hf(policy, path, pcfg, device)
    return policy


def require_safetensors(path: str | Path) -> None:
    """A local model directory must hold safetensors weights: pickle files (`pytorch_model.bin`,
    `*.pt`) can run code when loaded, so they are refused with a message that says how to convert."""
    path = Path(path)
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
    if pickles:
        raise OSError(
            f"{path}: weights only in pickle format ({', '.join(pickles)}); magic-rl loads "
            "safetensors only (a pickle can run code when loaded). Convert once from a trusted "
            "copy: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, "
            "safe_serialization=True)"
        )


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
