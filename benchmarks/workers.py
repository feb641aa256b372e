"""Benchmark: what a worker process costs a cell (the local executor's isolation, issue 25).

Usage (from the repository root, alone on the machine)::

    OMP_NUM_THREADS=1 python -m benchmarks.workers                   # quick cells on synthetic
    OMP_NUM_THREADS=1 python -m benchmarks.workers --methods sft --seeds 0,1 --rounds 3
    OMP_NUM_THREADS=1 python -m benchmarks.workers --spawn            # also time spawn workers

Runs one grid (default: ``random``, ``pop`` and ``shortest-path`` x 5 seeds on the built-in
synthetic data, the cheapest cells there are, so the overhead is as large a share as it gets)
with ``workers = 0`` (every cell in this process) and ``workers = 1`` (every cell in a forked
worker), alternating, ``--rounds`` times, in this process with a warm model cache. Printed per
round: the wall time of the cells of each (the dataset preparation is excluded: it is run once per
``run`` whatever the executor), the difference per cell, and whether the per-case values of the
two are identical. ``--spawn`` adds spawn workers (what CUDA runs use), whose cost is an
interpreter start and the work's transfer per cell.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd


TINY = {"simulator": "oracle", "cases": {"max_cases_per_split": 20, "max_path_len": 5},
        "plugin_tables": {"datasets": {"synthetic": {"n_users": 120, "n_items": 60, "seq_len": 20}},
                          "simulators": {}, "methods": {}}}
"""``--tiny``: a small world scored by its oracle (nothing trains), for the test that keeps this
script working."""


def _timed_run(out: Path, cache: Path, methods: list[str], seeds: list[int], workers: int,
               start_method: str | None, tiny: bool = False) -> tuple[float, int, pd.DataFrame]:
    from prorlbench.engine import runner
    from prorlbench.executors import local
    from prorlbench.settings.runconfig import RunConfig

    class Timed(local.LocalExecutor):
        def run(self, jobs: Any, work: Any, where: Any) -> Any:
            t0 = time.perf_counter()
            yield from super().run(jobs, work, where)
            self.seconds = time.perf_counter() - t0

    executor = Timed(workers=workers, start_method=start_method)
    cfg = RunConfig(methods=methods, seeds=seeds, out=str(out), cache_dir=str(cache), progress=False,
                    device="cpu", force=True, **(TINY if tiny else {}))
    real = runner.make_executor
    runner.make_executor = lambda name, extra=None: executor  # type: ignore[assignment]
    try:
        res = runner.run(cfg, report=False)
    finally:
        runner.make_executor = real  # type: ignore[assignment]
    df = pd.read_csv(out / "cases.csv.gz")
    return executor.seconds, len(res.cells), df.sort_values(list(df.columns)).reset_index(drop=True)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="random,pop,shortest-path")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--spawn", action="store_true", help="also time spawn workers")
    ap.add_argument("--tiny", action="store_true", help="a small world scored by its oracle (tests)")
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    modes: list[tuple[str, int, str | None]] = [("in process", 0, None), ("fork worker", 1, "fork")]
    if args.spawn:
        modes.append(("spawn worker", 1, "spawn"))
    times: dict[str, list[float]] = {m[0]: [] for m in modes}
    all_same = True
    with tempfile.TemporaryDirectory(prefix="prorlbench-workers-") as tmp:
        cache = Path(tmp) / "cache"
        _timed_run(Path(tmp) / "warm", cache, methods, seeds, 0, None, args.tiny)  # simulator into the cache
        for r in range(args.rounds):
            tables = []
            for label, workers, start in modes:
                sec, n, df = _timed_run(Path(tmp) / f"r{r}-{workers}-{start}", cache, methods, seeds, workers, start,
                                        args.tiny)
                times[label].append(sec / n)
                tables.append(df)
            same = all(t.equals(tables[0]) for t in tables[1:])
            all_same = all_same and same
            base = times["in process"][-1]
            print(f"round {r + 1}: {n} cells; per cell " + ", ".join(
                f"{label} {times[label][-1] * 1e3:,.0f} ms" for label, _, _ in modes)
                + f"; fork - in process {(times['fork worker'][-1] - base) * 1e3:+,.0f} ms"
                + f"; per-case values identical: {same}", flush=True)
    if not all_same:
        print("per-case values DIFFER between the executors")
    med = {k: statistics.median(v) for k, v in times.items()}
    print("median per cell: " + ", ".join(f"{k} {v * 1e3:,.0f} ms" for k, v in med.items())
          + f"; fork worker / in process {med['fork worker'] / med['in process']:.2f}x")
    return {**med, "identical": float(all_same)}


if __name__ == "__main__":
    main()
