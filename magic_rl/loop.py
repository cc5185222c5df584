"""Phase 2: alternating GRPO for attacker and defender — the step program, run directory and resume.

Each step is a short program of timed stages (SPEC §4, STYLE "The heart of loop.py"):

    0. seeds     the step's batch, a pure function of (run seed, step): resume needs no sampler state
    1. rollout   game.play: attacker -> defender, batched across all seeds of the step
    2. judge     <= 2 judge calls per exchange, de-duplicated and memoised within the step
    3. rewards   per-role rewards with their components
    4. update    GRPO for the scheduled role only; the other role is frozen
    5. log       metrics.jsonl, replay.jsonl, progress bar, tracker
    6. schedule  next role; checkpoints of both roles at every switch

Run directory (runs/<name>/): config.yaml (resolved), metrics.jsonl, replay.jsonl, checkpoints/
step-NNNNNN/{attacker,defender}/ (Hugging Face format), state/ (weights, optimisers, schedule:
what resume needs), summary.json.

Resume (`magic train --resume RUN_DIR`) restarts from the last saved state (every switch, and every
`train.checkpoint_every` steps) and cuts metrics and replay records of later steps, so a run killed at
any point continues without lost or duplicated records; per-step randomness derives from (seed, step),
so the replayed steps are the same steps.

Data-parallel (`accelerate launch --multi_gpu --num_processes N`; on CPU with no GPU visible, gloo —
note that `accelerate launch --cpu` ignores --num_processes): each process plays a shard of the step's
seeds, the trained role's gradients are summed across ranks with a whole-step loss denominator (the
step equals the single-process step), metrics are reduced, and only the main process writes files.
Build the sandbox world before launching.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from magic_rl import game
from magic_rl.config import RunConfig, dump_config, trained_roles
from magic_rl.cpu import tune_for_cpu
from magic_rl.data.files import read_jsonl_rows
from magic_rl.judge.formats import clip_words
from magic_rl.records import Episode, Role, Seed, Verdict
from magic_rl.rewards import compute_rewards, summarize
from magic_rl.schedule import Scheduler

# --- stage 0: seeds ------------------------------------------------------------------------------


class SeedSampler:
    """Deterministic batches: step s draws the next slice of a per-epoch shuffle of each label."""

    def __init__(
        self, seeds: Sequence[Seed], per_step: int, harmful_fraction: float, run_seed: int
    ):
        self.by_label = {
            label: [s for s in seeds if s.label == label] for label in ("harmful", "benign")
        }
        n_harm = round(per_step * harmful_fraction)
        self.per_label = {"harmful": n_harm, "benign": per_step - n_harm}
        for label, n in self.per_label.items():
            if n and not self.by_label[label]:
                raise ValueError(f"data: the batch needs {label} seeds but the seed set has none")
        self.run_seed = run_seed

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


# --- stage 2: judge ------------------------------------------------------------------------------


class StepJudge:
    """Judges exchanges once per step: multi-turn early stopping and the reward stage share verdicts."""

    def __init__(self, judge, max_response_words: int):
        self.judge = judge
        self.max_words = max_response_words
        self.memo: dict[tuple[str, str], Verdict] = {}
        self.calls = 0

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]:
        keys = [(p, clip_words(r, self.max_words)) for p, r in zip(prompts, responses, strict=True)]
        todo = list(dict.fromkeys(k for k in keys if k not in self.memo))
        if todo:
            verdicts = self.judge.judge([k[0] for k in todo], [k[1] for k in todo])
            self.calls += len(todo)
            self.memo.update(zip(todo, verdicts, strict=True))
        return [self.memo[k] for k in keys]


# --- metrics ---------------------------------------------------------------------------------------


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
    m["attacker/format_rate"] = sum(e.last.attack_format_ok for e in episodes) / max(
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
        self.times[f"time/{stage}"] = time.perf_counter() - t


# --- the run ---------------------------------------------------------------------------------------


class Run:
    """Everything a training run holds: players, trainers, judge, schedule, files."""

    def __init__(self, cfg: RunConfig, run_dir: Path, *, log=print) -> None:
        import torch
        from accelerate import Accelerator

        from magic_rl.judge import make_judge
        from magic_rl.policy import HFPolicy
        from magic_rl.prompts import load_templates
        from magic_rl.trainer import GRPOTrainer

        self.cfg, self.run_dir, self.log = cfg, run_dir, log
        cpu = use_cpu(cfg)
        log_with = None if cfg.train.tracker == "none" else cfg.train.tracker
        self.accelerator = Accelerator(cpu=cpu, log_with=log_with, project_dir=str(run_dir))
        self.main = self.accelerator.is_main_process
        if self.accelerator.num_processes > 1:
            require_built_world(cfg)
        torch.manual_seed(cfg.seed)
        device = str(self.accelerator.device)

        self.seeds = load_rl_seeds(cfg)
        self.sampler = SeedSampler(
            self.seeds, cfg.train.seeds_per_step, cfg.data.harmful_fraction, cfg.seed
        )
        self.static_attacks = load_static_attacks(cfg) if cfg.game.attacker == "static" else None

        self.policies: dict[Role, HFPolicy | None] = {Role.ATTACKER: None, Role.DEFENDER: None}
        state = run_dir / "state"
        lora_roles = {}
        for role, pcfg in ((Role.ATTACKER, cfg.attacker), (Role.DEFENDER, cfg.defender)):
            if role is Role.ATTACKER and cfg.game.attacker != "policy":
                continue
            saved = state / role.value if (state / role.value).exists() else None
            if pcfg.lora is not None:  # the saved state of a LoRA role is its adapter alone
                from magic_rl.lora import LoraRole

                base = resolve(pcfg.model, cfg, log)
                require_safetensors(base)
                lora_roles[role] = LoraRole(base, pcfg, saved)
            else:
                self.policies[role] = load_policy(
                    saved or resolve(pcfg.model, cfg, log), pcfg, device
                )
        if lora_roles:  # roles on the same base share one frozen copy, one adapter each
            from magic_rl.lora import load_lora_policies

            self.policies.update(load_lora_policies(lora_roles, device))
        self.trainers: dict[Role, GRPOTrainer] = {}
        for role in trained_roles(cfg):
            pcfg = cfg.attacker if role is Role.ATTACKER else cfg.defender
            ref = None
            if cfg.grpo.kl_beta > 0 and pcfg.lora is not None:
                from magic_rl.lora import reference_model

                ref = reference_model(self.policies[role])  # the base, adapters off: no copy
            elif cfg.grpo.kl_beta > 0:
                ref = load_policy(resolve(pcfg.model, cfg, log), pcfg, device).model.eval()
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

        judge_kw = {}
        if cfg.judge.backend == "embedded":
            judge_kw["embedded_path"] = resolve(cfg.judge.model, cfg, log)
        self.judge = make_judge(cfg.judge, **judge_kw)
        self.players = game.Players(
            attacker=self.policies[Role.ATTACKER],
            defender=self.policies[Role.DEFENDER],
            templates=load_templates(cfg.game.template_set, cfg.game.templates_dir),
            attacker_sampling=cfg.attacker.sampling,
            defender_sampling=cfg.defender.sampling,
        )
        self.scheduler = Scheduler(cfg.schedule)
        self.start_step = 0
        self._judge_counts: dict[str, float] = {}

    # -- one step ----------------------------------------------------------------------------------

    def step(self, step: int) -> tuple[dict, list[dict]]:
        cfg, timer = self.cfg, Timer()
        role = self.scheduler.role
        G = cfg.grpo.group_size
        step_judge = StepJudge(self.judge, cfg.judge.max_response_tokens)
        t0 = time.perf_counter()
        with timer("seeds"):
            batch = self.sampler.batch(step)  # 0. seeds
            batch = batch[self.accelerator.process_index :: self.accelerator.num_processes]
        with timer("rollout"):
            episodes = game.play(  # 1. rollout
                batch,
                self.players,
                cfg.game,
                attack_samples=G if role is Role.ATTACKER else 1,
                reply_samples=1 if role is Role.ATTACKER else G,
                rng_seed=self._rng_seed(step),
                static_attacks=self.static_attacks,
                judge_turn=step_judge,
            )
        with timer("judge"):
            verdicts = step_judge(  # 2. judge
                [e.last.attack for e in episodes],
                [game.reply_for_judge(e.last.reply, cfg.game) for e in episodes],
            )
        with timer("rewards"):
            rewards = compute_rewards(episodes, verdicts, cfg.reward)  # 3. rewards
        with timer("update"):
            stats = self.trainers[role].update(episodes, rewards[role])  # 4. GRPO update
        metrics = {**game_metrics(episodes, verdicts), **summarize(rewards), **stats}
        metrics["judge/calls"] = float(step_judge.calls)
        judge_stats = getattr(self.judge, "stats", None)
        if judge_stats is not None:  # endpoint / HF judges count requests, retries, failures
            now = judge_stats.metrics()
            metrics.update({k: v - self._judge_counts.get(k, 0.0) for k, v in now.items()})
            self._judge_counts = now
        metrics = self._reduce(metrics)
        metrics.update(timer.times)
        metrics["time/step"] = time.perf_counter() - t0
        metrics = {"step": step, "schedule/role": role.value, **metrics}
        replay = list(replay_records(step, role, episodes, verdicts, rewards))
        n_proc, rank = self.accelerator.num_processes, self.accelerator.process_index
        if n_proc > 1:
            from accelerate.utils import gather_object

            for rec in replay:  # the seed's index in the whole step's batch (strided shards)
                rec["group"] = rec["group"] * n_proc + rank
            replay = sorted(gather_object(replay), key=lambda r: (r["group"], r["member"]))
            for k, rec in enumerate(replay):
                rec["episode"] = k
        return metrics, replay

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
            for role, policy in self.policies.items():
                if policy is not None:
                    policy.save_pretrained(out / role.value)
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
        meta = {"next_step": next_step, "scheduler": self.scheduler.state_dict()}
        (tmp / "meta.json").write_text(json.dumps(meta))
        final = self.run_dir / "state"
        old = self.run_dir / "state.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def load_state(self) -> None:
        import torch

        state = self.run_dir / "state"
        if not (state / "meta.json").exists():
            self.log("no saved state: starting from step 0")
            return
        meta = json.loads((state / "meta.json").read_text())
        # on CPU first: a GPU rank must not load the main process's tensors onto cuda:0
        optim = torch.load(state / "optim.pt", map_location="cpu", weights_only=True)
        for role, trainer in self.trainers.items():
            trainer.load_state_dict(optim[role.value])
        self.scheduler.load_state_dict(meta["scheduler"])
        self.start_step = meta["next_step"]


def use_cpu(cfg: RunConfig) -> bool:
    import torch

    return cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())


def resolve(model: str, cfg: RunConfig, log) -> str:
    from magic_rl.sandbox.world import resolve_model

    return resolve_model(model, cfg, log=log)


def require_built_world(cfg: RunConfig) -> None:
    """A data-parallel run finds the sandbox world built: building it trains models with TRL, which
    would itself go data-parallel inside one process of the launch and hang."""
    from magic_rl.sandbox.world import world_for

    judge = cfg.judge.model if cfg.judge.backend == "embedded" else ""
    if not any(m.startswith("sandbox:") for m in (cfg.attacker.model, cfg.defender.model, judge)):
        return
    world = world_for(cfg)
    attacker = cfg.game.attacker == "policy" and cfg.attacker.model == "sandbox:attacker"
    if not world.built or (attacker and not (world.attacker(cfg) / "sft.json").exists()):
        raise RuntimeError(
            f"data-parallel run: the sandbox world {world.root} is not built; build it first in "
            "one process with the same config and overrides (`magic sandbox build ...`), then launch"
        )


def load_policy(path: str | Path, pcfg, device: str):
    """A fully fine-tuned role from a model dir or Hub id, on `pcfg.device` if set, else `device`.

    `pcfg.backend == "vllm"` wraps it with a vLLM engine for rollouts (`magic_rl.vllm_policy`).
    LoRA roles load through `magic_rl.lora.load_lora_policies` instead.
    """
    from magic_rl.policy import HFPolicy

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
    from magic_rl.data.seeds import load_seed_file, sandbox_seeds

    if cfg.data.seeds == "sandbox":
        kinds = (
            ("harmful", "benign", "contrast")
            if cfg.data.include_contrast
            else ("harmful", "benign")
        )
        return sandbox_seeds(split=cfg.data.split, kinds=kinds, fraction=cfg.sandbox.fraction)
    return load_seed_file(cfg.data.seeds)


def load_static_attacks(cfg: RunConfig) -> dict[str, list[str]]:
    """seed id -> pre-written rewrites (pool JSONL), held-out strategies removed."""
    from magic_rl.strategies import read_pool, resolve_strategies

    path = cfg.game.static_attacks
    if path == "sandbox":
        from magic_rl.sandbox.world import build_world

        path = str(build_world(cfg).pool)
    skip = set(resolve_strategies(cfg.data.held_out_strategies))
    out: dict[str, list[str]] = {}
    for rec in read_pool(path):
        if rec.strategy not in skip:
            out.setdefault(rec.seed.id, []).append(rec.rewrite)
    return out


# --- files -------------------------------------------------------------------------------------


def _truncate_jsonl(path: Path, next_step: int) -> None:
    """Keep records of steps < next_step; a torn last line (killed mid-write) is dropped."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("step", -1) < next_step:
            kept.append(line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept))
    os.replace(tmp, path)


def _append_jsonl(path: Path, records: Sequence[dict]) -> None:
    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def _repair_state(run_dir: Path) -> None:
    """A kill between the two renames of `save_state` leaves only state.old: put it back. Runs on the
    main process before any rank loads weights from state/."""
    state, old = run_dir / "state", run_dir / "state.old"
    if not (state / "meta.json").exists() and (old / "meta.json").exists():
        shutil.rmtree(state, ignore_errors=True)
        old.rename(state)


def train(cfg: RunConfig, *, resume: Path | None = None, log=print) -> Path:
    """Run phase 2 to `train.steps`. Returns the run directory."""
    run_dir = resume or Path(cfg.output_dir) / cfg.name
    if resume is None and (run_dir / "metrics.jsonl").exists():
        raise FileExistsError(
            f"{run_dir} already holds a run: pass --resume {run_dir} to continue "
            "it, or choose another name (name=...)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    tune_for_cpu()
    if resume is not None:
        from accelerate import PartialState

        state = PartialState(cpu=use_cpu(cfg))
        if state.is_main_process:
            _repair_state(run_dir)
        state.wait_for_everyone()
    run = Run(cfg, run_dir, log=log)
    if run.main:
        (run_dir / "config.yaml").write_text(dump_config(cfg))
    if resume is not None:
        run.load_state()
    metrics_path, replay_path = run_dir / "metrics.jsonl", run_dir / "replay.jsonl"
    if run.main:
        _truncate_jsonl(metrics_path, run.start_step)
        _truncate_jsonl(replay_path, run.start_step)
    if cfg.train.tracker != "none":
        run.accelerator.init_trackers(cfg.name, config=cfg.model_dump(mode="json"))
    if run.start_step == 0 and run.main:
        run.save_checkpoint(0)

    from magic_rl.progress import TrainProgress

    with TrainProgress(
        cfg.train.steps, run.start_step, enabled=cfg.train.progress and run.main
    ) as bar:
        for step in range(run.start_step, cfg.train.steps):
            metrics, replay = run.step(step)
            switched = run.scheduler.advance(metrics)  # 6. schedule
            if run.main:  # 5. log
                _append_jsonl(replay_path, replay)
                _append_jsonl(metrics_path, [metrics])
                if cfg.train.tracker != "none":
                    run.accelerator.log(
                        {k: v for k, v in metrics.items() if isinstance(v, float)}, step=step
                    )
            bar.update(metrics)
            last = step + 1 == cfg.train.steps
            if (switched and cfg.train.checkpoint_at_switch) or last:
                run.save_checkpoint(step + 1)
            every = cfg.train.checkpoint_every
            if switched or last or (every and (step + 1) % every == 0):
                run.save_state(step + 1)
    if cfg.train.tracker != "none":
        run.accelerator.end_training()
    if run.main:
        summary = summarize_run(run_dir)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return run_dir


def read_metrics(run_dir: Path) -> list[dict]:
    return [row for _, row in read_jsonl_rows(Path(run_dir) / "metrics.jsonl")]


def summarize_run(run_dir: Path, window: int = 5) -> dict:
    """First and last `window`-step means of the headline metrics, per phase."""
    rows = read_metrics(run_dir)
    keys = [
        "defender/refusal_rate/harmful",
        "defender/refusal_rate/benign",
        "game/asr",
        "defender/reward/total",
        "attacker/reward/total",
        "attacker/format_rate",
        "judge/unknown",
        "time/step",
    ]

    def mean(sel, key):
        vals = [r[key] for r in sel if key in r]
        return sum(vals) / len(vals) if vals else None

    return {
        "steps": len(rows),
        "switches": sum(
            1
            for a, b in zip(rows, rows[1:], strict=False)
            if a["schedule/role"] != b["schedule/role"]
        ),
        "first": {k: mean(rows[:window], k) for k in keys},
        "last": {k: mean(rows[-window:], k) for k in keys},
        "checkpoints": sorted(p.name for p in (Path(run_dir) / "checkpoints").glob("step-*")),
    }
