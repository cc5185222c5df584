"""`magic experiment attacker`: does the attacker learn against a fixed opponent?

Attacker-only GRPO (`schedule.train_roles=attacker`) against frozen defenders, one run per
(defender, training seed) into OUT/<defender>-s<seed>/. The defenders:

    base      the preset's defender (`sandbox:base`)
    trained   the last defender of a Defender-only run that the experiment trains first
              (OUT/defender-only/, `--defender-steps` steps, seed 0), or the checkpoint given
              with `--trained PATH`

What is measured, per run, then mean [95% Student-t interval] over the seeds:
- sampled success on its own training distribution: `game/asr` of the rollouts (the train
  split's harmful seeds, the attacker and defender sampled as in training), the mean of the
  first and of the last `WINDOW` steps (half the steps, for runs shorter than two windows), and their paired difference (last - first, run by run);
- greedy ASR on the test split's harmful seeds (`transfer.crossplay_seeds`): the attacker's greedy
  rewrite against the defender's greedy reply, as cross-play and `magic attack` measure it, for the
  step-0 attacker (the phase-1 SFT model: one number per defender, decoding is greedy) and the
  last one;
- the attacker's format and faithful rates (first and last window) and its KL to the start.

Outputs in OUT: attacker.json in the ablation format (`{"title", "variants": {defender: {metric:
{mean, lo, hi, n, values}}}}`: `magic report RUN --ablation OUT/attacker.json` shows it), curve.json
(ASR per step per run) and attacker_curve.png (mean over seeds with the interval as a band, one
panel per defender), attacker.md (the table, the commands) and provenance.json.

Resumable as the ablation is: a finished run is skipped, a half-finished one resumed, a run whose
config.yaml differs from the experiment's is an error.

Run:
    magic experiment attacker --seeds 0,1,2            # base + trained (15 steps), 45 steps each
    magic experiment attacker --defenders trained --trained-defender runs/d15 game.replies_per_attack=4
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

from magic_rl.config import RunConfig, load_config
from magic_rl.data.outputs import claim, write_output
from magic_rl.evaluate.eval import git_commit, resolve_role_model, run_checkpoints
from magic_rl.evaluate.metrics import mean_ci
from magic_rl.evaluate.transfer import (
    any_harmful,
    attack_outcomes,
    attacker_rewrites,
    crossplay_seeds,
)
from magic_rl.experiment.ablation import check_overrides, require_same_config, train_run
from magic_rl.judge import make_judge
from magic_rl.policy.load import load_policy
from magic_rl.records import Role
from magic_rl.report.plots import attacker_curve_figure
from magic_rl.rundir import read_metrics
from magic_rl.sandbox.resolve import resolve_judge, resolve_model

Log = Callable[..., None]

DEFENDERS = ("base", "trained")
DEFENDER_RUN = "defender-only"  # the Defender-only run that gives the `trained` defender
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_STEPS = 45
DEFAULT_DEFENDER_STEPS = 15
WINDOW = 5  # steps in the first and the last window of the sampled success

# The files the experiment writes beside its runs, each with what only it holds.
TABLE_FILES = {
    "attacker.json": '"sampled_gain"',
    "curve.json": '"asr_per_step"',
    "provenance.json": '"attacker_experiment_provenance"',
    "attacker.md": "# Attacker against frozen defenders",
    "attacker_curve.png": "Matplotlib",  # matplotlib's PNG metadata
}
CLAIM_HINT = "use another --out, or move it away"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    rate: bool = True  # clipped to [0, 1]


COLUMNS = (
    Column("sampled_first", f"sampled ASR, first {WINDOW} steps"),
    Column("sampled_last", f"sampled ASR, last {WINDOW} steps"),
    Column("sampled_gain", "gain (last - first, paired)", rate=False),
    Column("greedy_test_before", "greedy test ASR, step 0"),
    Column("greedy_test_after", "greedy test ASR, last"),
    Column("format_first", "format, first"),
    Column("format_last", "format, last"),
    Column("faithful_first", "faithful, first"),
    Column("faithful_last", "faithful, last"),
    Column("kl_last", "KL to start, last", rate=False),
    Column("hybrid_first", "hybrid share, first"),
    Column("hybrid_last", "hybrid share, last"),
)


def parse_defenders(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))
    unknown = [d for d in names if d not in DEFENDERS]
    if unknown or not names:
        raise ValueError(f"--defenders {text!r}: unknown {unknown}; choose from {list(DEFENDERS)}")
    return names


def attacker_overrides(defender: str, seed: int, steps: int, out: Path) -> list[str]:
    """What makes a run Attacker-only against `defender` (a model path or name)."""
    return [
        "schedule.train_roles=attacker",
        f"defender.model={defender}",
        f"seed={seed}",
        f"train.steps={steps}",
        f"output_dir={out}",
    ]


def window_mean(rows: Sequence[dict], key: str, first: bool, window: int = WINDOW) -> float:
    part = rows[:window] if first else rows[-window:]
    xs = [float(r[key]) for r in part if r.get(key) is not None and not math.isnan(float(r[key]))]
    return sum(xs) / len(xs) if xs else math.nan


def run_values(rows: Sequence[dict], window: int = WINDOW) -> dict[str, float]:
    """A run's first/last-window means and gain from its metrics.jsonl rows."""
    first = window_mean(rows, "game/asr", True, window)
    last = window_mean(rows, "game/asr", False, window)
    return {
        "sampled_first": first,
        "sampled_last": last,
        "sampled_gain": last - first,
        "format_first": window_mean(rows, "attacker/format_rate", True, window),
        "format_last": window_mean(rows, "attacker/format_rate", False, window),
        "faithful_first": window_mean(rows, "attacker/faithful_rate", True, window),
        "faithful_last": window_mean(rows, "attacker/faithful_rate", False, window),
        "kl_last": window_mean(rows, "attacker/update/kl", False, window),
        # does RL move towards stacked framings (sft.hybrids_per_seed)?
        "hybrid_first": window_mean(rows, "attacker/diversity/hybrid_share", True, window),
        "hybrid_last": window_mean(rows, "attacker/diversity/hybrid_share", False, window),
    }


def _number(x: float | None, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    return None if x is None or math.isnan(x) else min(max(x, lo), hi)


def aggregate(runs: Sequence[dict[str, float]]) -> dict[str, dict]:
    """{column key: {mean, lo, hi, n, sd, values}} over a defender's runs (rates clipped)."""
    row = {}
    for col in COLUMNS:
        xs = [r.get(col.key, math.nan) for r in runs]
        ci = mean_ci(xs)
        lo, hi = (0.0, 1.0) if col.rate else (-math.inf, math.inf)
        row[col.key] = {
            "mean": _number(ci.mean),
            "lo": _number(ci.lo, lo, hi),
            "hi": _number(ci.hi, lo, hi),
            "n": ci.n,
            "sd": _number(ci.sd),
            "values": [_number(x) for x in xs],
        }
    return row


def curve_band(curves: Sequence[Sequence[float]]) -> list[dict[str, float | None]]:
    """Per step: mean and Student-t 95% interval of the runs' ASR (runs may differ in length)."""
    steps = max((len(c) for c in curves), default=0)
    out = []
    for t in range(steps):
        ci = mean_ci([c[t] for c in curves if t < len(c)])
        out.append({"step": t, "mean": _number(ci.mean), "lo": _number(ci.lo, 0.0, 1.0),
                    "hi": _number(ci.hi, 0.0, 1.0), "n": ci.n})  # fmt: skip
    return out


# --- greedy ASR on the test split -----------------------------------------------------------------


class _Greedy:
    """Greedy ASR of an attacker against a defender on the test split's harmful seeds; the judge
    and the seeds are built once, each attacker's rewrites generated once."""

    def __init__(self, cfg: RunConfig, log: Log):
        self.cfg, self.log = cfg, log
        self._judge = None
        self.seeds = crossplay_seeds(cfg, "magic experiment attacker")
        self._rewrites: dict[str, list] = {}

    @property
    def judge(self):
        if self._judge is None:
            self._judge = make_judge(resolve_judge(self.cfg, log=self.log).judge)
        return self._judge

    def asr(self, attacker: Path, defender: Path) -> float:
        key = str(attacker)
        if key not in self._rewrites:
            policy = load_policy(attacker, self.cfg.attacker, self.cfg.device)
            self._rewrites[key] = attacker_rewrites(policy, self.seeds, self.cfg)
        policy = load_policy(defender, self.cfg.defender, self.cfg.device)
        _, verdicts = attack_outcomes(policy, self._rewrites[key], self.judge, self.cfg)
        flags = [any_harmful(vs) for vs in verdicts]
        known = [f for f in flags if f is not None]
        return sum(known) / len(known) if known else math.nan


# --- the experiment -------------------------------------------------------------------------------


def trained_defender(
    preset: str, overrides: Sequence[str], steps: int, out: Path, log: Log
) -> Path:
    """The last defender of OUT/defender-only: Defender-only for `steps` steps at seed 0 (the
    experiment's overrides apply; trained first, or reused when finished)."""
    cfg = load_config(
        preset,
        [*overrides, "schedule.train_roles=defender", "seed=0", f"name={DEFENDER_RUN}",
         f"train.steps={steps}", f"output_dir={out}"],
    )  # fmt: skip
    require_same_config(out / DEFENDER_RUN, cfg)
    train_run(cfg, out / DEFENDER_RUN, log)
    return run_checkpoints(out / DEFENDER_RUN)[-1] / Role.DEFENDER.value


def run_attacker_experiment(
    preset: str = "sandbox",
    overrides: Sequence[str] = (),
    *,
    defenders: Sequence[str] = DEFENDERS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    steps: int = DEFAULT_STEPS,
    defender_steps: int = DEFAULT_DEFENDER_STEPS,
    trained: str | None = None,
    out: str | Path = "runs/attacker",
    window: int | None = None,
    command: str | None = None,
    log: Log = print,
) -> Path:
    """Train every (defender, seed) Attacker-only run, measure it, write OUT/attacker.{json,md},
    curve.json, attacker_curve.png and provenance.json. Returns the path of attacker.json."""
    check_overrides(overrides)
    if steps < 2:
        raise ValueError(f"--steps {steps}: at least 2 (a first and a last step)")
    window = window or min(WINDOW, steps // 2)  # the two windows never overlap
    out = Path(out)
    base_cfg = load_config(preset, list(overrides))
    for name, mark in TABLE_FILES.items():
        claim(out / name, mark, writer="magic experiment attacker", hint=CLAIM_HINT)
    t0 = time.perf_counter()
    paths: dict[str, str] = {}
    for d in defenders:
        if d == "base":
            paths[d] = resolve_model(base_cfg.defender.model, base_cfg, log=log)
        elif trained is not None:
            model = resolve_model(trained, base_cfg, log=log)
            paths[d] = resolve_role_model(model, Role.DEFENDER, base_cfg, log=log)
        else:
            paths[d] = str(trained_defender(preset, overrides, defender_steps, out, log))
    cfgs = {
        (d, s): load_config(
            preset, [*overrides, *attacker_overrides(paths[d], s, steps, out), f"name={d}-s{s}"]
        )
        for d in defenders
        for s in seeds
    }
    for (d, s), cfg in cfgs.items():
        require_same_config(out / f"{d}-s{s}", cfg)
    greedy = _Greedy(base_cfg, log)
    table: dict[str, dict] = {}
    curves: dict[str, dict[str, list[float | None]]] = {}
    runs: dict[str, dict] = {}
    for d in defenders:
        values = []
        before = math.nan
        for s in seeds:
            cfg, run_dir = cfgs[d, s], out / f"{d}-s{s}"
            t = time.perf_counter()
            train_run(cfg, run_dir, log)
            rows = read_metrics(run_dir)
            v = run_values(rows, window)
            ckpts = run_checkpoints(run_dir)
            if math.isnan(before):  # the step-0 attacker is the same SFT model in every run
                before = greedy.asr(ckpts[0] / Role.ATTACKER.value, Path(paths[d]))
            v["greedy_test_before"] = before
            v["greedy_test_after"] = greedy.asr(ckpts[-1] / Role.ATTACKER.value, Path(paths[d]))
            values.append(v)
            curves.setdefault(d, {})[str(s)] = [_number(r.get("game/asr")) for r in rows]
            runs[f"{d}-s{s}"] = {"defender": d, "seed": s, "dir": str(run_dir),
                                 "wall_s": round(time.perf_counter() - t, 1)}  # fmt: skip
            log(
                f"{d}-s{s}: sampled ASR {v['sampled_first']:.3f} -> {v['sampled_last']:.3f}, "
                f"greedy test ASR {v['greedy_test_before']:.3f} -> {v['greedy_test_after']:.3f}"
            )
        table[d] = aggregate(values)
    prov = {
        "attacker_experiment_provenance": True,
        "command": command or shlex.join(["magic", *sys.argv[1:]]),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "preset": preset,
        "overrides": list(overrides),
        "defenders": paths,
        "defender_steps": None if trained else defender_steps,
        "seeds": list(seeds),
        "steps": steps,
        "window": window,
        "greedy_test_seeds": len(greedy.seeds),
        "runs": runs,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    bands = {
        d: curve_band([[math.nan if x is None else x for x in c] for c in cs.values()])
        for d, cs in curves.items()
    }
    doc = {
        "title": f"Attacker against frozen defenders: {len(seeds)} seeds x {steps} steps",
        "variants": table,
    }
    texts = {
        "attacker.json": json.dumps(doc, indent=2, allow_nan=False) + "\n",
        "curve.json": json.dumps({"asr_per_step": curves, "band": bands}, indent=2) + "\n",
        "provenance.json": json.dumps(prov, indent=2, allow_nan=True) + "\n",
        "attacker.md": markdown(table, prov),
    }
    for name, text in texts.items():
        write_output(out / name, text, mark=TABLE_FILES[name],
                     writer="magic experiment attacker", hint=CLAIM_HINT)  # fmt: skip
    png = curve_png(bands)
    if png is not None:
        write_output(out / "attacker_curve.png", png, mark=TABLE_FILES["attacker_curve.png"],
                     writer="magic experiment attacker", hint=CLAIM_HINT)  # fmt: skip
    return out / "attacker.json"


# --- written out ------------------------------------------------------------------------------------


def cell_text(cell: dict, signed: bool = False) -> str:
    if cell.get("mean") is None:
        return "–"
    fmt = "+.2f" if signed else ".2f"
    text = f"{cell['mean']:{fmt}}"
    if cell.get("lo") is not None and cell.get("hi") is not None:
        text += f" [{cell['lo']:{fmt}}, {cell['hi']:{fmt}}]"
    return text


def markdown(table: dict[str, dict], prov: dict[str, Any]) -> str:
    header = ["defender", "n", *(c.header for c in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for d, row in table.items():
        n = max((c["n"] for c in row.values()), default=0)
        cells = [cell_text(row[c.key], signed=c.key == "sampled_gain") for c in COLUMNS]
        lines.append("| " + " | ".join([d, str(n), *cells]) + " |")
    defenders = "\n".join(f"- `{d}`: {p}" for d, p in prov["defenders"].items())
    return (
        "# Attacker against frozen defenders\n\n"
        f"Attacker-only GRPO, seeds {prov['seeds']}, {prov['steps']} steps per run, preset "
        f"`{prov['preset']}`, overrides `{' '.join(prov['overrides']) or '-'}`, commit "
        f"{prov['git_commit']}. Mean [95% Student-t interval over seeds]. Sampled ASR: the "
        f"training rollouts' `game/asr` (train-split harmful seeds) over the first and last "
        f"{prov['window']} steps; greedy test ASR: greedy rewrite, greedy reply on the "
        f"{prov['greedy_test_seeds']} test-split harmful seeds (step 0: the SFT attacker).\n\n"
        + "\n".join(lines)
        + f"\n\nDefenders:\n{defenders}\n\nCommand: `{prov['command']}`\n"
    )


def curve_png(bands: dict[str, list[dict]]) -> bytes | None:
    """attacker_curve.png: the report's figure (`report.plots.attacker_curve_figure`)."""
    fig = attacker_curve_figure(bands)
    return None if fig is None else fig.png
