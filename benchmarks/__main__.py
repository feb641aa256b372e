"""All benchmarks in one go: ``python -m benchmarks [--device cpu|cuda] [--skip-default-run]``.

1. :mod:`benchmarks.scoring`: one-pass path scoring against ProRL's two-pass scheme;
2. :mod:`benchmarks.rl_throughput`: RL training throughput of ``prorl``, ``quick`` and ``paper``
   profiles (synthetic dataset unless ``--dataset``/``--data-dir`` say otherwise);
3. :mod:`benchmarks.default_run`: the default ``prorlbench run --methods prorl,naive-pg`` with a
   fresh cache, wall time and peak RSS (a child process).

See ``docs/performance.md`` for what each number means.
"""

from __future__ import annotations

import argparse
import sys

from . import default_run, rl_throughput, scoring


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--dataset", default="synthetic", help="dataset of the RL throughput benchmark")
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--steps", type=int, default=10, help="timed RL steps per profile")
    ap.add_argument("--cache-dir", default="", help="simulator cache of the RL throughput benchmark")
    ap.add_argument("--skip-default-run", action="store_true", help="leave out the (minutes-long) default run")
    args = ap.parse_args(argv)
    out: dict[str, object] = {}
    print("== scoring: one-pass vs two-pass ==", flush=True)
    out["scoring"] = scoring.main(["--device", args.device])
    print("\n== RL training throughput (prorl) ==", flush=True)
    rl_args = ["--device", args.device, "--profile", "all", "--dataset", args.dataset, "--steps", str(args.steps)]
    if args.data_dir:
        rl_args += ["--data-dir", args.data_dir]
    if args.cache_dir:
        rl_args += ["--cache-dir", args.cache_dir]
    out["rl_throughput"] = rl_throughput.main(rl_args)
    if not args.skip_default_run:
        print("\n== default run (fresh cache) ==", flush=True)
        out["default_run"] = default_run.main(["--device", args.device])
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
