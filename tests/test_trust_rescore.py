"""Issue 12, stored paths and re-scoring: `prorlbench rescore` reproduces a run's tables without
retraining, scores the same paths with another simulator exactly as a fresh run would, and a
change of metrics / eval simulators / ks only re-scores."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from prorlbench.cli import main
from prorlbench.errors import UserError
from prorlbench.engine.rescore import rescore, show_paths
from prorlbench.folder.results import RunFolder
from prorlbench.settings.runconfig import apply_overrides
from prorlbench.engine.runner import run
from prorlbench.folder.store import read_paths

from trust_support import fits, setup

METHODS = ["behaving", "pop", "random"]


def _per_case(out, simulator=None) -> pd.DataFrame:
    df = pd.read_csv(Path(out) / "cases.csv.gz", dtype={"case": str})
    if simulator:
        df = df[df.simulator == simulator].drop(columns="simulator")
    return df.sort_values(["method", "seed", "case", "metric", "k"]).reset_index(drop=True)


def test_rescore_reproduces_summary_byte_for_byte_without_fitting(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=METHODS, seeds=[0, 1])
    first = run(cfg, reg)
    assert not first.failed and fits(tmp_path) == 2
    out = Path(cfg.out)
    summary = (out / "summary.csv").read_bytes()
    cases = (out / "cases.csv.gz").read_bytes()
    for p in [out / "summary.csv", out / "cases.csv.gz", *out.glob("cells/*.cases.csv.gz")]:
        p.unlink()  # re-scoring must rebuild them from the stored paths alone
    again = rescore(out, cache_dir=str(tmp_path / "cache"), plugins_dirs=cfg.plugins_dirs, progress=False)
    assert fits(tmp_path) == 2, "rescore must not fit any method"
    assert not again.failed and not again.skipped
    assert (out / "summary.csv").read_bytes() == summary
    assert (out / "cases.csv.gz").read_bytes() == cases
    # and a plain re-run afterwards finds every cell done
    assert len(run(cfg, reg, report=False).skipped) == 6 and fits(tmp_path) == 2


def test_rescore_with_another_simulator_equals_a_fresh_run(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=METHODS, seeds=[0, 1])
    run(cfg, reg, report=False)
    n = fits(tmp_path)
    res = rescore(cfg.out, eval_simulators=["fakesim", "fakesim2"], cache_dir=str(tmp_path / "cache"),
                  plugins_dirs=cfg.plugins_dirs,
                  progress=False, report=False)
    assert not res.failed and fits(tmp_path) == n
    fresh = run(apply_overrides(cfg, {"out": str(tmp_path / "fresh"), "eval_simulators": ["fakesim2"]}), reg,
                report=False)
    assert not fresh.failed
    pd.testing.assert_frame_equal(_per_case(cfg.out, "fakesim2"), _per_case(tmp_path / "fresh", "fakesim2"))
    assert len(_per_case(cfg.out, "fakesim")) == len(_per_case(cfg.out, "fakesim2")) > 0


def test_metrics_eval_simulators_and_ks_leave_the_training_fingerprint(tmp_path, monkeypatch):
    """Today installing a new metric plugin retrained every RL cell; now it only re-scores."""
    reg, cfg = setup(tmp_path, monkeypatch, methods=["behaving"], seeds=[0])
    run(apply_overrides(cfg, {"metrics": ["ioi", "ctr"]}), reg, report=False)
    assert fits(tmp_path) == 1
    for change in ({"metrics": ["ioi", "ctr", "len"]}, {"eval_simulators": ["fakesim", "fakesim2"]},
                   {"ks": [1]}):
        res = run(apply_overrides(cfg, change), reg, report=False)
        assert not res.failed and len(res.computed) == 1
        assert fits(tmp_path) == 1, change
    # more candidates than are stored: the cell is recomputed
    run(apply_overrides(cfg, {"ks": [1, 3]}), reg, report=False)
    assert fits(tmp_path) == 2


def test_cells_store_paths_with_case_ids_and_policy_weights(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["behaving"])
    run(cfg, reg, report=False)
    folder = RunFolder(cfg.out)
    cases, cands = read_paths(folder.cell_paths("behaving__tinyfake__s0"))
    assert [c.case_id for c in cases] == [f"test{i}" for i in range(12)]
    assert all(len(c) == 2 for c in cands)  # max(ks) = 2 candidates per case
    state = torch.load(folder.cell_policy("behaving__tinyfake__s0"), weights_only=True)
    assert set(state) == {"weight", "bias"}


def test_rescore_refuses_cells_it_cannot_rescore(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    run(cfg, reg, report=False)
    with pytest.raises(UserError, match="only 2 candidates are stored"):
        rescore(cfg.out, ks=[1, 5], cache_dir=str(tmp_path / "cache"), plugins_dirs=cfg.plugins_dirs, progress=False)
    RunFolder(cfg.out).cell_paths("pop__tinyfake__s0").write_bytes(b"damaged")
    with pytest.raises(UserError, match="cannot be re-scored"):
        rescore(cfg.out, cache_dir=str(tmp_path / "cache"), plugins_dirs=cfg.plugins_dirs, progress=False)


def test_paths_command_prints_a_case(tmp_path, monkeypatch, capsys):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    run(cfg, reg, report=False)
    plug = tmp_path / "fakeplugins"
    code = main(["paths", cfg.out, "--method", "pop", "--case", "test3", "--k", "1", "--plugins-dir", str(plug)])
    out = capsys.readouterr().out
    assert code == 0, out
    cases, cands = read_paths(RunFolder(cfg.out).cell_paths("pop__tinyfake__s0"))
    assert f"case 3 of 12 (id test3" in out
    assert "history:   " + ", ".join(str(i) for i in cases[3].history) in out
    assert "path 1 (" in out and "path 2 (" not in out
    assert "ioi@1" in out
    code = main(["paths", cfg.out, "--method", "nope"])
    assert code == 2 and "not in this run" in capsys.readouterr().err


def test_rescore_cli(tmp_path, monkeypatch, capsys):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    run(cfg, reg)
    code = main(["rescore", cfg.out, "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                 "--eval-simulator", "fakesim2", "--plugins-dir", str(tmp_path / "fakeplugins")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "re-scored from their stored paths" in captured.out
    assert set(pd.read_csv(Path(cfg.out) / "summary.csv")["simulator"]) == {"fakesim2"}


def test_a_failed_rescore_keeps_the_stored_paths(tmp_path, monkeypatch):
    from prorlbench.seq import evaluate

    reg, cfg = setup(tmp_path, monkeypatch, methods=["behaving"])
    run(cfg, reg, report=False)
    real = evaluate.evaluate_paths

    def broken(*a, **kw):
        raise RuntimeError("scorer broke")

    monkeypatch.setattr(evaluate, "evaluate_paths", broken)
    res = rescore(cfg.out, cache_dir=str(tmp_path / "cache"), plugins_dirs=cfg.plugins_dirs, progress=False, report=False)
    assert [c.error.startswith("re-scoring stored paths failed") for c in res.failed] == [True]
    assert RunFolder(cfg.out).cell_paths("behaving__tinyfake__s0").exists()
    monkeypatch.setattr(evaluate, "evaluate_paths", real)
    res = rescore(cfg.out, cache_dir=str(tmp_path / "cache"), plugins_dirs=cfg.plugins_dirs, progress=False, report=False)
    assert not res.failed and fits(tmp_path) == 1


def test_rescore_with_an_unused_simulator_table_uses_it(tmp_path, monkeypatch):
    """config.toml keeps [simulators.NAME] tables the run did not use, for a later rescore."""
    from prorlbench.settings.runconfig import read_config_file

    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    cfg.plugin_tables["simulators"]["fakesim2"] = {"dim": 4}
    run(cfg, reg, report=False)
    stored = read_config_file(Path(cfg.out) / "config.toml", trusted=True)
    assert stored.plugin_tables["simulators"]["fakesim2"] == {"dim": 4}


def test_a_changed_backbone_config_recomputes_only_the_cells_that_used_it(tmp_path, monkeypatch):
    """Eval simulators left the training fingerprint; the backbones a method asked for did not."""
    reg, cfg = setup(tmp_path, monkeypatch, methods=["uses-backbone", "pop"])
    cfg.plugin_tables["methods"]["uses-backbone"] = {"kind": "fakesim2"}
    run(cfg, reg, report=False)
    status = json.loads(RunFolder(cfg.out).cell_status("uses-backbone__tinyfake__s0").read_text())
    assert set(status["backbones"]) == {"fakesim2"}
    assert len(run(cfg, reg, report=False).skipped) == 2
    cfg.plugin_tables["simulators"]["fakesim2"] = {"dim": 4}
    res = run(cfg, reg, report=False)
    assert [c.method for c in res.computed] == ["uses-backbone"] and not res.failed


def test_paths_labels_items_with_raw_ids_and_titles():
    from prorlbench.api import Interactions
    from prorlbench.engine.rescore import _label

    data = Interactions(name="d", n_items=2, sequences={}, item_ids=("50", "7"),
                        item_names=("Star Wars (1977)", ""))
    assert _label(0, data) == "0 (id 50) Star Wars (1977)"
    assert _label(1, data) == "1 (id 7)"
    assert _label(1, None) == "1"


def test_run_says_which_cells_were_only_rescored(tmp_path, monkeypatch, capsys):
    from prorlbench.cli import main

    _, cfg = setup(tmp_path, monkeypatch, methods=["behaving"])
    args = ["run", "--config", str(tmp_path / "fake.toml"), "--methods", "behaving", "--plugins-dir",
            str(tmp_path / "fakeplugins"), "--out", cfg.out, "--cache-dir", cfg.cache_dir, "--no-progress",
            "--device", "cpu"]
    assert main(args) == 0
    assert main(args + ["--metrics", "ioi"]) == 0
    assert "1 cells (0 computed, 1 re-scored from stored paths, 0 already done" in capsys.readouterr().out
    assert fits(tmp_path) == 1
