"""The safety judge (docs/DESIGN.md §2): `make_judge(cfg)` picks a backend; all speak `base.Judge`.

| backend | what |
|---|---|
| embedded | the sandbox's CPU judge (`embedded.EmbeddedJudge`, loaded from the directory `cfg.model`) |
| wildguard / qwen3guard / llamaguard | `endpoint.EndpointJudge` if `cfg.endpoint`, else `hf.HFGuardJudge` |
| keyword | `keyword.KeywordRefusalJudge` (refusal only; a fallback and test double) |
| keyword_label | `keyword.LabelledRefusalJudge`: keyword refusal + the request's dataset label (AdvBench/GCG protocol) |
| scripted | `scripted.ScriptedJudge` (a function; a marker-word rule by default) |

torch, transformers and httpx are imported when a judge that needs them is built, so building a
keyword or scripted judge never imports them.
Scoring helpers live in `score` (`score_exchanges`), formats and parsers in `formats`, the
OpenAI-compatible server for any judge in `serve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magic_rl.config import JudgeConfig
from magic_rl.judge.base import Judge
from magic_rl.judge.embedded import EmbeddedJudge
from magic_rl.judge.endpoint import EndpointJudge
from magic_rl.judge.hf import HFGuardJudge
from magic_rl.judge.keyword import KeywordRefusalJudge, LabelledRefusalJudge
from magic_rl.judge.scripted import ScriptedJudge

__all__ = ["Judge", "make_judge"]


def make_judge(cfg: JudgeConfig, **kw: Any) -> Judge:
    """The judge `cfg` asks for: the one place a run's judge is built (training, `magic eval`,
    `magic attack|crossplay`, `magic serve judge`, the sandbox probe).

    `cfg` is resolved: an embedded judge's `model` is its directory (the entry point turned
    `sandbox:judge` into one). Keyword arguments go to the chosen backend: `fn` (scripted);
    `tokenizer`, `cache_path`, `transport` (endpoint); `model`, `tokenizer`, `device`,
    `trust_remote_code`, `cache_path` (hf). Unused ones are ignored.
    """
    if cfg.backend == "embedded":
        if cfg.endpoint:
            raise ValueError(
                "judge.backend=embedded with judge.endpoint: a judge served by `magic serve judge` "
                "speaks a guard format; set judge.backend to that format (wildguard by default)"
            )
        if not Path(cfg.model).is_dir():
            raise ValueError(
                f"judge.backend=embedded: judge.model {cfg.model!r} is not a judge directory "
                "(an entry point resolves `sandbox:judge` to the built world's judge)"
            )
        return EmbeddedJudge.from_pretrained(cfg.model)
    if cfg.backend == "keyword":
        return KeywordRefusalJudge()
    if cfg.backend == "keyword_label":
        return LabelledRefusalJudge()
    if cfg.backend == "scripted":
        return ScriptedJudge(kw.get("fn"))
    if cfg.endpoint:
        keys = ("tokenizer", "cache_path", "transport")
        return EndpointJudge(cfg, **{k: v for k, v in kw.items() if k in keys})
    keys = ("model", "tokenizer", "device", "trust_remote_code", "cache_path")
    return HFGuardJudge(cfg, **{k: v for k, v in kw.items() if k in keys})
