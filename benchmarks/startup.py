"""Start-up time of the ``prorlbench`` command (issue 28): how long before a command does anything.

    python -m benchmarks.startup [--repeat 5]

Each command runs ``--repeat`` times in a fresh process (the installed ``prorlbench`` script, or
``python -c`` calling the CLI when it is not on the PATH), with a private cache folder;
printed: the median and the fastest wall time. Measured:

* ``python -c pass``: the interpreter alone, the floor;
* ``import prorlbench``: the package (no torch, no pandas, no plugin);
* ``prorlbench --version`` and ``prorlbench run --help``: the parser only;
* ``prorlbench list`` cold: the first list after the plugins changed (every plugin and torch are
  imported, the plugin catalogue is written), timed once per repeat with the catalogue removed;
* ``prorlbench list`` warm: the list read from the catalogue;
* ``import torch``: what a command that computes pays on top, for reference.

Targets: ``--version`` under 1 s, ``list`` under 3 s. On a shared machine the figures move with
the load; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5)")
    args = ap.parse_args(argv)
    exe = shutil.which("prorlbench")
    cli = [exe] if exe else [sys.executable, "-c", "import sys; from prorlbench.cli import main; sys.exit(main())"]
    py = [sys.executable, "-c"]
    out: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PRORLBENCH_CACHE_DIR": cache, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        catalogue = Path(cache) / "plugin-catalog.json"
        cases = [("python -c pass", py + ["pass"], False), ("import prorlbench", py + ["import prorlbench"], False),
                 ("prorlbench --version", cli + ["--version"], False), ("prorlbench run --help", cli + ["run", "--help"], False),
                 ("prorlbench list (cold)", cli + ["list"], True), ("prorlbench list (warm)", cli + ["list"], False),
                 ("import torch", py + ["import torch"], False)]
        for name, command, cold in cases:
            times = []
            for _ in range(args.repeat):
                if cold:
                    catalogue.unlink(missing_ok=True)
                times.append(_time(command, env))
            out[name] = (statistics.median(times), min(times))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"start-up, {args.repeat} runs each (load average {load:.2f}, {os.cpu_count()} CPUs):")
    for name, (med, best) in out.items():
        print(f"  {name:24s} median {med:6.2f} s   fastest {best:6.2f} s")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
