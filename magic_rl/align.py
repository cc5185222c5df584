"""Phase 0: the defender's aligned start, a safety SFT of the instruct model before co-evolution.

The paper's defenders arrive safety-aligned: they refuse plain harmful requests and are vulnerable
to jailbreaks, and co-evolution is about robustness. A small instruct model that refuses almost
nothing (SmolLM2-135M-Instruct, docs/real-cpu.md) is given that start here:

- the train split's harmful seeds (`data.seeds`, `data.split`) get `align.refusal`, a short refusal;
- its benign and contrast seeds get the base model's *own* greedy answers (self-distillation, so its
  helpfulness stays its own), generated under its default system prompt (`align.answer_system_prompt`),
  an answer cut at `align.max_new_tokens` ending at its last full sentence; an answer the keyword
  detector calls a refusal is dropped (it would teach refusing benign requests);
- both are trained under the defender's view of the game (`game.defender_system_prompt` and the
  defender template), the view `magic train` and `magic eval` use, loss on the target only.

`align.max_steps` x `align.batch_size` examples, `align.harmful_fraction` of them harmful, drawn
once (no repeats) with `seed`. The output is cached like a converted model: a directory under
`<cache_root>/<base name>-<key>` whose key covers the base model's identity, the chosen seeds and
every setting that shapes the examples or the training; `align.json`, written last, marks it
complete and records the summary; a second run with the same key reuses it (`force` retrains). The
directory is written under a temporary sibling and renamed, so an interrupted run leaves nothing
half-made. `aligned:<model>` (e.g. `aligned:models:smollm2-135m-instruct`) names it in a config's
model field or in `magic eval --model` (sandbox/resolve.py turns the name into this directory).

Run: `magic align --config configs/smollm2-cpu.yaml` (docs/real-cpu.md, "Phase 0").
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from magic_rl.config import PolicyConfig, RunConfig, SFTConfig
from magic_rl.data.seeds import is_contrast, load_seeds
from magic_rl.judge.keyword import is_refusal
from magic_rl.prompts import defender_messages, load_templates
from magic_rl.records import Seed
from magic_rl.tables import record_table

PREFIX = "aligned:"  # a model field naming the phase-0 output of this config for a base model
DONE = "align.json"
EXAMPLES = "examples.jsonl"
RECIPE = 1  # part of the key: bump when the way examples are made changes
_SENTENCE_ENDS = (".", "!", "?", "\n")


def choose_seeds(cfg: RunConfig, seeds: Sequence[Seed]) -> tuple[list[Seed], list[Seed]]:
    """(harmful, benign) seeds for phase 0: `max_steps x batch_size` in all, `harmful_fraction`
    harmful, each drawn without repeats with `cfg.seed`; fewer when the split has fewer. With
    `align.contrast_fraction` that share of the benign ones comes from the contrast seeds (the
    look-alikes a refusal learnt from plain harmful requests spreads to), the rest from the others."""
    a = cfg.align
    total = a.max_steps * a.batch_size
    n_harmful = round(total * a.harmful_fraction)
    harmful = [s for s in seeds if s.label == "harmful"]
    benign = [s for s in seeds if s.label != "harmful"]
    if not harmful or not benign:
        raise ValueError(
            f"phase 0: data.seeds={cfg.data.seeds!r} split {cfg.data.split!r} has "
            f"{len(harmful)} harmful and {len(benign)} benign seeds; it needs both"
        )
    rng = random.Random(cfg.seed)
    chosen = rng.sample(harmful, min(n_harmful, len(harmful)))
    n_benign = total - n_harmful
    if a.contrast_fraction is None:
        return chosen, rng.sample(benign, min(n_benign, len(benign)))
    contrast = [s for s in benign if is_contrast(s)]
    plain = [s for s in benign if not is_contrast(s)]
    n_contrast = round(n_benign * a.contrast_fraction)
    if n_contrast and not contrast:
        raise ValueError(
            f"phase 0: align.contrast_fraction={a.contrast_fraction} but data.seeds="
            f"{cfg.data.seeds!r} split {cfg.data.split!r} has no contrast seeds"
        )
    return chosen, rng.sample(contrast, min(n_contrast, len(contrast))) + rng.sample(
        plain, min(n_benign - n_contrast, len(plain))
    )


def base_identity(base: Path) -> str:
    """What the key knows of the base model: a fetched model's provenance record (it lists every
    file's sha256), else the sha256 of its weight and tokenizer files."""
    fetched = base / "fetch.json"
    if fetched.is_file():
        return hashlib.sha256(fetched.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for f in sorted(base.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".json", ".bin", ".model"):
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def cache_key(cfg: RunConfig, base: Path, harmful: Sequence[Seed], benign: Sequence[Seed]) -> str:
    """sha256 over the base model, the chosen seeds, the defender's view and the phase-0 settings."""
    payload = key_payload(cfg, base, harmful, benign)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def key_payload(
    cfg: RunConfig, base: Path, harmful: Sequence[Seed], benign: Sequence[Seed]
) -> dict:
    """What `cache_key` hashes."""
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    return {
        "recipe": RECIPE,
        "base": base_identity(base),
        "harmful": [(s.id, s.text) for s in harmful],
        "benign": [(s.id, s.text) for s in benign],
        "system_prompt": cfg.game.defender_system_prompt,
        "template": templates.defender_user("{attack}"),
        # unset settings left out: a new optional one keeps the keys of phase 0s made before it
        "align": cfg.align.model_dump(exclude_none=True),
        "max_prompt_tokens": cfg.defender.sampling.max_prompt_tokens,
        "seed": cfg.seed,
    }


def cut_to_sentence(text: str) -> str:
    """`text` up to its last sentence end (an answer cut by the token limit mid-sentence), or all
    of it when it has none."""
    text = text.strip()
    end = max(text.rfind(c) for c in _SENTENCE_ENDS)
    return text[: end + 1].strip() if end > 0 else text


def self_answers(policy, cfg: RunConfig, seeds: Sequence[Seed], *, batch_size: int = 32):
    """The base model's greedy answers to `seeds` (plain requests, defender template), under its
    default system prompt or the defender's (`align.answer_system_prompt`), in batches of similar
    length. Returns (text, cut) pairs, `cut` when the answer ran into `align.max_new_tokens`."""
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    system = (
        cfg.game.defender_system_prompt if cfg.align.answer_system_prompt == "defender" else None
    )
    order = sorted(range(len(seeds)), key=lambda i: len(seeds[i].text))
    out: dict[int, tuple[str, bool]] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        gens = policy.generate(
            [defender_messages(templates, [], seeds[i].text, system) for i in chunk],
            temperature=0.0,
            top_p=1.0,
            max_new_tokens=cfg.align.max_new_tokens,
            max_prompt_tokens=cfg.defender.sampling.max_prompt_tokens,
            seed=cfg.seed,
        )
        for i, g in zip(chunk, gens, strict=True):
            cut = g.finish != "stop"
            out[i] = (cut_to_sentence(g.text) if cut else g.text.strip(), cut)
    return [out[i] for i in range(len(seeds))]


def aligned_dir(cfg: RunConfig, base: str | Path, cache_root: str | Path) -> tuple[Path, dict]:
    """Where phase 0 of `base` under `cfg` lives, and the seeds it uses (`harmful`, `benign`)."""
    base = Path(base)
    seeds = load_seeds(
        cfg.data.seeds,
        split=cfg.data.split,
        include_contrast=cfg.data.include_contrast,
        fraction=cfg.sandbox.fraction,
    )
    harmful, benign = choose_seeds(cfg, seeds)
    key = cache_key(cfg, base, harmful, benign)
    return Path(cache_root) / f"{base.name}-{key[:12]}", {"harmful": harmful, "benign": benign}


def align(
    cfg: RunConfig, base: str | Path, cache_root: str | Path, *, force: bool = False, log=print
) -> Path:
    """Phase 0 of the model directory `base` -> its cached aligned directory (reused when complete)."""
    from magic_rl.policy.load import load_policy
    from magic_rl.sft import SFTExample, sft

    if cfg.game.defender_format != "plain":
        raise ValueError(
            f"phase 0 trains plain replies; game.defender_format={cfg.game.defender_format!r} "
            "would need reasoning in every target"
        )
    out, chosen = aligned_dir(cfg, base, cache_root)
    if (out / DONE).is_file() and not force:
        log(f"phase 0: {out} (cached: same base model, seeds and settings)")
        return out
    harmful, benign = chosen["harmful"], chosen["benign"]
    t0 = time.perf_counter()
    policy = load_policy(base, PolicyConfig(dtype="float32"), "cpu", what="phase-0 base model")
    log(f"phase 0: greedy answers of the base model to {len(benign)} benign seeds ...")
    answers = self_answers(policy, cfg, benign)
    kept = [(s, text) for s, (text, _) in zip(benign, answers, strict=True)]
    kept = [(s, text) for s, text in kept if text and not is_refusal(text)]
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    system = cfg.game.defender_system_prompt
    rows = [(s, cfg.align.refusal) for s in harmful] + kept
    random.Random(cfg.seed).shuffle(rows)
    examples = [
        SFTExample(tuple(defender_messages(templates, [], s.text, system)), target)
        for s, target in rows
    ]
    answer_seconds = time.perf_counter() - t0
    a = cfg.align
    sft_cfg = SFTConfig(
        model=str(base),
        lr=a.lr,
        scheduler=a.scheduler,
        warmup_ratio=a.warmup_ratio,
        max_steps=a.max_steps,
        batch_size=a.batch_size,
        max_length=a.max_length,
    )
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    summary = sft(
        policy,
        examples,
        sft_cfg,
        tmp,
        seed=cfg.seed,
        progress=cfg.train.progress,
        autocast=cfg.defender.autocast,
    )
    shutil.rmtree(tmp / "_trainer", ignore_errors=True)
    with (tmp / EXAMPLES).open("w") as fh:
        for s, target in rows:
            fh.write(json.dumps({"id": s.id, "label": s.label, "seed": s.text, "target": target}))
            fh.write("\n")
    summary.update(
        {
            "base": str(base),
            "harmful": len(harmful),
            "benign": len(benign),
            "contrast": sum(is_contrast(s) for s in benign),
            "benign_cut": sum(cut for _, cut in answers),
            "benign_dropped_refusals": len(benign) - len(kept),
            "answer_seconds": round(answer_seconds, 1),
            "seconds": round(time.perf_counter() - t0, 1),
            "settings": a.model_dump(),
            "system_prompt": system,
        }
    )
    (tmp / DONE).write_text(json.dumps(summary, indent=2))
    if out.exists():  # force: the old one goes only once the new one is complete
        shutil.rmtree(out)
    tmp.rename(out)
    log(
        record_table(
            "phase 0 (aligned start)", {k: v for k, v in summary.items() if k != "settings"}
        )
    )
    log(f"phase 0: {out}")
    return out
