"""One co-evolution step per role on the sandbox: where its time goes, and what the loop adds.

For each phase (defender trains, attacker trains) it times `Run.step`, whose metrics already hold
`time/<stage>` (seeds, rollout, judge, rewards, update) and `time/step`, and then the same stages
called alone with the same inputs: `SeedSampler.batch`, `game.play`, the step's judge on the last
exchanges, `compute_rewards`, `GRPOTrainer.update`. Weights and optimiser state are restored
between the two, and sampling is seeded by (seed, step), so both see the same rollouts (checked:
same generated tokens). `overhead = step time / sum of the stages alone`: 1.00 means the loop's
orchestration (metrics, replay records, bookkeeping) costs nothing measurable.

Then sampling speed on the same model the rollout uses: `HFPolicy.generate` against a plain
`model.generate` loop on one batch of prompts of the real attacker template (default 64 seeds of the
RL split, the phase-1 attacker, the attacker's sampling config). Tokens count up to and including
each row's EOS; `HFPolicy.generate` is timed end to end (chat template, encoding and decoding),
`model.generate` is handed the encoded batch.

Threads: `torch.set_num_threads(1)` (`--threads`): the sandbox's matmuls are too small to gain from
more, and on a shared 2-core machine extra OpenMP threads spin against other processes.

The world is `load_config("sandbox", overrides)`'s, built on first use (minutes at full size) and
then reused from `sandbox.cache_dir`.

`--world DIR` uses an already built world directory as is (its cache key hashes the source tree,
so any edit to the sandbox code makes the cache miss).

Run: `python benchmarks/step.py [--repeats 3] [--batch 64] [--threads 1] [--world DIR]
[override ...]`, e.g. `python benchmarks/step.py sandbox.cache_dir=/tmp/mc_full`.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch

from magic_rl import game
from magic_rl.config import load_config
from magic_rl.loop import Run, StepJudge
from magic_rl.policy import HFPolicy, left_pad
from magic_rl.prompts import attacker_messages, load_templates
from magic_rl.records import Role
from magic_rl.sandbox.world import World, build_attacker, build_world

STAGES = ("seeds", "rollout", "judge", "rewards", "update")


def snapshot(run: Run, role: Role):
    trainer = run.trainers[role]
    return copy.deepcopy(trainer.model.state_dict()), copy.deepcopy(trainer.optimizer.state_dict())


def restore(run: Run, role: Role, snap) -> None:
    run.trainers[role].model.load_state_dict(snap[0])
    run.trainers[role].optimizer.load_state_dict(snap[1])


def stages_alone(run: Run, role: Role, step: int) -> tuple[dict[str, float], int]:
    """The step's stages as plain calls, one timer each. Returns (seconds per stage, tokens)."""
    cfg, G = run.cfg, run.cfg.grpo.group_size
    times: dict[str, float] = {}
    judge = StepJudge(run.judge, cfg.judge.max_response_tokens, cfg.game)

    def timed(stage, fn):
        start = time.perf_counter()
        out = fn()
        times[stage] = time.perf_counter() - start
        return out

    batch = timed("seeds", lambda: run.samplers[role].batch(step))
    episodes = timed(
        "rollout",
        lambda: game.play(
            batch,
            run.players,
            cfg.game,
            attack_samples=G if role is Role.ATTACKER else 1,
            reply_samples=1 if role is Role.ATTACKER else G,
            rng_seed=cfg.seed * 100_003 + step,  # the loop's stream on one process
            static_attacks=run.static_attacks,
            judge_turn=judge,
        ),
    )
    # the loop's own judge and rewards stages: the request labels, the quality term's label and
    # K-reply pooling come with them (the bare judge call gave verdicts without the seed's request
    # label, so every reward was dropped and the update timed an empty batch)
    verdicts = timed("judge", lambda: run._judge(step, episodes, judge))
    _, trained = timed("rewards", lambda: run._rewards(role, episodes, verdicts))
    timed("update", lambda: run.trainers[role].update(*trained))
    tokens = sum(len(t.attack_ids) + len(t.reply_ids) for e in episodes for t in e.turns)
    return times, tokens


def bench_role(cfg_overrides: list[str], role: Role, repeats: int, out: Path):
    """Median per-stage seconds inside `Run.step` and alone, over `repeats` steps."""
    cfg = load_config(
        "sandbox",
        [
            *cfg_overrides,
            f"schedule.train_roles={role.value}",
            f"output_dir={out}",
            f"name={role.value}",
        ],
    )
    (out / role.value).mkdir(parents=True, exist_ok=True)  # Run.step logs into its run dir
    run = Run(cfg, out / role.value, log=lambda *a: None)
    snap = snapshot(run, role)
    run.step(0)  # warm-up (allocator, first-call costs); its update is undone below
    restore(run, role, snap)
    in_step: dict[str, list[float]] = {}
    alone: dict[str, list[float]] = {}
    same = True
    for r in range(repeats):
        step = 1 + r
        snap = snapshot(run, role)
        times, tokens = stages_alone(run, role, step)
        restore(run, role, snap)
        metrics = run.step(step)
        restore(run, role, snap)  # every repeat starts from the same weights
        same &= tokens == metrics["tokens/attacker"] + metrics["tokens/defender"]
        for stage in STAGES:
            in_step.setdefault(stage, []).append(metrics[f"time/{stage}"])
            alone.setdefault(stage, []).append(times[stage])
        in_step.setdefault("step", []).append(metrics["time/step"])
        alone.setdefault("step", []).append(sum(times.values()))
    med = {k: statistics.median(v) for k, v in in_step.items()}
    med_alone = {k: statistics.median(v) for k, v in alone.items()}
    # the ratio of the medians hides per-repeat noise; the median of per-repeat ratios keeps pairs
    ratios = [s / a for s, a in zip(in_step["step"], alone["step"], strict=True)]
    return run, med, med_alone, statistics.median(ratios), same


def print_role(role: Role, med: dict, med_alone: dict, overhead: float, same: bool) -> None:
    print(f"\n{role.value} phase (median over repeats; same rollout in both: {same})")
    print(f"  {'stage':8s} {'in step s':>10s} {'alone s':>10s} {'step/alone':>11s}")
    for stage in (*STAGES, "step"):
        a, b = med[stage], med_alone[stage]
        name = stage if stage != "step" else "step/sum"
        print(f"  {name:8s} {a:10.3f} {b:10.3f} {a / b if b else float('nan'):10.2f}x")
    print(f"  orchestration overhead (step time / sum of stages alone): {overhead:.3f}")


def count(rows: list[list[int]], eos: set[int]) -> int:
    total = 0
    for row in rows:
        stop = next((i for i, t in enumerate(row) if t in eos), None)
        total += len(row) if stop is None else stop + 1
    return total


def bench_sampling(policy: HFPolicy, chats, sampling, repeats: int) -> dict[str, list[float]]:
    """tokens/s of HFPolicy.generate and model.generate on the same batch, interleaved runs."""
    eos = set(policy.eos_ids)
    kw = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_new_tokens": sampling.max_new_tokens,
    }

    def ours(seed: int) -> int:
        gens = policy.generate(chats, max_prompt_tokens=sampling.max_prompt_tokens, seed=seed, **kw)
        return sum(len(g.completion_ids) for g in gens)

    prompts = [policy.encode_chat(c)[-sampling.max_prompt_tokens :] for c in chats]

    def plain(seed: int) -> int:
        torch.manual_seed(seed)
        ids, mask = left_pad(prompts, policy.pad_id, str(policy.device))
        with torch.inference_mode():
            out = policy.model.generate(
                input_ids=ids,
                attention_mask=mask.long(),
                do_sample=True,
                top_k=0,
                pad_token_id=policy.pad_id,
                eos_token_id=sorted(eos),
                **kw,
            )
        return count(out[:, ids.shape[1] :].tolist(), eos)

    ours(0), plain(0)  # warm-up
    rates: dict[str, list[float]] = {"HFPolicy.generate": [], "model.generate": []}
    for r in range(repeats):
        for name, fn in (("HFPolicy.generate", ours), ("model.generate", plain)):
            start = time.perf_counter()
            tokens = fn(1 + r)
            rates[name].append(tokens / (time.perf_counter() - start))
    return rates


def find_attacker(world: Path) -> Path:
    found = sorted(p for p in world.glob("attacker-*") if (p / "sft.json").exists())
    if not (world / "build.json").exists() or len(found) != 1:
        raise SystemExit(
            f"--world {world}: expected a built world with one phase-1 attacker "
            f"(build.json and attacker-*/sft.json); found {len(found)} attackers"
        )
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="prompts in the sampling comparison")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--world",
        type=Path,
        default=None,
        help="a built world (.../world-<hash>) to use as is, whatever its hash",
    )
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. sandbox.cache_dir=DIR")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = ["train.progress=false", *args.overrides]
    cfg = load_config("sandbox", overrides)
    t = time.perf_counter()
    if args.world is not None:
        world, attacker = World(args.world), find_attacker(args.world)
    else:
        world = build_world(cfg, log=lambda *a: None)
        attacker = build_attacker(cfg, world, log=lambda *a: None)
    # Pin the built paths: the world's cache key hashes the source tree, which may change while
    # the benchmark runs (an edit elsewhere would otherwise send each Run to build a new world).
    overrides += [
        f"attacker.model={attacker}",
        f"defender.model={world.base}",
        f"judge.model={world.judge}",
    ]
    print(
        f"world {world.root} ({time.perf_counter() - t:.0f}s to build or find); threads "
        f"{args.threads}; {cfg.train.seeds_per_step} seeds (attacker steps "
        f"{cfg.train.attacker_seeds_per_step or cfg.train.seeds_per_step}) x G={cfg.grpo.group_size} "
        "per step; "
        f"max new tokens attacker {cfg.attacker.sampling.max_new_tokens}, defender "
        f"{cfg.defender.sampling.max_new_tokens}"
    )
    out = Path(tempfile.mkdtemp(prefix="bench_step_"))
    run = None
    for role in (Role.DEFENDER, Role.ATTACKER):
        run, med, med_alone, overhead, same = bench_role(overrides, role, args.repeats, out)
        print_role(role, med, med_alone, overhead, same)

    policy = run.policies[Role.ATTACKER]
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    seeds = [s for step in range(args.batch) for s in run.samplers[Role.ATTACKER].batch(step)][
        : args.batch
    ]
    chats = [attacker_messages(templates, s, [], False) for s in seeds]
    rates = bench_sampling(policy, chats, cfg.attacker.sampling, args.repeats)
    print(
        f"\nsampling: {args.batch} attacker prompts x <= {cfg.attacker.sampling.max_new_tokens} "
        f"new tokens, tokens/s over {args.repeats} interleaved runs"
    )
    for stat in (statistics.median, max):
        ours, theirs = (stat(v) for v in rates.values())
        print(
            f"  {stat.__name__:6s} HFPolicy.generate {ours:7.0f}   model.generate {theirs:7.0f}"
            f"   ratio {ours / theirs:4.2f}x"
        )


if __name__ == "__main__":
    main()
