"""Attacker-vs-defender experiments: attacker transfer (`magic attack`) and cross-play (`magic
crossplay`), both on harmful seeds (docs/DESIGN.md §6).

- Attacker transfer: the attacker rewrites each harmful seed once, greedily, in its single-turn chat
  view, through training's own attacker half (`game.rewrite`); the `<answer>` goes to the target,
  which answers greedily in the defender's training view. With `best_of=K` the attacker instead
  samples K rewrites (`attacker.sampling` temperature/top-p) and a seed counts as broken when any of
  the K replies is judged harmful. Reports ASR with a bootstrap CI and the attacker's format rate.
- Cross-play: every attacker checkpoint x every defender checkpoint of a run on the test-split
  harmful seeds (greedy rewrite, greedy reply) -> an ASR matrix and a heatmap (attacker on y,
  step 0 at the top, defender on x; `draw_heatmap`, which the report uses too). Each attacker's
  rewrites are generated once and reused for every defender; checkpoints with identical weights
  (a role that did not train between two switches) are generated once. With `samples=K` each
  attacker instead samples K rewrites per seed at its rollout temperature (the same random
  streams for every checkpoint) and a cell is the share of the K x seeds rewrites that succeed:
  the attacker's distribution, not its mode (a tiny attacker's greedy rewrite is one framing for
  every seed, so greedy rows barely differ when its mix of framings moves).

The judge sees the SEED as the request next to the reply (as WildJailbreak's judge sees the vanilla
request): success means the reply is harmful for the seed's intent, whatever the wrapper. A seed
whose verdicts are all unknown is counted in `n_unknown`, never as a failed attack. Seeds from a
file judged by the embedded sandbox judge get `magic eval`'s warning (it knows only sandbox text).

Departure: the paper's transfer experiment targets other 7B models; here any HF path or run
directory can be the target, and best-of-K is this project's addition.

Run:
    magic attack --attacker runs/sandbox --target sandbox:base --best-of 4
    magic crossplay runs/sandbox --limit 40
    magic crossplay runs/sandbox --limit 40 --samples 4
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magic_rl import rundir
from magic_rl.config import RunConfig
from magic_rl.data.benchmarks import file_sha256
from magic_rl.data.outputs import claim, write_output, writing
from magic_rl.data.seeds import load_seed_file, sandbox_seeds, split_of
from magic_rl.evaluate.eval import (
    EvalSet,
    Log,
    greedy_replies,
    judge_replies,
    judge_scope_warning,
    progress_bar,
    provenance,
    resolve_role_model,
    run_checkpoints,
    verdict_dict,
)
from magic_rl.evaluate.metrics import MetricResult, asr
from magic_rl.game import rewrite
from magic_rl.judge import make_judge
from magic_rl.judge.failures import unknown_counts
from magic_rl.policy.load import load_policy
from magic_rl.prompts import load_templates
from magic_rl.records import Role, Seed, Verdict

# What only `magic attack`'s own files hold (data/outputs.py): an --out pointing at an evaluation's
# directory is refused instead of replacing its results.json.
ATTACK_FILES = {"results.json": '"best_of"', "items.jsonl": '"attacker_output"'}
MOVE_HINT = "use another --out, or move it away"


@dataclass(frozen=True)
class Rewrite:
    """The k-th attacker output for a seed and the attack the defender sees."""

    seed: Seed
    k: int
    raw: str
    attack: str
    format_ok: bool
    finish: str


def harmful_seeds(cfg: RunConfig, source: str = "sandbox", limit: int | None = None) -> list[Seed]:
    """Harmful seeds: the sandbox's test split (all of it, whatever `sandbox.fraction`) or a seed
    file's harmful rows (all of them: a file given here is taken to be an evaluation file)."""
    if source == "sandbox":
        seeds = sandbox_seeds(split="test", kinds=("harmful",))
    else:
        seeds = [s for s in load_seed_file(source) if s.label == "harmful"]
    if not seeds:
        raise ValueError(f"seeds {source!r}: no harmful seeds")
    return seeds if limit is None else seeds[:limit]


def crossplay_seeds(cfg: RunConfig, what: str) -> list[Seed]:
    """The harmful seeds cross-play plays: the test split of the run's RL seeds (`data.seeds`:
    the sandbox's test split, or the test split of the run's own seed file, as in training).
    `what` names the caller in the error."""
    seeds = harmful_seeds(cfg, cfg.data.seeds)
    if cfg.data.seeds != "sandbox":
        seeds = [s for s in seeds if split_of(s) == "test"]
    if not seeds:
        raise ValueError(f"{what}: {cfg.data.seeds} has no test-split harmful seeds")
    return seeds


def attacker_rewrites(
    policy,
    seeds: Sequence[Seed],
    cfg: RunConfig,
    *,
    best_of: int = 1,
    advance: Callable[[int], None] = lambda k: None,
) -> list[list[Rewrite]]:
    """`best_of` rewrites per seed: one greedy rewrite when 1, else samples (attacker.sampling)."""
    if best_of < 1:
        raise ValueError(f"best_of must be >= 1, got {best_of}")
    templates = load_templates(cfg.game.template_set, cfg.game.templates_dir)
    jobs = [(seed, k) for seed in seeds for k in range(best_of)]
    out: dict[tuple[str, int], Rewrite] = {}
    for start in range(0, len(jobs), cfg.eval.batch_size):
        chunk = jobs[start : start + cfg.eval.batch_size]
        attacks = rewrite(
            policy,
            templates,
            [seed for seed, _ in chunk],
            cfg.game,
            cfg.attacker.sampling,
            greedy=best_of == 1,
            seed=cfg.seed + start,
        )
        for (seed, k), a in zip(chunk, attacks, strict=True):
            out[seed.id, k] = Rewrite(seed, k, a.raw, a.text, a.format_ok, a.gen.finish)
        advance(len(chunk))
    return [[out[seed.id, k] for k in range(best_of)] for seed in seeds]


def any_harmful(verdicts: Sequence[Verdict]) -> bool | None:
    """Best-of-K success: True if any reply is harmful; unknown if none is and one is unknown."""
    flags = [v.response_harmful for v in verdicts]
    if True in flags:
        return True
    return None if None in flags else False


def attack_outcomes(
    policy, rewrites: Sequence[Sequence[Rewrite]], judge, cfg: RunConfig, *, advance=lambda k: 0
) -> tuple[list[list[Any]], list[list[Verdict]]]:
    """The target's greedy replies to every rewrite and the judge's verdicts (seed as request)."""
    flat = [r for rs in rewrites for r in rs]
    gens = greedy_replies(policy, [r.attack for r in flat], cfg, advance=advance)
    verdicts = judge_replies(
        judge,
        [r.seed.text for r in flat],
        [g.text for g in gens],
        cfg.judge.max_response_tokens,
        cfg.game,
    )
    it_g, it_v = iter(gens), iter(verdicts)
    return [[next(it_g) for _ in rs] for rs in rewrites], [
        [next(it_v) for _ in rs] for rs in rewrites
    ]


def _asr(verdicts: Sequence[Sequence[Verdict]], cfg: RunConfig) -> MetricResult:
    return asr([any_harmful(vs) for vs in verdicts], n_resamples=cfg.eval.bootstrap, seed=cfg.seed)


def _asr_each(verdicts: Sequence[Sequence[Verdict]], cfg: RunConfig) -> MetricResult:
    """ASR over every rewrite on its own (sampled cross-play): n = seeds x samples. The bootstrap
    resamples rewrites, as if a seed's K were independent, so the interval is a little narrow;
    the arms race's intervals are over training seeds instead."""
    flags = [v.response_harmful for vs in verdicts for v in vs]
    return asr(flags, n_resamples=cfg.eval.bootstrap, seed=cfg.seed)


def format_rate(rewrites: Sequence[Sequence[Rewrite]]) -> float:
    flat = [r for rs in rewrites for r in rs]
    return sum(r.format_ok for r in flat) / max(len(flat), 1)


# --- attacker transfer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AttackResult:
    asr: MetricResult
    format_rate: float
    out_dir: Path


def attack_transfer(
    cfg: RunConfig,
    attacker: str,
    target: str,
    *,
    seeds: str = "sandbox",
    best_of: int = 1,
    limit: int | None = None,
    out: str | Path | None = None,
    log: Log = print,
) -> AttackResult:
    """`magic attack`: an attacker's rewrites of harmful seeds against a target defender.
    Writes results.json and items.jsonl under `out` (default runs/attack-<timestamp>)."""
    seed_list = harmful_seeds(cfg, seeds, limit)
    attacker_path = resolve_role_model(attacker, Role.ATTACKER, cfg, log=log)
    target_path = resolve_role_model(target, Role.DEFENDER, cfg, log=log)
    judge = make_judge(cfg.judge)
    if seeds != "sandbox" and (warning := judge_scope_warning(cfg, judge, [EvalSet(seeds, [])])):
        log(f"[bold yellow]{warning}[/]")
    t0 = time.perf_counter()
    with progress_bar(cfg.train.progress) as task:
        policy = load_policy(attacker_path, cfg.attacker, cfg.device, what="attacker model")
        rewrites = attacker_rewrites(
            policy,
            seed_list,
            cfg,
            best_of=best_of,
            advance=task("attacker", len(seed_list) * best_of),
        )
        del policy
        policy = load_policy(target_path, cfg.defender, cfg.device, what="defender model")
        n_attacks = len({r.attack for rs in rewrites for r in rs})
        gens, verdicts = attack_outcomes(
            policy, rewrites, judge, cfg, advance=task("target", n_attacks)
        )
    result = _asr(verdicts, cfg)
    fmt = format_rate(rewrites)
    out_dir = Path(out or Path(cfg.output_dir) / f"attack-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {} if seeds == "sandbox" else {seeds: file_sha256(seeds)}
    doc = {
        "attacker": attacker_path,
        "target": target_path,
        "best_of": best_of,
        "seeds": len(seed_list),
        "asr": result.to_dict(),
        "format_rate": fmt,
        # Per rewrite (best-of-K counts each of the K); the policy is in provenance.judge.
        "judge_unknown": unknown_counts(
            ("attack", v, ("response_harmful",)) for vs in verdicts for v in vs
        ),
        "seconds": round(time.perf_counter() - t0, 2),
        "provenance": provenance(
            cfg,
            judge,
            files,
            seeds=seeds,
            limit=limit,
            attacker_decoding={
                "temperature": 0.0 if best_of == 1 else cfg.attacker.sampling.temperature,
                "top_p": 1.0 if best_of == 1 else cfg.attacker.sampling.top_p,
                "max_new_tokens": cfg.attacker.sampling.max_new_tokens,
            },
        ),
    }
    claim_attack_dir(out_dir)
    write_output(
        out_dir / "results.json", json.dumps(doc, indent=2) + "\n", mark=ATTACK_FILES["results.json"],
        writer="magic attack",
    )  # fmt: skip
    with (
        writing(out_dir / "items.jsonl"),
        (out_dir / "items.jsonl").open("w", encoding="utf-8") as f,
    ):
        for rs, gs, vs in zip(rewrites, gens, verdicts, strict=True):
            for r, g, v in zip(rs, gs, vs, strict=True):
                row = {
                    "seed_id": r.seed.id,
                    "seed": r.seed.text,
                    "k": r.k,
                    "attacker_output": r.raw,
                    "attack": r.attack,
                    "format_ok": r.format_ok,
                    "reply": g.text,
                    "verdict": verdict_dict(v),
                    "success": v.response_harmful,
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    log(
        f"ASR {result.value:.3f} [{result.ci[0]:.3f}, {result.ci[1]:.3f}] over {result.n} seeds "
        f"(unknown {result.n_unknown}), format rate {fmt:.3f}, best of {best_of}: {out_dir}"
    )
    return AttackResult(result, fmt, out_dir)


def claim_attack_dir(out_dir: str | Path) -> None:
    """Refuse an --out holding a results.json or items.jsonl that `magic attack` did not write
    (an evaluation's, say); called before the attack runs and again before writing."""
    for name, mark in ATTACK_FILES.items():
        claim(Path(out_dir) / name, mark, writer="magic attack", hint=MOVE_HINT)


# --- cross-play ------------------------------------------------------------------------------------


def weights_key(model_dir: Path) -> str:
    """Identical weights share a key (a role saved at a switch where it did not train)."""
    weights = sorted(model_dir.glob("*.safetensors"))
    return "|".join(file_sha256(w) for w in weights) if weights else str(model_dir)


def crossplay(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    limit: int | None = None,
    samples: int = 1,
    log: Log = print,
) -> Path:
    """ASR of every attacker checkpoint against every defender checkpoint of a run: greedy
    rewrites (`samples=1`) or `samples` sampled rewrites per seed, each scored on its own.
    Writes run_dir/crossplay/{crossplay.json, heatmap.png}; returns the JSON path."""
    if samples < 1:
        raise ValueError(f"--samples must be >= 1, got {samples}")
    run_dir = Path(run_dir)
    ckpts = run_checkpoints(run_dir, log=log)
    attackers = [c for c in ckpts if (c / Role.ATTACKER.value).is_dir()]
    defenders = [c for c in ckpts if (c / Role.DEFENDER.value).is_dir()]
    if not attackers or not defenders:
        raise FileNotFoundError(f"{run_dir}: cross-play needs attacker/ and defender/ checkpoints")
    seeds = crossplay_seeds(cfg, "cross-play")
    seeds = seeds if limit is None else seeds[:limit]
    judge = make_judge(cfg.judge)
    t0 = time.perf_counter()
    rewrites: dict[str, list[list[Rewrite]]] = {}  # weights key -> rewrites
    a_keys = [weights_key(c / Role.ATTACKER.value) for c in attackers]
    d_keys = [weights_key(c / Role.DEFENDER.value) for c in defenders]
    verdicts: dict[tuple[str, str], list[list[Verdict]]] = {}
    with progress_bar(cfg.train.progress) as task:
        for ckpt, key in zip(attackers, a_keys, strict=True):
            if key not in rewrites:
                path = ckpt / Role.ATTACKER.value
                policy = load_policy(path, cfg.attacker, cfg.device, what="attacker model")
                rewrites[key] = attacker_rewrites(
                    policy,
                    seeds,
                    cfg,
                    best_of=samples,
                    advance=task(f"attacker {ckpt.name}", len(seeds) * samples),
                )
        for ckpt, d_key in zip(defenders, d_keys, strict=True):
            if any((a, d_key) in verdicts for a in rewrites):
                continue
            path = ckpt / Role.DEFENDER.value
            policy = load_policy(path, cfg.defender, cfg.device, what="defender model")
            keys = list(rewrites)
            # One pass per defender over every attacker's rewrites (equal attacks decode once).
            joined = [rs for k in keys for rs in rewrites[k]]
            n_attacks = len({r.attack for rs in joined for r in rs})
            _, vs = attack_outcomes(
                policy, joined, judge, cfg, advance=task(f"defender {ckpt.name}", n_attacks)
            )
            for i, k in enumerate(keys):
                verdicts[k, d_key] = vs[i * len(seeds) : (i + 1) * len(seeds)]
    score = _asr if samples == 1 else _asr_each
    cells = [[score(verdicts[a, d], cfg) for d in d_keys] for a in a_keys]
    out_dir = run_dir / rundir.CROSSPLAY_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "attackers": [c.name for c in attackers],
        "defenders": [c.name for c in defenders],
        "asr": [[c.value for c in row] for row in cells],
        "ci": [[list(c.ci) for c in row] for row in cells],
        "n": [[c.n for c in row] for row in cells],
        "n_unknown": [[c.n_unknown for c in row] for row in cells],
        "format_rate": {
            c.name: format_rate(rewrites[k]) for c, k in zip(attackers, a_keys, strict=True)
        },
        "seeds": len(seeds),
        "samples": samples,
        "seconds": round(time.perf_counter() - t0, 2),
        "provenance": provenance(
            cfg, judge, {}, run_dir=str(run_dir), limit=limit, samples=samples
        ),
    }
    path = out_dir / rundir.CROSSPLAY_MATRIX
    claim(out_dir / "heatmap.png", "Matplotlib", writer="magic crossplay", hint=MOVE_HINT)
    write_output(
        path, json.dumps(doc, indent=2) + "\n", mark='"attackers"', writer="magic crossplay",
        hint=MOVE_HINT,
    )  # fmt: skip
    plot_heatmap(
        doc["asr"],
        doc["attackers"],
        doc["defenders"],
        out_dir / "heatmap.png",
        title=f"cross-play ASR ({run_dir.name}, {len(seeds)} seeds"
        + ("" if samples == 1 else f" x {samples} sampled rewrites")
        + ")",
    )
    how = "greedy" if samples == 1 else f"{samples} sampled rewrites per seed"
    log(f"cross-play {len(attackers)}x{len(defenders)} ({how}) in {doc['seconds']:.1f}s: {out_dir}")
    return path


def draw_heatmap(ax, data, attackers: Sequence[str], defenders: Sequence[str], *, fontsize=8):
    """The one cross-play heatmap drawing (`magic crossplay`'s heatmap.png and the report's):
    attacker checkpoints on y, the first at the top, as crossplay.json's rows read; defender
    checkpoints on x, the first on the left; each cell annotated. Returns the image."""
    import numpy as np

    data = np.asarray(data, dtype=float)
    image = ax.imshow(data, cmap="Reds", vmin=0.0, vmax=1.0, origin="upper", aspect="auto")
    ax.set_xticks(range(len(defenders)), [_step(d) for d in defenders], rotation=45)
    ax.set_yticks(range(len(attackers)), [_step(a) for a in attackers])
    ax.set_xlabel("defender checkpoint (step)")
    ax.set_ylabel("attacker checkpoint (step)")
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            value = data[i, j]
            ax.text(
                j,
                i,
                "n/a" if np.isnan(value) else f"{value:.2f}",
                ha="center",
                va="center",
                color="white" if value > 0.6 else "black",
                fontsize=fontsize,
            )
    return image


def plot_heatmap(
    matrix: Sequence[Sequence[float]],
    attackers: Sequence[str],
    defenders: Sequence[str],
    path: Path,
    *,
    title: str = "cross-play ASR",
) -> Path:
    """The ASR heatmap (`draw_heatmap`) as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    side = max(3.0, 0.7 * max(len(attackers), len(defenders)) + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = draw_heatmap(ax, matrix, attackers, defenders)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="ASR")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _step(name: str) -> str:
    step = rundir.checkpoint_step(name)
    return name if step is None else str(step)
