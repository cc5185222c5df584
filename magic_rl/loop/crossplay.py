"""Live cross-play: the attacker x defender ASR matrix, grown at every switch while the run trains.

With `crossplay.probe=N`, each new snapshot (checkpoints/step-S/<role>/, see `league.Snapshots`)
plays every stored snapshot of the other role on a fixed probe: the first N test-split harmful seeds
(`evaluate.transfer.harmful_seeds`), greedy rewrite and greedy reply, judged with the run's judge,
the seed as the request (the protocol of `magic crossplay`, whose functions it reuses). One row per
new (attacker, defender) cell is appended to RUN_DIR/crossplay.jsonl:

    {"step": S, "attacker": "step-000010", "defender": "step-000005", "asr": 0.25,
     "ci": [lo, hi], "n": 32, "n_unknown": 0, "seconds": 1.9}

`step` is the switch the row was computed at; resume cuts rows of switches after the saved state.
Each attacker's probe rewrites are generated once per process and reused for every defender.
`forgetting` reads the matrix: how much ASR earlier attackers regain against the last defender.
The report draws the matrix as it stands (`magic report RUN`). Its cost is in `time/crossplay` of
summary.json and its share of the run (docs/LOG.md).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

from magic_rl.config import RunConfig
from magic_rl.evaluate.transfer import (
    _asr,
    attack_outcomes,
    attacker_rewrites,
    crossplay_seeds,
)
from magic_rl.policy.load import load_policy
from magic_rl.records import Role


class LiveCrossplay:
    def __init__(self, cfg: RunConfig, run_dir: Path, judge) -> None:
        self.cfg, self.run_dir, self.judge = cfg, run_dir, judge
        self.seeds = crossplay_seeds(cfg, "crossplay.probe")[: cfg.crossplay.probe]
        self.path = run_dir / "crossplay.jsonl"
        self._rewrites: dict[str, list] = {}

    def _policy(self, name: str, role: Role):
        path = self.run_dir / "checkpoints" / name / role.value
        return load_policy(
            path, getattr(self.cfg, role.value), self.cfg.device, what=f"{role} model"
        )

    def _attacks(self, name: str) -> list:
        if name not in self._rewrites:
            self._rewrites[name] = attacker_rewrites(
                self._policy(name, Role.ATTACKER), self.seeds, self.cfg
            )
        return self._rewrites[name]

    def update(
        self, step: int, snapshots: dict[Role, list[str]], new: Sequence[Role]
    ) -> list[dict]:
        """Play each new snapshot (the last of its role) against every snapshot of the other role
        whose cell is not yet in the file; append and return the rows."""
        done = {(r["attacker"], r["defender"]) for r in read_rows(self.path)}
        cells = []
        for role in new:
            mine = snapshots[role][-1]
            for other in snapshots[role.other]:
                a, d = (mine, other) if role is Role.ATTACKER else (other, mine)
                if (a, d) not in done and (a, d) not in cells:
                    cells.append((a, d))
        rows = []
        for d in dict.fromkeys(d for _, d in cells):
            attackers = [a for a, dd in cells if dd == d]
            t0 = time.perf_counter()
            rewrites = [rs for a in attackers for rs in self._attacks(a)]
            _, verdicts = attack_outcomes(
                self._policy(d, Role.DEFENDER), rewrites, self.judge, self.cfg
            )
            seconds = (time.perf_counter() - t0) / len(attackers)
            n = len(self.seeds)
            for k, a in enumerate(attackers):
                res = _asr(verdicts[k * n : (k + 1) * n], self.cfg)
                rows.append(
                    {
                        "step": step,
                        "attacker": a,
                        "defender": d,
                        "asr": res.value,
                        "ci": list(res.ci),
                        "n": res.n,
                        "n_unknown": res.n_unknown,
                        "seconds": round(seconds, 3),
                    }
                )
        with self.path.open("a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        return rows


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
    return rows


def matrix(rows: Sequence[dict]) -> dict:
    """{attackers, defenders, asr} (rows: attackers, columns: defenders, NaN where not played),
    the shape `magic crossplay` writes and the report draws."""
    attackers = sorted({r["attacker"] for r in rows})
    defenders = sorted({r["defender"] for r in rows})
    cell = {(r["attacker"], r["defender"]): r["asr"] for r in rows}
    return {
        "attackers": attackers,
        "defenders": defenders,
        "asr": [[_float(cell.get((a, d))) for d in defenders] for a in attackers],
    }


def _float(x) -> float:
    return math.nan if x is None else float(x)


def forgetting(rows: Sequence[dict]) -> float:
    """Mean over the earlier attacker snapshots (all but the last) of ASR(a, last defender) minus
    a's lowest ASR against any defender snapshot: how much of what some defender once blocked the
    final defender lets through again (0 = nothing forgotten). NaN without such cells."""
    m = matrix(rows)
    if len(m["attackers"]) < 2 or not m["defenders"]:
        return math.nan
    last = len(m["defenders"]) - 1
    gaps = []
    for row in m["asr"][:-1]:
        known = [v for v in row if not math.isnan(v)]
        if known and not math.isnan(row[last]):
            gaps.append(row[last] - min(known))
    return sum(gaps) / len(gaps) if gaps else math.nan
