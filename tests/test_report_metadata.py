"""The report shows metrics and methods as their specs say (metadata.json), without a registry."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from matplotlib.colors import to_hex

from prorlbench.report import write_report
from prorlbench.report.colors import KNOWN

CASE_COLS = ["method", "dataset", "simulator", "seed", "case", "metric", "k", "value"]


def _run(tmp_path, metadata=None):
    rows = [(m, "toy", "sim", 0, f"c{i}", metric, 1, v + (0.5 if m == "b" else 0.0))
            for m in ("a", "b") for metric in ("sr20", "ioi") for i, v in enumerate([0.1234, 0.2345])]
    pd.DataFrame(rows, columns=CASE_COLS).to_csv(tmp_path / "cases.csv.gz", index=False)
    if metadata is not None:
        (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    return tmp_path


def test_a_plugin_metric_shows_its_own_name_decimals_and_direction(tmp_path):
    meta = {"metrics": {"sr20": {"display": "SR@20", "decimals": 2, "headline": True, "higher_is_better": False},
                        "ioi": {"display": "IoI", "decimals": 3, "headline": True, "higher_is_better": True}},
            "methods": {"a": {"display": "Method A"}, "b": {"display": "b"}}}
    md = write_report(_run(tmp_path, meta), plots=False)
    header = next(ln for ln in md.splitlines() if ln.startswith("| Method"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == ["SR@20 ↓", "IoI ↑"]
    row_a = next(ln for ln in md.splitlines() if ln.startswith("| Method A"))
    assert "**0.18**" in row_a and "0.179" in row_a  # SR@20 two decimals, lower is better: a wins


def test_without_metadata_a_plugin_metric_shows_its_raw_name(tmp_path):
    md = write_report(_run(tmp_path), plots=False)
    header = next(ln for ln in md.splitlines() if ln.startswith("| Method"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == ["IoI ↑", "sr20"]


def test_the_runner_stores_the_metadata_of_its_metrics_and_methods(tmp_path, monkeypatch):
    from runner_support import BUILTINS_FOR_FAKES, write_fakes

    from prorlbench.plugins import load_registry
    from prorlbench.settings.runconfig import apply_overrides, read_config_file
    from prorlbench.engine.runner import run

    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES)
    plug, cfg_path = write_fakes(tmp_path)
    cfg = apply_overrides(read_config_file(cfg_path), {
        "out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache"), "progress": False, "device": "cpu",
        "methods": ["pop"], "metrics": ["ior", "ioi"], "plugins_dirs": [str(plug)]})
    registry = load_registry(cfg.plugins_dirs)
    run(cfg, registry, report=False)
    doc = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert list(doc["metrics"]) == ["ioi", "ior"]  # registration order, not the order asked for
    ior = registry.metric("ior")
    assert doc["metrics"]["ior"] == {"display": ior.display, "decimals": ior.decimals, "headline": ior.headline,
                                     "higher_is_better": ior.higher_is_better}
    assert doc["methods"] == {"pop": {"display": "pop", "family": "baseline", "color": KNOWN["pop"]}}  # its name's colour


def test_display_colors_reach_the_metadata_the_run_folder_and_the_figures(tmp_path, monkeypatch):
    """``[display] colors`` in a config file: checked when read, stored in metadata.json and in the
    run folder's config.toml, and drawn by a later ``report`` (which reads only the folder)."""
    from runner_support import BUILTINS_FOR_FAKES, write_fakes

    from prorlbench.errors import ConfigError
    from prorlbench.plugins import load_registry
    from prorlbench.report import figures
    from prorlbench.settings.runconfig import apply_overrides, parse_config_text, read_config_file
    from prorlbench.engine.runner import run

    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES)
    plug, cfg_path = write_fakes(tmp_path)
    cfg_path.write_text(cfg_path.read_text() + '\n[display]\npop = "Popularity"\ncolors = {pop = "tab:red"}\n')
    cfg = apply_overrides(read_config_file(cfg_path), {
        "out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache"), "progress": False, "device": "cpu",
        "methods": ["pop", "random"], "metrics": ["ioi"], "plugins_dirs": [str(plug)]})
    run(cfg, load_registry(cfg.plugins_dirs), report=False)
    out = tmp_path / "out"
    doc = json.loads((out / "metadata.json").read_text())
    assert doc["methods"]["pop"]["color"] == "#d62728" and doc["methods"]["random"]["color"] == KNOWN["random"]
    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, *a, **k: drawn.append(fig) or [path])
    write_report(out, plots="summary")
    bars = {p.get_gid(): to_hex(p.get_facecolor()) for ax in drawn[0].axes for p in ax.patches if p.get_gid()}
    assert bars == {"pop": "#d62728", "random": KNOWN["random"]}
    with pytest.raises(ConfigError, match=r"colors key 'pop': 'nocolour' is not a colour"):
        parse_config_text('[display]\ncolors = {pop = "nocolour"}\n', "x.toml")
