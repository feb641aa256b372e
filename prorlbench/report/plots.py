"""Plots of a run: ``metrics.png`` (headline metrics per method) and the RL training curves.

``plot_training(train_log, out_dir)`` writes, from a run's long-format ``train_log.csv``:

* ``train_path_len.png``: mean sampled path length per RL step, one line per method (mean over
  seeds; a light moving average), one panel per dataset: the *length shortcut* shows as a
  line climbing to ``max_path_len``;
* ``train_grad_var.png``: the gradient-variance estimate per step (log scale), same layout
  (an in-training diagnostic: each method along its own trajectory);
* ``train_dynamics.png``: one row per dataset, one panel each for the sampled path length, the
  raw reward components of sampled paths (IoI, IoR, CTR per item), the KL term, and the
  validation IoI (greedy IoI@1 solid, sampled paths dashed); one line per method, the placebo
  ``noise-pg`` in black, so that what every method shares with it is visible.

Uses matplotlib's object API (no pyplot global state).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import one_line
from .metadata import LEGACY, Metadata
from .table import Block

log = logging.getLogger("prorlbench")


def _mpl_text(text: str) -> str:
    """Plain text for matplotlib: a ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def plot_metrics(blocks: list[Block], metrics: list[str], k: int, path: Path,
                 meta: Metadata = LEGACY) -> Path | None:
    """Bar chart per (dataset, simulator) row and metric column: mean per method with std over
    seeds as error bars. Returns ``None`` (and writes nothing) when there is nothing to plot."""
    # A bare Figure (no pyplot): no global figure state, no display; PNG goes through Agg.
    rows = [b for b in blocks if any(b.cells[(meth, m, k)].state == "ok"
                                     for meth in b.methods for m in metrics)]
    if not rows or not metrics:
        return None
    color = {meth: i for i, meth in enumerate(dict.fromkeys(m for b in rows for m in b.methods))}
    fig = Figure(figsize=(3.2 * len(metrics), 2.9 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(metrics), squeeze=False)
    for i, b in enumerate(rows):
        for j, m in enumerate(metrics):
            ax = axes[i][j]
            meths = [meth for meth in b.methods if b.cells[(meth, m, k)].state == "ok"]
            means = [b.cells[(meth, m, k)].mean for meth in meths]
            stds = [b.cells[(meth, m, k)].std if b.cells[(meth, m, k)].n_seeds > 1 else 0.0
                    for meth in meths]
            x = np.arange(len(meths))
            ax.bar(x, means, yerr=stds, capsize=3,
                   color=[f"C{color[meth] % 10}" for meth in meths])
            ax.set_xticks(x, [_mpl_text(meta.method(meth)) for meth in meths], rotation=45, ha="right",
                          fontsize=7)
            ax.axhline(0.0, color="black", linewidth=0.5)
            ax.set_title(_mpl_text(f"{meta.display(m)}@{k}: {b.dataset} ({b.simulator})"),
                         fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
    fig.savefig(path, dpi=100, format="png", metadata={"Software": None})
    return path


PLOTS = (
    ("path_len", "train_path_len.png", "mean sampled path length", False),
    ("grad_var", "train_grad_var.png", "policy-gradient variance (mean per coordinate)", True),
)


def _smooth(s: pd.Series) -> pd.Series:
    window = max(1, len(s) // 40)
    return s.rolling(window, min_periods=1, center=True).mean() if window > 1 else s


DYNAMICS = (("path_len", "sampled path length"), ("reward_ioi", "raw IoI of sampled paths"),
            ("reward_ior", "raw IoR of sampled paths"), ("reward_ctr", "raw CTR per sampled item"),
            ("kl", "KL term per path"), ("valid_ioi", "validation IoI (— IoI@1, - - sampled)"))


def _line_style(method: str) -> dict:
    return {"color": "black", "linewidth": 2.0} if method == "noise-pg" else {"linewidth": 1.3}


def plot_dynamics(df: pd.DataFrame, out_dir: Path) -> Path | None:
    """``train_dynamics.png`` (see the module docstring); None when the log has no RL steps."""
    sub = df[df["metric"].isin([m for m, _ in DYNAMICS] + ["vs_ioi"]) & df["value"].notna()]
    if sub[sub["metric"] == "path_len"].empty:
        return None
    datasets = sorted(sub["dataset"].astype(str).unique())
    fig = Figure(figsize=(3.6 * len(DYNAMICS), 3.2 * len(datasets)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(datasets), len(DYNAMICS), squeeze=False)
    for row, ds in zip(axes, datasets):
        part = sub[sub["dataset"].astype(str) == ds]
        for ax, (metric, title) in zip(row, DYNAMICS):
            for method, rows in sorted(part.groupby("method"), key=lambda kv: str(kv[0])):
                method = str(method)
                for name, dash in ((metric, "-"), ("vs_ioi", "--") if metric == "valid_ioi" else (None, "")):
                    curve = rows[rows["metric"] == name].groupby("step")["value"].mean().sort_index()
                    if name is None or curve.empty:
                        continue
                    ax.plot(curve.index, _smooth(curve).values if name != "valid_ioi" else curve.values, dash,
                            label=method if dash == "-" else None, **_line_style(method))
            ax.set_title(f"{ds}: {title}", fontsize=9)
            ax.set_xlabel("RL step", fontsize=8)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=7)
        row[0].legend(fontsize=6)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "train_dynamics.png"
    fig.savefig(path, dpi=110)
    return path


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
    dyn = plot_dynamics(df, out_dir)
    if dyn is not None:
        written.append(dyn)
    return written


def training_plots(train_log: pd.DataFrame, run_dir: Path) -> tuple[list[Path], str]:
    try:
        paths = plot_training(train_log, run_dir)
    except ImportError as exc:
        return [], f"training plots unavailable ({exc})"
    except Exception as exc:  # noqa: BLE001 - a plotting bug must not lose the tables
        log.warning("report: training plots failed: %s", exc)
        return [], f"training plots failed: {one_line(str(exc), 300)}"
    return [Path(p) for p in (paths or [])], ""
