"""Plots of a run: ``metrics.png`` / ``.pdf`` (headline metrics per method) and the training curves.

Colours. Every method has one colour for the whole run, the same in every figure: the runner
stores it in ``metadata.json`` (``methods.NAME.color``, assigned in the run's method order from
:data:`PALETTE`, 20 distinct colours), so ``report`` and later re-scoring keep it. A folder
without stored colours gets them in the same way from its ``config.toml`` order.

``plot_training(train_log, out_dir)`` writes, per dataset, ``train_curves_<dataset>.png`` /
``.pdf``: one panel per logged curve (path length, STOP rate, reward components, return, KL,
validation IoI, gradient variance, whatever the methods log), one line per method (mean over
seeds), smoothed by a centred moving average whose window is stated in the figure title.
``plot_dynamics`` writes ``train_dynamics.png``: one row per dataset, one panel each for the
sampled path length, the raw reward components of sampled paths (IoI, IoR, CTR per item), the KL
term, and the validation IoI (greedy IoI@1 solid, sampled paths dashed); one line per method,
the placebo ``noise-pg`` in black (a variant of it, such as ``noise-pg+semid``, in dark grey), so that what every method shares with it is visible.

Uses matplotlib's object API (no pyplot global state).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..errors import one_line
from ..files import atomic_write, safe_name
from .metadata import LEGACY, PALETTE, Metadata, method_colors  # noqa: F401  (PALETTE re-exported)
from .table import Block

log = logging.getLogger("prorlbench")

def _mpl_text(text: str) -> str:
    """Plain text for matplotlib: a ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def _save(fig: Figure, path: Path) -> list[Path]:
    """``path`` (PNG) and the same figure as PDF next to it."""
    FigureCanvasAgg(fig)
    _savefig(fig, path, dpi=120, format="png", metadata={"Software": None})
    pdf = path.with_suffix(".pdf")
    _savefig(fig, pdf, format="pdf", metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return [path, pdf]


def _savefig(fig: Figure, path: Path, **kw: Any) -> None:
    """``fig.savefig`` into memory, then :func:`~prorlbench.files.atomic_write`: the file is
    replaced, never written through a link someone put in the folder."""
    buf = io.BytesIO()
    fig.savefig(buf, **kw)
    data = buf.getvalue()
    atomic_write(path, lambda fh: fh.write(data), fsync=False)


def plot_metrics(blocks: list[Block], metrics: list[str], k: int, path: Path,
                 meta: Metadata = LEGACY, colors: dict[str, str] | None = None) -> Path | None:
    """Bar chart per (dataset, simulator) row and metric column: mean per method, with the std
    over seeds as error bars only when there are several seeds. Writes ``path`` and its PDF;
    returns ``None`` (and writes nothing) when there is nothing to plot."""
    rows = [b for b in blocks if any(b.cells[(meth, m, k)].state == "ok"
                                     for meth in b.methods for m in metrics)]
    if not rows or not metrics:
        return None
    order = list(dict.fromkeys(m for b in rows for m in b.methods))
    color = method_colors(order, colors if colors is not None else meta.colors)
    fig = Figure(figsize=(3.3 * len(metrics), 3.0 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), len(metrics), squeeze=False)
    multi_seed = False
    for i, b in enumerate(rows):
        for j, m in enumerate(metrics):
            ax = axes[i][j]
            meths = [meth for meth in b.methods if b.cells[(meth, m, k)].state == "ok"]
            cells = [b.cells[(meth, m, k)] for meth in meths]
            x = np.arange(len(meths))
            several = any(c.n_seeds > 1 for c in cells)
            multi_seed |= several
            yerr = [c.std if c.n_seeds > 1 else 0.0 for c in cells] if several else None
            ax.bar(x, [c.mean for c in cells], yerr=yerr, capsize=3 if several else 0,
                   color=[color[meth] for meth in meths])
            ax.set_xticks(x, [_mpl_text(meta.method(meth)) for meth in meths], rotation=45,
                          ha="right", fontsize=7)
            ax.axhline(0.0, color="black", linewidth=0.5)
            ax.set_ylabel(_mpl_text(f"{meta.display(m)} (K={k})"), fontsize=8)
            ax.set_title(_mpl_text(f"{b.dataset_label or b.dataset}, eval simulator {b.simulator}"),
                         fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
    handles = [Patch(color=color[m], label=_mpl_text(meta.method(m))) for m in order]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(order), 7), fontsize=7,
               frameon=False)
    what = "mean ± std over seeds" if multi_seed else "one seed: means, no error bars"
    fig.suptitle(_mpl_text(f"Metrics at K={k} per method ({what})"), fontsize=9)
    _save(fig, Path(path))
    return Path(path)


LOG_SCALE = ("grad_var",)
"""Curves drawn on a log scale (when positive)."""


def smoothing_window(n_steps: int) -> int:
    """The moving-average window of a curve of ``n_steps`` points (1: no smoothing)."""
    return max(1, n_steps // 40)


def _smooth(s: pd.Series, window: int) -> pd.Series:
    return s.rolling(window, min_periods=1, center=True).mean() if window > 1 else s


DYNAMICS = (("path_len", "sampled path length"), ("reward_ioi", "raw IoI of sampled paths"),
            ("reward_ior", "raw IoR of sampled paths"), ("reward_ctr", "raw CTR per sampled item"),
            ("kl", "KL term per path"), ("valid_ioi", "validation IoI (— IoI@1, - - sampled)"))


def _line_style(method: str) -> dict:
    if method.split("+")[0] == "noise-pg":  # the placebo in black, its variants (noise-pg+semid) in dark grey
        return {"color": "black" if method == "noise-pg" else "dimgray", "linewidth": 2.0}
    return {"linewidth": 1.3}


def plot_dynamics(df: pd.DataFrame, out_dir: Path, filename: str = "train_dynamics.png",
                  dpi: int = 110) -> Path | None:
    """``train_dynamics.png`` (see the module docstring; ``filename``: another name); None when
    the log has no RL steps."""
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
                method, color = str(method), None
                for name, dash in ((metric, "-"), ("vs_ioi", "--") if metric == "valid_ioi" else (None, "")):
                    curve = rows[rows["metric"] == name].groupby("step")["value"].mean().sort_index()
                    if name is None or curve.empty:
                        continue
                    style = _line_style(method) | ({"color": color} if color else {})  # dashed = solid's colour
                    (line,) = ax.plot(curve.index, _smooth(curve, smoothing_window(len(curve))).values
                                      if name != "valid_ioi" else curve.values, dash,
                                      label=method if dash == "-" else None, **style)
                    color = line.get_color()
            ax.set_title(f"{ds}: {title}", fontsize=9)
            ax.set_xlabel("RL step", fontsize=8)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=7)
        row[0].legend(fontsize=6)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / filename
    _savefig(fig, path, dpi=dpi, format="png")
    return path


def plot_training(train_log: pd.DataFrame, out_dir: Path, meta: Metadata = LEGACY,
                  colors: dict[str, str] | None = None, method_order: list[str] | None = None
                  ) -> list[Path]:
    """Write one training-curve figure per dataset (see the module docstring); returns the
    PNG and PDF paths."""
    out_dir = Path(out_dir)
    needed = {"method", "step", "metric", "value"}
    if train_log is None or train_log.empty or not needed <= set(train_log.columns):
        return []
    df = train_log.copy()
    if "dataset" not in df.columns:
        df["dataset"] = ""
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df[df["value"].notna()]
    if df.empty:
        return []
    methods = list(dict.fromkeys([*(method_order or []), *sorted(df["method"].astype(str).unique())]))
    color = method_colors(methods, colors if colors is not None else meta.colors)
    written: list[Path] = []
    for ds in sorted(df["dataset"].astype(str).unique()):
        part = df[df["dataset"].astype(str) == ds]
        curves = list(dict.fromkeys(part["metric"].astype(str)))
        ncols = min(3, len(curves))
        nrows = -(-len(curves) // ncols)
        fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows + 0.7), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        windows = set()
        shown = [m for m in methods if (part["method"].astype(str) == m).any()]
        for ax, curve_name in zip(axes, curves):
            sub = part[part["metric"].astype(str) == curve_name]
            panel_windows = set()
            for method in shown:
                rows = sub[sub["method"].astype(str) == method]
                if rows.empty:
                    continue
                curve = rows.groupby("step")["value"].mean().sort_index()
                w = smoothing_window(len(curve))
                windows.add(w)
                panel_windows.add(w)
                ax.plot(curve.index, _smooth(curve, w).values, color=color[method], linewidth=1.3,
                        label=_mpl_text(meta.method(method)))
            if curve_name in LOG_SCALE and (sub["value"] > 0).all():
                ax.set_yscale("log")
            ax.set_xlabel("training step", fontsize=8)
            ax.set_ylabel(_mpl_text(curve_name), fontsize=8)
            pw = max(panel_windows, default=1)
            ax.set_title(_mpl_text(curve_name + (f" (moving average, {pw} steps)" if pw > 1
                                                 else " (not smoothed)")), fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
        for ax in axes[len(curves):]:
            ax.set_visible(False)
        fig.legend(handles=[Patch(color=color[m], label=_mpl_text(meta.method(m))) for m in shown],
                   loc="outside lower center", ncol=min(len(shown), 7), fontsize=7, frameon=False)
        smooth = ("not smoothed" if windows <= {1} else
                  "smoothed by a centred moving average (window in each panel title)")
        fig.suptitle(_mpl_text(f"Training curves on {meta.dataset(ds) or 'the dataset'}: mean over "
                               f"seeds, {smooth}"), fontsize=10)
        out_dir.mkdir(parents=True, exist_ok=True)
        written += _save(fig, out_dir / f"train_curves_{safe_name(ds, default='data')}.png")
    dyn = plot_dynamics(df, out_dir)
    if dyn is not None:
        written.append(dyn)
    return written


def training_plots(train_log: pd.DataFrame, run_dir: Path, meta: Metadata = LEGACY,
                   method_order: list[str] | None = None) -> tuple[list[Path], str]:
    try:
        paths = plot_training(train_log, run_dir, meta, method_order=method_order)
    except ImportError as exc:
        return [], f"training plots unavailable ({exc})"
    except Exception as exc:  # noqa: BLE001 - a plotting bug must not lose the tables
        log.warning("report: training plots failed: %s", exc)
        return [], f"training plots failed: {one_line(str(exc), 300)}"
    return [Path(p) for p in (paths or [])], ""
