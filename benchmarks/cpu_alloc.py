"""SFT steps on CPU with glibc's default malloc vs `magic_rl.cpu.keep_freed_memory()`.

Each setting runs in its own process (the malloc setting cannot be undone): a random model of the
sandbox's shape (`SandboxConfig` defaults: 128 x 3 x 384, 2048-token vocabulary) takes `--steps`
AdamW steps on a batch of `--batch` x `--length` tokens, the shape of the sandbox's phase-1 SFT
batches, after `--warmup` steps. It prints seconds per step, minor page faults per step and the
ratio. The sandbox build calls `keep_freed_memory()` through `tune_for_cpu()`; this shows why.

Run: `python benchmarks/cpu_alloc.py [--steps 20] [--batch 32] [--length 150] [--threads 2]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(keep: bool, steps: int, warmup: int, batch: int, length: int, threads: int) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from magic_rl.config import SandboxConfig
    from magic_rl.cpu import keep_freed_memory

    applied = keep_freed_memory() if keep else False
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sb = SandboxConfig()
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=sb.vocab_size,
            hidden_size=sb.hidden_size,
            intermediate_size=sb.intermediate_size,
            num_hidden_layers=sb.num_layers,
            num_attention_heads=sb.num_heads,
            num_key_value_heads=sb.num_heads,
            max_position_embeddings=sb.max_position,
            tie_word_embeddings=True,
        )
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, sb.vocab_size, (batch, length))
    mask = torch.ones_like(ids)
    mask[: batch // 4, length * 3 // 4 :] = 0  # some right padding, as in a real batch
    labels = ids.masked_fill(mask == 0, -100)

    def step() -> None:
        model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss.backward()
        opt.step()
        opt.zero_grad()

    for _ in range(warmup):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t) / steps
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
    return {"keep_freed_memory": applied, "s_per_step": seconds, "minor_faults_per_step": faults}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", choices=["default", "keep"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    shape = (args.steps, args.warmup, args.batch, args.length, args.threads)
    if args.child:
        print(json.dumps(measure(args.child == "keep", *shape)))
        return
    rows = {}
    for setting in ("default", "keep"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", setting, *_flags(args)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows[setting] = json.loads(out.strip().splitlines()[-1])
    print(f"{'malloc':<22} {'s/step':>8} {'minor faults/step':>18}")
    for setting, r in rows.items():
        name = "keep_freed_memory" if setting == "keep" else "glibc default"
        print(f"{name:<22} {r['s_per_step']:8.3f} {r['minor_faults_per_step']:18,.0f}")
    if not rows["keep"]["keep_freed_memory"]:
        print("keep_freed_memory() had no effect here (not glibc): no ratio")
        return
    ratio = rows["default"]["s_per_step"] / rows["keep"]["s_per_step"]
    print(f"speed-up (default / keep_freed_memory): {ratio:.2f}x")


def _flags(args) -> list[str]:
    return [
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--batch={args.batch}",
        f"--length={args.length}",
        f"--threads={args.threads}",
    ]


if __name__ == "__main__":
    main()
