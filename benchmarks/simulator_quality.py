"""Benchmark: do the learned simulators learn? Validation HR@10 against popularity's.

Usage (from the repository root, ``../shared/data`` beside it for the real datasets)::

    OMP_NUM_THREADS=1 python -m benchmarks.simulator_quality --profile paper
    OMP_NUM_THREADS=1 python -m benchmarks.simulator_quality --profile quick --datasets synthetic
    python -m benchmarks.simulator_quality --simulators gru4rec --set lr=3e-3 --set min_steps=200

For every simulator x dataset x seed it trains the model as a run would (``train_model``, the
profile's config; nothing is read from or written to a cache) and prints the training batch,
optimizer steps, epochs, seconds, the validation HR@10 and the HR@10 of recommending the most
popular training items on the same validation users, their ratio, and whether the ratio meets
the margin (:data:`MARGIN`). A run refuses a simulator below popularity
(:mod:`prorlbench.seq.strength`); the margin is what the shipped profiles promise on top of that.
Exit code 1 when a row misses the margin. Figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import torch

MARGIN = 1.2
"""The shipped simulators x datasets x profiles reach at least this multiple of popularity's HR@10."""

MODELS = {"sasrec": ("plugins.simulators.sasrec", "SASRec"), "gru4rec": ("plugins.simulators.gru4rec", "GRU4Rec")}
"""The learned simulators' model classes (the built-in plugins)."""

DATA_DIRS = {"movielens": "ml-100k", "prorl-json": "prorl-ml-1m"}
"""Where each shipped real dataset lives under ``--data-dir`` (synthetic needs none)."""


def _value(text: str) -> Any:
    key, _, val = text.partition("=")
    return key.strip(), tomllib.loads(f"v = {val.strip()}")["v"]


def measure(registry: Any, simulator: str, dataset: str, data: Any, profile: str, seed: int,
            overrides: dict[str, Any]) -> dict[str, Any]:
    """Train one simulator on ``data`` and return its figures (one row of the table)."""
    from prorlbench.config import build_config
    from prorlbench.seq.seqdata import popularity_hr
    from prorlbench.seq.seqtrain import train_model

    spec = registry.simulator(simulator)
    cfg = build_config(spec.config_cls, dict(overrides), where=f"[simulators.{simulator}]", profile=profile)
    module, cls = MODELS[simulator]
    with torch.random.fork_rng():  # as train_or_load: the seed initialises and trains the model
        torch.manual_seed(seed)
        model = getattr(importlib.import_module(module), cls)(cfg, data.n_items)
        t0 = time.perf_counter()
        best = train_model(model, cfg, data, device="cpu", seed=seed)
        seconds = time.perf_counter() - t0
    pop = popularity_hr(data, data.sequences.get("valid", []))["hr10"]
    ratio = best["hr10"] / pop if pop > 0 else float("inf")
    return {"simulator": simulator, "dataset": dataset, "profile": profile, "seed": seed,
            "batch": best["batch"], "steps": best["steps"], "epochs": best["epochs"],
            "best_epoch": best["best_epoch"], "seconds": seconds, "hr10": best["hr10"],
            "pop_hr10": pop, "ratio": ratio, "meets": ratio >= MARGIN}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper", choices=["quick", "paper", "official"])
    ap.add_argument("--simulators", default="sasrec,gru4rec")
    ap.add_argument("--datasets", default="movielens,prorl-json",
                    help="comma-separated: synthetic, movielens (ML-100K), prorl-json (ProRL's ML-1M)")
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data"),
                    help="folder holding ml-100k/ and prorl-ml-1m/ (default: ../shared/data)")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a simulator config key (TOML value), e.g. --set min_steps=200")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args(argv)
    from prorlbench.config import build_config
    from prorlbench.plugins import load_registry

    torch.set_num_threads(max(1, args.threads))
    registry = load_registry([])
    overrides = dict(_value(s) for s in args.set)
    rows: list[dict[str, Any]] = []
    print(f"{'simulator':9} {'dataset':10} {'profile':7} seed {'batch':>5} {'steps':>6} {'epochs':>6} "
          f"{'seconds':>8} {'HR@10':>7} {'pop':>7} {'ratio':>6}  >= {MARGIN}x", flush=True)
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        spec = registry.dataset(dataset)
        folder = Path(args.data_dir) / DATA_DIRS[dataset] if dataset in DATA_DIRS else None
        data = spec.load(build_config(spec.config_cls, {}, profile=args.profile), folder)
        for simulator in [s.strip() for s in args.simulators.split(",") if s.strip()]:
            for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
                r = measure(registry, simulator, dataset, data, args.profile, seed, overrides)
                rows.append(r)
                print(f"{r['simulator']:9} {r['dataset']:10} {r['profile']:7} {r['seed']:4d} {r['batch']:5d} "
                      f"{r['steps']:6d} {r['epochs']:6d} {r['seconds']:8.1f} {r['hr10']:7.4f} "
                      f"{r['pop_hr10']:7.4f} {r['ratio']:6.2f}  {'yes' if r['meets'] else 'NO'}", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(0 if all(r["meets"] for r in main(sys.argv[1:])) else 1)
