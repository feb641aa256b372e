"""A compact per-case table of a run: the study's metrics at K = 1 and 10, one row per (method,
dataset, evaluating simulator, seed, case, K), gzip. Committed beside a study's tables, it is
enough to recompute every interval and p-value of ``comparisons.md`` from the repository
(``python -m prorlbench.study.claims RUN`` reads it when the run folder has no per-cell files).

    python -m prorlbench.study.percase RUN [--out RUN/percase.csv.gz] [--ks 1,10] [--max-mb 15]

A table larger than ``--max-mb`` is split by evaluating simulator (``percase.sasrec.csv.gz``, ...),
so each file stays under the limit of a file that comes back from a GPU machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

METRICS = ("ioi", "ior", "ctr", "coherence", "len", "invalid", "ioi-lift", "ior-lift")
"""The metrics the study's comparisons and verdicts read (``prorlbench.study.claims.METRICS``) and ``invalid``."""
KEYS = ["method", "dataset", "simulator", "seed", "case", "k"]
PATTERN = "percase*.csv.gz"


def collect(run: Path, ks: tuple[int, ...] = (1, 10), metrics: tuple[str, ...] = METRICS) -> pd.DataFrame:
    """The wide per-case table of every finished cell of ``run`` (its cells' files, else ``cases.csv.gz``)."""
    files = sorted((run / "cells").glob("*.cases.csv.gz"))
    if not files and (run / "cases.csv.gz").exists():
        files = [run / "cases.csv.gz"]
    parts = []
    for f in files:
        d = pd.read_csv(f)
        parts.append(d[d["k"].isin(ks) & d["metric"].isin(metrics)])
    if not parts:
        return pd.DataFrame(columns=KEYS)
    long = pd.concat(parts, ignore_index=True)
    wide = long.pivot_table(index=KEYS, columns="metric", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    cols = KEYS + [m for m in metrics if m in wide.columns]
    return wide[cols].sort_values(KEYS, kind="mergesort").reset_index(drop=True)


def write(run: Path, out: Path | None = None, ks: tuple[int, ...] = (1, 10), max_mb: float = 15.0) -> list[Path]:
    """Write the compact table (split by simulator when one file would exceed ``max_mb``); returns the files."""
    out = out or run / "percase.csv.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    wide = collect(run, ks)
    for old in out.parent.glob(PATTERN):
        old.unlink()
    wide.to_csv(out, index=False, compression={"method": "gzip", "mtime": 0})
    if out.stat().st_size <= max_mb * 2**20 or wide.empty:
        return [out]
    out.unlink()
    files = []
    for sim, part in wide.groupby("simulator", sort=True):
        f = out.with_name(out.name.replace(".csv.gz", f".{sim}.csv.gz"))
        part.to_csv(f, index=False, compression={"method": "gzip", "mtime": 0})
        files.append(f)
    return files


def read(run: Path, k: int | None = None) -> pd.DataFrame:
    """The committed compact table(s) of ``run`` in the long layout of the cells' files
    (``method, dataset, simulator, seed, case, metric, k, value``); empty when there is none."""
    files = sorted(run.glob(PATTERN))
    if not files:
        return pd.DataFrame(columns=KEYS[:-1] + ["metric", "k", "value"])
    wide = pd.concat([pd.read_csv(f, dtype={"case": str}) for f in files], ignore_index=True)
    if k is not None:
        wide = wide[wide["k"] == k]
    metrics = [c for c in wide.columns if c not in KEYS]
    long = wide.melt(id_vars=KEYS, value_vars=metrics, var_name="metric", value_name="value").dropna(subset=["value"])
    return long[KEYS[:-1] + ["metric", "k", "value"]].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prorlbench.study.percase", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run folder with per-cell files (cells/*.cases.csv.gz)")
    ap.add_argument("--out", type=Path, help="output file (default RUN/percase.csv.gz)")
    ap.add_argument("--ks", default="1,10", help="comma list of K (default 1,10)")
    ap.add_argument("--max-mb", type=float, default=15.0, help="split by simulator above this size (MiB)")
    args = ap.parse_args(argv)
    if not (args.run / "config.toml").exists():
        print(f"percase: {args.run}: not a run folder (no config.toml)", file=sys.stderr)
        return 2
    try:
        ks = tuple(int(k) for k in args.ks.split(","))
    except ValueError:
        print(f"percase: --ks {args.ks!r}: expected a comma list of integers", file=sys.stderr)
        return 2
    for f in write(args.run, args.out, ks, args.max_mb):
        print(f"{f} ({f.stat().st_size / 2**20:.2f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
