"""Benchmark: the default run a fresh clone does, timed, with its peak memory.

Usage (from the repository root)::

    python -m benchmarks.default_run                  # device auto, fresh cache
    python -m benchmarks.default_run --device cpu

Runs ``prorlbench run --methods prorl,naive-pg --no-progress --out <tmp> --cache-dir <tmp>``
in a child process with an empty cache folder, so everything a fresh clone computes is included:
loading the synthetic dataset, training the SASRec simulator, building the cases, the SFT stage
(once, shared), two RL cells (160 steps of the ``quick`` profile each), generation and evaluation,
and the report. Printed: the wall time of the child, its peak resident set size
(``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it exits: the largest peak RSS of any child this
process has waited for, here only that run) and whether it stays under the 2 GiB target.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MIB = 2048.0
"""Peak-RSS target of the default run (2 GiB)."""

RUN_MAIN = "import sys; from prorlbench.cli import main; sys.exit(main())"


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="", help="passed to prorlbench run (default: its own, auto)")
    ap.add_argument("--methods", default="prorl,naive-pg")
    ap.add_argument("--keep", default="", help="keep the run folder here instead of a temporary one")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                    help="further arguments for prorlbench run (after everything else)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="prorlbench-default-") as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "run"
        cache = Path(tmp) / "cache"  # always fresh: the simulator is trained, as on a fresh clone
        cmd = [sys.executable, "-c", RUN_MAIN, "run", "--methods", args.methods, "--no-progress",
               "--out", str(out), "--cache-dir", str(cache)]
        if args.device:
            cmd += ["--device", args.device]
        cmd += list(args.extra)
        print("command: prorlbench " + " ".join(cmd[3:]), flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wall = time.perf_counter() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
        peak_mib = peak_kib / 1024.0
    ok = peak_mib < TARGET_MIB
    print(f"default run: exit code {proc.returncode}, wall time {wall:.1f} s, peak RSS of the child "
          f"{peak_mib:,.0f} MiB -> target < {TARGET_MIB / 1024:.0f} GiB: {'met' if ok else 'NOT met'}"
          + ("" if before < peak_kib else f" (an earlier child of this process peaked at {before / 1024:,.0f} MiB, "
                                          "so this run's own peak is at most that)"),
          flush=True)
    return {"returncode": float(proc.returncode), "wall_s": wall, "peak_rss_mib": peak_mib,
            "target_met": float(ok)}


if __name__ == "__main__":
    res = main(sys.argv[1:])
    sys.exit(int(res["returncode"]))
