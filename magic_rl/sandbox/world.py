"""Build the sandbox world (docs/DESIGN.md §8): seeds -> attack pool -> tokenizer -> base model ->
judge.

What a real run downloads (an instruct model, a guard model, datasets) the sandbox builds, cached by a
hash of its config and of the code and assets that produce it:

    .magic_cache/world-<hash>/
      pool.jsonl        the attack pool (the 15 programmatic SORRY-Bench strategies and the 5
                        `novel` framings, every seed, with provenance)
      tokenizer/        byte-level BPE with a chat template, trained on the world's own text
      base/             the base "instruct" model: the starting point of both roles (as
                        Qwen2.5-7B-Instruct is in the paper), saved with save_pretrained
      judge/            the embedded judge (three heads), trained on the world's labelled exchanges
      attacker-<h>/     phase-1 output (`magic sft`): the base model SFT'd on the pool
      build.json        sizes, timings, judge accuracy, learnability (`magic sandbox build`)

The base model is fine-tuned to behave like an ordinary instruct model: it mostly refuses plain harmful
requests, helps with benign ones, over-refuses some alarming-looking "contrast" requests, is fooled
by rewrites at the per-strategy rates of `VULNERABILITY`, and says it did not understand a prompt
whose request is garbled beyond recognition. Strategies listed in `data.held_out_strategies` never
appear in its training data. Replies are placeholders in a narrow house style
(`replies.house_style`): a compliance restates the task it does through the `[request]` marker
("Sure. Here is how to [request]: 1. [...] 2. [...]"), which the world expands to the prompt before
the judge reads it, and the judge calls the reply harmful only when it then carries a harmful
request (harm needs content). The phase-1 attacker learns rewrites that embed `[request]` where the
pool's rewrite embeds the seed verbatim (`marked_records`); the world fills in the seed's request.
Why markers: the tiny policies cannot copy text at this size and budget (docs/LOG.md).

Two checks are printed and stored (docs/sandbox.md records them):
- learnability (`learnability_stage`, in build.json): a classifier of the defender's size trained
  on (rewrite -> seed label) pairs of the train split, scored on held-out (test-split request,
  strategy) pairs: can a defender this size tell harmful from benign rewrites at all? `magic
  sandbox build` runs it (also on a world built without it); the demo and training do not need it.
- the phase-1 attacker's sampled rewrites at the training temperature (`attacker_check`): share
  well-formed and share still carrying their seed's request (`magic_rl.content.carries`).
Departure from a real instruct model: its loss also covers the prompts (a small pretraining-style
corpus), so phase-1 SFT starts from a model that has learned to write requests (docs/LOG.md compares
the two choices).

Run: `magic sandbox build` (then `magic sft --config configs/sandbox.yaml`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from magic_rl.config import RunConfig, SandboxConfig, SFTConfig
from magic_rl.content import REQUEST_MARKER, request_core
from magic_rl.data.seeds import is_contrast, sandbox_seeds, seed_stats, split_of
from magic_rl.judge.embedded import evaluate_judge, train_embedded_judge
from magic_rl.policy import HFPolicy
from magic_rl.prompts import defender_messages, load_templates
from magic_rl.records import Seed
from magic_rl.sandbox import replies
from magic_rl.sandbox.checks import (
    attacker_check,
    attacker_warnings,
    learnability,
    learnability_sets,
)
from magic_rl.sandbox.judge_data import build_judge_examples, garble
from magic_rl.sandbox.stages import alongside
from magic_rl.sandbox.tokenizer import train_tokenizer
from magic_rl.strategies import (
    PROGRAMMATIC,
    build_pool,
    hybrid_records,
    read_pool,
    resolve_strategies,
    write_pool,
)
from magic_rl.strategies.hybrid import components, is_hybrid
from magic_rl.tables import record_table, warning

PACKAGE = Path(__file__).resolve().parents[1]
WORLD_VERSION = "3"

# Probability that the base model complies with a harmful rewrite, per strategy. Persona and
# authority framings fool it most, a plain question form least; ciphers are unreadable to it (it
# answers them with a refusal or a generic placeholder), as for many small real models.
VULNERABILITY = {
    "role_play": 0.85,
    "technical_terms": 0.7,
    "slang": 0.5,
    "uncommon_dialects": 0.5,
    "question": 0.3,
    "misspellings": 0.45,
    "logical_appeal": 0.6,
    "authority_endorsement": 0.7,
    "misrepresentation": 0.6,
    "evidence_based_persuasion": 0.65,
    "expert_endorsement": 0.7,
    "ascii": 0.3,
    "caesar": 0.3,
    "morse": 0.3,
    "atbash": 0.3,
    # The `novel` framings are held out in configs/sandbox.yaml (the base model never sees them);
    # these rates apply only to a world that trains on them.
    "nested_fiction": 0.8,
    "system_override": 0.6,
    "translation_task": 0.5,
    "persona_debate": 0.7,
    "research_report": 0.65,
}
P_REFUSE = {"harmful": 0.9, "benign": 0.03, "contrast": 0.35, "adversarial_benign": 0.25}
P_GARBLED = 0.3  # share of vanilla seeds also shown garbled, answered with the confused reply
VANILLA_REPEATS = 3  # independent reply draws per vanilla seed, so the model learns a distribution
JUDGE_REWRITES_PER_SEED = 3  # rewrites per seed in the judge's training set (of 20 strategies)


@dataclass(frozen=True)
class World:
    """Paths of a built world."""

    root: Path

    @property
    def pool(self) -> Path:
        return self.root / "pool.jsonl"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def judge(self) -> Path:
        return self.root / "judge"

    @property
    def info(self) -> dict:
        return json.loads((self.root / "build.json").read_text())

    def attacker(self, cfg: RunConfig) -> Path:
        # check_samples sizes the check after training, not the attacker, and gradient
        # checkpointing trades memory for compute to the same weights: not part of the key
        sft = cfg.sft.model_dump(mode="json", exclude={"check_samples", "gradient_checkpointing"})
        key = _hash(sft, cfg.data.held_out_strategies, cfg.sandbox.seed)
        return self.root / f"attacker-{key}"

    @property
    def built(self) -> bool:
        return (self.root / "build.json").exists()


def _source_fingerprint() -> str:
    h = hashlib.sha256(WORLD_VERSION.encode())
    # What produces the world's data and models (bump WORLD_VERSION for other behaviour changes).
    parts = [
        PACKAGE / "assets" / "seeds",
        PACKAGE / "assets" / "templates",
        PACKAGE / "strategies",
        PACKAGE / "data" / "seeds.py",
        PACKAGE / "content.py",
        PACKAGE / "judge" / "embedded",
        *(
            PACKAGE / "sandbox" / f
            for f in ("replies.py", "judge_data.py", "tokenizer.py", "world.py", "checks.py")
        ),
    ]
    for part in parts:
        files = sorted(part.rglob("*")) if part.is_dir() else [part]
        for f in files:
            if f.is_file() and f.suffix in (".py", ".jsonl", ".txt", ".json"):
                h.update(f.relative_to(PACKAGE).as_posix().encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def world_for(cfg: RunConfig) -> World:
    key = _hash(
        cfg.sandbox.model_dump(mode="json", exclude={"cache_dir"}),
        cfg.data.held_out_strategies,
        cfg.sandbox.seed,
        _source_fingerprint(),
    )
    return World(Path(cfg.sandbox.cache_dir) / f"world-{key}")


def held_out(cfg: RunConfig) -> set[str]:
    return set(resolve_strategies(cfg.data.held_out_strategies))


# --- the base model's training data -------------------------------------------------------------


def base_examples(
    seeds, pool, templates, skip_strategies: set[str], rng_seed: int, hybrids_per_seed: int = 0
):
    """(defender chat, reply) pairs for the base instruct model: `VANILLA_REPEATS` reply draws per
    vanilla seed, one per pool rewrite (except rewrites by `skip_strategies`), `hybrids_per_seed`
    hybrids of the kept rewrites per seed (`strategies.hybrid`), and a confused reply to a garbled
    copy of a `P_GARBLED` share of the seeds. A compliance restates the seed's task."""
    from magic_rl.sft import SFTExample  # torch

    rng = random.Random(rng_seed)

    def reply(seed: Seed, p_comply_harmful: float | None, p_refuse: float) -> str:
        if seed.label == "harmful":
            p_comply = p_comply_harmful if p_comply_harmful is not None else 1 - p_refuse
            comply = rng.random() < p_comply
        else:
            comply = rng.random() >= p_refuse
        return replies.house_style("compliance" if comply else "refusal", rng)

    def example(attack: str, text: str) -> SFTExample:
        return SFTExample(tuple(defender_messages(templates, [], attack)), text)

    out = []
    for seed in seeds:
        p_refuse = P_REFUSE["contrast" if is_contrast(seed) else seed.label]
        for _ in range(VANILLA_REPEATS):
            out.append(example(seed.text, reply(seed, None, p_refuse)))
        if rng.random() < P_GARBLED:
            out.append(example(garble(seed.text, rng), replies.house_style("confused", rng)))
    kept = [rec for rec in pool if rec.strategy not in skip_strategies]
    p_refuse = P_REFUSE["adversarial_benign"]
    for rec in [*kept, *hybrid_records(kept, hybrids_per_seed, rng_seed)]:
        out.append(example(rec.rewrite, reply(rec.seed, vulnerability(rec.strategy), p_refuse)))
    rng.shuffle(out)
    return out


def vulnerability(strategy: str) -> float:
    """The base model's compliance with a harmful rewrite by `strategy` (`VULNERABILITY`, 0.5 for
    one not listed); a hybrid "outer+inner" fools it when either framing would:
    1 - (1 - v_outer) * (1 - v_inner)."""
    if not is_hybrid(strategy):
        return VULNERABILITY.get(strategy, 0.5)
    miss = 1.0
    for part in components(strategy):
        miss *= 1 - VULNERABILITY.get(part, 0.5)
    return 1 - miss


def corpus(seeds, pool, templates) -> list[str]:
    """Every text the world's tokenizer should encode well."""
    rng = random.Random(0)
    texts = [v for v in dataclasses.asdict(templates).values() if isinstance(v, str)]
    texts += [s.text for s in seeds]
    texts += [rec.target for rec in pool]
    texts += [rec.target for rec in marked_records(pool)]
    texts += [replies.house_style("compliance", rng) for _ in range(50)]
    texts += [replies.refusal(rng) for _ in range(200)]
    texts += [replies.confused(rng) for _ in range(50)]
    texts += [replies.compliance(s.text, rng) for s in seeds if s.label == "harmful"]
    texts += [replies.helpful(s.text, rng) for s in seeds if s.label == "benign"]
    return texts


def judge_examples(cfg: RunConfig, seeds, pool, test_ids: set[str]):
    """(train, held-out) exchanges for the embedded judge.

    The judge is the world's oracle, as a guard model is in a real run: it knows every sandbox request
    (all splits) and every strategy, held-out ones included (those are held out from the *policies*).
    Training uses every vanilla seed and `JUDGE_REWRITES_PER_SEED` of its rewrites; the held-out set
    is every other rewrite of the test-split seeds — (request, strategy) pairs the judge never saw —
    with freshly drawn replies.
    """
    by_seed: dict[str, list] = {}
    for rec in pool:
        by_seed.setdefault(rec.seed.id, []).append(rec)
    train_pool, test_pool = [], []
    for seed_id, recs in by_seed.items():
        k = min(JUDGE_REWRITES_PER_SEED, len(recs))
        chosen = random.Random(f"{cfg.sandbox.seed}:{seed_id}").sample(range(len(recs)), k)
        train_pool += [recs[i] for i in chosen]
        if seed_id in test_ids:
            test_pool += [r for i, r in enumerate(recs) if i not in chosen]
    test_seeds = [s for s in seeds if s.id in test_ids]
    train = build_judge_examples(seeds, train_pool, cfg.sandbox.seed)
    test = build_judge_examples(test_seeds, test_pool, cfg.sandbox.seed + 1, vanilla=False)
    return train, test


# --- building ------------------------------------------------------------------------------------


def llama_config(sb: SandboxConfig, tokenizer, **extra):
    """The world's Llama shape (policies, and the learnability check's classifier)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=sb.hidden_size,
        intermediate_size=sb.intermediate_size,
        num_hidden_layers=sb.num_layers,
        num_attention_heads=sb.num_heads,
        num_key_value_heads=sb.num_heads,
        max_position_embeddings=sb.max_position,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def tiny_model(sb: SandboxConfig, tokenizer, seed: int):
    """A small Llama-style causal LM built from config (random init)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    config = llama_config(
        sb,
        tokenizer,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def base_sft_config(cfg: RunConfig) -> SFTConfig:
    """The base model's SFT settings: the `sandbox` section's rate, batch and context, cosine."""
    sb = cfg.sandbox
    return cfg.sft.model_copy(
        update={
            "lr": sb.base_lr,
            "batch_size": sb.base_batch_size,
            "max_length": sb.max_position,
            "warmup_ratio": 0.05,
            "scheduler": "cosine",
            "gradient_checkpointing": False,  # a tiny model: memory is no object, compute is
        }
    )


def build_world(
    cfg: RunConfig, *, force: bool = False, learnability_check: bool = False, log=print
) -> World:
    """Build (or reuse) the world for `cfg`. Deterministic for a given config and code. Its files,
    and with `learnability_check` the learnability check too when it builds; `build_checked` adds
    the check to a world built without it."""
    world = world_for(cfg)
    if force or not world.built:
        _build(cfg, world, log, learnability_check)
    return world


def build_checked(
    cfg: RunConfig, *, force: bool = False, attacker: bool = True, log=print
) -> tuple[World, Path | None]:
    """`magic sandbox build`: the world with its learnability check (beside the base model when
    the world is built here; beside phase 1 for a world built without it, as the demo builds it:
    `stages.alongside`) and, with `attacker`, the phase-1 attacker. Training, phase 1 and the demo
    need only the world's files (`build_world`)."""
    world = build_world(cfg, force=force, learnability_check=True, log=log)
    check = "learnability" not in world.info
    with alongside(learnability_stage, cfg, world.root) if check else nullcontext() as learn:
        out = build_attacker(cfg, world, force=force, log=log) if attacker else None
        if check:
            record_learnability(world, learn(), log=log)
    return world, out


def _build(cfg: RunConfig, world: World, log, learnability_check: bool) -> None:
    """Build `world`'s files (pool, tokenizer, judge, base model) and its build.json (with the
    learnability check's figures when `learnability_check`)."""
    import torch

    from magic_rl.sft import sft  # torch

    sb = cfg.sandbox
    torch.set_num_threads(max(1, torch.get_num_threads()))
    world.root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    seeds = sandbox_seeds(fraction=sb.fraction)
    pool = build_pool(seeds, PROGRAMMATIC, rng_seed=cfg.sandbox.seed)
    write_pool(pool, world.pool)
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    train_ids, test_ids = _split_ids(seeds)
    timings["pool"] = time.perf_counter() - t0
    log(f"seeds: {len(seeds)}  pool: {len(pool)} records")

    t = time.perf_counter()
    tokenizer = train_tokenizer(corpus(seeds, pool, templates), sb.vocab_size, world.tokenizer)
    timings["tokenizer"] = time.perf_counter() - t

    # The judge (and the learnability check) train in a second process while the base model
    # trains here: they share nothing but the pool and tokenizer on disk (stages.alongside).
    with alongside(side_stages, cfg, world.root, learnability_check) as side:
        t = time.perf_counter()
        skip = held_out(cfg)
        # What is harmful is world knowledge (every split's vanilla request); how attacks look is
        # not: only train-split rewrites, never a held-out strategy.
        train_pool = [r for r in pool if r.seed.id in train_ids]
        examples = base_examples(
            seeds, train_pool, templates, skip, cfg.sandbox.seed, sb.hybrids_per_seed
        )
        policy = HFPolicy(tiny_model(sb, tokenizer, cfg.sandbox.seed), tokenizer)
        summary = sft(
            policy,
            examples,
            base_sft_config(cfg),
            world.base,
            seed=cfg.sandbox.seed,
            max_steps=sb.base_steps,
            completion_only=False,
            progress=cfg.train.progress,
        )
        timings["base_model"] = time.perf_counter() - t
        log(record_table("base model SFT", summary))
        beside = side()
        judge_acc, judge_sizes, timings["judge"] = beside["judge"]
    log(record_table("judge: held-out accuracy", judge_acc))

    info = {
        "config": cfg.sandbox.model_dump(mode="json"),
        "held_out_strategies": sorted(skip),
        "seeds": seed_stats(),
        "pool_records": len(pool),
        "base_examples": len(examples),
        "base_sft": summary,
        "judge_accuracy": judge_acc,
        "judge_examples": judge_sizes,
        "parameters": sum(p.numel() for p in policy.model.parameters()),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    _write_info(world, info)
    if "learnability" in beside:
        record_learnability(world, beside["learnability"], log=log)


def judge_stage(cfg: RunConfig, root: Path) -> tuple[dict, dict, float]:
    """The embedded judge of the world at `root` (its pool written): trained, saved, scored on
    held-out exchanges -> (accuracy per signal, example counts, seconds)."""
    t = time.perf_counter()
    world = World(Path(root))
    seeds = sandbox_seeds(fraction=cfg.sandbox.fraction)
    _, test_ids = _split_ids(seeds)
    train, test = judge_examples(cfg, seeds, read_pool(world.pool), test_ids)
    judge = train_embedded_judge(train, epochs=cfg.sandbox.judge_epochs, seed=cfg.sandbox.seed)
    judge.save_pretrained(world.judge)
    accuracy = {k: round(v, 4) for k, v in evaluate_judge(judge, test).items()}
    return accuracy, {"train": len(train), "test": len(test)}, time.perf_counter() - t


def side_stages(cfg: RunConfig, root: Path, learnability_check: bool) -> dict[str, tuple]:
    """What a build runs beside the base model: {"judge": `judge_stage`, and with
    `learnability_check` "learnability": `learnability_stage`}."""
    out = {"judge": judge_stage(cfg, root)}
    if learnability_check:
        out["learnability"] = learnability_stage(cfg, root)
    return out


def learnability_stage(cfg: RunConfig, root: Path) -> tuple[dict, float]:
    """The learnability check (`checks.learnability`) on the pool and tokenizer of the world at
    `root` -> (its figures, seconds)."""
    from transformers import PreTrainedTokenizerFast

    t = time.perf_counter()
    world = World(Path(root))
    seeds = sandbox_seeds(fraction=cfg.sandbox.fraction)
    train_ids, test_ids = _split_ids(seeds)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(world.tokenizer)
    pairs, tests = learnability_sets(
        read_pool(world.pool), seeds, train_ids, test_ids, held_out(cfg)
    )
    learn = learnability(cfg, tokenizer, pairs, tests, steps=cfg.sandbox.learnability_steps)
    return learn, time.perf_counter() - t


def record_learnability(world: World, result: tuple[dict, float], *, log=print) -> dict:
    """Add a `learnability_stage` result to the world's build.json and print it."""
    learn, seconds = result
    log(record_table("learnability (classifier of the defender's size, held-out accuracy)", learn))
    info = world.info
    info["learnability"] = learn
    info["timings_s"]["learnability"] = round(seconds, 1)
    _write_info(world, info)
    return learn


def _split_ids(seeds) -> tuple[set[str], set[str]]:
    return (
        {s.id for s in seeds if split_of(s) == "train"},
        {s.id for s in seeds if split_of(s) == "test"},
    )


def _write_info(world: World, info: dict) -> None:
    """build.json, written last (its presence marks a built world) and whole (a temporary file
    renamed over it)."""
    tmp = world.root / "build.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(world.root / "build.json")


def marked_records(records):
    """Pool records whose rewrite embeds the seed's request verbatim, with that request replaced
    by the `[request]` marker (the world fills it back in, `content.fill_request`); the others
    (transformed requests: ciphers, misspellings, some slang) are left out of the attacker's SFT."""
    out = []
    for rec in records:
        core = request_core(rec.seed.text)
        pattern = re.compile(re.escape(core), re.IGNORECASE)
        if core and pattern.search(rec.rewrite):
            marked = pattern.sub(lambda _: REQUEST_MARKER, rec.rewrite, count=1)
            out.append(dataclasses.replace(rec, rewrite=marked))
    return out


def build_attacker(cfg: RunConfig, world: World, *, force: bool = False, log=print) -> Path:
    """Phase 1 on the sandbox: the base model SFT'd on the train-split pool. Cached in the world."""
    out = world.attacker(cfg)
    if (out / "sft.json").exists() and not force:
        return out
    from magic_rl.sft import attacker_sft  # torch

    records = marked_records([r for r in read_pool(world.pool) if split_of(r.seed) == "train"])
    attacker_sft(
        cfg.model_copy(update={"seed": cfg.sandbox.seed}), records, str(world.base), out, log=log
    )
    seeds = list({r.seed.id: r.seed for r in records}.values())
    check = attacker_check(cfg, out, seeds)
    (out / "check.json").write_text(json.dumps(check, indent=2) + "\n")
    log(record_table("attacker check (sampled rewrites of train-split seeds)", check))
    for line in attacker_warnings(check):
        log(warning(line))
    return out
