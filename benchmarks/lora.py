"""LoRA pair vs two full models: peak memory and step time of a MAGIC-style step on CPU.

Both modes hold an attacker and a defender on the same random Llama (default a bit larger than the
sandbox: hidden 256, 4 layers, vocab 2048, ~4.5M parameters) and run `--steps` steps; each step is
what a training step does to the policies: both roles sample (`generate_ids`, `--batch` prompts x
`--new` tokens), then the scheduled role (alternating) takes one update with the trainer's recipe
(`sequence_logprobs` with grad, a policy-gradient loss, AdamW over `requires_grad` parameters).

- `full`: two model copies, each role's AdamW over all of its weights (2 moments per weight);
- `lora`: one frozen base with two adapters (`magic_rl.lora`), AdamW over one adapter per role.

Each mode runs in its own subprocess, so its peak resident memory (`ru_maxrss`) is its own; the
"model+train" column subtracts the RSS after imports. Step time is the median over steps after the
first (the first one also allocates optimiser state). Threads default to 1 (shared 2-core machine).

On a 7B model the memory ratio is far larger than here: weights dominate, and full fine-tuning of
two roles needs two copies plus 2 AdamW moments per weight (fp32), against one bf16 copy plus small
adapters. This benchmark checks the mechanism and its overheads at sandbox scale.

Run: `python benchmarks/lora.py [--steps 4] [--batch 16] [--new 32] [--hidden 256] [--layers 4]`
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build_base(out: Path, vocab: int, hidden: int, layers: int) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=3 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        eos_token_id=1,
        bos_token_id=2,
        pad_token_id=0,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    tk = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t3"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token="t1", pad_token="t0", bos_token="t2", unk_token="t3"
    )
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tok.save_pretrained(out)


def child(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from magic_rl.config import LoraConfig, PolicyConfig
    from magic_rl.lora import LoraRole, load_lora_policies
    from magic_rl.policy import HFPolicy, sequence_logprobs
    from magic_rl.records import Role

    start = rss_mb()
    roles = (Role.ATTACKER, Role.DEFENDER)
    if args.mode == "lora":
        p = PolicyConfig(model=args.base, dtype="float32", lora=LoraConfig(r=args.rank))
        policies = load_lora_policies({r: LoraRole(args.base, p) for r in roles}, "cpu")
    else:
        policies = {r: HFPolicy.from_pretrained(args.base) for r in roles}
    optims = {
        r: torch.optim.AdamW(
            [q for q in pol.model.parameters() if q.requires_grad], lr=1e-4, weight_decay=0.0
        )
        for r, pol in policies.items()
    }
    trainable = sum(
        q.numel() for q in policies[Role.ATTACKER].model.parameters() if q.requires_grad
    )
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(4, 200, (8 + i % 9,), generator=g).tolist() for i in range(args.batch)]
    times = []
    for step in range(args.steps):
        t0 = time.perf_counter()
        outs = {
            r: pol.generate_ids(
                prompts, temperature=1.0, top_p=1.0, max_new_tokens=args.new, seed=step
            )[0]
            for r, pol in policies.items()
        }
        role = roles[step % 2]
        pol = policies[role]
        pol.model.train()
        logp, mask = sequence_logprobs(pol.model, prompts, outs[role], pol.pad_id)
        adv = torch.randn(len(prompts), 1, generator=g)
        (-(adv * logp * mask).sum() / mask.sum()).backward()
        optims[role].step()
        optims[role].zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return {
        "mode": args.mode,
        "peak_mb": peak_mb(),
        "train_mb": peak_mb() - start,
        "trainable_per_role": trainable,
        "step_s": statistics.median(times[1:] if len(times) > 1 else times),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", choices=["lora", "full"], help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:  # the child: one mode, result as JSON on the last line
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_lora_") as tmp:
        build_base(Path(tmp), args.vocab, args.hidden, args.layers)
        results = {}
        for mode in ("full", "lora"):
            cmd = [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--base",
                tmp,
                *[
                    f"--{k}={getattr(args, k)}"
                    for k in ("steps", "batch", "new", "rank", "threads")
                ],
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[mode] = json.loads(out.strip().splitlines()[-1])
    print(
        f"random Llama hidden={args.hidden} layers={args.layers} vocab={args.vocab}; "
        f"{args.steps} steps, {args.batch} prompts x {args.new} new tokens, LoRA r={args.rank}"
    )
    print(
        f"{'mode':6} {'trainable/role':>15} {'peak RSS MB':>12} {'model+train MB':>15} "
        f"{'step s':>8}"
    )
    for mode, r in results.items():
        print(
            f"{mode:6} {r['trainable_per_role']:>15,} {r['peak_mb']:>12.0f} {r['train_mb']:>15.0f} "
            f"{r['step_s']:>8.3f}"
        )
    f, lo = results["full"], results["lora"]
    print(
        f"lora/full: peak RSS {lo['peak_mb'] / f['peak_mb']:.2f}x, model+train "
        f"{lo['train_mb'] / max(f['train_mb'], 1e-9):.2f}x, step time "
        f"{lo['step_s'] / f['step_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
