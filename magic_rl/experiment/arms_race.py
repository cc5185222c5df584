"""`magic experiment arms-race`: the sandbox counterpart of the paper's Fig. 3 over training seeds.

MAGIC (the preset, both roles alternating) is trained once per training seed into OUT/magic-s<seed>/
(the ablation's run layout and code: `ablation.run_config`, `ablation.train_run`, so a finished run,
from this experiment or from `magic experiment ablation` with the same steps and overrides, is
reused and a half-finished one resumes). The plan must give at least `MIN_PHASES` role phases (three
per role, `planned_phases`), else it is refused before anything trains: fewer phases leave no
"earlier" and "later" players to compare (`allow_short` lifts this).

Each run then plays `magic crossplay` (`evaluate.transfer.crossplay`: every attacker checkpoint x
every defender checkpoint, the first `limit` test-split harmful seeds, greedy rewrite and reply),
written to RUN_DIR/crossplay/ as that command writes it; a crossplay.json of the same checkpoints
and `limit` is reused. From the matrices, per seed, with M[i][j] the ASR of attacker checkpoint i
against defender checkpoint j (checkpoints in step order, index 0 = step 0, the untrained players):

    later_attackers  (Fig. 3 "later attackers beat earlier defenders more than earlier attackers
                     did"): mean over the defenders before the last, j < L-1, of
                     M[K-1][j] - M[0][j]  (last attacker minus first attacker, same defender)
    later_defenders  (Fig. 3 "later defenders suppress earlier attackers"): mean over the attackers
                     before the last, i < K-1, of M[i][f(i)] - M[i][L-1], where f(i) is the last
                     defender checkpoint at or before attacker i's step (the defender it was
                     trained against or played last) and L-1 the last defender

Both are positive when the figure's shape is there. Each gets a mean and a Student-t 95% interval
over seeds (`evaluate.metrics.mean_ci`); the mean matrix over seeds is written with every seed's.

From each run's metrics.jsonl, each attacker phase (a contiguous block of `schedule/role` =
attacker; its defender is frozen) gets its gain: the mean sampled `game/asr` over the phase's last
`GAIN_WINDOW` steps minus over its first (windows shrink to half the phase so they never overlap).
Phase k of every seed is pooled: mean and t-interval per phase, and the share of seeds that gained.
The same phase's gain is also read from the cross-play matrix (`crossplay_phase_gain`): the
attacker checkpoint saved at the phase's end minus the one at its start, both against the defender
the phase faced, M[end][f] - M[start][f], on the test split (held-out seeds, the same seeds and,
with `samples`, the same random streams for both checkpoints).

Outputs in OUT: arms_race.json (`{"title", "seeds", "attackers", "defenders", "mean", "per_seed",
"contrasts", "phase_gains", "provenance"}`), arms_race.md (the tables), arms_race_heatmap.png (the
mean matrix, drawn as `magic crossplay` draws its heatmap) and arms_race_gains.png (gain per
attacker phase, each seed and the mean with its interval).

Departures: the paper's Fig. 3 is one run of 7B models; here several seeds of the sandbox's tiny
models, and the two contrasts are this project's reading of the figure (docs/deviations.md).

Run:
    magic experiment arms-race                      # seeds 0,1,2 x 90 steps (6 phases at freq 15)
    magic experiment arms-race --seeds 0,1 --steps 60 --allow-short --out runs/arms
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magic_rl import rundir
from magic_rl.config import RunConfig, load_config, trained_roles
from magic_rl.data.outputs import claim, write_output
from magic_rl.evaluate.eval import git_commit, run_checkpoints
from magic_rl.evaluate.metrics import mean_ci
from magic_rl.evaluate.transfer import crossplay, plot_heatmap
from magic_rl.experiment.ablation import (
    CLAIM_HINT,
    Log,
    RunSpec,
    check_overrides,
    require_same_config,
    run_config,
    train_run,
)
from magic_rl.records import Role
from magic_rl.rundir import read_metrics
from magic_rl.sandbox.resolve import resolve_judge

VARIANT = "magic"
MIN_PHASES = 6  # three per role: a first, a middle and a last player of each side
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_STEPS = 90  # 6 phases at the preset's schedule.freq=15
DEFAULT_LIMIT = 40
GAIN_WINDOW = 5
WRITER = "magic experiment arms-race"
FILES = {
    "arms_race.json": '"phase_gains"',
    "arms_race.md": "# Arms race",
    "arms_race_heatmap.png": "Matplotlib",
    "arms_race_gains.png": "Matplotlib",
}


# --- the plan -------------------------------------------------------------------------------------


def phase_lengths(cfg: RunConfig, steps: int) -> list[int] | None:
    """The role phases a run of `steps` steps goes through (their lengths, the last possibly cut);
    None when they are decided during training (`schedule.mode=metric`)."""
    roles = trained_roles(cfg.schedule)
    if len(roles) == 1:
        return [steps]
    if cfg.schedule.mode != "ratio":
        return None
    role, lengths, done = cfg.schedule.start_agent, [], 0
    while done < steps:
        length = min(cfg.schedule.freq * cfg.schedule.update_ratio[role], steps - done)
        lengths.append(length)
        done += length
        role = role.other
    return lengths


def check_plan(cfg: RunConfig, steps: int, *, allow_short: bool = False) -> int | None:
    """The number of planned phases; a ValueError saying why and what to change when it is under
    `MIN_PHASES` (or unknown) and `allow_short` is not set."""
    lengths = phase_lengths(cfg, steps)
    n = None if lengths is None else len(lengths)
    if allow_short or (n is not None and n >= MIN_PHASES):
        return n
    if n is None:
        raise ValueError(
            f"schedule.mode={cfg.schedule.mode} decides the role phases during training, so the "
            f"plan cannot promise {MIN_PHASES}; use schedule.mode=ratio or pass --allow-short"
        )
    s = cfg.schedule
    if len(trained_roles(s)) == 1:
        raise ValueError(
            f"schedule.train_roles={s.train_roles} trains one role: a single phase; the arms race "
            "needs both roles alternating (the preset's schedule.train_roles=both)"
        )
    need = sum(s.freq * s.update_ratio[r] for r in (s.start_agent, s.start_agent.other)) * (
        MIN_PHASES // 2
    )
    raise ValueError(
        f"{steps} steps at schedule.freq={s.freq} give {n} role phase(s); the arms race needs "
        f"at least {MIN_PHASES} (three per role) to compare earlier and later players: use "
        f"--steps {need} or more, a smaller schedule.freq, or --allow-short"
    )


def _crossplay_how(prov: dict) -> str:
    """How the matrices were played, in words, for arms_race.md."""
    samples = prov.get("samples", 1)
    if samples == 1:
        return f"`magic crossplay --limit {prov['limit']}` (greedy, test-split harmful seeds)"
    return (
        f"`magic crossplay --limit {prov['limit']} --samples {samples}` ({samples} rewrites per "
        "test-split harmful seed sampled at the attacker's temperature, each scored; greedy replies)"
    )


def describe_plan(
    preset: str,
    overrides: Sequence[str],
    seeds: Sequence[int],
    steps: int,
    out: Path,
    limit: int | None,
    *,
    samples: int = 1,
    allow_short: bool = False,
) -> str:
    """The plan in one line: runs, steps, phases, what is already complete, or why it is refused."""
    from magic_rl.experiment.ablation import training_done

    specs = [RunSpec(VARIANT, s) for s in seeds]
    cfg = run_config(preset, overrides, specs[0], steps, out)
    done = sum(training_done(out / s.name, steps) for s in specs)
    lengths = phase_lengths(cfg, steps)
    phases = "phases decided during training" if lengths is None else f"{len(lengths)} role phases"
    line = (
        f"MAGIC x {len(seeds)} seeds ({done} already complete in {out}), {steps} steps each "
        f"({phases}), cross-play on {limit or 'all'} test-split harmful seeds"
        + ("" if samples == 1 else f", {samples} sampled rewrites each")
    )
    try:
        check_plan(cfg, steps, allow_short=allow_short)
    except ValueError as err:
        line += f"; refused: {err}"
    return line


# --- the arithmetic -------------------------------------------------------------------------------


def _cell(values: Sequence[float]) -> dict[str, Any]:
    ci = mean_ci(values)
    num = lambda x: None if math.isnan(x) else x  # noqa: E731
    return {
        "mean": num(ci.mean),
        "lo": num(ci.lo),
        "hi": num(ci.hi),
        "n": ci.n,
        "values": [num(float(v)) for v in values],
    }


def later_attackers(matrix: Sequence[Sequence[float]]) -> float:
    """Mean over defenders j before the last of M[last attacker][j] - M[first attacker][j]."""
    cols = range(len(matrix[0]) - 1)
    diffs = [matrix[-1][j] - matrix[0][j] for j in cols]
    diffs = [d for d in diffs if not math.isnan(d)]
    return sum(diffs) / len(diffs) if diffs else math.nan


def faced(attackers: Sequence[str], defenders: Sequence[str]) -> list[int]:
    """For each attacker checkpoint, the index of the last defender checkpoint at or before its
    step (the defender it was trained against or last played)."""
    d_steps = [rundir.checkpoint_step(d) for d in defenders]
    out = []
    for a in attackers:
        step = rundir.checkpoint_step(a)
        out.append(max((j for j, s in enumerate(d_steps) if s <= step), default=0))
    return out


def later_defenders(
    matrix: Sequence[Sequence[float]], attackers: Sequence[str], defenders: Sequence[str]
) -> float:
    """Mean over attackers i before the last of M[i][faced(i)] - M[i][last defender]."""
    last = len(defenders) - 1
    diffs = [
        matrix[i][f] - matrix[i][last]
        for i, f in enumerate(faced(attackers, defenders))
        if i < len(attackers) - 1 and f != last
    ]
    diffs = [d for d in diffs if not math.isnan(d)]
    return sum(diffs) / len(diffs) if diffs else math.nan


CONTRASTS = {
    "later_attackers": "last attacker minus first attacker, against each defender before the last",
    "later_defenders": "earlier attackers against the defender they faced minus against the last",
}


def contrasts(doc: dict) -> dict[str, float]:
    """Both Fig. 3 contrasts of one crossplay.json."""
    m, a, d = doc["asr"], doc["attackers"], doc["defenders"]
    return {"later_attackers": later_attackers(m), "later_defenders": later_defenders(m, a, d)}


def crossplay_phase_gain(doc: dict, first_step: int, last_step: int) -> float:
    """An attacker phase's gain in cross-play: M[end][f] - M[start][f], with start the attacker
    checkpoint at the phase's first step, end the one at `last_step` + 1 and f the defender the
    phase faced (`faced(start)`); NaN when either checkpoint is missing."""
    a_steps = [rundir.checkpoint_step(a) for a in doc["attackers"]]
    if first_step not in a_steps or last_step + 1 not in a_steps:
        return math.nan
    start, end = a_steps.index(first_step), a_steps.index(last_step + 1)
    f = faced(doc["attackers"], doc["defenders"])[start]
    return doc["asr"][end][f] - doc["asr"][start][f]


def attacker_phase_gains(rows: Sequence[dict], window: int = GAIN_WINDOW) -> list[dict]:
    """[{"first_step", "last_step", "gain"}] per attacker phase of a run's metrics rows: mean
    `game/asr` over the phase's last `window` steps minus over its first (each window at most half
    the phase; NaN for a one-step phase)."""
    phases: list[list[dict]] = []
    prev = None
    for row in rows:
        role = row.get("schedule/role")
        if role == Role.ATTACKER.value:
            if prev != role:
                phases.append([])
            phases[-1].append(row)
        prev = role
    out = []
    for block in phases:
        w = min(window, len(block) // 2)
        asr = [float(r.get("game/asr", math.nan)) for r in block]
        gain = (sum(asr[-w:]) - sum(asr[:w])) / w if w else math.nan
        out.append({"first_step": block[0]["step"], "last_step": block[-1]["step"], "gain": gain})
    return out


# --- the experiment -------------------------------------------------------------------------------


def run_crossplay(
    cfg: RunConfig, run_dir: Path, limit: int | None, log: Log, samples: int = 1
) -> tuple[dict, bool]:
    """(crossplay.json of the run, computed now?): `magic crossplay RUN_DIR --limit N --samples
    K`, reused when its file holds the run's checkpoints at this limit and K."""
    path = rundir.crossplay_matrix(run_dir)
    names = [c.name for c in run_checkpoints(run_dir, log=log)]
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
            same = (
                doc["provenance"].get("limit") == limit
                and doc["provenance"].get("samples", 1) == samples
                and doc["attackers"] == names
                and doc["defenders"] == names
            )
        except (json.JSONDecodeError, KeyError, TypeError):
            same = False
        if same:
            return doc, False
    crossplay(resolve_judge(cfg, log=log), run_dir, limit=limit, samples=samples, log=log)
    return json.loads(path.read_text()), True


def mean_matrix(docs: Sequence[dict]) -> list[list[float | None]]:
    """Cell-wise mean over seeds (NaN cells dropped; None where no seed has a value)."""
    rows, cols = len(docs[0]["asr"]), len(docs[0]["asr"][0])
    out = []
    for i in range(rows):
        row = []
        for j in range(cols):
            xs = [d["asr"][i][j] for d in docs if d["asr"][i][j] is not None]
            xs = [x for x in xs if not math.isnan(x)]
            row.append(sum(xs) / len(xs) if xs else None)
        out.append(row)
    return out


def run_arms_race(
    preset: str = "sandbox",
    overrides: Sequence[str] = (),
    *,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    steps: int = DEFAULT_STEPS,
    out: str | Path = "runs/arms_race",
    limit: int | None = DEFAULT_LIMIT,
    samples: int = 1,
    allow_short: bool = False,
    command: str | None = None,
    log: Log = print,
) -> Path:
    """Train (or reuse) a MAGIC run per seed, cross-play each, write OUT/arms_race.{json,md} and
    the two figures. Returns the path of arms_race.json."""
    check_overrides(overrides)
    out = Path(out)
    specs = [RunSpec(VARIANT, s) for s in seeds]
    cfgs = {s: run_config(preset, overrides, s, steps, out) for s in specs}  # fail before any run
    phases = check_plan(next(iter(cfgs.values())), steps, allow_short=allow_short)
    for name, mark in FILES.items():
        claim(out / name, mark, writer=WRITER, hint=CLAIM_HINT)
    for spec, cfg in cfgs.items():
        require_same_config(out / spec.name, cfg)
    t0 = time.perf_counter()
    docs, gains, runs = [], [], {}
    for i, spec in enumerate(specs, 1):
        cfg, run_dir = cfgs[spec], out / spec.name
        t = time.perf_counter()
        trained = train_run(cfg, run_dir, log)
        t_train = time.perf_counter() - t
        t = time.perf_counter()
        doc, played = run_crossplay(cfg, run_dir, limit, log, samples)
        t_play = time.perf_counter() - t
        docs.append(doc)
        gains.append(
            [
                {**g, "crossplay_gain": crossplay_phase_gain(doc, g["first_step"], g["last_step"])}
                for g in attacker_phase_gains(read_metrics(run_dir))
            ]
        )
        runs[spec.name] = {"seed": spec.seed, "dir": str(run_dir), **contrasts(doc)}
        what = (
            (f"trained in {t_train:.0f}s" if trained else "complete")
            + ", "
            + (f"cross-play in {t_play:.0f}s" if played else "cross-play reused")
        )
        c = contrasts(doc)
        log(
            f"[{i}/{len(specs)}] {spec.name}: {what}; later attackers {c['later_attackers']:+.3f}, "
            f"later defenders {c['later_defenders']:+.3f} ({time.perf_counter() - t0:.0f}s elapsed)"
        )
    names = docs[0]["attackers"], docs[0]["defenders"]
    for spec, doc in zip(specs, docs, strict=True):
        if (doc["attackers"], doc["defenders"]) != names:
            raise ValueError(
                f"{out / spec.name}: checkpoints {doc['attackers']} differ from "
                f"{out / specs[0].name}'s {names[0]}; the matrices cannot be averaged"
            )
    result = {
        "title": f"Arms race: {len(seeds)} seeds x {steps} steps",
        "seeds": list(seeds),
        "attackers": names[0],
        "defenders": names[1],
        "mean": mean_matrix(docs),
        "per_seed": {str(s.seed): d["asr"] for s, d in zip(specs, docs, strict=True)},
        "contrasts": {
            k: {"definition": text, **_cell([contrasts(d)[k] for d in docs])}
            for k, text in CONTRASTS.items()
        },
        "phase_gains": _pool_gains(gains),
        "provenance": {
            "command": command or shlex.join(sys.argv),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "git_commit": git_commit(),
            "preset": preset,
            "overrides": list(overrides),
            "steps": steps,
            "phases": phases,
            "limit": limit,
            "samples": samples,
            "gain_window": GAIN_WINDOW,
            "config": load_config(preset, list(overrides)).model_dump(mode="json"),
            "runs": runs,
            "wall_s": round(time.perf_counter() - t0, 2),
        },
    }
    write_output(
        out / "arms_race.json",
        json.dumps(result, indent=2, allow_nan=True) + "\n",
        mark=FILES["arms_race.json"], writer=WRITER, hint=CLAIM_HINT,
    )  # fmt: skip
    write_output(
        out / "arms_race.md", markdown(result), mark=FILES["arms_race.md"], writer=WRITER,
        hint=CLAIM_HINT,
    )  # fmt: skip
    nan = [[math.nan if x is None else x for x in row] for row in result["mean"]]
    plot_heatmap(
        nan, *names, out / "arms_race_heatmap.png",
        title=f"cross-play ASR, mean of {len(seeds)} seeds",
    )  # fmt: skip
    plot_gains(result["phase_gains"], out / "arms_race_gains.png")
    log(summary(result))
    return out / "arms_race.json"


def _pool_gains(gains: Sequence[Sequence[dict]]) -> list[dict]:
    """Phase k of every seed pooled: steps, mean [t-interval] of the gain, share of seeds > 0."""
    n = max((len(g) for g in gains), default=0)
    pooled = []
    for k in range(n):
        phase = [g[k] for g in gains if len(g) > k]
        xs = [p["gain"] for p in phase]
        cp = [p.get("crossplay_gain", math.nan) for p in phase]
        pooled.append(
            {
                "phase": k + 1,
                "steps": [phase[0]["first_step"], phase[0]["last_step"]],
                **_cell(xs),
                "share_up": _share_up(xs),
                "crossplay": {**_cell(cp), "share_up": _share_up(cp)},
            }
        )
    return pooled


def _share_up(xs: Sequence[float]) -> float | None:
    """The share of the finite values that are > 0 (None when there is none)."""
    finite = [x for x in xs if not math.isnan(x)]
    return sum(x > 0 for x in finite) / len(finite) if finite else None


# --- the outputs ----------------------------------------------------------------------------------


def _text(cell: dict) -> str:
    from magic_rl.experiment.render import cell_text

    return cell_text(cell, signed=True)


def markdown(result: dict) -> str:
    a, d, prov = result["attackers"], result["defenders"], result["provenance"]
    step = lambda name: str(rundir.checkpoint_step(name))  # noqa: E731
    head = ["attacker \\ defender", *(step(x) for x in d)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in zip(a, result["mean"], strict=True):
        cells = ["–" if x is None else f"{x:.2f}" for x in row]
        lines.append("| " + " | ".join([step(name), *cells]) + " |")
    contrast = [
        "| contrast | seeds | mean [95% t-interval] | per seed | definition |",
        "|---|---|---|---|---|",
    ]
    for key, c in result["contrasts"].items():
        each = ", ".join("–" if v is None else f"{v:+.2f}" for v in c["values"])
        contrast.append(f"| {key} | {c['n']} | {_text(c)} | {each} | {c['definition']} |")
    gains = [
        "| attacker phase | steps | seeds | game ASR gain [95% t-interval] | seeds up "
        "| cross-play gain [95% t-interval] | seeds up |",
        "|---|---|---|---|---|---|---|",
    ]
    up = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
    for g in result["phase_gains"]:
        cp = g.get("crossplay", {"mean": None, "share_up": None})
        gains.append(
            f"| {g['phase']} | {g['steps'][0]}–{g['steps'][1]} | {g['n']} | {_text(g)} "
            f"| {up(g['share_up'])} | {_text(cp)} | {up(cp['share_up'])} |"
        )
    return (
        "# Arms race (sandbox)\n\n"
        f"MAGIC (preset `{prov['preset']}`, overrides `{' '.join(prov['overrides']) or '-'}`), "
        f"seeds {result['seeds']}, {prov['steps']} steps ({prov['phases']} role phases), commit "
        f"{prov['git_commit']}. Cross-play as {_crossplay_how(prov)}; rows are attacker "
        "checkpoints, columns defender checkpoints (by step), cells the mean ASR over seeds.\n\n"
        + "\n".join(lines)
        + "\n\nFig. 3 contrasts: mean [95% Student-t interval] over seeds, then each seed's "
        "value in seed order (positive: the figure's shape):\n\n"
        + "\n".join(contrast)
        + f"\n\nEach attacker phase's gain against the frozen defender it faces: sampled game ASR "
        f"over the phase's last {prov['gain_window']} steps minus its first (at most half the phase "
        "each; metrics.jsonl, train-split seeds), and in cross-play the attacker saved at the "
        "phase's end minus the one at its start, against that defender (test-split seeds); seeds "
        "up: the share of seeds whose phase gained:\n\n" + "\n".join(gains) + "\n"
    )


def summary(result: dict) -> str:
    """The one-screen summary printed at the end."""
    c = result["contrasts"]
    lines = [
        f"arms race over seeds {result['seeds']} "
        f"({len(result['attackers'])}x{len(result['defenders'])} checkpoints):",
        f"  later attackers beat earlier defenders: {_text(c['later_attackers'])}",
        f"  later defenders suppress earlier attackers: {_text(c['later_defenders'])}",
    ]
    for g in result["phase_gains"]:
        lines.append(
            f"  attacker phase {g['phase']} (steps {g['steps'][0]}-{g['steps'][1]}): "
            f"game gain {_text(g)}, cross-play gain {_text(g.get('crossplay', {'mean': None}))}"
        )
    return "\n".join(lines)


def plot_gains(gains: Sequence[dict], path: Path) -> Path:
    """Gain per attacker phase: every seed's point and the mean with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for g in gains:
        xs = [v for v in g["values"] if v is not None]
        ax.scatter([g["phase"]] * len(xs), xs, color="0.6", s=12)
        if g["mean"] is not None:
            lo = g["mean"] - g["lo"] if g["lo"] is not None else 0.0
            hi = g["hi"] - g["mean"] if g["hi"] is not None else 0.0
            ax.errorbar(g["phase"], g["mean"], yerr=[[lo], [hi]], fmt="o", color="C3", capsize=4)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xticks([g["phase"] for g in gains])
    ax.set_xlabel("attacker phase")
    ax.set_ylabel("game ASR gain (last - first window)")
    ax.set_title("attacker gain against its frozen defender")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
