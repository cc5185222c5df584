"""Test helper, launched by tests/test_distributed.py under `accelerate launch`: runs `loop.train`
and dumps every process's final weights, so the test can check that data-parallel ranks stay
identical.

Two modes (launch with the torchrun launcher, see tests/test_distributed.py; plain `python` = one
process):

    distributed_train.py OUT_DIR [--resume RUN] [overrides...]
        train; -> OUT_DIR/rank{i}-{role}.safetensors for each trained role
    distributed_train.py --update OUT_DIR
        two `GRPOTrainer.update`s of a tiny float64 model on this rank's share of fixed synthetic
        groups (uneven shares; in the second, rank 1 has no sample) -> OUT_DIR/update-rank{i}.pt
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    import torch
    from safetensors.torch import save_file

    from magic_rl import loop
    from magic_rl.config import load_config
    from magic_rl.sandbox.resolve import resolve_world

    torch.set_num_threads(1)
    out, rest = Path(argv[0]), argv[1:]
    resume = None
    if rest[:1] == ["--resume"]:
        resume, rest = Path(rest[1]), rest[2:]
    cfg = load_config(str(resume / "config.yaml") if resume else "sandbox", rest)

    runs: list[loop.Run] = []

    class KeptRun(loop.Run):  # train() builds its Run internally; keep it to read the weights
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            runs.append(self)

    loop.Run = KeptRun
    loop.train(
        resolve_world(cfg, log=lambda *a: None), resume=resume, log=lambda *a: None, recorded=cfg
    )
    (run,) = runs
    out.mkdir(parents=True, exist_ok=True)
    rank = run.accelerator.process_index
    for role in run.trainers:
        # clone: tied embeddings share storage, which safetensors refuses to write twice
        weights = {k: v.detach().clone() for k, v in run.policies[role].model.state_dict().items()}
        save_file(weights, str(out / f"rank{rank}-{role.value}.safetensors"))
    run.accelerator.wait_for_everyone()
    run.accelerator.end_training()


def synthetic_groups(n_groups: int, G: int, valid_groups: set[int]):
    """Episodes of random token ids (prompt 3-8, completion 1-9 tokens) with random rewards."""
    import random

    from magic_rl.records import Episode, RewardBreakdown, Seed, Turn

    rng = random.Random(0)
    episodes, rewards = [], []
    for g in range(n_groups):
        seed = Seed(f"s{g}", "Write a phishing email", "harmful")
        for m in range(G):
            prompt = tuple(rng.randrange(1, 64) for _ in range(rng.randint(3, 8)))
            reply = tuple(rng.randrange(1, 64) for _ in range(rng.randint(1, 9)))
            turn = Turn("a", "", "a", "r", reply_prompt_ids=prompt, reply_ids=reply)
            episodes.append(Episode(seed, (turn,), group=g, member=m))
            rewards.append(RewardBreakdown(rng.random(), valid=g in valid_groups))
    return episodes, rewards


def update_check(out: Path) -> None:
    from types import SimpleNamespace

    import torch
    from accelerate import Accelerator
    from tiny_models import tiny_llama_config
    from transformers import LlamaForCausalLM

    from magic_rl.config import GRPOConfig, PolicyConfig
    from magic_rl.records import Role
    from magic_rl.trainer import GRPOTrainer

    torch.set_num_threads(1)
    acc = Accelerator(cpu=True)
    torch.manual_seed(acc.process_index)  # different inits: the trainer must broadcast rank 0's
    config = tiny_llama_config(64, num_key_value_heads=4, pad_token_id=0)
    if acc.process_index == 0:
        torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.float64)
    policy = SimpleNamespace(model=model, pad_id=0)
    trainer = GRPOTrainer(
        Role.DEFENDER,
        policy,
        PolicyConfig(model="tiny", lr=1e-2),
        GRPOConfig(micro_batch_size=3),
        accelerator=acc,
    )
    stats = []
    # 6 groups, strided over the ranks as the loop shards seeds: rank 0 {0, 2, 4}, rank 1 {1, 3, 5}
    for valid in ({0, 1, 2, 4}, {0, 2}):
        episodes, rewards = synthetic_groups(6, 4, valid)
        mine = [
            i for i, e in enumerate(episodes) if e.group % acc.num_processes == acc.process_index
        ]
        s = trainer.update([episodes[i] for i in mine], [rewards[i] for i in mine])
        stats.append(s["defender/update/grad_norm"])
    out.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"weights": model.state_dict(), "grad_norms": stats},
        out / f"update-rank{acc.process_index}.pt",
    )


if __name__ == "__main__":
    if sys.argv[1] == "--update":
        update_check(Path(sys.argv[2]))
    else:
        main(sys.argv[1:])
