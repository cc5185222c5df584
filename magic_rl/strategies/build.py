"""The resumable pool builder behind `magic pool build`: every (seed, strategy) pair once, on disk.

`build_pool_file(seeds, strategies, rewriter, out)` asks the rewriter for each pair missing from
`out` (a rerun appends only those), `concurrency` pairs at a time, and appends each usable record
to `out` as soon as it and every pair before it are done, so the file keeps seed-major, strategy
order and a kill loses at most the pairs in flight (on Ctrl-C the rewriter is closed, which ends
its requests in flight at once). A pair whose rewrite the LLM refuses or
answers unusably (`RewriteError` "refused" / "malformed") is retried up to `retries` times, each
with another sampling seed, then counted and reported, never written; a request the endpoint
rejects (HTTP 4xx, e.g. over the model's context) or cannot answer (after the rewriter's own
retries) is counted too; HTTP 401/403/404 (wrong key, URL or model), or `max_unavailable`
unreachable pairs in a row, stop the build with what was written kept. The
`BuildReport` has the counts per strategy; the file is a plain pool (`read_pool`, `magic sft`).

A torn last line (a kill mid-write) is cut on the next run; a file whose records were built from
other seed texts under the same ids is refused (the rerun would mix two seed sets).

Run: `magic pool build --rewriter-url http://127.0.0.1:8001/v1 --rewriter-model M --out p.jsonl`
(or the programmatic strategies without `--rewriter-url`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from magic_rl.records import Seed
from magic_rl.strategies.mutations import STRATEGIES
from magic_rl.strategies.pool import PoolRecord, check_record, pool_row, read_pool
from magic_rl.strategies.rewriter import RewriteError, Rewriter

OUTCOMES = ("written", "existing", "refused", "malformed", "rejected", "unavailable", "stopped")


@dataclass
class BuildReport:
    """Counts per strategy (`OUTCOMES`) and retries used; a few example messages per failure."""

    counts: dict[str, Counter] = field(default_factory=dict)
    retries: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    stopped: str = ""

    def add(self, strategy: str, outcome: str, message: str = "") -> None:
        self.counts.setdefault(strategy, Counter())[outcome] += 1
        if message and len(self.examples.setdefault(outcome, [])) < 3:
            self.examples[outcome].append(message)

    @property
    def missing(self) -> int:
        return sum(c[o] for c in self.counts.values() for o in OUTCOMES[2:])

    def rows(self) -> list[dict]:
        """One row per strategy: counts, retries and the usable share of the pairs asked."""
        out = []
        for strategy, c in self.counts.items():
            asked = sum(c[o] for o in OUTCOMES if o not in ("existing", "stopped"))
            row = {"strategy": strategy, **{o: c[o] for o in OUTCOMES}}
            row["retries"] = self.retries[strategy]
            row["usable"] = c["written"] / asked if asked else None
            out.append(row)
        return out

    def to_json(self) -> dict:
        return {"strategies": self.rows(), "examples": self.examples, "stopped": self.stopped}


def build_pool_file(
    seeds: Sequence[Seed],
    strategies: Sequence[str],
    rewriter: Rewriter,
    out: str | Path,
    *,
    rng_seed: int = 0,
    concurrency: int = 1,
    retries: int = 2,
    max_unavailable: int = 20,
    on_pair: Callable[[], None] = lambda: None,
    log: Callable[[str], None] = print,
) -> BuildReport:
    """Append the missing (seed, strategy) records to `out`; see the module docstring."""
    if concurrency < 1 or retries < 0 or max_unavailable < 1:
        raise ValueError(
            "build_pool_file: need concurrency >= 1, retries >= 0, max_unavailable >= 1"
        )
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"build_pool_file: unknown strategies {unknown}")
    ids = [s.id for s in seeds]
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"build_pool_file: duplicate seed ids {sorted({i for i in ids if ids.count(i) > 1})[:5]}"
        )
    out = Path(out)
    done = _existing(out, {s.id: s for s in seeds}, log)
    report = BuildReport()
    jobs = []
    for seed in seeds:
        for strategy in strategies:
            if f"{seed.id}/{strategy}" in done:
                report.add(strategy, "existing")
            else:
                jobs.append((seed, strategy))
    out.parent.mkdir(parents=True, exist_ok=True)
    stop, lock = threading.Event(), threading.Lock()

    def pair(seed: Seed, strategy: str) -> tuple[str, PoolRecord | str]:
        last = ""
        for attempt in range(retries + 1):
            if stop.is_set():
                return "stopped", ""
            if attempt:
                with lock:
                    report.retries[strategy] += 1
            try:
                (m,) = rewriter.rewrite([seed], strategy, rng_seed + 1_000_003 * attempt)
                record = PoolRecord(
                    f"{seed.id}/{strategy}",
                    seed,
                    strategy,
                    STRATEGIES[strategy],
                    m.reasoning,
                    m.text,
                )
                check_record(record, f"seed {seed.id!r} ({strategy})")
                return "written", record
            except RewriteError as e:
                if e.kind in ("rejected", "unavailable", "fatal"):  # the same ask fails again
                    return e.kind, str(e)
                kind, last = e.kind, str(e)
            except ValueError as e:  # check_record: empty or tagged fields
                kind, last = "malformed", str(e)
        return kind, last

    in_a_row = 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool, out.open("a", encoding="utf-8") as f:
        futures: list[Future] = [pool.submit(pair, seed, strategy) for seed, strategy in jobs]
        try:
            for (_, strategy), future in zip(jobs, futures, strict=True):
                outcome, value = future.result()
                if outcome == "written":
                    f.write(json.dumps(pool_row(value), ensure_ascii=False) + "\n")
                    f.flush()
                    in_a_row = 0
                elif outcome == "fatal":
                    report.stopped = value
                    stop.set()
                    report.add(strategy, "stopped")
                    on_pair()
                    continue
                else:
                    in_a_row = in_a_row + 1 if outcome == "unavailable" else 0
                    if in_a_row >= max_unavailable and not report.stopped:
                        report.stopped = (
                            f"{in_a_row} pairs in a row failed to reach the endpoint; last: {value}"
                        )
                        stop.set()
                report.add(strategy, outcome, value if isinstance(value, str) else "")
                on_pair()
        except BaseException:  # Ctrl-C: end the requests in flight now, keep what is written
            close = getattr(rewriter, "close", None)
            if close is not None:
                stop.set()
                close()
            raise
        finally:
            stop.set()
            for future in futures:
                future.cancel()
    return report


def _existing(out: Path, seeds: dict[str, Seed], log: Callable[[str], None]) -> set[str]:
    """Ids of the records already in `out` (after cutting a torn last line)."""
    if not out.exists():
        return set()
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        log(f"{out}: cutting a torn last line ({len(data) - cut} bytes; a kill mid-write)")
        with out.open("r+b") as f:
            f.truncate(cut)
    records = read_pool(out)
    for r in records:
        seed = seeds.get(r.seed.id)
        if seed is not None and (seed.text, seed.label) != (r.seed.text, r.seed.label):
            raise ValueError(
                f"{out}: record {r.id!r} was built from another seed text or label under the same id "
                f"({r.seed.text[:60]!r}); write to another --out or remove the file"
            )
    return {r.id for r in records}
