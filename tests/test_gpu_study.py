"""The GPU study script of issue 24 works the first time it meets a GPU: its CPU dry run (``--tiny``:
the same blocks, methods, worker processes and packing on a tiny synthetic world) runs end to end,
resumes, and packs at most 8 files under 16 MiB from which every comparison can be recomputed."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from prorlbench.study.gpu import CONFIG, MAX_BYTES, MAX_FILES, blocks, study_config

REPO = Path(__file__).resolve().parent.parent


def test_the_blocks_are_the_issues_scope():
    doc = study_config(CONFIG, None, tiny=False)
    run = doc["run"]
    assert run["profile"] == "official" and run["eval_simulators"] == ["sasrec", "gru4rec"]
    grid = blocks(run["methods"])
    assert set(grid["item"]) == {"sft", "prorl", "prorl-no-centering", "prorl-no-positional-baseline", "naive-pg",
                                 "grpo", "rloo", "noise-pg", "prorl+valid-select", "random", "pop", "rec2inf",
                                 "shortest-path", "ipg", "irn"}
    assert set(grid["semid"]) - set(grid["item"]) == {"sft+semid", "prorl+semid", "noise-pg+semid"}
    # the item block is the item policy; official would pick the semantic-ID policy on this data
    for m in ("sft", "prorl", "prorl-no-centering", "prorl-no-positional-baseline", "naive-pg", "grpo", "rloo",
              "noise-pg"):
        assert doc["methods"][m]["policy"] == "item"
    assert doc["variants"]["prorl+valid-select"] == {"method": "prorl", "select": "valid_ioi"}
    assert Path(doc["datasets"]["prorl-json"]["data_dir"]).is_absolute()


def _dry_run(tmp_path: Path) -> tuple[int, str]:
    env = dict(os.environ, PRORLBENCH_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "prorlbench.study.gpu", "--tiny", "--device", "cpu", "--workers", "2",
           "--run", str(tmp_path / "run"), "--pack", str(tmp_path / "pack")]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.slow
def test_cpu_dry_run_end_to_end_resumes_and_packs_small(tmp_path):
    rc, out = _dry_run(tmp_path)
    assert rc == 0, out[-3000:]
    assert "== block item: exit 0" in out and "== block semid: exit 0" in out
    pack = tmp_path / "pack"
    files = sorted(p.name for p in pack.iterdir())
    assert files == ["comparisons.md", "gpu_study.log", "percase.csv.gz", "run.tar.gz", "summary.csv"]
    assert len(files) <= MAX_FILES and all((pack / f).stat().st_size < MAX_BYTES for f in files)

    summary = pd.read_csv(pack / "summary.csv")
    assert {"prorl", "prorl+valid-select", "noise-pg", "sft", "irn", "prorl+semid", "sft+semid",
            "noise-pg+semid"} <= set(summary["method"])
    cmp = (pack / "comparisons.md").read_text()
    for row in ("| synthetic | sasrec | `prorl` | `sft` | IoI@1", "| synthetic | gru4rec | `prorl` | `sft` | IoI@1",
                "| synthetic | sasrec | `prorl+valid-select` | `noise-pg` | IoI@1",
                "| synthetic | gru4rec | `prorl+semid` | `sft+semid` | IoI@1"):
        assert row in cmp, row

    # every comparison recomputes from the packed per-case table alone (a committed folder)
    from prorlbench.study.claims import build

    committed = tmp_path / "committed"
    with tarfile.open(pack / "run.tar.gz") as t:
        names = t.getnames()
        t.extractall(committed, filter="data")
    assert not any(n.endswith((".pt", ".paths.json.gz", "cases.csv.gz")) for n in names)
    folder = committed / "run"
    assert (folder / "summary.md").exists() and (folder / "config.toml").exists()
    (pack / "percase.csv.gz").rename(folder / "percase.csv.gz")
    assert build(folder).split("\n", 1)[1] == build(tmp_path / "run").split("\n", 1)[1]

    # a second call resumes: nothing is computed again, and the pack is written anew
    rc, out = _dry_run(tmp_path)
    assert rc == 0, out[-3000:]
    log = (pack / "gpu_study.log").read_text()
    assert ", 0 computed," in log and log.count("== block item: exit 0") == 2
