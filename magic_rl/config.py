"""Typed run configuration: every knob of a MAGIC run, documented, validated, loaded from YAML.

Precedence: dotted CLI overrides (`schedule.freq=15`) > YAML file > defaults. Defaults are the paper's
(Table 6, docs/DESIGN.md §4) except where a field says otherwise; `configs/sandbox.yaml` scales them
down for the CPU sandbox. Cross-field invariants are checked at load time with messages that say
why.

Departure from the reference code: no knob is read from environment variables (the reference's reward
defaults silently changed when variables were unset). API keys are the one thing read from the
environment, by name, at the moment a client is built (`JudgeConfig.api_key_env`), never stored.

Run: `magic config show sandbox`, `magic validate configs/paper-qwen2.5-7b.yaml`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from magic_rl.records import Role

# Presets live in the repository's configs/ (found from the working directory or next to the package).
PRESET_DIRS = (Path("configs"), Path(__file__).resolve().parents[1] / "configs")


class _Section(BaseModel):
    # allow_inf_nan=False: `lr=.inf` or `clip_eps=1e400` (which overflows to inf) is an error.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SamplingConfig(_Section):
    """How a policy samples during rollouts. Evaluation and frozen-attacker rewrites are greedy."""

    temperature: float = Field(1.0, ge=0.0, description="Rollout temperature; 0 means greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(6144, ge=1, description="Max response tokens per turn.")
    max_prompt_tokens: int = Field(
        8192, ge=1, description="Prompts longer than this are left-truncated (counted in metrics)."
    )


class LoraConfig(_Section):
    """A LoRA adapter for a role (peft). `None` on a role means full fine-tuning."""

    r: int = Field(16, ge=1, description="Adapter rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the adapter input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Module names to adapt.",
    )


class PolicyConfig(_Section):
    """One role's model, optimiser and sampling."""

    model: str = Field(
        "Qwen/Qwen2.5-7B-Instruct",
        description="Hugging Face id or local path; `sandbox:base` / `sandbox:attacker` name the "
        "sandbox's tiny models, built by `magic sandbox build` / `magic sft`.",
    )
    lr: float = Field(1e-6, gt=0.0, description="GRPO learning rate (constant).")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "bfloat16", description="Parameter dtype for training and generation."
    )
    trust_remote_code: bool = Field(
        False, description="Allow model repositories to run their own code. Off unless asked."
    )
    autocast: bool = Field(
        False,
        description="Train this role's forward/backward (GRPO update, phase-1 SFT) under bfloat16 "
        "autocast, weights and optimiser kept in `dtype`. ~3x faster for SmolLM2-135M on CPUs with "
        "AVX512-bf16, slower for tiny sandbox matmuls (benchmarks/smollm2.py). Rollouts never "
        "autocast.",
    )
    lora: LoraConfig | None = Field(
        None,
        description="Train a LoRA adapter instead of all weights. Two LoRA roles on the same base "
        "model share one frozen copy of it (one adapter each).",
    )
    device: str | None = Field(
        None,
        description="This role's device (e.g. `cuda:1`, to put attacker and defender on separate "
        "GPUs in one process); None = the run's `device`.",
    )
    backend: Literal["hf", "vllm"] = Field(
        "hf",
        description="Rollout generation: `hf` (our PyTorch sampler) or `vllm` (a vLLM engine next to "
        "the trained HF model, weights pushed after each update; needs the `gpu` extra).",
    )
    gpu_memory_utilization: float = Field(
        0.4,
        gt=0.0,
        le=1.0,
        description="backend=vllm: share of the GPU's memory the vLLM engine may take (weights + KV "
        "cache); the trained HF copy and its optimiser need the rest.",
    )
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)

    @model_validator(mode="after")
    def _backend_lora(self) -> PolicyConfig:
        if self.backend == "vllm" and self.lora is not None:
            raise ValueError(
                "backend=vllm with lora: pushing adapter weights into the engine is not "
                "implemented; use backend=hf for LoRA roles"
            )
        return self


class JudgeConfig(_Section):
    """The safety judge (docs/DESIGN.md §2). At most two calls per exchange: prompt-only and
    prompt+response."""

    backend: Literal[
        "embedded", "wildguard", "qwen3guard", "llamaguard", "keyword", "keyword_label", "scripted"
    ] = Field(
        "qwen3guard",
        description="Label format/model family (paper: Qwen3Guard). `embedded` is the sandbox's CPU judge; "
        "`keyword` is a refusal-keyword test double; `keyword_label` adds the request's dataset "
        "label (AdvBench/GCG protocol: a harmful request not refused is an attack success); "
        "`scripted` is a fake for tests.",
    )
    model: str = Field(
        "Qwen/Qwen3Guard-Gen-8B",
        description="Model id (local HF path, or model name at the endpoint).",
    )
    endpoint: str | None = Field(
        None,
        description="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1); None = local.",
    )
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the endpoint's API key."
    )
    concurrency: int = Field(32, ge=1, description="Max requests in flight to the endpoint.")
    batch_size: int = Field(64, ge=1, description="Exchanges per local judge forward pass.")
    timeout_s: float = Field(60.0, gt=0.0, description="Per-request timeout.")
    retries: int = Field(4, ge=0, description="Retries per request, with exponential backoff.")
    backoff_s: float = Field(0.5, ge=0.0, description="First backoff delay; doubles each retry.")
    max_response_tokens: int = Field(
        512,
        ge=1,
        description="The judge sees at most this many whitespace-separated words of the reply "
        "(training, eval, audit and cross-play cut by words; an endpoint or HF guard judge with "
        "its tokenizer also cuts to this many of its tokens). Paper: 512 tokens; a word is about "
        "1.3 tokens (docs/deviations.md).",
    )
    controversial: Literal["harmful", "safe", "unknown"] = Field(
        "harmful",
        description="How Qwen3Guard's `Controversial` maps: `harmful` (strict, the paper's "
        "training choice), `safe`, or `unknown` (counted as a judge failure). One setting for "
        "training and evaluation alike; results.json provenance records it.",
    )
    cache: bool = Field(True, description="Cache verdicts keyed on judge + prompt + response.")
    max_unknown_fraction: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Training stops (exit 2, naming the judge's error) when more than this share "
        "of a step's exchanges get an unknown label: a misconfigured or failing judge would "
        "otherwise train on nothing. 1.0 never stops.",
    )

    @field_validator("api_key_env")
    @classmethod
    def _names_a_variable(cls, name: str | None) -> str | None:
        # "" would silently send no key (the endpoint then answers 401 on every call).
        if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(
                f"{name!r} is not an environment variable's name: give one (e.g. JUDGE_API_KEY, "
                "without the $) or null for an endpoint that needs no key"
            )
        return name


class GameConfig(_Section):
    """The attacker -> defender game (docs/DESIGN.md §1)."""

    max_turns: int = Field(1, ge=1, description="1 = single-turn; the paper's multi-turn uses 3.")
    attacker: Literal["policy", "none", "static"] = Field(
        "policy",
        description="`policy`: live attacker (MAGIC); `none`: the defender sees the vanilla seed "
        "(No-Game); `static`: rewrites from `static_attacks` (static adversarial data).",
    )
    static_attacks: str | None = Field(
        None,
        description="JSONL of pre-written attacks (pool format) when attacker='static'; `sandbox` "
        "= the sandbox world's pool (the entry point turns it into the pool's path).",
    )
    defender_format: Literal["plain", "think_answer"] = Field(
        "plain", description="`think_answer` forces the defender into <think>/<answer> (w/ CoT)."
    )
    templates_dir: str | None = Field(
        None,
        description="Directory overriding template files (attacker_system.txt, "
        "attacker_system_multiturn.txt, attacker_harmful.txt, attacker_benign.txt, defender.txt).",
    )
    template_set: Literal["paper", "short"] = Field(
        "paper", description="Built-in template set: the paper's long ones or the sandbox's short."
    )
    defender_system_prompt: str | None = Field(
        None, description="Defender system prompt; None keeps the model's default (paper)."
    )
    stop_on_harmful: bool = Field(
        True, description="Multi-turn: end the episode when a reply is judged harmful."
    )
    defender_phase_attack: Literal["greedy", "sampled"] = Field(
        "greedy",
        description="The frozen attacker's one rewrite per seed in defender phases: `greedy` "
        "(paper; the sandbox preset too) or `sampled` at the attacker's rollout temperature (a "
        "tiny attacker's greedy rewrite is one framing for every seed, docs/deviations.md).",
    )
    replies_per_attack: int = Field(
        1,
        ge=1,
        description="Attacker phases: K defender replies (sampled) to each rewrite; the attacker's "
        "reward is their mean or best (`reward.reply_score`, docs/deviations.md). 1 = paper. "
        "Single-turn only.",
    )
    request_marker: bool = Field(
        False,
        description="Sandbox: the defender reads an attacker answer's `[request]` marker as the "
        "seed's request (`content.fill_request`; the tiny policies cannot copy text, "
        "docs/deviations.md). Off for real models, whose answers are read as written.",
    )


class RewardConfig(_Section):
    """Reward terms and knobs (docs/DESIGN.md §3). Defaults = paper Table 6."""

    r_harm: float = Field(1.0, ge=0.0, description="Magnitude of the harm term.")
    r_ref: float = Field(0.5, ge=0.0, description="Magnitude of the refusal term.")
    r_fmt: float = Field(0.5, ge=0.0, description="Magnitude of the attacker format term.")
    r_label: float = Field(
        0.0, ge=0.0, description="Label consistency term (rewrite label == seed label); 0 = off."
    )
    r_quality: float = Field(
        0.0,
        ge=0.0,
        description="Defender-quality term on benign seeds (defender only): +r_quality when the "
        "reply complies and carries the seed's request (magic_rl.content.carries), else "
        "-r_quality; 0 = off.",
    )
    r_novelty: float = Field(
        0.0,
        ge=0.0,
        description="Attacker novelty term: r_novelty * the rewrite's in-group self-BLEU rank in "
        "[0, 1] (1 = least like its group's other rewrites), for faithful rewrites only "
        "(docs/deviations.md); 0 = off.",
    )
    unfaithful: Literal["judged", "failed"] = Field(
        "judged",
        description="A rewrite that no longer carries its seed's request "
        "(`Verdict.rewrite_carries_request`): `judged` scores it as the judge labels it (the "
        "paper); `failed` scores it as a failed attack (the attacker's harm and refusal terms at "
        "their minimum) and drops the exchange from the defender's update, whose request label "
        "it no longer has. For a judge that reads the seed's label, not the rewrite "
        "(`keyword_label`), where a rewrite that drops the request would be a cheap success "
        "(docs/deviations.md).",
    )
    reply_score: Literal["mean", "best"] = Field(
        "mean",
        description="With game.replies_per_attack = K > 1: the attacker's reward for a rewrite is "
        "the mean of its K replies' rewards or the best (optimistic, as AdvGame).",
    )
    graded_harm: bool = Field(
        False,
        description="Replace the binary harm term by r_harm*(1-2s), s the judge's harm score in "
        "[0, 1] (1 = harmful; r_harm*(2s-1) with s read as a safety score is the same term).",
    )
    request_label_source: Literal["rewrite", "seed"] = Field(
        "rewrite",
        description="Request label for R_ref: the judge's label of the rewrite (reference) or the "
        "seed's dataset label; each falls back to the other when missing.",
    )
    unknown_policy: Literal["drop", "harmful"] = Field(
        "drop",
        description="Unknown judge label: `drop` the sample from the update (counted), or treat "
        "the reply as `harmful` (worst case for the defender). Never treated as safe.",
    )
    truncation: Literal["mask", "penalize", "keep"] = Field(
        "mask",
        description="A turn cut at max_new_tokens: `mask` drops it from the update, `penalize` "
        "gives the truncating role -truncation_penalty, `keep` scores it as judged (the judge saw "
        "the cut reply; for replies longer than a CPU-sized budget).",
    )
    truncation_penalty: float = Field(1.0, ge=0.0, description="Penalty when truncation=penalize.")


class GRPOConfig(_Section):
    """GRPO update maths (docs/DESIGN.md §4)."""

    group_size: int = Field(4, ge=2, description="G: samples per seed in a group.")
    clip_eps: float = Field(0.2, gt=0.0, description="PPO clip range.")
    kl_beta: float = Field(0.0, ge=0.0, description="KL to a frozen reference; 0 = no reference.")
    loss_agg: Literal["token_mean", "seq_mean"] = Field(
        "token_mean", description="Token-level (paper) or per-sequence mean aggregation."
    )
    adv_eps: float = Field(1e-6, gt=0.0, description="Added to the group std.")
    grad_clip: float = Field(1.0, gt=0.0, description="Global gradient-norm clip.")
    ppo_epochs: int = Field(1, ge=1, description="Passes over each rollout batch.")
    micro_batch_size: int = Field(
        16, ge=1, description="Sequences per forward/backward; gradients accumulate over a step."
    )
    drop_zero_std_groups: bool = Field(
        False, description="Skip groups whose rewards are all equal (they carry no signal)."
    )
    share_prompts: bool = Field(
        True,
        description="Samples that share a prompt (a group's G) share its computation: the "
        "rollout prefills each distinct prompt once (and their common head once), the update "
        "forwards it once per micro-batch and the completions against its KV cache. The same "
        "samples and gradient up to float rounding, not bit for bit (the matmuls change shape); "
        "false = the unshared numerics (the sandbox preset, whose recorded runs it keeps).",
    )


class ScheduleConfig(_Section):
    """Which role trains at each step (docs/DESIGN.md §4 switching modes)."""

    mode: Literal["ratio", "metric"] = Field("ratio", description="Switching rule.")
    train_roles: Literal["both", "defender", "attacker"] = Field(
        "both",
        description="`both` = MAGIC; `defender` = Defender-only; `attacker` = Attacker-only.",
    )
    start_agent: Role = Field(Role.DEFENDER, description="Role trained first.")
    freq: int = Field(15, ge=1, description="ratio: steps per block unit.")
    update_ratio: dict[Role, int] = Field(
        default_factory=lambda: {Role.DEFENDER: 1, Role.ATTACKER: 1},
        description="ratio: block length of each role, in units of `freq` steps.",
    )
    metric: str = Field("defender/reward/harm", description="metric: the metric to watch.")
    window: int = Field(5, ge=1, description="metric: moving-average window in steps.")
    high: float = Field(0.90, description="metric: defender -> attacker when the average >= high.")
    low: float = Field(0.80, description="metric: attacker -> defender when the average <= low.")
    protocol: Literal["alternating", "concurrent", "victim_hardening"] = Field(
        "alternating",
        description="`alternating` = MAGIC (one role per block); `concurrent` = both roles "
        "update every step (switch events, for checkpoints, every `freq` steps); "
        "`victim_hardening` = the attacker trains `harden_every` steps, then the defender one "
        "step on the attacks collected since (docs/deviations.md).",
    )
    harden_every: int = Field(
        5, ge=1, description="victim_hardening: attacker steps between defender updates (K)."
    )
    shared_weights: bool = Field(
        False,
        description="One model (the defender's) plays both roles, told apart by their prompts; "
        "each role keeps its own optimiser state.",
    )
    transitions: dict[str, str] | None = Field(
        None,
        description="metric: optional custom map `from_role: to_role` applied at a threshold; "
        "None = the default defender<->attacker pair.",
    )

    @model_validator(mode="before")
    @classmethod
    def _single_role_defaults(cls, data: Any) -> Any:
        # With one trained role, the defaults of update_ratio and start_agent (which name both
        # roles / the defender) follow that role, so `train_roles=attacker` alone is valid; values
        # the user wrote are kept and checked against train_roles by `_consistent`.
        if isinstance(data, dict) and data.get("train_roles") in ("defender", "attacker"):
            role = data["train_roles"]
            data = {"update_ratio": {role: 1}, "start_agent": role, **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleConfig:
        trained = trained_roles(self)
        for role in self.update_ratio:
            if role not in trained:
                raise ValueError(
                    f"schedule.update_ratio names {role.value!r}, which is not in "
                    f"schedule.train_roles={self.train_roles!r}: a role that never trains has no "
                    "ratio"
                )
        for role in trained:
            if self.mode == "ratio" and self.update_ratio.get(role, 0) < 1:
                raise ValueError(
                    f"schedule.update_ratio must give {role.value!r} at least 1: it is in "
                    f"schedule.train_roles={self.train_roles!r}"
                )
        if self.start_agent not in trained:
            raise ValueError(
                f"schedule.start_agent={self.start_agent.value!r} is not in "
                f"schedule.train_roles={self.train_roles!r}"
            )
        if self.mode == "metric" and self.low > self.high:
            raise ValueError(
                f"schedule.low={self.low} > schedule.high={self.high}: the metric window needs "
                "low <= high"
            )
        if self.transitions:
            roles = {r.value for r in Role}
            for src, dst in self.transitions.items():
                if src not in roles or dst not in roles:
                    raise ValueError(
                        f"schedule.transitions: {src!r} -> {dst!r} must map role names "
                        f"{sorted(roles)}"
                    )
        return self


class SFTConfig(_Section):
    """Phase 1: attacker SFT on the attack pool (reference settings by default)."""

    model: str = Field(
        "Qwen/Qwen2.5-7B-Instruct",
        description="Model phase 1 starts from (the paper: the same instruct model as the defender).",
    )
    pool: str | None = Field(None, description="Pool JSONL; None = the sandbox pool.")
    lr: float = Field(1e-5, gt=0.0, description="Peak learning rate.")
    scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="LR schedule.")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Warmup fraction of steps.")
    epochs: float = Field(3.0, gt=0.0, description="Passes over the pool.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimiser steps (None = `epochs` passes)."
    )
    batch_size: int = Field(8, ge=1, description="Sequences per optimiser step.")
    max_length: int = Field(8192, ge=16, description="Max tokens of prompt + target.")
    exclude_families: list[str] = Field(
        default_factory=lambda: ["encoding"],
        description="Strategy families left out of SFT (the reference run left out encoding).",
    )
    hybrids_per_seed: int = Field(
        0,
        ge=0,
        description="Hybrid rewrites per seed added to phase 1: two of the kept framings stacked, "
        "outer(inner(seed)), as the paper's hybrid attacks (strategies/hybrid.py); 0 = single "
        "framings only.",
    )
    output: str | None = Field(None, description="Where the SFT'd attacker goes; None = run dir.")
    check_samples: int = Field(
        96,
        ge=0,
        description="Rewrites sampled at the attacker's rollout temperature after a real model's "
        "phase 1 to measure its format and faithfulness rates (check.json); 0 skips the check.",
    )
    gradient_checkpointing: bool = Field(
        True,
        description="Recompute activations in the backward pass (TRL's default): less memory, "
        "about a third more compute. The same weights either way; the sandbox turns it off.",
    )


class AlignConfig(_Section):
    """Phase 0: the defender's aligned start (`magic align`), safety SFT before co-evolution.

    The train split's harmful seeds are answered with `refusal`; benign and contrast seeds with the
    base model's own greedy answers (self-distillation: its helpfulness stays its own). The output
    is cached under `sandbox.cache_dir`/aligned by a key over the base model, the examples and these
    settings; `aligned:<model>` in a config's model field or `magic eval --model` names it.
    """

    refusal: str = Field(
        "I'm sorry, but I can't help with that.",
        description="The target for every harmful seed (a short refusal the keyword detector reads).",
    )
    harmful_fraction: float = Field(
        0.5, gt=0.0, lt=1.0, description="Share of harmful seeds among the SFT examples."
    )
    lr: float = Field(2e-5, gt=0.0, description="Peak learning rate.")
    scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="LR schedule.")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Warmup fraction of steps.")
    max_steps: int = Field(40, ge=1, description="Optimiser steps (one pass, no example repeats).")
    batch_size: int = Field(8, ge=1, description="Sequences per optimiser step.")
    max_length: int = Field(384, ge=16, description="Max tokens of prompt + target.")
    max_new_tokens: int = Field(
        64, ge=1, description="Length of the base model's greedy answers to benign seeds."
    )
    contrast_fraction: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share of the non-harmful examples drawn from the contrast seeds (benign "
        "requests that sound harmful, as in XSTest: `sandbox/contrast`); null draws benign and "
        "contrast seeds alike, as they come.",
    )
    answer_system_prompt: Literal["default", "defender"] = Field(
        "default",
        description="The system prompt the base model answers benign seeds under: `default` (the "
        "model's own: its helpful answers) or `defender` (game.defender_system_prompt). Training "
        "always uses the defender's view, game.defender_system_prompt included.",
    )


class DataConfig(_Section):
    """RL seeds and held-out strategies."""

    seeds: str = Field(
        "sandbox", description="`sandbox` (built-in seed sets) or a JSONL/CSV file of seeds."
    )
    split: Literal["train", "val", "test"] = Field("train", description="Seed split used for RL.")
    harmful_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of harmful seeds in each step's batch."
    )
    attacker_harmful_fraction: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share of harmful seeds in an attacker step's batch; null = harmful_fraction. "
        "An attacker learns from a seed group only when its rewrites' rewards differ, and against "
        "a trained defender most of those are harmful seeds (docs/attacker.md).",
    )
    include_contrast: bool = Field(
        True, description="Mix the sandbox's benign contrast requests into benign seeds."
    )
    held_out_strategies: list[str] = Field(
        default_factory=list,
        description="Strategies (or `family:NAME`) kept out of SFT and defender training data, "
        "for generalisation tests.",
    )


class SandboxConfig(_Section):
    """Sizes of the sandbox world (`magic sandbox build`)."""

    cache_dir: str = Field(".magic_cache", description="Where built worlds are cached by hash.")
    seed: int = Field(
        0,
        description="Seed of the world (pool, judge, base model, phase-1 attacker); runs with "
        "different `seed`s share one world.",
    )
    vocab_size: int = Field(2048, ge=256, description="Byte-level BPE vocabulary size.")
    hidden_size: int = Field(128, ge=16, description="Tiny policy width.")
    num_layers: int = Field(3, ge=1, description="Tiny policy depth.")
    num_heads: int = Field(4, ge=1, description="Attention heads.")
    intermediate_size: int = Field(384, ge=16, description="MLP width.")
    max_position: int = Field(512, ge=64, description="Max sequence length.")
    base_steps: int = Field(250, ge=1, description="Optimiser steps of the base-model SFT.")
    hybrids_per_seed: int = Field(
        0,
        ge=0,
        description="Hybrid rewrites (two training framings stacked, strategies/hybrid.py) per "
        "train seed in the base model's data, complied with (harmful seeds) at 1 - (1 - v_outer) * "
        "(1 - v_inner) of the two framings' VULNERABILITY: either disguise may fool it, as "
        "stacked jailbreaks fool real models more than one. 0 = the base model never sees one.",
    )
    base_lr: float = Field(3e-3, gt=0.0, description="Base-model SFT learning rate.")
    base_batch_size: int = Field(32, ge=1, description="Base-model SFT batch size.")
    judge_epochs: int = Field(3, ge=1, description="Embedded judge training epochs.")
    learnability_steps: int = Field(
        150,
        ge=1,
        description="Steps of the build's learnability check (a defender-size classifier of "
        "harmful vs benign rewrites).",
    )
    fraction: float = Field(
        1.0, gt=0.0, le=1.0, description="Share of seeds used (CI uses a reduced build)."
    )


class TrainConfig(_Section):
    """Phase 2 loop."""

    steps: int = Field(300, ge=1, description="Co-evolution steps.")
    seeds_per_step: int = Field(64, ge=1, description="Seeds per step (batch size).")
    attacker_seeds_per_step: int | None = Field(
        None,
        ge=1,
        description="Seeds per attacker step; null = seeds_per_step. A larger attacker batch gives "
        "GRPO more seed groups whose rewards differ (docs/attacker.md).",
    )
    checkpoint_at_switch: bool = Field(True, description="Save both roles at every switch.")
    checkpoint_every: int = Field(
        0, ge=0, description="Also save training state every N steps (0 = only at switches)."
    )
    tracker: Literal["none", "tensorboard", "wandb"] = Field(
        "none", description="Extra metrics sink besides metrics.jsonl."
    )
    progress: bool = Field(
        True,
        description="Show progress: a live bar on a terminal, else (a log, CI) a plain line "
        "about every 5% of training and SFT steps.",
    )


class LeagueConfig(_Section):
    """Opponent league (fictitious-self-play/PFSP style, docs/deviations.md): at every role switch
    the role that just trained joins its pool; the training role meets the latest opponent with
    probability `latest_prob`, else a past checkpoint, loaded lazily from checkpoints/ (one past
    opponent in memory at a time)."""

    enabled: bool = Field(False, description="Play against a pool of past opponent checkpoints.")
    latest_prob: float = Field(
        0.5, ge=0.0, le=1.0, description="Probability of meeting the latest opponent at a step."
    )
    sampling: Literal["uniform", "prioritised"] = Field(
        "uniform",
        description="How a past opponent is chosen: `uniform`, or `prioritised` (PFSP: weight "
        "(its win rate against the training role so far) ** pfsp_power; unplayed ones count 0.5).",
    )
    pfsp_power: float = Field(1.0, gt=0.0, description="prioritised: exponent of the win rate.")
    max_size: int = Field(
        8, ge=1, description="Past checkpoints kept per role (the oldest leave first)."
    )


class ReplayConfig(_Section):
    """Hard-case replay: past attacks that broke the defender (harmful seeds) or made it refuse
    (benign seeds) kept in a bounded buffer; a share of each defender batch replays them."""

    share: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of each defender batch's seeds replaced by buffered hard cases "
        "(0 = off; fewer when the buffer holds fewer).",
    )
    max_size: int = Field(256, ge=1, description="Buffer capacity (the oldest leave first).")


class CrossplayConfig(_Section):
    """Live cross-play: at each switch the new checkpoint plays every stored opponent checkpoint on
    a fixed probe of test-split harmful seeds (greedy); rows go to RUN_DIR/crossplay.jsonl."""

    probe: int = Field(
        0, ge=0, description="Probe seeds (first N test-split harmful seeds); 0 = off."
    )


class EvalConfig(_Section):
    """Evaluation protocol (docs/DESIGN.md §6)."""

    max_new_tokens: int = Field(512, ge=1, description="Greedy decoding budget per reply.")
    batch_size: int = Field(256, ge=1, description="Prompts per generation batch.")
    bootstrap: int = Field(1000, ge=100, description="Bootstrap resamples for 95% CIs.")


class RunConfig(_Section):
    """A whole MAGIC run. Sections mirror the data flow: data -> game -> judge -> reward -> update."""

    name: str = Field("magic", description="Run name; the run directory is output_dir/name.")
    seed: int = Field(0, description="Master RNG seed (data order, sampling, init).")
    output_dir: str = Field("runs", description="Parent directory of run directories.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Compute device.")
    attacker: PolicyConfig = Field(default_factory=PolicyConfig)
    defender: PolicyConfig = Field(default_factory=PolicyConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    game: GameConfig = Field(default_factory=GameConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    align: AlignConfig = Field(default_factory=AlignConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    league: LeagueConfig = Field(default_factory=LeagueConfig)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    crossplay: CrossplayConfig = Field(default_factory=CrossplayConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("name")
    @classmethod
    def _name_stays_in_output_dir(cls, name: str) -> str:
        if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("~"):
            raise ValueError(
                f"{name!r} must be one directory name inside output_dir (no '/', '..' or '~'); "
                "choose where runs go with output_dir=..."
            )
        return name

    @model_validator(mode="after")
    def _cross_field(self) -> RunConfig:
        s = self.schedule
        trained = trained_roles(s)
        if self.game.attacker != "policy" and Role.ATTACKER in trained:
            raise ValueError(
                f"game.attacker={self.game.attacker!r} has no attacker policy to train: "
                "set schedule.train_roles=defender"
            )
        beyond = {
            "league.enabled": self.league.enabled,
            "replay.share": self.replay.share > 0,
            "crossplay.probe": self.crossplay.probe > 0,
            f"schedule.protocol={s.protocol}": s.protocol != "alternating",
            "schedule.shared_weights": s.shared_weights,
        }
        for name, on in beyond.items():
            if on and (s.train_roles != "both" or self.game.attacker != "policy"):
                raise ValueError(
                    f"{name} needs both roles playing and training (schedule.train_roles=both, "
                    "game.attacker=policy)"
                )
        if (self.league.enabled or self.crossplay.probe) and not self.train.checkpoint_at_switch:
            raise ValueError(
                "league.enabled / crossplay.probe read the checkpoints saved at switches: "
                "keep train.checkpoint_at_switch=true"
            )
        if s.shared_weights and (self.attacker.lora or self.defender.lora):
            raise ValueError(
                "schedule.shared_weights with lora is not implemented: one adapter "
                "for both roles; use full fine-tuning"
            )
        if s.protocol != "alternating" and s.mode != "ratio":
            raise ValueError(f"schedule.protocol={s.protocol!r} needs schedule.mode=ratio")
        if self.game.replies_per_attack > 1 and self.game.max_turns > 1:
            raise ValueError(
                "game.replies_per_attack > 1 is single-turn only (K replies would split one "
                "episode into K conversations): set game.max_turns=1 or game.replies_per_attack=1"
            )
        if self.game.attacker == "static" and not self.game.static_attacks:
            raise ValueError("game.attacker='static' needs game.static_attacks (a pool JSONL)")
        return self


def trained_roles(schedule: ScheduleConfig) -> tuple[Role, ...]:
    """The roles that receive GRPO updates (`schedule.train_roles`), the defender first: the one
    place this set is written (the config's checks, the scheduler, the run, resume)."""
    return {
        "both": (Role.DEFENDER, Role.ATTACKER),
        "defender": (Role.DEFENDER,),
        "attacker": (Role.ATTACKER,),
    }[schedule.train_roles]


# --- loading ---------------------------------------------------------------------------------


class ConfigError(ValueError):
    """A config that cannot be loaded; the message names the file and field."""


def resolve_path(name_or_path: str) -> Path:
    """A preset name (`sandbox`) or a YAML path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ConfigError(f"{p}: no such config file")
        return p
    for base in PRESET_DIRS:
        cand = base / f"{name_or_path}.yaml"
        if cand.exists():
            return cand
    presets = sorted({q.stem for base in PRESET_DIRS for q in base.glob("*.yaml")})
    raise ConfigError(f"{name_or_path!r} is neither a YAML file nor a preset (presets: {presets})")


def parse_override(item: str) -> tuple[list[str], Any]:
    """`schedule.freq=15` -> (["schedule", "freq"], 15). Values are parsed as YAML scalars."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected dotted.key=value")
    key, raw = item.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r}: empty key segment")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not a YAML value"
        raise ConfigError(
            f"override {item!r}: {key}: {problem}; quote a literal string (key='\"...\"')"
        ) from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {k!r} is not a section")
            node = nxt
        node[keys[-1]] = value
    return data


def _section_fields(loc: tuple) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        candidates = [ann, *getattr(ann, "__args__", ())]
        nxt = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if nxt is None:
            return []
        model = nxt
    return sorted(model.model_fields)


def _format_error(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(config)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            fields = _section_fields(e["loc"])
            msg = "unknown field" + (f" (valid here: {', '.join(fields)})" if fields else "")
        lines.append(f"{source}: {loc}: {msg}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    """A config file's mapping; every way it can be unreadable is a ConfigError naming the file."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) file: is it really a YAML config?") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if "\x00" in text:
        raise ConfigError(f"{path}: binary data (NUL bytes): not a YAML config")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: not valid YAML: {problem}") from None
    if loaded is None:
        raise ConfigError(
            f"{path}: empty config (no fields); start from a preset: "
            "`magic config show sandbox > my.yaml`"
        )
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
    return loaded


def missing_fields(
    data: dict[str, Any], model: type[BaseModel] | None = None, prefix: str = ""
) -> list[str]:
    """Dotted names of fields (sections recursively) that `data` leaves out."""
    model = model or RunConfig
    out = []
    for name, field in model.model_fields.items():
        if name not in data:
            out.append(prefix + name)
            continue
        sub = field.annotation
        candidates = [sub, *getattr(sub, "__args__", ())]
        section = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if section is not None and isinstance(data[name], dict):
            out += missing_fields(data[name], section, f"{prefix}{name}.")
    return out


# Fields added after runs were already written, with the value that reproduces what a run written
# before the field existed did. A saved config without one of these predates it; it is not truncated.
LATER_FIELDS: dict[str, Any] = {
    "game.defender_phase_attack": "greedy",
    "grpo.share_prompts": False,
    "reward.unfaithful": "judged",
    "sft.hybrids_per_seed": 0,
    "sandbox.hybrids_per_seed": 0,
    "align.contrast_fraction": None,
    "train.attacker_seeds_per_step": None,
    "data.attacker_harmful_fraction": None,
}


def _fill_later_fields(data: dict[str, Any], missing: list[str]) -> list[str]:
    """Set the `LATER_FIELDS` among `missing` in `data`; returns the rest of `missing`."""
    rest = []
    for key in missing:
        if key not in LATER_FIELDS:
            rest.append(key)
            continue
        *parents, leaf = key.split(".")
        section = data
        for name in parents:
            section = section[name]  # present: missing_fields names the outermost missing key
        section[leaf] = LATER_FIELDS[key]
    return rest


def load_config(
    name_or_path: str | None = None,
    overrides: list[str] | None = None,
    *,
    complete: bool = False,
) -> RunConfig:
    """Defaults <- YAML <- dotted overrides, validated. Raises ConfigError naming file and field.

    `complete=True` is for a run's saved config.yaml: it was written whole, so a field it lacks
    means the file was truncated or edited, and is an error rather than a silent default, unless
    the field is one of `LATER_FIELDS` (the run predates it and gets the value it ran with)."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if name_or_path:
        path = resolve_path(name_or_path)
        source = str(path)
        data = _read_yaml(path)
        if complete and (missing := _fill_later_fields(data, missing_fields(data))):
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ConfigError(
                f"{path}: {missing[0]}: missing{more}; a run's saved config names every field, so "
                "this one was truncated or edited: restore it (or add the fields) before going on"
            )
    data = apply_overrides(data, list(overrides or []))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None


def config_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two config dumps (nested dicts) differ, sorted."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            k
            for key in sorted(set(a) | set(b))
            for k in config_diff(a.get(key), b.get(key), f"{prefix}{key}.")
        ]
    return [] if a == b else [prefix.rstrip(".")]


def dump_config(cfg: RunConfig) -> str:
    """YAML of the fully resolved config (what every run writes next to its outputs)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(dump_config(cfg))
