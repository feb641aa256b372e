"""End to end through the CLI on the real shared data (skipped with a reason when it is absent).

Issue acceptance: `prorlbench run --methods random,pop --datasets movielens --data-dir
../shared/data/ml-100k` works, and `prorl-json` on ../shared/data/prorl-ml-1m yields 6,928 test
cases. Simulator epochs are cut to keep CI fast; the full-size simulator is tested elsewhere.
"""

from __future__ import annotations

import json

import pandas as pd

from runner_support import cli_env, run_cli

# One simulator epoch keeps CI fast; that SASRec is below popularity (HR@10 0.043 < 0.053 on
# ML-100K), which a run refuses unless allowed: these tests are about the CLI on real data.
# tests/redteam/test_rt_simulators.py checks the full quick-profile simulators beat popularity.
FAST = """
[simulators.sasrec]
epochs = 1
"""
ALLOW_WEAK = "--allow-weak-simulator"


def _run(tmp_path, shared, dataset, data_dir, extra=()):
    cfg = tmp_path / "fast.toml"
    cfg.write_text(FAST)
    out = tmp_path / "out"
    proc = run_cli(["run", "--methods", "random,pop", "--datasets", dataset, "--data-dir", str(data_dir),
                    "--config", str(cfg), "--out", str(out), "--no-progress", "--device", "cpu", ALLOW_WEAK, *extra],
                   env=cli_env(allow=None, cache=tmp_path / "cache"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc


def test_movielens_100k_run_via_cli(tmp_path, shared_data):
    out, proc = _run(tmp_path, shared_data, "movielens", shared_data / "ml-100k")
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["method"]) == {"random", "pop"}
    assert set(summary["dataset"]) == {"movielens"}
    assert {"ioi", "ior", "ctr", "coherence", "sr10", "len", "invalid"} <= set(summary["metric"])
    assert "| pop" in proc.stdout and "| random" in proc.stdout
    for name in ("config.toml", "cases.csv.gz", "cells.csv", "summary.md", "summary.tex", "metrics.png"):
        assert (out / name).stat().st_size > 0, name


def test_prorl_json_run_has_the_released_6928_test_cases(tmp_path, shared_data):
    out, _ = _run(tmp_path, shared_data, "prorl-json", shared_data / "prorl-ml-1m", ["--ks", "1"])
    status = json.loads((out / "cells" / "random__prorl-json__s0.json").read_text())
    assert status["status"] == "ok"
    assert status["n_cases"] == 6928
    cases = pd.read_csv(out / "cases.csv.gz")
    assert cases[cases["method"] == "pop"]["case"].nunique() == 6928


def test_two_movielens_variants_are_two_datasets(tmp_path, shared_data):
    """Dataset variants (issue 16): ML-100K and a cut of it (only users with >= 100 ratings) in one
    grid and one table, each its own dataset with its own simulator and cases."""
    cfg = tmp_path / "variants.toml"
    cfg.write_text(FAST + f'''
[run]
datasets = ["ml100k", "ml100k-active"]

[datasets.ml100k]
plugin = "movielens"
data_dir = "{(shared_data / 'ml-100k').as_posix()}"

[datasets.ml100k-active]
plugin = "movielens"
data_dir = "{(shared_data / 'ml-100k').as_posix()}"
min_seq_len = 100
''')
    out = tmp_path / "out"
    proc = run_cli(["run", "--methods", "random,pop", "--config", str(cfg), "--out", str(out), "--quiet",
                    "--device", "cpu", ALLOW_WEAK], env=cli_env(allow=None, cache=tmp_path / "cache"), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["dataset"]) == {"ml100k", "ml100k-active"}
    cases = summary.groupby("dataset")["n_cases"].max()
    assert cases["ml100k-active"] < cases["ml100k"]     # the cut has fewer users, so fewer cases
    assert "## ml100k (eval: sasrec)" in proc.stdout and "## ml100k-active (eval: sasrec)" in proc.stdout
