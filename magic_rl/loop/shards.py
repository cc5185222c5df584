"""Data-parallel bookkeeping of a step, in one place: `Shards`.

Under `accelerate launch` with N processes each process (rank) plays a strided shard of the step's
seeds with its own sampling stream; the unknown-label count is summed, the metrics are reduced
(counts add up, rates and means are averaged over the ranks that have them) and the replay records
are gathered back into the whole step's order. With one process every method is the identity (the
single-process stream is the (seed, step) stream), so a plain run pays nothing for it.

Run: `python -m pytest -q tests/test_distributed.py tests/test_loop.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from magic_rl.loop.stages import is_count


class Shards:
    """The ranks of a data-parallel run (`accelerator.num_processes`, `process_index`)."""

    def __init__(self, accelerator: Any) -> None:
        self.accelerator = accelerator
        self.n, self.rank = accelerator.num_processes, accelerator.process_index

    def take(self, items: Sequence) -> list:
        """This rank's strided shard of the step's items."""
        return list(items[self.rank :: self.n])

    def rng_seed(self, run_seed: int, step: int) -> int:
        """This rank's sampling stream at `step`: distinct per rank; one process keeps the
        (seed, step) stream."""
        return (run_seed * 100_003 + step) * self.n + self.rank

    def sum(self, *counts: int) -> tuple[int, ...]:
        """Counts summed over the ranks."""
        if self.n == 1:
            return counts
        import torch

        t = torch.tensor(counts, dtype=torch.float64, device=self.accelerator.device)
        return tuple(int(x) for x in self.accelerator.reduce(t, reduction="sum").tolist())

    def reduce(self, metrics: dict[str, float]) -> dict[str, float]:
        """Combine the shards' metrics: counts (`stages.is_count`) add up; rates and means are
        averaged over the ranks that have them (a rank lacks a key, or holds NaN, when none of its
        samples is valid)."""
        if self.n == 1:
            return metrics
        import torch
        from accelerate.utils import gather_object

        keys = sorted(set(gather_object(list(metrics))))
        values = [metrics.get(k, math.nan) for k in keys]
        has = [0.0 if math.isnan(v) else 1.0 for v in values]
        t = torch.tensor(
            [[v if h else 0.0 for v, h in zip(values, has, strict=True)], has],
            dtype=torch.float64,
            device=self.accelerator.device,
        )
        total, n = self.accelerator.reduce(t, reduction="sum").tolist()
        return {
            k: math.nan if not c else s if is_count(k) else s / c
            for k, s, c in zip(keys, total, n, strict=True)
        }

    def gather(self, records: list[dict]) -> list[dict]:
        """Every rank's replay records, each `group` renumbered to the seed's index in the whole
        step's batch, in (group, member) order."""
        if self.n == 1:
            return records
        from accelerate.utils import gather_object

        for rec in records:  # the seed's index in the whole step's batch (strided shards)
            rec["group"] = rec["group"] * self.n + self.rank
        return sorted(gather_object(records), key=lambda r: (r["group"], r["member"]))
