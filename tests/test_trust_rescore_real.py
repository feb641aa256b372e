"""Acceptance of issue 12 on the real pipeline (tiny synthetic world, SASRec and GRU4Rec, pop and
SFT): `rescore` reproduces summary.csv byte for byte; with another evaluating simulator it equals
a fresh run's values for the same paths; neither builds a FitContext (no method is fitted) nor
trains a simulator."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from prorlbench import api
from prorlbench.seq import seqtrain
from prorlbench.plugins import load_registry
from prorlbench.engine.rescore import rescore
from prorlbench.settings.runconfig import apply_overrides, parse_config_text
from prorlbench.engine.runner import run
from prorlbench.folder.store import read_paths

# Both simulators learn (lr 1e-2, 3 epochs of at least 4 steps) and beat popularity: a weak one
# would fail the dataset's cells (prorlbench.seq.strength).
CONFIG = textwrap.dedent('''
    [run]
    methods = ["pop", "sft"]
    seeds = [0]
    ks = [1, 3]
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
    [simulators.gru4rec]
    epochs = 3
    lr = 1e-2
    min_epoch_steps = 4
    hidden = 16
    embedding = 16
    [methods.sft]
    sft_epochs = 2
    d_model = 16
    n_layers = 1
    n_valid_cases = 16
    [cases]
    max_cases_per_split = 20
    max_path_len = 4
''')


def _cfg(tmp_path, out, **kw):
    cfg = parse_config_text(CONFIG, "tiny.toml")
    return apply_overrides(cfg, {"out": str(tmp_path / out), "cache_dir": str(tmp_path / "cache"),
                                 "progress": False, "device": "cpu", **kw})


def _no_training(monkeypatch):
    def refuse(*a, **kw):
        raise AssertionError("re-scoring must not fit a method or train a simulator")

    monkeypatch.setattr(api.FitContext, "__init__", refuse)
    monkeypatch.setattr(seqtrain, "train_model", refuse)


def _scores(out, simulator) -> pd.DataFrame:
    df = pd.read_csv(Path(out) / "cases.csv.gz", dtype={"case": str})
    df = df[df.simulator == simulator].drop(columns="simulator")
    return df.sort_values(["method", "seed", "case", "metric", "k"]).reset_index(drop=True)


def test_rescore_on_the_real_pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PLUGINS", "synthetic,sasrec,gru4rec,simple_baselines,rl_family,metrics")
    reg = load_registry()
    first = run(_cfg(tmp_path, "run"), reg)
    assert not first.failed
    out = tmp_path / "run"
    summary = (out / "summary.csv").read_bytes()
    policy = torch.load(out / "cells" / "sft__synthetic__s0.policy.pt", weights_only=True)
    assert policy and all(isinstance(v, torch.Tensor) for v in policy.values())
    # a fresh run scored by GRU4Rec (this also puts GRU4Rec in the cache)
    fresh = run(_cfg(tmp_path, "fresh", eval_simulators=["gru4rec"]), reg, report=False)
    assert not fresh.failed
    for m in ("pop", "sft"):  # the same paths: generation does not depend on the eval simulator
        a = read_paths(out / "cells" / f"{m}__synthetic__s0.paths.json.gz")
        b = read_paths(tmp_path / "fresh" / "cells" / f"{m}__synthetic__s0.paths.json.gz")
        assert a == b

    with monkeypatch.context() as mp:
        _no_training(mp)
        (out / "summary.csv").unlink()
        again = rescore(out, cache_dir=str(tmp_path / "cache"), progress=False)
        assert not again.failed
        assert (out / "summary.csv").read_bytes() == summary
        other = rescore(out, eval_simulators=["gru4rec"], cache_dir=str(tmp_path / "cache"), progress=False)
        assert not other.failed
    pd.testing.assert_frame_equal(_scores(out, "gru4rec"), _scores(tmp_path / "fresh", "gru4rec"))
    assert set(pd.read_csv(out / "summary.csv")["simulator"]) == {"gru4rec"}
