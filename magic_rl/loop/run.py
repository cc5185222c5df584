"""`Run`: one training run in memory — both roles' policies and trainers, the judge, the scheduler,
the accelerator — and `Run.step`, the numbered step program; saving and loading its state."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

from magic_rl import game
from magic_rl.config import RunConfig, trained_roles
from magic_rl.judge.keyword import apply_request_labels
from magic_rl.loop.stages import (
    SeedSampler,
    StepJudge,
    Timer,
    game_metrics,
    is_count,
    replay_records,
)
from magic_rl.records import Role, Seed
from magic_rl.rewards import compute_rewards, summarize
from magic_rl.schedule import Scheduler


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
            verdicts = apply_request_labels(self.judge, verdicts, [e.seed.label for e in episodes])
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
