"""Issue 12 item 1: cells and caches are keyed by the content of the input files."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pandas as pd

from prorlbench.plugins import load_registry
from prorlbench.settings.runconfig import apply_overrides, parse_config_text
from prorlbench.engine.runner import run

from runner_support import BUILTINS_FOR_FAKES, write_fakes

CONFIG = textwrap.dedent('''
    [run]
    methods = ["pop"]
    datasets = ["csv"]
    simulator = "fakesim"
    ks = [1, 2]
    [cases]
    n_history = 5
    max_path_len = 4
    min_target_rank = 10
''')


def _write_csv(path, n_users: int) -> None:
    rng = np.random.default_rng(0)
    lines = ["user,item,timestamp"]
    for u in range(n_users):
        for t, i in enumerate(rng.choice(100, 20, replace=False)):
            lines.append(f"{u},{int(i)},{t}")
    path.write_text("\n".join(lines) + "\n")


def _cfg(tmp_path, out: str, cache: str, data):
    cfg = parse_config_text(CONFIG + f"\n[datasets.csv]\npath = {str(data)!r}\n", "test.toml")
    return apply_overrides(cfg, {"out": str(tmp_path / out), "cache_dir": str(tmp_path / cache),
                                 "progress": False, "device": "cpu"})


def _values(out) -> pd.Series:
    cases = pd.read_csv(out / "cases.csv.gz")
    return cases.sort_values(["case", "metric", "k"]).set_index(["case", "metric", "k"])["value"]


def test_edited_data_file_recomputes_the_cell(tmp_path, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES + ",csv")
    plug, _ = write_fakes(tmp_path)
    reg = load_registry([plug])
    data = tmp_path / "data.csv"
    _write_csv(data, 120)
    first = run(_cfg(tmp_path, "out", "cache", data), reg, report=False)
    assert not first.skipped
    again = run(_cfg(tmp_path, "out", "cache", data), reg, report=False)
    assert len(again.skipped) == 1  # unchanged input: resumed
    os.utime(data)  # touched, same content: still the same fingerprint
    assert len(run(_cfg(tmp_path, "out", "cache", data), reg, report=False).skipped) == 1
    before = _values(tmp_path / "out")
    _write_csv(data, 70)  # the same command after cutting the file
    cut = run(_cfg(tmp_path, "out", "cache", data), reg, report=False)
    assert not cut.skipped, "an edited data file must not count as already done"
    fresh = run(_cfg(tmp_path, "fresh", "cache2", data), reg, report=False)
    assert not fresh.skipped
    after = _values(tmp_path / "out")
    pd.testing.assert_series_equal(after, _values(tmp_path / "fresh"))
    assert len(after) != len(before)
