"""``benchmarks/gpu.sh`` (issue 26's table in one run) works: its dry run on the CPU with tiny
worlds prints every section and the summary, and compares with a baseline checkout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_sh_dry_run_prints_every_figure(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "TINY": "1", "COMPILE": "off", "SKIP_PIP": "1", "STEPS": "2",
           "OUT": str(tmp_path / "out"), "CACHE_DIR": str(tmp_path / "cache"), "BASELINE_DIR": str(REPO),
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for section in ("== 1. scoring", "== 2. RL throughput", "== 3. RL throughput", "== 4. one official-profile",
                    "== 5. the same throughputs", "== summary"):
        assert section in out, section
    summary = out.split("== summary")[1]
    assert summary.count("one-pass / floor") == 2  # both catalog sizes: one-pass/floor and two-pass/one-pass
    assert "[paper, item] B=4 G=2 (eager;" in summary and "[paper, semantic-id/constrained] B=4 G=2 (eager;" in summary
    assert summary.count("sampled paths/s") == 4  # this code's two policies, and the baseline's
    assert "official item-policy RL cell (prorl, SFT from the cache)" in summary
    assert "ms per step" in summary
    for log in ("scoring", "rl_throughput_item", "rl_throughput_semantic-id", "official_cell",
                "baseline_rl_throughput_item"):
        assert (tmp_path / "out" / f"{log}.log").stat().st_size > 0
