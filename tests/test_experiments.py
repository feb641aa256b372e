"""Every experiment file under experiments/ parses and resolves against the built-in plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from prorlbench.plugins import load_registry
from prorlbench.settings.runconfig import apply_overrides, read_config_file
from prorlbench.engine.runner import resolve

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiment_file_resolves(path, monkeypatch, tmp_path):
    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    cfg = apply_overrides(read_config_file(path), {"device": "cpu", "out": str(tmp_path / "out"),
                                                   "cache_dir": str(tmp_path / "cache")})
    res = resolve(cfg, load_registry())
    assert cfg.methods and list(res.method_cfgs) == cfg.methods  # every method (and variant) resolves
    assert cfg.datasets and sorted(res.dataset_cfgs) == sorted(cfg.datasets)


def test_there_are_experiment_files():
    assert {p.name for p in EXPERIMENTS} >= {"paper.toml", "paper_gpu.toml", "rl_protocol.toml",
                                                "prorl_study.toml", "prorl_study_gpu.toml"}


def test_rl_protocol_changes_one_switch_per_variant(monkeypatch, tmp_path):
    """Each prorl variant of the RL-protocol grid differs from prorl in exactly one switch."""
    import dataclasses

    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    path = Path(__file__).resolve().parents[1] / "experiments" / "rl_protocol.toml"
    cfg = apply_overrides(read_config_file(path), {"device": "cpu", "cache_dir": str(tmp_path / "cache")})
    res = resolve(cfg, load_registry())
    base = dataclasses.asdict(res.method_cfgs["prorl"])
    switch = {"warmup_frac": "schedule", "weight_decay": "schedule"}  # one switch: official schedule
    for name in cfg.variants:
        diff = {k for k, v in dataclasses.asdict(res.method_cfgs[name]).items() if base[k] != v}
        assert len({switch.get(k, k) for k in diff}) == 1, (name, diff)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the checkout")
@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiment_data_dirs_exist(path):
    """Dataset folders of the experiment files resolve (from the file's folder) to ../shared/data."""
    cfg = read_config_file(path)
    for name, table in cfg.plugin_tables.get("datasets", {}).items():
        if table.get("data_dir"):
            assert Path(table["data_dir"]).is_dir(), (path.name, name, table["data_dir"])
