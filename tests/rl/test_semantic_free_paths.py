"""Free semantic-ID decoding (the official profile on data that ships codes) can write a code that
names no item. generate() shows it as the unknown item -1, which the path rules allow and the
metrics drop and count as invalid; before, it returned the policy's internal ``-1 - key`` and the
harness failed the cell (an official semantic-ID cell could not finish)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = """\
[run]
methods = ["prorl+semfree"]
datasets = ["synthetic"]
seeds = [0]
ks = [1, 5]
allow_weak_simulator = true
[datasets.synthetic]
n_users = 120
n_items = 60
seq_len = 20
[simulators.sasrec]
epochs = 3
lr = 1e-2
min_epoch_steps = 4
hidden = 16
n_layers = 1
inner = 32
[cases]
max_cases_per_split = 20
max_path_len = 5
[variants."prorl+semfree"]
method = "prorl"
policy = "semantic-id"
decoding = "free"
sem_d_model = 16
sem_enc_layers = 1
sem_dec_layers = 1
sem_d_ff = 32
sem_heads = 2
codebook_size = 8
sft_epochs = 1
epochs = 1
max_train_cases = 16
batch_cases = 8
samples_per_case = 2
"""


@pytest.mark.slow
def test_a_free_decoding_cell_finishes_and_counts_codes_of_no_item_as_invalid(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    env = dict(os.environ, PRORLBENCH_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "prorlbench.cli", "run", "--config", str(tmp_path / "c.toml"),
                        "--out", str(tmp_path / "out"), "--no-progress"], env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-2000:]
    d = pd.read_csv(tmp_path / "out" / "cells" / "prorl+semfree__synthetic__s0.cases.csv.gz")
    inv = d[(d["metric"] == "invalid") & (d["k"] == 1)]["value"]
    # a one-epoch policy of tiny codes writes codes of no item; they are counted, not fatal
    assert inv.mean() > 0
    import gzip
    import json

    with gzip.open(tmp_path / "out" / "cells" / "prorl+semfree__synthetic__s0.paths.json.gz", "rt") as f:
        stored = json.load(f)["paths"]  # [case][candidate][position]
    ids = [i for case in stored for cand in case for i in cand]
    assert ids and min(ids) == -1  # the unknown item, never the policy's internal -1 - key
