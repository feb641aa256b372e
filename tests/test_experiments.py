"""Every experiment file under experiments/ parses and resolves against the built-in plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from prorlbench.plugins import load_registry
from prorlbench.runconfig import apply_overrides, read_config_file
from prorlbench.runner import resolve

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiment_file_resolves(path, monkeypatch, tmp_path):
    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    cfg = apply_overrides(read_config_file(path), {"device": "cpu", "out": str(tmp_path / "out"),
                                                   "cache_dir": str(tmp_path / "cache")})
    res = resolve(cfg, load_registry())
    assert cfg.methods and sorted(res.method_cfgs) == sorted(cfg.methods)  # every method (and variant) resolves
    assert cfg.datasets and sorted(res.dataset_cfgs) == sorted(cfg.datasets)


def test_there_are_experiment_files():
    assert {p.name for p in EXPERIMENTS} >= {"paper.toml", "paper_gpu.toml"}
