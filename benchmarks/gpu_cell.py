"""Benchmark: the time of one ``official``-profile RL cell with the item policy (issue 26's table).

Usage (from the repository root)::

    python -m benchmarks.gpu_cell --device cuda --data-dir .gpu_data/prorl-ml-1m --cache-dir DIR
    python -m benchmarks.gpu_cell --tiny --device cpu        # a dry run on a tiny synthetic world

Runs ``prorlbench run`` (the Python runner, in this process) on ProRL's ML-1M (``prorl-json``)
with ``--profile official`` and ``policy = "item"`` (the profile's ``auto`` would pick the
semantic-ID policy, since the dataset ships codes), methods ``sft`` then ``prorl``: the ``sft``
cell trains the stage-1 policy and caches it, so the ``prorl`` cell's time is the RL stage
(official budget: 50 epochs of 512 x 16 paths), its validation, generation and scoring. The
training simulator keeps its ``quick`` profile (its values are set in the SASRec table), so a
simulator cached by ``benchmarks.rl_throughput`` in the same ``--cache-dir`` is used again.
``--set KEY=VALUE`` sets further RL keys (``compile_sampling=true``, ``autocast=bf16``).
Prints each cell's seconds (``status.seconds``) and its peak GPU memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from prorlbench.settings.runconfig import RunConfig
from prorlbench.engine.runner import run

QUICK_SASREC = {"epochs": 15, "patience": 3, "batch_size": 128, "min_epoch_steps": 1}
"""SASRec's quick profile, written out: under --profile official the simulator would otherwise
take the paper profile (300 epochs)."""

TINY_RL = {"d_model": 16, "n_layers": 1, "batch_cases": 8, "samples_per_case": 2, "epochs": 2, "sft_epochs": 1,
           "n_valid_cases": 16, "max_train_cases": 32}


def parse_value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--data-dir", default=".gpu_data/prorl-ml-1m", help="ProRL's ML-1M cases (prorl-json)")
    ap.add_argument("--cache-dir", default="", help="simulator and SFT cache (default: a fresh temporary folder)")
    ap.add_argument("--out", default="", help="results folder (default: a fresh temporary folder)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an RL key for both cells")
    ap.add_argument("--tiny", action="store_true", help="a tiny synthetic world and policy (a dry run, not a figure)")
    args = ap.parse_args(argv)
    rl = {"policy": "item"}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            ap.error(f"--set: expected KEY=VALUE, got {item!r}")
        rl[key] = parse_value(value)
    cache = args.cache_dir or tempfile.mkdtemp(prefix="prorlbench-gpu-cell-cache.")
    out = args.out or tempfile.mkdtemp(prefix="prorlbench-gpu-cell.")
    if args.tiny:
        cfg = RunConfig(methods=["sft", "prorl"], datasets=["synthetic"], simulator="oracle", profile="official",
                        device=args.device, cache_dir=cache, out=out, progress=False, workers=0)
        cfg.plugin_tables["datasets"]["synthetic"] = {"n_users": 60, "n_items": 40}
        cfg.cases = {"n_history": 4, "max_path_len": 3, "min_target_rank": 5}
        rl.update(TINY_RL)
    else:
        cfg = RunConfig(methods=["sft", "prorl"], datasets=["prorl-json"], profile="official", device=args.device,
                        data_dir=args.data_dir, cache_dir=cache, out=out, progress=False, workers=0)
        cfg.plugin_tables["simulators"]["sasrec"] = dict(QUICK_SASREC)
    for method in ("sft", "prorl"):
        cfg.plugin_tables["methods"][method] = dict(rl)
    t0 = time.perf_counter()
    result = run(cfg, report=False)
    wall = time.perf_counter() - t0
    figures: dict[str, float] = {"wall_s": wall}
    keys = ", ".join(f"{k}={v}" for k, v in rl.items())
    for st in result.cells:
        figures[f"{st.method}_s"] = st.seconds or float("nan")
        mem = f", peak GPU memory {st.peak_gpu_mib:,.0f} MiB" if st.peak_gpu_mib is not None else ""
        print(f"official-profile cell {st.method} on {st.dataset} ({keys}): {st.status}, "
              f"{st.seconds:.1f} s{mem}" + (f" ({st.error})" if st.error else ""), flush=True)
    print(f"official item-policy RL cell (prorl, SFT from the cache): {figures.get('prorl_s', float('nan')):.1f} s; "
          f"whole run incl. data, simulator and sft: {wall:.1f} s")
    if result.failed:
        sys.exit(1)
    return figures


if __name__ == "__main__":
    main()
