"""Training-curve plots from a long-format train log."""

from __future__ import annotations

import pandas as pd

from prorlbench.report import plot_training


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
    paths = plot_training(log, tmp_path / "fig")
    assert [p.name for p in paths] == ["train_path_len.png", "train_grad_var.png", "train_dynamics.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_plot_training_skips_missing_metrics(tmp_path):
    log = pd.DataFrame([("sft", "synthetic", 0, 1, "sft_loss", 1.0)],
                       columns=["method", "dataset", "seed", "step", "metric", "value"])
    assert plot_training(log, tmp_path) == []
    assert plot_training(pd.DataFrame(), tmp_path) == []
