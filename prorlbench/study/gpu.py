"""The official-budget study of ProRL's ML-1M on one GPU, in one short window (issue 24).

    python -m prorlbench.study.gpu [--device cuda] [--workers 4] [--deadline-min 13] [--pack gpu_out]
    python -m prorlbench.study.gpu --tiny --device cpu --run /tmp/r --pack /tmp/p   # CPU dry run

It runs the blocks of ``experiments/prorl_study_gpu.toml`` in order, cells in parallel worker
processes on the one device (``prorlbench run --workers N``: each worker has its own CUDA context):

1. ``item``: the item-policy block (every RL method, the placebo, SFT, ``prorl+valid-select`` and
   the non-RL baselines, seeds 0-2), scored by SASRec and GRU4Rec;
2. ``semid``: the semantic-ID trio, only if the time left before ``--deadline-min`` covers its
   estimate (three times the item block's slowest RL cell, over the workers).

Each block is one ``prorlbench run`` of the same folder, so a second call resumes where the first
stopped (finished cells are skipped). Then it writes ``comparisons.md`` (``prorlbench.study.claims``),
the compact per-case table at K = 1 and 10 (``prorlbench.study.percase``) and the report of every cell,
and packs at most 8 small files into ``--pack``: ``summary.csv``, ``comparisons.md``,
``percase*.csv.gz``, ``run.tar.gz`` (the run folder with its report, tables and figures, its
config, metadata, cell statuses and training logs, but without checkpoints, stored paths and the
full per-case files, which are too large: unpack it under ``results/`` to commit it) and
``gpu_study.log`` (commands, wall times, peak device memory).

``--tiny`` is the dry run that a test runs on CPU: the same blocks, methods and packing on the
built-in synthetic world with tiny models, the quick profile and one seed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "prorl_study_gpu.toml"
MAX_FILES, MAX_BYTES = 8, 16 * 2**20
LEFT_OUT = (".pt", ".paths.json.gz", ".cases.csv.gz")
"""Per-cell files left out of ``run.tar.gz``: checkpoints (policy, resume), stored paths, per-case files
(the per-case values travel in ``percase*.csv.gz``)."""

TINY_RL = {"d_model": 16, "n_heads": 2, "n_layers": 1, "sft_epochs": 1, "epochs": 1, "max_train_cases": 16,
           "batch_cases": 8, "samples_per_case": 2, "n_valid_cases": 16, "grad_var_every": 0,
           "sem_d_model": 16, "sem_enc_layers": 1, "sem_dec_layers": 1, "sem_d_ff": 32, "sem_heads": 2,
           "codebook_size": 8}
TINY_TABLES = {
    "datasets": {"synthetic": {"n_users": 120, "n_items": 60, "seq_len": 20}},
    "simulators": {"sasrec": {"epochs": 3, "lr": 1e-2, "min_epoch_steps": 4, "hidden": 16, "n_layers": 1, "inner": 32},
                   "gru4rec": {"epochs": 3, "lr": 1e-2, "min_epoch_steps": 4}},
    "cases": {"max_cases_per_split": 20, "max_path_len": 5},
}
RL_BASES = ("sft", "prorl", "prorl-no-centering", "prorl-no-positional-baseline", "naive-pg", "grpo", "rloo",
            "noise-pg")


def blocks(methods: list[str]) -> dict[str, list[str]]:
    """``item`` (everything but the ``+semid`` variants), then ``semid`` (the whole grid)."""
    return {"item": [m for m in methods if not m.endswith("+semid")], "semid": list(methods)}


def study_config(base: Path, data_dir: str | None, tiny: bool) -> dict:
    """The base TOML with absolute data paths; with ``tiny``, the synthetic world and tiny models."""
    doc = tomllib.loads(base.read_text(encoding="utf-8"))
    for name, table in doc.get("datasets", {}).items():
        if "data_dir" in table:
            table["data_dir"] = str(Path(data_dir) if data_dir else (base.parent / table["data_dir"]).resolve())
    if not tiny:
        return doc
    run = doc["run"]
    run.update(datasets=["synthetic"], profile="quick", seeds=[0], eval_simulators=["sasrec", "gru4rec"])
    doc.pop("datasets", None)
    doc.update({k: dict(v) for k, v in TINY_TABLES.items()})
    methods = doc.setdefault("methods", {})
    for m in RL_BASES:
        methods.setdefault(m, {}).update(TINY_RL)
    methods.setdefault("irn", {})["steps"] = 20
    return doc


class PeakMemory:
    """Peak device memory while it runs: ``nvidia-smi`` polled every second (CUDA), else none."""

    def __init__(self, device: str) -> None:
        self.peak_mib, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True) if device.startswith("cuda") else None

    def _poll(self) -> None:
        while not self._stop.wait(1.0):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.peak_mib = max([self.peak_mib] + [float(x) for x in out.split() if x.strip()])
            except (OSError, ValueError, subprocess.SubprocessError):
                return

    def __enter__(self) -> "PeakMemory":
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def pack(run: Path, out: Path, log: Path) -> list[Path]:
    """Write the files that come back (at most 8, each under 16 MiB) into ``out``."""
    from .percase import write as write_percase

    out.mkdir(parents=True, exist_ok=True)
    files = [f for f in (run / "summary.csv", run / "comparisons.md") if f.exists()]
    for f in files:
        shutil.copy2(f, out / f.name)
    percase = write_percase(run, out / "percase.csv.gz", max_mb=15.0)
    tar = out / "run.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(run, arcname=run.name, filter=lambda i: None if i.name.endswith(LEFT_OUT) or i.name.endswith(
            "cases.csv.gz") or i.name.endswith(".lock") else i)
    packed = [out / f.name for f in files] + percase + [tar, log]
    too_big = [f"{p.name} ({p.stat().st_size / 2**20:.1f} MiB)" for p in packed if p.stat().st_size >= MAX_BYTES]
    if too_big or len(packed) > MAX_FILES:
        print(f"gpu_study: the pack breaks its limits ({len(packed)} files; too big: {too_big})", file=sys.stderr)
    return packed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prorlbench.study.gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=CONFIG, help="the study grid (default %(default)s)")
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--workers", type=int, default=4, help="cells at once, each in its own process (default 4)")
    ap.add_argument("--run", type=Path, default=ROOT / "results" / "prorl-study-gpu", help="the run folder")
    ap.add_argument("--pack", type=Path, default=Path("gpu_out"), help="folder of the files that come back")
    ap.add_argument("--data-dir", help="ProRL's ML-1M files (default: the config's data_dir)")
    ap.add_argument("--blocks", default="item,semid", help="blocks to run, in order (default item,semid)")
    ap.add_argument("--deadline-min", type=float, default=13.0,
                    help="wall minutes for the blocks; a block that would not fit is left for a later call")
    ap.add_argument("--tiny", action="store_true", help="the CPU dry run: synthetic world, tiny models")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    args.pack.mkdir(parents=True, exist_ok=True)
    log = args.pack / "gpu_study.log"
    try:
        doc = study_config(args.config, args.data_dir, args.tiny)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"gpu_study: {args.config}: {exc}", file=sys.stderr)
        return 2
    from ..folder.tomlwriter import write_toml

    cfg = args.pack.parent / f".{args.pack.name}.study.toml"
    cfg.write_text(write_toml(doc), encoding="utf-8")
    wanted = [b.strip() for b in args.blocks.split(",") if b.strip()]
    grid = blocks(list(doc["run"]["methods"]))
    if set(wanted) - set(grid):
        print(f"gpu_study: --blocks {args.blocks!r}: expected item and/or semid", file=sys.stderr)
        return 2
    status = 0
    with open(log, "a", encoding="utf-8") as lf:
        def say(msg: str) -> None:
            print(msg, flush=True)
            lf.write(msg + "\n")
            lf.flush()

        deadline = start + 60 * args.deadline_min
        for name in wanted:
            left = deadline - time.perf_counter()
            need = estimate(args.run, args.workers) if name == "semid" else 0.0
            if left <= max(need, 30.0):
                say(f"== block {name}: skipped ({left:.0f} s left, needs about {need:.0f} s); call again to run it")
                continue
            cmd = [sys.executable, "-m", "prorlbench.cli", "run", "--config", str(cfg), "--methods", ",".join(grid[name]),
                   "--device", args.device, "--workers", str(args.workers), "--out", str(args.run), "--no-progress"]
            say(f"== block {name}: {' '.join(cmd[2:])}")
            t0 = time.perf_counter()
            with PeakMemory(args.device) as mem:
                rc = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, timeout=max(left, 1.0)).returncode
            say(f"== block {name}: exit {rc}, wall {time.perf_counter() - t0:.1f} s"
                + (f", peak device memory {mem.peak_mib:.0f} MiB" if mem.peak_mib else ""))
            status = status or rc
        report = [sys.executable, "-m", "prorlbench.cli", "report", str(args.run), "--all-cells"]
        rc = subprocess.run(report, stdout=lf, stderr=subprocess.STDOUT).returncode
        from .claims import build

        if (args.run / "config.toml").exists():
            (args.run / "comparisons.md").write_text(build(args.run) + "\n", encoding="utf-8")
        say(f"== report exit {rc}; total wall {time.perf_counter() - start:.1f} s")
    packed = pack(args.run, args.pack, log)
    for p in packed:
        print(f"{p} ({p.stat().st_size / 2**20:.2f} MiB)")
    return status or rc


def estimate(run: Path, workers: int) -> float:
    """Seconds the semantic-ID trio needs: 3 seeds x 3 cells x 4.4 times the slowest item-policy RL
    cell (the semantic-ID policy samples about 4.4 times fewer paths a second), over the workers."""
    import pandas as pd

    cells = run / "cells.csv"
    if not cells.exists():
        return float("inf")
    c = pd.read_csv(cells)
    rl = c[(c["status"] == "ok") & c["method"].isin(RL_BASES[1:])]["seconds"]
    return float("inf") if rl.empty else float(rl.max()) * 4.4 * 9 / max(1, min(workers, 9))


if __name__ == "__main__":
    raise SystemExit(main())
