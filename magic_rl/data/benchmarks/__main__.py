"""List the benchmarks found under the data root, with item counts per subset and metric.

Run: `python -m magic_rl.data.benchmarks`
"""

from __future__ import annotations

from collections import Counter

from magic_rl.data.benchmarks.registry import (
    BENCHMARKS,
    benchmark_path,
    list_benchmarks,
    load_benchmark,
)


def main() -> None:
    for bench_name in list_benchmarks():
        bench = BENCHMARKS[bench_name]
        if bench.path is None or not benchmark_path(bench_name).is_file():
            print(f"{bench_name:26s} (no file)  {bench.description}")
            continue
        loaded = load_benchmark(bench_name)
        subsets = Counter(f"{i.subset}:{i.metric}" for i in loaded)
        print(f"{bench_name:26s} {len(loaded):5d}  {dict(subsets)}")


if __name__ == "__main__":
    main()
