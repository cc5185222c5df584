"""Speed of MAGIC on a real model on this CPU: SmolLM2-135M-Instruct (`magic models fetch`).

The measurements, each printed as a table with ratios:

1. matmul peak: GFLOP/s of a square [n, n] @ [n, n] matmul in float32 and in bfloat16 (the ceiling
   MFU is measured against), and of a skinny one ([batch, 576] @ [576, 1536], decoding's shape).
2. rollout: generated tokens/s of our sampler (`HFPolicy.generate`, policy/sampling.py, timed end
   to end) vs a plain `model.generate` on the same encoded batch (defender prompts of the preset's
   seeds, `--new` tokens, temperature 1, up to EOS), float32 weights; benchmarks/sampling.py's
   interleaved repeats.
3. update: one GRPO update (`GRPOTrainer.update`, forward + backward + AdamW) on a defender-phase
   batch and an attacker-phase batch of the preset's shapes, float32 vs bfloat16 autocast
   (`attacker/defender.autocast`), with model FLOPs utilisation: 6 * parameters * tokens (prompt
   included: the forward runs over it) / seconds / the measured matmul peak of the dtype computing.
   The max |logp(fp32) - logp(bf16)| over the completion tokens says what autocast costs in
   precision (the update's ratio is computed under one precision, so it is 1 at the first epoch
   either way).
4. step: one `Run.step` per role with the preset (8 seeds x G=8, 64-token replies by default):
   seconds per stage and each stage's share of the step, with `grpo.share_prompts` off (the old
   path) and on, one after the other in this process, and the ratio of each stage.
5. decode: milliseconds per decode step at `--groups` prompts x G rows (no EOS: every row decodes
   every step) for the defender's and the attacker's prompts, three ways interleaved `--repeats`
   times in this process (medians): every row
   prefilled (unshared), the shared prefill gathered to G copies attended by transformers' SDPA
   (segments off), and the segment attention (policy/segments.py: each prompt's cache read once
   per step); against two floors: reading the weights once a step (`--bandwidth` GB/s) and the
   step's matmul FLOPs at the measured skinny-matmul peak (needs `peak`).
6. drollout: a defender phase's rollout by stage (the attacker's greedy rewrite of `--groups`
   seeds at `--attack-new` tokens, then G replies each at `--new`, the preset's system prompt),
   the three ways of `decode`, one after the other in this process.
7. share: the prompt-shared rollout and update (`grpo.share_prompts`, a group's prompt computed
   once) against the unshared ones, side by side and interleaved: `--groups` prompts x G rows of
   the defender's and the attacker's prompts; the sampled tokens are compared (the same seeded
   draws: equal unless an ulp of the logits moves one, policy/sampling.py).

Departure: the attacker is the base instruct model (MAGIC-base), so the benchmark needs no phase-1
output; its rollout lengths differ from an SFT'd attacker's.

Run (after `magic models fetch smollm2-135m-instruct`; one job at a time, note `uptime`):
    python benchmarks/smollm2.py [--threads 1] [--batch 32] [--new 64]
        [--skip peak,rollout,update,step,share,decode,drollout] [--groups 8 --group-size 8]
        [override ...]   (overrides apply to the step measurement, e.g. train.seeds_per_step=4)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from sampling import bench as sampling_bench  # benchmarks/sampling.py: interleaved repeats

from magic_rl.config import load_config
from magic_rl.model_catalog import DEFAULT_CACHE, fetch
from magic_rl.policy import HFPolicy, sequence_logprobs
from magic_rl.prompts import attacker_messages, defender_messages, load_templates
from magic_rl.records import Episode, RewardBreakdown, Role, Turn
from magic_rl.sandbox.resolve import resolve_world
from magic_rl.trainer import GRPOTrainer

PRESET = "configs/smollm2-cpu.yaml"


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def matmul_peak(repeats: int) -> dict[str, float]:
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        n = 2048
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        sec, _ = timed(lambda a=a, b=b: a @ b, repeats * 3)
        out[f"square {n} {dtype}".replace("torch.", "")] = 2 * n**3 / sec / 1e9
        x, w = torch.randn(32, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
        sec, _ = timed(lambda x=x, w=w: x @ w, repeats * 50)
        out[f"skinny 32x576x1536 {dtype}".replace("torch.", "")] = 2 * 32 * 576 * 1536 / sec / 1e9
    return out


def fake_episodes(prompts, completions, label_rewards, g: int = 4) -> tuple[list[Episode], list]:
    """Episodes of the given token ids (one turn each) in groups of `g` with varied rewards."""
    from magic_rl.records import Seed

    eps, rewards = [], []
    for k, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        seed = Seed(f"s{k // g}", "x", "harmful")
        turn = Turn(
            "x",
            "x",
            "x",
            "y",
            attack_prompt_ids=tuple(p),
            attack_ids=tuple(c),
            reply_prompt_ids=tuple(p),
            reply_ids=tuple(c),
        )
        eps.append(Episode(seed=seed, turns=(turn,), group=k // g, member=k % g))
        rewards.append(RewardBreakdown(label_rewards[k % len(label_rewards)]))
    return eps, rewards


def update(model_dir, cfg, prompts, completions, repeats: int) -> dict:
    rows = {}
    logps = {}
    n_params = None
    for autocast in (False, True):
        policy = HFPolicy.from_pretrained(model_dir, dtype="float32")
        n_params = sum(p.numel() for p in policy.model.parameters())
        pcfg = cfg.defender.model_copy(update={"autocast": autocast})
        trainer = GRPOTrainer(Role.DEFENDER, policy, pcfg, cfg.grpo)
        eps, rewards = fake_episodes(prompts, completions, [1.5, -1.5, 0.5, -0.5])
        with torch.no_grad(), trainer._autocast():
            lp, mask = sequence_logprobs(policy.model, prompts[:8], completions[:8], policy.pad_id)
        logps[autocast] = (lp, mask)
        sec, _ = timed(lambda t=trainer, e=eps, r=rewards: t.update(e, r), repeats)
        tokens = sum(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
        rows["bf16 autocast" if autocast else "float32"] = (sec, tokens, n_params)
        del trainer, policy
    (a, m), (b, _) = logps[False], logps[True]
    diff = float(((a - b).abs() * m).max())
    return {"rows": rows, "max_logp_diff": diff}


def share_side_by_side(model_dir, cfg, phases: dict, g: int, new: dict, repeats: int) -> list:
    """Rows (what, phase, seconds unshared, seconds shared, note): rollout and update of each
    phase's prompts x `g`, the two paths interleaved `repeats` times (medians)."""
    policy = HFPolicy.from_pretrained(model_dir, dtype="float32")
    rows = []
    for phase, prompts in phases.items():
        batch = [p for p in prompts for _ in range(g)]
        times: dict[bool, list[float]] = {False: [], True: []}
        outs = {}
        for r in range(repeats):
            for share in (False, True):
                policy.share_prompts = share
                t = time.perf_counter()
                outs[share] = policy.generate_ids(
                    batch, temperature=1.0, top_p=1.0, max_new_tokens=new[phase], seed=r
                )[0]
                times[share].append(time.perf_counter() - t)
        same = sum(a == b for a, b in zip(outs[False], outs[True], strict=True))
        tokens = sum(len(t) for t in outs[True])
        rows.append(
            (
                "rollout",
                phase,
                statistics.median(times[False]),
                statistics.median(times[True]),
                f"{len(batch)} rows, prompt {max(map(len, prompts))} tokens, {tokens} new; "
                f"{same}/{len(batch)} rows drew the same tokens",
            )
        )
        completions = outs[True]
        eps, rewards = fake_episodes(batch, completions, [1.5, -1.5, 0.5, -0.5], g)
        pcfg = getattr(cfg, "defender" if phase.startswith("defender") else "attacker")
        times = {False: [], True: []}
        trainers = {}
        for share in (False, True):  # one trainer (and model copy) per path: the same start
            fresh = HFPolicy.from_pretrained(model_dir, dtype="float32")
            gcfg = cfg.grpo.model_copy(update={"share_prompts": share})
            trainers[share] = GRPOTrainer(Role.DEFENDER, fresh, pcfg, gcfg)
        for _ in range(repeats):
            for share in (False, True):
                t = time.perf_counter()
                trainers[share].update(eps, rewards)
                times[share].append(time.perf_counter() - t)
        rows.append(
            (
                "update",
                phase,
                statistics.median(times[False]),
                statistics.median(times[True]),
                f"micro-batch {cfg.grpo.micro_batch_size}, autocast {pcfg.autocast}",
            )
        )
    return rows


def decode_steps(model_dir, phases: dict, g: int, steps: int, repeats: int) -> list:
    """Rows (phase, rows, prompt tokens, {way: (ms per decode step, ms of its model forward)}):
    `repeats` rounds of one `_decode` of `steps` tokens per way, the ways interleaved (medians); a
    step is the loop's time after the prefill (the forwards of more than one token, timed by
    hooks) divided by the steps, sampling included."""
    from magic_rl.policy import segments
    from magic_rl.policy.sampling import _decode

    policy = HFPolicy.from_pretrained(model_dir, dtype="float32")
    forwards: list[tuple[int, float]] = []  # (query length, seconds) of each model call
    started = []
    policy.model.register_forward_pre_hook(
        lambda _m, _a, kw: started.append(time.perf_counter()), with_kwargs=True
    )
    policy.model.register_forward_hook(
        lambda _m, _a, kw, _o: forwards.append(
            (kw["input_ids"].shape[1], time.perf_counter() - started.pop())
        ),
        with_kwargs=True,
    )
    real = segments.supported
    ways = {"unshared": (False, False), "shared, gathered": (True, False), "segments": (True, True)}
    rows = []
    for phase, prompts in phases.items():
        batch = [p for p in prompts for _ in range(g)]
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        for _ in range(repeats):
            for name, (share, seg) in ways.items():
                segments.supported = real if seg else (lambda model: False)
                forwards.clear()
                t = time.perf_counter()
                with torch.inference_mode():  # EOS -1: no row stops, every step is all rows
                    _decode(policy.model, batch, policy.pad_id, [-1], 1.0, 1.0, steps + 1,
                            torch.Generator().manual_seed(0), "cpu", share)  # fmt: skip
                total = time.perf_counter() - t
                prefill = sum(sec for q, sec in forwards if q > 1)
                step_fwd = statistics.median(sec for q, sec in forwards if q == 1)
                runs[name].append(((total - prefill) / steps * 1000, step_fwd * 1000))
        segments.supported = real
        ms = {
            name: tuple(statistics.median(col) for col in zip(*r, strict=True))
            for name, r in runs.items()
        }
        rows.append((phase, len(batch), max(map(len, prompts)), ms))
    return rows


def defender_rollout(model_dir, cfg, templates, seeds, g: int, new_a: int, new_d: int) -> list:
    """Rows (way, attacker s, replies s, tokens): a defender phase's two generate calls."""
    from magic_rl.policy import segments

    policy = HFPolicy.from_pretrained(model_dir, dtype="float32")
    prompts = policy.encode_chats([attacker_messages(templates, s, [], False) for s in seeds])
    system = cfg.game.defender_system_prompt
    real = segments.supported
    rows = []
    ways = {"unshared": (False, False), "shared, gathered": (True, False), "segments": (True, True)}
    for name, (share, seg) in ways.items():
        segments.supported = real if seg else (lambda model: False)
        policy.share_prompts = share
        t = time.perf_counter()
        attacks = policy.generate_ids(
            prompts, temperature=0.0, top_p=1.0, max_new_tokens=new_a, seed=0
        )[0]
        t_att = time.perf_counter() - t
        texts = policy.tokenizer.batch_decode(attacks, skip_special_tokens=True)
        chats = [defender_messages(templates, [], x, system) for x in texts]
        batch = [p for p in policy.encode_chats(chats) for _ in range(g)]
        t = time.perf_counter()
        replies = policy.generate_ids(
            batch, temperature=1.0, top_p=1.0, max_new_tokens=new_d, seed=0
        )[0]
        t_rep = time.perf_counter() - t
        tokens = f"{sum(map(len, attacks))} / {sum(map(len, replies))}"
        rows.append((name, t_att, t_rep, tokens))
    segments.supported = real
    return rows


def step_shares(cfg_overrides: list[str]) -> dict:
    """One `Run.step` per role (defender, then attacker) with the preset: `time/*` per stage."""
    from magic_rl.loop import Run

    with tempfile.TemporaryDirectory() as tmp:
        schedule = ["schedule.freq=1", "schedule.update_ratio.defender=1"]  # D, then A
        cfg = load_config(
            PRESET, [*cfg_overrides, *schedule, f"output_dir={tmp}", "train.progress=false"]
        )
        (Path(tmp) / "bench").mkdir()  # Run.step logs into its run dir
        run = Run(resolve_world(cfg, log=lambda *a: None), Path(tmp) / "bench", log=lambda *a: None)
        out = {}
        for k, role in enumerate((Role.DEFENDER, Role.ATTACKER)):
            assert run.scheduler.role is role
            metrics = run.step(k)  # stage 5 schedules the next role
            out[role.value] = {
                key.removeprefix("time/"): v
                for key, v in metrics.items()
                if key.startswith("time/")
            }
            out[role.value]["tokens"] = (
                metrics.get("tokens/attacker", 0.0),
                metrics.get("tokens/defender", 0.0),
            )
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32, help="rows of the rollout / update batch")
    ap.add_argument("--new", type=int, default=64, help="new tokens per reply")
    ap.add_argument("--attack-new", type=int, default=128, help="attacker completion tokens")
    ap.add_argument("--repeats", type=int, default=2, help="rollout / matmul repeats")
    ap.add_argument("--update-repeats", type=int, default=1)
    ap.add_argument("--attack-seeds", type=int, default=2, help="attacker-phase groups of 4")
    ap.add_argument(
        "--skip",
        default="",
        help="comma-separated: peak,rollout,update,step,share,decode,drollout",
    )
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="models cache (magic models fetch)")
    ap.add_argument("--decode-steps", type=int, default=16, help="decode: steps timed")
    ap.add_argument("--bandwidth", type=float, default=26.0, help="decode: memory GB/s (floor)")
    ap.add_argument("--groups", type=int, default=8, help="share: distinct prompts per phase")
    ap.add_argument("--group-size", type=int, default=8, help="share: rows per prompt (G)")
    ap.add_argument(
        "overrides", nargs="*", help="config overrides for the step, e.g. train.seeds_per_step=4"
    )
    args = ap.parse_args()
    skip = set(args.skip.split(",")) - {""}
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"threads={args.threads} load={os.getloadavg()[0]:.2f} (1-min average)")
    model_dir = fetch("smollm2-135m-instruct", args.cache)
    cfg = load_config(PRESET)
    templates = load_templates(cfg.game.template_set)
    from magic_rl.data.seeds import sandbox_seeds

    seeds = sandbox_seeds(split="train")[::37][: args.batch]
    peak = {}
    if "peak" not in skip:
        peak = matmul_peak(args.repeats)
        print("\n| matmul | GFLOP/s |\n|---|---|")
        for k, v in peak.items():
            print(f"| {k} | {v:.0f} |")
    policy = HFPolicy.from_pretrained(model_dir, dtype="float32")
    d_prompts = policy.encode_chats([defender_messages(templates, [], s.text) for s in seeds])
    a_prompts = policy.encode_chats(
        [attacker_messages(templates, s, [], False) for s in seeds[: args.attack_seeds]]
    )
    if "rollout" not in skip:
        chats = [defender_messages(templates, [], s.text) for s in seeds]
        rates = sampling_bench(policy, chats, args.new, args.repeats)
        base = statistics.median(rates["model.generate"])
        print(
            f"\n| rollout (batch {len(chats)}, <= {args.new} new) | tokens/s median | max | ratio |"
        )
        print("|---|---|---|---|")
        for k, r in rates.items():
            med = statistics.median(r)
            print(f"| {k} | {med:.0f} | {max(r):.0f} | {med / base:.2f} |")
    if "update" not in skip:
        g = torch.Generator().manual_seed(0)
        vocab = policy.tokenizer.vocab_size

        def comps(n, length):
            return [torch.randint(100, vocab, (length,), generator=g).tolist() for _ in range(n)]

        phases = {
            "defender phase": (d_prompts, comps(len(d_prompts), args.new)),
            "attacker phase": (
                [p for p in a_prompts for _ in range(4)],
                comps(4 * len(a_prompts), args.attack_new),
            ),
        }
        print("\n| update | rows | tokens | s | tokens/s | GFLOP/s | MFU | speed-up |")
        print("|---|---|---|---|---|---|---|---|")
        for phase, (prompts, completions) in phases.items():
            res = update(model_dir, cfg, prompts, completions, args.update_repeats)
            fp32 = res["rows"]["float32"][0]
            for name, (sec, tokens, n_params) in res["rows"].items():
                flops = 6 * n_params * tokens / sec / 1e9
                key = "bfloat16" if "bf16" in name else "float32"
                ceiling = peak.get(f"square 2048 {key}")
                mfu = f"{flops / ceiling:.1%}" if ceiling else "-"
                print(
                    f"| {phase}, {name} | {len(prompts)} | {tokens} | {sec:.1f} | "
                    f"{tokens / sec:.0f} | {flops:.0f} | {mfu} | {fp32 / sec:.2f} |"
                )
            print(f"| {phase}: max abs logp diff fp32 vs bf16 | {res['max_logp_diff']:.3f} |")
    if "decode" not in skip:
        dec_seeds = seeds[: args.groups]
        phases = {
            "defender phase": policy.encode_chats(
                [
                    defender_messages(templates, [], s.text, cfg.game.defender_system_prompt)
                    for s in dec_seeds
                ]
            ),
            "attacker phase": policy.encode_chats(
                [attacker_messages(templates, s, [], False) for s in dec_seeds]
            ),
        }
        n_params = sum(p.numel() for p in policy.model.parameters())
        floor_read = n_params * 4 / (args.bandwidth * 1e9) * 1000
        skinny = peak.get("skinny 32x576x1536 float32")
        print(
            f"\n| decode step, {args.groups} prompts x G={args.group_size} | rows | prompt | "
            "unshared ms (forward) | shared, gathered | segments | segments vs unshared | "
            "vs gathered | weight-read floor ms | matmul floor ms |\n|---|---|---|---|---|---|---|---|---|---|"
        )
        for phase, n, plen, ms in decode_steps(
            model_dir, phases, args.group_size, args.decode_steps, args.repeats
        ):
            flops = 2 * n_params * n / (skinny * 1e9) * 1000 if skinny else float("nan")
            (old, old_f), (gath, gath_f), (seg, seg_f) = ms.values()
            print(
                f"| {phase} | {n} | {plen} | {old:.0f} ({old_f:.0f}) | {gath:.0f} ({gath_f:.0f}) | "
                f"{seg:.0f} ({seg_f:.0f}) | {old / seg:.2f}x | {gath / seg:.2f}x | "
                f"{floor_read:.0f} | {flops:.0f} |"
            )
    if "drollout" not in skip:
        print(
            f"\n| defender-phase rollout, {args.groups} seeds x G={args.group_size} | attacker "
            f"greedy ({args.attack_new} new) s | replies ({args.new} new) s | rollout s | "
            "tokens att / def |\n|---|---|---|---|---|"
        )
        for name, t_att, t_rep, tokens in defender_rollout(
            model_dir, cfg, templates, seeds[: args.groups], args.group_size, args.attack_new,
            args.new,
        ):  # fmt: skip
            print(f"| {name} | {t_att:.1f} | {t_rep:.1f} | {t_att + t_rep:.1f} | {tokens} |")
    if "share" not in skip:
        share_seeds = seeds[: args.groups]
        phases = {
            "defender phase": policy.encode_chats(
                [defender_messages(templates, [], s.text) for s in share_seeds]
            ),
            "attacker phase": policy.encode_chats(
                [attacker_messages(templates, s, [], False) for s in share_seeds]
            ),
        }
        new = {"defender phase": args.new, "attacker phase": args.attack_new}
        rows = share_side_by_side(model_dir, cfg, phases, args.group_size, new, args.repeats)
        g = f"{args.groups} prompts x G={args.group_size}"
        print(f"\n| {g} | phase | unshared s | shared s | ratio | |\n|---|---|---|---|---|---|")
        for what, phase, old, shared, note in rows:
            print(f"| {what} | {phase} | {old:.2f} | {shared:.2f} | {old / shared:.2f}x | {note} |")
    if "step" not in skip:
        models = [f"defender.model={model_dir}", f"attacker.model={model_dir}"]
        both = {
            share: step_shares([*models, *args.overrides, f"grpo.share_prompts={share}"])
            for share in ("false", "true")
        }
        print("\n| Run.step | stage | unshared s | share | shared s | share | ratio |")
        print("|---|---|---|---|---|---|---|")
        for role, old in both["false"].items():
            new_times = both["true"][role]
            for stage, sec in old.items():
                if stage in ("step", "tokens"):
                    continue
                now = new_times.get(stage, float("nan"))
                print(
                    f"| {role} | {stage} | {sec:.2f} | {sec / old['step']:.0%} | {now:.2f} | "
                    f"{now / new_times['step']:.0%} | {sec / now:.2f}x |"
                    if now
                    else f"| {role} | {stage} | {sec:.2f} | - | {now:.2f} | - | - |"
                )
            print(
                f"| {role} | step (tokens att/def {old['tokens']} / {new_times['tokens']}) | "
                f"{old['step']:.1f} | 100% | {new_times['step']:.1f} | 100% | "
                f"{old['step'] / new_times['step']:.2f}x |"
            )


if __name__ == "__main__":
    main()
