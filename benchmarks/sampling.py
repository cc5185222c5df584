"""Sampling speed: `HFPolicy.generate` against a plain `model.generate` on a sandbox-sized model.

Both sample the same left-padded batch (default 64 chats x 64 new tokens, temperature 1, no top-k,
top-p 1) from a random LlamaForCausalLM of the sandbox's size (hidden 192, 4 layers, vocab 2048).
Two cases: `no-stop` (a random model almost never emits EOS, so every row runs to the limit) and
`stop` (the EOS logit is raised so rows finish at different lengths, as a trained policy's do;
this is where dropping finished rows pays). Tokens are counted up to and including each row's EOS.
`HFPolicy.generate` is timed end to end (chat template, encoding and decoding included).

Threads default to 1: the sandbox's matmuls are too small to gain from more, and on a shared
2-core machine extra OpenMP threads spin against other processes (tests got ~30x slower).

Run: `python benchmarks/sampling.py [--batch 64] [--new 64] [--repeats 5] [--threads 1]`
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from magic_rl.policy import HFPolicy, left_pad
from magic_rl.sandbox.tokenizer import train_tokenizer

TOPICS = ("a story", "the weather", "safety rules", "a recipe", "networks", "history", "poems")


def build(vocab: int, hidden: int, layers: int) -> HFPolicy:
    words = ["the", "a", "of", "to", "explain", "please", "write", "how", "why", "step"]
    texts = [
        " ".join(words[(i * 5 + j * (i % 7 + 1)) % len(words)] for j in range(6 + i % 11)) + f" {i}"
        for i in range(3000)
    ]
    tok = train_tokenizer(texts, vocab, tempfile.mkdtemp(prefix="bench_tok_"))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return HFPolicy(LlamaForCausalLM(config).eval(), tok)


def raise_eos(policy: HFPolicy, bias: float):
    """Add `bias` to the EOS logit (a forward hook, so both samplers see it)."""
    eos = policy.tokenizer.eos_token_id

    def hook(module, inputs, output):
        output[..., eos] += bias
        return output

    return policy.model.lm_head.register_forward_hook(hook)


def count(rows: list[list[int]], eos: int) -> int:
    return sum(row.index(eos) + 1 if eos in row else len(row) for row in rows)


def run_ours(policy: HFPolicy, chats, new: int, seed: int) -> int:
    gens = policy.generate(chats, temperature=1.0, top_p=1.0, max_new_tokens=new, seed=seed)
    return sum(len(g.completion_ids) for g in gens)


def run_hf(policy: HFPolicy, chats, new: int, seed: int) -> int:
    # Given the encoded batch for free: only the decoding is timed.
    torch.manual_seed(seed)
    ids, mask = left_pad([policy.encode_chat(c) for c in chats], policy.pad_id, "cpu")
    with torch.inference_mode():
        out = policy.model.generate(
            input_ids=ids,
            attention_mask=mask.long(),
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=new,
            pad_token_id=policy.pad_id,
            eos_token_id=policy.tokenizer.eos_token_id,
        )
    return count(out[:, ids.shape[1] :].tolist(), policy.tokenizer.eos_token_id)


def bench(policy: HFPolicy, chats, new: int, repeats: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {"HFPolicy.generate": [], "model.generate": []}
    run_ours(policy, chats[:4], 4, 0)  # warm-up
    run_hf(policy, chats[:4], 4, 0)
    for r in range(repeats):  # interleaved, so drifting machine load hits both alike
        for name, fn in (("HFPolicy.generate", run_ours), ("model.generate", run_hf)):
            start = time.perf_counter()
            tokens = fn(policy, chats, new, r)
            rates[name].append(tokens / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--new", type=int, default=64, help="max new tokens")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=192)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--eos-bias", type=float, default=4.5, help="EOS logit boost, `stop` case")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    policy = build(args.vocab, args.hidden, args.layers)
    chats = [
        [
            {
                "role": "user",
                "content": f"please write about {TOPICS[i % len(TOPICS)]} " * (1 + i % 6),
            }
        ]
        for i in range(args.batch)
    ]
    print(
        f"batch {args.batch} x {args.new} new tokens, hidden {args.hidden}, {args.layers} layers, "
        f"vocab {len(policy.tokenizer)}, threads {args.threads}; tokens/s over {args.repeats} "
        "interleaved runs (median, and best = max, the least disturbed by other load)"
    )
    for case in ("no-stop", "stop"):
        hook = raise_eos(policy, args.eos_bias) if case == "stop" else None
        rates = bench(policy, chats, args.new, args.repeats)
        if hook is not None:
            hook.remove()
        for stat in (statistics.median, max):
            ours, theirs = (stat(v) for v in rates.values())
            print(
                f"{case:8s} {stat.__name__:6s} HFPolicy.generate {ours:7.0f}   "
                f"model.generate {theirs:7.0f}   ratio {ours / theirs:4.2f}x"
            )


if __name__ == "__main__":
    main()
