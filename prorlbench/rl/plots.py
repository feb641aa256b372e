"""Training-curve plots of the RL family from a run's long-format ``train_log.csv``.

``plot_training(train_log, out_dir)`` writes

* ``train_path_len.png``: mean sampled path length per RL step, one line per method (mean over
  seeds; a light moving average), one panel per dataset: the *length shortcut* shows as a
  line climbing to ``max_path_len``;
* ``train_grad_var.png``: the gradient-variance estimate per step (log scale), same layout.

Uses matplotlib's object API (no pyplot global state).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PLOTS = (
    ("path_len", "train_path_len.png", "mean sampled path length", False),
    ("grad_var", "train_grad_var.png", "policy-gradient variance (mean per coordinate)", True),
)


def _smooth(s: pd.Series) -> pd.Series:
    window = max(1, len(s) // 40)
    return s.rolling(window, min_periods=1, center=True).mean() if window > 1 else s


def plot_training(train_log: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write the training-curve figures that the log has data for; returns their paths."""
    out_dir = Path(out_dir)
    needed = {"method", "step", "metric", "value"}
    if train_log is None or train_log.empty or not needed <= set(train_log.columns):
        return []
    df = train_log.copy()
    if "dataset" not in df.columns:
        df["dataset"] = ""
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    written: list[Path] = []
    for metric, fname, ylabel, log_scale in PLOTS:
        sub = df[(df["metric"] == metric) & df["value"].notna()]
        if log_scale:
            sub = sub[sub["value"] > 0]
        if sub.empty:
            continue
        datasets = sorted(sub["dataset"].astype(str).unique())
        fig = Figure(figsize=(6.0 * len(datasets), 4.0))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(datasets), squeeze=False)[0]
        for ax, ds in zip(axes, datasets):
            part = sub[sub["dataset"].astype(str) == ds]
            for method, rows in sorted(part.groupby("method"), key=lambda kv: str(kv[0])):
                curve = rows.groupby("step")["value"].mean().sort_index()
                ax.plot(curve.index, _smooth(curve).values, label=str(method), linewidth=1.5)
            if log_scale:
                ax.set_yscale("log")
            ax.set_xlabel("RL step")
            ax.set_ylabel(ylabel)
            ax.set_title(ds or metric)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / fname
        fig.savefig(path, dpi=120)
        written.append(path)
    return written
