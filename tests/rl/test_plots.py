"""Training-curve plots from a long-format train log: one curated figure per dataset (more with
``mode="all"``). Colours and legends of every figure: tests/test_report_figures.py."""

from __future__ import annotations

import pandas as pd

from prorlbench.report import plot_training
from prorlbench.report.colors import KNOWN, method_colors


def _log() -> pd.DataFrame:
    rows = []
    for ds in ("synthetic", "movielens"):
        for method in ("prorl", "naive-pg"):
            for seed in (0, 1):
                for step in range(80):
                    rows.append((method, ds, seed, step, "path_len", 2 + step * (0.3 if method == "naive-pg" else 0)))
                    if step % 4 == 0:
                        rows.append((method, ds, seed, step, "grad_var", 1e-3 / (1 + step)))
                    rows.append((method, ds, seed, step, "kl", 0.1))
    return pd.DataFrame(rows, columns=["method", "dataset", "seed", "step", "metric", "value"])


def test_plot_training_writes_one_figure_per_dataset_png_and_pdf(tmp_path):
    paths = plot_training(_log(), tmp_path / "fig")
    assert [p.name for p in paths] == ["train_curves_movielens.png", "train_curves_movielens.pdf",
                                       "train_curves_synthetic.png", "train_curves_synthetic.pdf"]
    everything = plot_training(_log(), tmp_path / "all", mode="all")
    assert [p.name for p in everything] == [
        "train_curves_movielens.png", "train_curves_movielens.pdf", "train_all_movielens.png", "train_all_movielens.pdf",
        "train_curves_synthetic.png", "train_curves_synthetic.pdf", "train_all_synthetic.png", "train_all_synthetic.pdf",
        "train_dynamics.png", "train_dynamics.pdf"]
    assert plot_training(_log(), tmp_path / "none", mode="none") == []


def test_plot_training_writes_every_figure(tmp_path):
    rows = []
    for method in ("prorl", "naive-pg", "noise-pg"):
        for seed in (0, 1):
            for step in range(20):
                rows.append((method, "synthetic", seed, step, "path_len", 2 + step * (0.3 if method == "naive-pg" else 0)))
                if step % 4 == 0:
                    rows.append((method, "synthetic", seed, step, "grad_var", 1e-3 / (1 + step)))
                rows.append((method, "synthetic", seed, step, "loss", 0.1))
                for m in ("reward_ioi", "reward_ior", "reward_ctr", "kl"):
                    rows.append((method, "synthetic", seed, step, m, 0.1 * step))
                if step % 5 == 4:
                    rows += [(method, "synthetic", seed, step, "valid_ioi", 0.2), (method, "synthetic", seed, step, "vs_ioi", 0.1)]
    log = pd.DataFrame(rows, columns=["method", "dataset", "seed", "step", "metric", "value"])
    paths = plot_training(log, tmp_path / "fig", mode="all")
    names = [p.name for p in paths]
    assert names[-2:] == ["train_dynamics.png", "train_dynamics.pdf"] and "train_curves_synthetic.png" in names
    assert all(p.stat().st_size > 1000 for p in paths)
    assert paths[1].read_bytes().startswith(b"%PDF")


def test_plot_training_without_curves_writes_nothing(tmp_path):
    assert plot_training(pd.DataFrame(), tmp_path) == []
    log = pd.DataFrame([("sft", "synthetic", 0, 1, "sft_loss", float("nan"))],
                       columns=["method", "dataset", "seed", "step", "metric", "value"])
    assert plot_training(log, tmp_path) == []


def test_a_methods_colour_depends_on_its_name_only_and_can_be_set():
    names = list(KNOWN)
    colors = method_colors(names)
    assert len(set(colors.values())) == len(KNOWN)          # the shipped methods: distinct colours
    assert method_colors(names[::-1]) == colors             # grid order does not matter
    assert method_colors(["m7", "prorl"])["m7"] == method_colors(["m7"])["m7"]
    again = method_colors(["prorl", "pop"], {"prorl": "#123456"})
    assert again == {"prorl": "#123456", "pop": colors["pop"]}
