"""Supervised fine-tuning: TRL's SFTTrainer on (prompt, target) pairs (phase 1's attacker, and the
sandbox's base model).

`sft(...)` runs TRL's SFTTrainer on pre-tokenised (prompt, target) pairs with the loss on the
target only. We tokenise with the same `Policy.encode_chat` the game uses, so the SFT prompt is
token-for-token the prompt the attacker later sees in a rollout (the reference's evaluation prompt
differed from its training prompt). `attacker_sft(...)` is phase 1: the attacker on the attack pool.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from magic_rl.config import RunConfig, SFTConfig
from magic_rl.cpu import tune_for_cpu
from magic_rl.policy import HFPolicy, quiet_transformers
from magic_rl.policy.load import load_policy
from magic_rl.progress import SFT_METRICS, TrainProgress
from magic_rl.prompts import attacker_messages, load_templates
from magic_rl.strategies import hybrid_records, resolve_strategies
from magic_rl.tables import record_table


@dataclass(frozen=True)
class SFTExample:
    """A chat prompt and the assistant text to learn (the loss covers the target only)."""

    messages: tuple[dict, ...]
    target: str


def tokenize_sft(
    policy: HFPolicy, examples: Sequence[SFTExample], max_length: int, completion_only: bool = True
) -> list[dict]:
    """Trainer rows: input_ids = encode_chat(prompt) + target + eos; labels are the ids, -100 on the
    prompt when the loss covers the target only.

    Examples longer than max_length are skipped (counted by the caller via the returned length).
    """
    tok = policy.tokenizer
    prompts = policy.encode_chats([ex.messages for ex in examples])
    targets = tok([ex.target for ex in examples], add_special_tokens=False)["input_ids"]
    rows = []
    for prompt, target in zip(prompts, targets, strict=True):
        target = [*target, tok.eos_token_id]
        ids = prompt + target
        if len(ids) > max_length:
            continue
        labels = [-100] * len(prompt) + target if completion_only else ids
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def sft(
    policy: HFPolicy,
    examples: Sequence[SFTExample],
    cfg: SFTConfig,
    out_dir: str | Path,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    completion_only: bool = True,
    progress: bool = True,
    autocast: bool = False,
    callbacks: Sequence = (),
) -> dict:
    """Fine-tune `policy` in place on `examples` with TRL's SFTTrainer; saves to `out_dir`.

    The loss covers the target only unless `completion_only=False` (the sandbox's base model, whose
    loss also covers the prompts, like a small pretraining corpus). `callbacks` are transformers
    `TrainerCallback`s (e.g. an evaluation every N steps, `benchmarks/copy_probe.py`).

    Returns a summary: examples used/skipped, steps, final loss.
    """
    import datasets
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    quiet_transformers()
    tune_for_cpu()
    datasets.disable_progress_bars()

    rows = tokenize_sft(policy, examples, cfg.max_length, completion_only)
    if not rows:
        raise ValueError("SFT: no example fits sft.max_length; raise it or shorten the templates")
    steps_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    total = max_steps or cfg.max_steps or max(1, round(steps_per_epoch * cfg.epochs))
    args = sft_arguments(cfg, out_dir, total, seed, autocast)
    trainer = SFTTrainer(
        model=policy.model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=policy.tokenizer,
        callbacks=list(callbacks) or None,
    )
    # our progress line, not the Trainer's tqdm bar and printed `{'loss': ...}` dicts
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    with TrainProgress(total, enabled=progress, title="sft", fields=SFT_METRICS) as bar:
        trainer.add_callback(SFTProgress(bar))
        result = trainer.train()
    policy.model.eval()
    policy.save_pretrained(out_dir)
    return {
        "examples": len(rows),
        "skipped": len(examples) - len(rows),
        "steps": total,
        "train_loss": float(result.training_loss),
    }


def sft_arguments(cfg: SFTConfig, out_dir: str | Path, total: int, seed: int, autocast: bool):
    """TRL's SFTConfig for `sft`: no checkpoints, no reports, no tqdm (our progress line)."""
    from trl import SFTConfig as TRLSFTConfig

    with warnings.catch_warnings():
        # transformers' TrainingArguments warns of its own deprecated field, which TRL's config
        # passes on; nothing a user of ours can change
        warnings.filterwarnings("ignore", "`gradient_checkpointing` is deprecated", FutureWarning)
        return TRLSFTConfig(
            output_dir=str(Path(out_dir) / "_trainer"),
            learning_rate=cfg.lr,
            lr_scheduler_type=cfg.scheduler,
            warmup_steps=round(cfg.warmup_ratio * total),
            max_steps=total,
            per_device_train_batch_size=cfg.batch_size,
            max_length=cfg.max_length,
            gradient_checkpointing=cfg.gradient_checkpointing,
            packing=False,
            # Our rows are tokenized and labelled already (`tokenize_sft`); TRL's passes would redo it.
            dataset_kwargs={"skip_prepare_dataset": True},
            logging_steps=max(1, total // 5),
            save_strategy="no",
            report_to="none",
            seed=seed,
            data_seed=seed,
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
            bf16=autocast,  # mixed precision: bf16 autocast over float32 weights
        )


def SFTProgress(bar: TrainProgress):
    """A transformers `TrainerCallback` that advances `bar` once per optimiser step with the
    latest logged loss and learning rate. The Trainer logs a step after its `on_step_end`, so a
    logging step's update waits for that log (or for the end of training)."""
    from transformers import TrainerCallback

    class Callback(TrainerCallback):
        def __init__(self) -> None:
            self.latest: dict[str, float] = {}
            self.waiting = False

        def on_step_end(self, args, state, control, **kwargs):
            if control.should_log:
                self.waiting = True
            else:
                bar.update(self.latest)

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.latest.update(
                {k: v for k, v in (logs or {}).items() if k in ("loss", "learning_rate")}
            )
            if self.waiting:
                self.waiting = False
                bar.update(self.latest)

        def on_train_end(self, args, state, control, **kwargs):
            if self.waiting:
                self.waiting = False
                bar.update(self.latest)

    return Callback()


def attacker_sft(
    cfg: RunConfig, records: Sequence, base_model: str, out_dir: str | Path, *, log=print
) -> dict:
    """Phase 1: SFT `base_model` on pool records -> `out_dir` (Hugging Face format).

    Prompt = the attacker's single-turn chat view of the record's seed (the same view the game builds);
    target = `<think>reasoning</think><answer>rewrite</answer>`. Records of held-out strategies
    (`data.held_out_strategies`) and of `sft.exclude_families` are left out; `sft.hybrids_per_seed`
    hybrids per seed (two kept framings stacked, `strategies.hybrid`) are added.
    """
    import json
    import time

    skip = set(
        resolve_strategies(
            [*cfg.data.held_out_strategies, *(f"family:{f}" for f in cfg.sft.exclude_families)]
        )
    )
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    kept = [rec for rec in records if rec.strategy not in skip]
    hybrids = hybrid_records(kept, cfg.sft.hybrids_per_seed, cfg.seed)
    examples = [
        SFTExample(tuple(attacker_messages(templates, rec.seed, [], False)), rec.target)
        for rec in [*kept, *hybrids]
    ]
    if not examples:
        raise ValueError("phase 1: no pool record left after excluding held-out strategies")
    # Loaded on the CPU (TRL places the model); the attacker's own device applies to phase 2.
    pcfg = cfg.attacker.model_copy(update={"device": None})
    policy = load_policy(base_model, pcfg, "cpu", what="phase-1 base model")
    t = time.perf_counter()
    summary = sft(
        policy,
        examples,
        cfg.sft,
        out_dir,
        seed=cfg.seed,
        progress=cfg.train.progress,
        autocast=cfg.attacker.autocast,
    )
    summary["seconds"] = round(time.perf_counter() - t, 1)
    summary["excluded_strategies"] = sorted(skip)
    summary["hybrid_examples"] = len(hybrids)
    (Path(out_dir) / "sft.json").write_text(json.dumps(summary, indent=2))
    log(record_table("attacker SFT", summary))
    return summary
