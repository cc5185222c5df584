"""The safety judge (SPEC §2): `make_judge(cfg)` picks a backend; all speak `base.Judge`.

| backend | what |
|---|---|
| embedded | the sandbox's CPU judge (`embedded.EmbeddedJudge`, path via `embedded_path=`) |
| wildguard / qwen3guard / llamaguard | `endpoint.EndpointJudge` if `cfg.endpoint`, else `hf.HFGuardJudge` |
| keyword | `keyword.KeywordRefusalJudge` (refusal only; a fallback and test double) |
| keyword_label | `keyword.LabelledRefusalJudge`: keyword refusal + the request's dataset label (AdvBench/GCG protocol) |
| scripted | `scripted.ScriptedJudge` (a function; a marker-word rule by default) |

Modules are imported on use: building a keyword or scripted judge never imports torch or httpx.
Scoring helpers live in `score` (`score_exchanges`), formats and parsers in `formats`, the
OpenAI-compatible server for any judge in `serve`.
"""

from __future__ import annotations

from typing import Any

from magic_rl.config import JudgeConfig
from magic_rl.judge.base import Judge

__all__ = ["Judge", "make_judge"]


def make_judge(cfg: JudgeConfig, **kw: Any) -> Judge:
    """The judge `cfg` asks for.

    Keyword arguments go to the chosen backend: `embedded_path` (embedded); `fn` (scripted);
    `tokenizer`, `cache_path`, `transport` (endpoint); `model`, `tokenizer`, `device`,
    `trust_remote_code`, `cache_path` (hf). Unused ones are ignored.
    """
    if cfg.backend == "embedded":
        if cfg.endpoint:
            raise ValueError(
                "judge.backend=embedded with judge.endpoint: a judge served by `magic serve judge` "
                "speaks a guard format; set judge.backend to that format (wildguard by default)"
            )
        path = kw.get("embedded_path")
        if not path:
            raise ValueError("judge.backend=embedded needs embedded_path (the sandbox's judge dir)")
        from magic_rl.judge.embedded import EmbeddedJudge

        return EmbeddedJudge.from_pretrained(path)
    if cfg.backend == "keyword":
        from magic_rl.judge.keyword import KeywordRefusalJudge

        return KeywordRefusalJudge()
    if cfg.backend == "keyword_label":
        from magic_rl.judge.keyword import LabelledRefusalJudge

        return LabelledRefusalJudge()
    if cfg.backend == "scripted":
        from magic_rl.judge.scripted import ScriptedJudge

        return ScriptedJudge(kw.get("fn"))
    if cfg.endpoint:
        from magic_rl.judge.endpoint import EndpointJudge

        keys = ("tokenizer", "cache_path", "transport")
        return EndpointJudge(cfg, **{k: v for k, v in kw.items() if k in keys})
    from magic_rl.judge.hf import HFGuardJudge

    keys = ("model", "tokenizer", "device", "trust_remote_code", "cache_path")
    return HFGuardJudge(cfg, **{k: v for k, v in kw.items() if k in keys})
