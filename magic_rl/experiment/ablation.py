"""`magic experiment ablation`: the sandbox counterpart of the paper's ablation (Tables 5 and 12).

Each variant is one config away from the preset (README "Variants"); every trained variant runs once
per training seed (top-level `seed`; the sandbox world, keyed on `sandbox.seed`, is shared), for the
same number of steps, into OUT/<variant>-s<seed>/. The LAST defender checkpoint of each run is
evaluated on the six sandbox sets (`evaluate.eval`, greedy, the training chat view) into
RUN_DIR/eval/; the judge and the sets are built once for the whole experiment. Per variant and
metric the seeds give a mean and a Student-t 95% interval (`evaluate.metrics.mean_ci`).

    base            no training: the preset's defender (`sandbox:base`), evaluated once (decoding is
                    greedy, so every seed would give the same numbers; n=1, no interval)
    no_game         game.attacker=none schedule.train_roles=defender
    defender_only   schedule.train_roles=defender (frozen SFT attacker)
    static          game.attacker=static game.static_attacks=sandbox schedule.train_roles=defender
    magic           the preset (both roles, alternating)
    magic_eq        the preset for `STEPS_FACTOR["magic_eq"]` (2) times the steps: the defender gets
                    as many GRPO updates as Defender-only's (MAGIC's defender trains on half the
                    steps of a run, Defender-only's on all of them)
    league          league.enabled=true (opponent league, docs/deviations.md)
    hard_replay     replay.share=0.25 (hard-case replay)

Besides the evaluation metrics, each run's attacker faithfulness is read from its metrics.jsonl:
the mean of `attacker/faithful_rate` over its last `FAITHFUL_WINDOW` steps (the share of rewrites
still carrying their seed's request; 1.0 by construction for No-Game, which sends the seeds).

With `crossplay.probe=N` among the overrides every trained run plays live cross-play, and the table
gains a `forgetting` column (`run_summary.forgetting`: how much ASR earlier attacker snapshots
regain against the last defender), read from RUN_DIR/crossplay.jsonl.

Outputs in OUT: ablation.json in the report's format (`{"title", "variants": {variant: {metric:
{mean, lo, hi, n, sd, values}}}}`, intervals clipped to [0, 1], null where a number is undefined;
`magic report RUN --ablation OUT/ablation.json`), provenance.json (command, config, per-variant
overrides, git commit, seeds, steps, timings, run directories; kept out of ablation.json because
the report reads every other top-level key as a variant), ablation.md (the table, cells
"0.12 [0.05, 0.19]", then each trained variant's paired differences against Defender-only, run by
run with the same seed: `paired`).

Resumable: a run whose last checkpoint is at the requested step and that wrote summary.json is
skipped, a half-finished one continues from its saved state (`loop.train(resume=...)`), an eval
whose results.json holds every metric for that checkpoint is reused. A run directory whose
config.yaml differs from the experiment's (other steps, overrides) is an error, never mixed in.

Departures: the paper reports single runs of 7B models on public benchmarks; this is several seeds
of tiny models on the sandbox's test split, with intervals over seeds (the paper has none).

Run:
    magic experiment ablation                                    # 6 variants x seeds 0-4
    magic experiment ablation --seeds 0,1 --steps 30 --variants base,no_game,magic --out runs/abl
    magic experiment ablation --variants magic,league,hard_replay --steps 40 --out runs/league \
        schedule.freq=5 crossplay.probe=32
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magic_rl import rundir
from magic_rl.ablation_metrics import EVAL_METRICS, FAITHFUL_WINDOW, METRICS
from magic_rl.config import RunConfig, config_diff, load_config
from magic_rl.data.outputs import claim, write_output
from magic_rl.evaluate.eval import (
    SANDBOX,
    evaluate_models,
    git_commit,
    load_sets,
    provenance,
    resolve_role_model,
    run_checkpoints,
    show,
    write_results,
)
from magic_rl.experiment.design import (
    DEFAULT_SEEDS,
    RESERVED,
    STEPS_FACTOR,
    UNTRAINED,
    VARIANTS,
    aggregate,
)
from magic_rl.experiment.render import markdown, rich_table
from magic_rl.judge import make_judge
from magic_rl.loop import preflight, train
from magic_rl.records import Role
from magic_rl.run_summary import forgetting
from magic_rl.rundir import read_crossplay, read_metrics
from magic_rl.sandbox.resolve import resolve_judge, resolve_model, resolve_world, sandbox_pool

Log = Callable[..., None]

# The files an ablation writes beside its runs, each with what only it holds (data/outputs.py):
# another file of that name under --out is refused before training starts.
TABLE_FILES = {
    "ablation.json": '"variants"',
    "provenance.json": '"steps_factor"',
    "ablation.md": "| variant | n |",
}
CLAIM_HINT = "use another --out, or move it away"


def run_metrics(run_dir: Path) -> dict[str, float]:
    """{run metric key: value} from RUN_DIR/crossplay.jsonl (live cross-play), when present."""
    rows = read_crossplay(run_dir)
    value = forgetting(rows) if rows else math.nan
    return {} if math.isnan(value) else {"crossplay/forgetting": value}


@dataclass(frozen=True)
class RunSpec:
    """One cell of the design: a variant at a training seed (None: the untrained base, once)."""

    variant: str
    seed: int | None

    @property
    def name(self) -> str:
        return UNTRAINED if self.seed is None else f"{self.variant}-s{self.seed}"

    @property
    def trained(self) -> bool:
        return self.seed is not None


# --- the runs -------------------------------------------------------------------------------------


def parse_seeds(text: str) -> tuple[int, ...]:
    """ "0,1,2" -> (0, 1, 2); duplicates and non-integers are errors."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected comma-separated integers") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: expected distinct integers, at least one")
    return seeds


def parse_variants(text: str) -> tuple[str, ...]:
    """ "base,magic" -> ("base", "magic"), checked against VARIANTS."""
    names = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise ValueError(f"--variants {text!r}: unknown {unknown}; choose from {list(VARIANTS)}")
    return names


def run_specs(variants: Sequence[str], seeds: Sequence[int]) -> list[RunSpec]:
    """Seed-major order, so a cut-short experiment has every variant at its first seeds."""
    specs = [RunSpec(UNTRAINED, None)] if UNTRAINED in variants else []
    return specs + [RunSpec(v, s) for s in seeds for v in variants if v != UNTRAINED]


def check_overrides(overrides: Sequence[str]) -> None:
    for item in overrides:
        key = item.split("=", 1)[0]
        if key in RESERVED:
            raise ValueError(
                f"override {item!r}: the experiment sets {key} itself (use --seeds, --steps, --out)"
            )


def run_config(
    preset: str, overrides: Sequence[str], spec: RunSpec, steps: int, out: Path
) -> RunConfig:
    """The preset <- the user's overrides <- the variant's <- seed, name, output dir, steps."""
    steps *= STEPS_FACTOR.get(spec.variant, 1)
    extra = [f"name={spec.name}", f"output_dir={out}", f"train.steps={steps}"]
    if spec.seed is not None:
        extra.append(f"seed={spec.seed}")
    return load_config(preset, [*overrides, *VARIANTS[spec.variant], *extra])


# --- resumability ---------------------------------------------------------------------------------


def _comparable(cfg: RunConfig) -> dict[str, Any]:
    d = cfg.model_dump(mode="json")
    d["train"].pop("progress", None)  # display only
    return d


def config_mismatch(run_dir: Path, cfg: RunConfig) -> list[str]:
    """Dotted keys where RUN_DIR/config.yaml differs from `cfg` ([] when equal or absent)."""
    path = run_dir / rundir.CONFIG
    if not path.is_file():
        return []
    saved = _comparable(load_config(str(path)))
    return config_diff(saved, _comparable(cfg))


def require_same_config(run_dir: Path, cfg: RunConfig) -> None:
    """Refuse to reuse RUN_DIR when its config.yaml differs from `cfg` (naming the keys); an
    absent run passes. Every experiment that reuses runs (ablation, attacker, arms race) asks this."""
    diff = config_mismatch(run_dir, cfg)
    if diff:
        raise ValueError(
            f"{run_dir}/config.yaml differs from this experiment at {', '.join(diff[:6])}: use "
            "another --out or remove the run"
        )


def training_done(run_dir: Path, steps: int) -> bool:
    """summary.json is written after the final checkpoint, so both mean the run finished."""
    last = rundir.checkpoint_dir(run_dir, steps, Role.DEFENDER.value)
    return (run_dir / rundir.SUMMARY).is_file() and last.is_dir()


def read_eval(run_dir: Path, model_path: str, limit: int | None) -> dict[str, float] | None:
    """{eval metric key: value} from RUN_DIR/eval/results.json when it evaluated `model_path` on
    every metric with this `limit`; None otherwise (evaluate again)."""
    path = rundir.eval_results(run_dir)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        models = list(doc["models"].values())
        same_limit = doc["provenance"].get("limit") == limit
    except (json.JSONDecodeError, KeyError, AttributeError):
        return None
    if len(models) != 1 or models[0].get("path") != model_path or not same_limit:
        return None
    metrics = models[0].get("metrics", {})
    if any(m.eval_key not in metrics for m in EVAL_METRICS):
        return None
    return {m.eval_key: float(metrics[m.eval_key]["value"]) for m in EVAL_METRICS}


def train_metric(run_dir: Path, key: str, window: int = FAITHFUL_WINDOW) -> float:
    """Mean of a training metric over the run's last `window` steps (NaN when absent)."""
    try:
        rows = read_metrics(run_dir)[-window:]
    except FileNotFoundError:
        return math.nan
    vals = [float(r[key]) for r in rows if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else math.nan


def train_seconds(run_dir: Path) -> float | None:
    """Training time from metrics.jsonl (sum of time/step), so resumed runs count every step."""
    try:
        return round(sum(r.get("time/step", 0.0) for r in read_metrics(run_dir)), 2)
    except FileNotFoundError:
        return None


# --- the experiment -------------------------------------------------------------------------------


class _Shared:
    """The judge and the sandbox sets, built on first use (a rerun that only reads finished
    evaluations never loads them)."""

    def __init__(self, cfg: RunConfig, limit: int | None, log: Log):
        self.cfg, self.limit, self.log = cfg, limit, log
        self._sets = self._judge = None

    @property
    def sets(self):
        if self._sets is None:
            pool = sandbox_pool(self.cfg)
            self._sets = load_sets(
                [SANDBOX], self.cfg, limit=self.limit, sandbox_pool=pool, log=self.log
            )
        return self._sets

    @property
    def judge(self):
        if self._judge is None:
            self._judge = make_judge(resolve_judge(self.cfg, log=self.log).judge)
        return self._judge


def defender_path(spec: RunSpec, cfg: RunConfig, run_dir: Path, log: Log) -> str:
    """The defender a run is judged by: the LAST checkpoint, or the preset's model for `base`."""
    if not spec.trained:
        model = resolve_model(cfg.defender.model, cfg, log=log)
        return resolve_role_model(model, Role.DEFENDER, cfg, log=log)
    return str(run_checkpoints(run_dir)[-1] / Role.DEFENDER.value)


def train_run(cfg: RunConfig, run_dir: Path, log: Log) -> bool:
    """Train (or finish) one run; False when it was already complete."""
    if training_done(run_dir, cfg.train.steps):
        return False
    resume = run_dir if (run_dir / rundir.METRICS).is_file() else None
    preflight(cfg, resume=resume)
    train(resolve_world(cfg, log=log), resume=resume, log=log, recorded=cfg)
    return True


def evaluate_run(
    spec: RunSpec, cfg: RunConfig, run_dir: Path, shared: _Shared, log: Log
) -> tuple[dict[str, float], bool]:
    """({eval metric key: value}, evaluated now?) of the run's defender; a finished eval is
    reused."""
    path = defender_path(spec, cfg, run_dir, log)
    done = read_eval(run_dir, path, shared.limit)
    if done is not None:
        return done, False
    models = evaluate_models([(spec.name, path)], shared.sets, cfg, shared.judge, log=log)
    files = {k: v for s in shared.sets for k, v in s.files.items()}
    prov = provenance(
        cfg,
        shared.judge,
        files,
        model=path,
        run_dir=str(run_dir),
        benchmarks=[s.name for s in shared.sets],
        limit=shared.limit,
    )
    write_results(run_dir / rundir.EVAL, models, prov)
    return read_eval(run_dir, path, shared.limit) or {}, True


def run_ablation(
    preset: str = "sandbox",
    overrides: Sequence[str] = (),
    *,
    variants: Sequence[str] = tuple(VARIANTS),
    seeds: Sequence[int] = DEFAULT_SEEDS,
    steps: int | None = None,
    out: str | Path = "runs/ablation",
    limit: int | None = None,
    command: str | None = None,
    log: Log = print,
) -> Path:
    """Train and evaluate every (variant, seed), aggregate, write OUT/ablation.{json,md} and
    OUT/provenance.json. `steps` defaults to the preset's train.steps; `limit` keeps N prompts per
    eval set (smoke runs). Returns the path of ablation.json."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    check_overrides(overrides)
    out = Path(out)
    base_cfg = load_config(preset, list(overrides))
    steps = steps or base_cfg.train.steps
    specs = run_specs(variants, seeds)
    cfgs = {s: run_config(preset, overrides, s, steps, out) for s in specs}  # fail before any run
    for name, mark in TABLE_FILES.items():  # and a file in the way, before hours of training
        claim(out / name, mark, writer="magic experiment ablation", hint=CLAIM_HINT)
    for spec, cfg in cfgs.items():
        require_same_config(out / spec.name, cfg)
    shared = _Shared(base_cfg, limit, log)
    t0 = time.perf_counter()
    values: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    runs: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(specs, 1):
        cfg, run_dir = cfgs[spec], out / spec.name
        t = time.perf_counter()
        trained = spec.trained and train_run(cfg, run_dir, log)
        t_train = time.perf_counter() - t
        t = time.perf_counter()
        result, evaluated = evaluate_run(spec, cfg, run_dir, shared, log)
        t_eval = time.perf_counter() - t
        if spec.trained:
            result = {**result, **run_metrics(run_dir)}
            for m in METRICS:
                if m.source == "train":
                    result[m.eval_key] = train_metric(run_dir, m.eval_key)
        values[spec.variant].append(result)
        runs[spec.name] = {
            "variant": spec.variant,
            "seed": spec.seed,
            "dir": str(run_dir),
            "steps_s": train_seconds(run_dir) if spec.trained else None,  # sum of time/step
            "eval_s": _eval_seconds(run_dir),
            # wall time in this invocation, with loading and checkpoints (None: reused)
            "train_wall_s": round(t_train, 2) if trained else None,
            "eval_wall_s": round(t_eval, 2) if evaluated else None,
        }
        done = "complete" if spec.trained else "no training"
        what = (
            (f"trained in {t_train:.0f}s" if trained else done)
            + ", "
            + (f"evaluated in {t_eval:.0f}s" if evaluated else "eval reused")
        )
        held = result.get(METRICS[0].eval_key, math.nan)
        log(
            f"[{i}/{len(specs)}] {spec.name}: {what}; held-out ASR {held:.3f} "
            f"({time.perf_counter() - t0:.0f}s elapsed)"
        )

    table = aggregate(values)
    prov = {
        "command": command or shlex.join(sys.argv),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "preset": preset,
        "overrides": list(overrides),
        "variants": {v: list(VARIANTS[v]) for v in variants},
        "seeds": list(seeds),
        "steps": steps,
        "steps_factor": {v: STEPS_FACTOR[v] for v in variants if v in STEPS_FACTOR},
        "eval_limit": limit,
        "config": base_cfg.model_dump(mode="json"),
        "runs": runs,
        "timings": {"wall_s": round(time.perf_counter() - t0, 2)},
    }
    doc = {"title": f"Ablation: {len(seeds)} seeds x {steps} steps", "variants": table}
    texts = {
        "ablation.json": json.dumps(doc, indent=2, allow_nan=False) + "\n",
        "provenance.json": json.dumps(prov, indent=2, allow_nan=True) + "\n",
        "ablation.md": markdown(table, prov),
    }
    for name, text in texts.items():
        write_output(
            out / name, text, mark=TABLE_FILES[name], writer="magic experiment ablation",
            hint=CLAIM_HINT,
        )  # fmt: skip
    path = out / "ablation.json"
    show(rich_table(table, title=f"Ablation ({out})"), log)
    return path


def _eval_seconds(run_dir: Path) -> float | None:
    try:
        doc = json.loads(rundir.eval_results(run_dir).read_text())
        return next(iter(doc["models"].values())).get("seconds")
    except (OSError, json.JSONDecodeError, KeyError, StopIteration):
        return None
