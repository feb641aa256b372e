"""The report's figures: ``metrics.png`` / ``.pdf`` here, the training figures in :mod:`.training`.

Every method is drawn with one :class:`~.colors.MethodStyle` in every figure (its colour a pure
function of its name, see :mod:`.colors`); every figure has a legend with an entry per method,
axis labels, and a PDF twin of its PNG (:func:`.figures.save_figure`).

``metrics.png``: one panel per (dataset, evaluating simulator) and metric, a horizontal bar per
method (names on the left, readable with many methods), the std over seeds as error bars when
there are several seeds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import one_line
from . import figures
from .colors import MethodStyle, method_styles
from .figures import bar_handle, legend_height, method_legend, mpl_text, panel_grid, title
from .metadata import LEGACY, Metadata
from .table import Block
from .training import plot_dynamics, plot_training, smoothing_window  # noqa: F401  (re-exported)

log = logging.getLogger("prorlbench")

PLOTS = ("none", "summary", "all")
"""``report --plots``: no figures; ``metrics.png`` and one curated training figure per dataset;
also a figure of every logged training curve and ``train_dynamics.png``."""


def plot_metrics(blocks: list[Block], metrics: list[str], k: int, path: Path,
                 meta: Metadata = LEGACY, styles: dict[str, MethodStyle] | None = None) -> Path | None:
    """Horizontal bars per (dataset, simulator) row and metric column: mean per method, with the
    std over seeds as error bars only when there are several seeds. Writes ``path`` and its PDF;
    returns ``None`` (and writes nothing) when there is nothing to plot."""
    rows = [b for b in blocks if any(b.cells[(meth, m, k)].state == "ok"
                                     for meth in b.methods for m in metrics)]
    if not rows or not metrics:
        return None
    order = list(dict.fromkeys(m for b in rows for m in b.methods))
    styles = styles or method_styles(order)
    n = max(len(b.methods) for b in rows)
    names = max(len(meta.method(m)) for m in order)
    left, leg, ah = 0.3 + 0.055 * names, legend_height(len(order), 5), 0.17 * n + 0.35
    fig = Figure(figsize=(left + 0.2 + 2.3 * len(metrics) + 0.45 * (len(metrics) - 1),
                          ah * len(rows) + 0.8 * (len(rows) - 1) + 1.15 + leg))
    flat = panel_grid(fig, len(rows), len(metrics), left=left, top=0.6, bottom=0.5 + leg, wspace=0.45, hspace=0.8)
    axes = [flat[i * len(metrics):(i + 1) * len(metrics)] for i in range(len(rows))]
    multi_seed = False
    for i, b in enumerate(rows):
        for j, m in enumerate(metrics):
            ax = axes[i][j]
            meths = [meth for meth in b.methods if b.cells[(meth, m, k)].state == "ok"]
            cells = [b.cells[(meth, m, k)] for meth in meths]
            y = -np.arange(len(meths), dtype=float)
            several = any(c.n_seeds > 1 for c in cells)
            multi_seed |= several
            for yy, meth, c in zip(y, meths, cells):
                st = styles[meth]
                ax.barh(yy, c.mean, height=0.75, color=st.color, hatch=st.hatch or None,
                        edgecolor="0.25" if st.hatch else "white", linewidth=0.4, gid=meth,
                        xerr=c.std if several and c.n_seeds > 1 else None,
                        error_kw={"elinewidth": 0.8, "capsize": 0, "ecolor": "0.2"})
            ax.set_yticks(y, [mpl_text(meta.method(meth)) if j == 0 else "" for meth in meths], fontsize=7)
            ax.set_ylim(-len(meths) + 0.4, 0.6)
            ax.axvline(0.0, color="black", linewidth=0.5, gid="_zero")  # "_": not a method's line
            ax.set_xlabel(mpl_text(f"{meta.display(m)} at K={k}" + (" (mean ± std)" if several else "")),
                          fontsize=8)
            ax.set_title(mpl_text(f"{meta.display(m)}: {b.dataset_label or b.dataset}, eval {b.simulator}"),
                         fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            ax.grid(True, axis="x", alpha=0.3)
    method_legend(fig, [bar_handle(styles[m], meta.method(m)) for m in order])
    what = "mean ± std over seeds" if multi_seed else "one seed: means, no error bars"
    title(fig, f"Metrics at K={k} per method ({what})")
    figures.save_figure(fig, Path(path))
    return Path(path)


def training_plots(train_log: pd.DataFrame, run_dir: Path, meta: Metadata = LEGACY,
                   method_order: list[str] | None = None, *, mode: str = "summary",
                   styles: dict[str, MethodStyle] | None = None) -> tuple[list[Path], str]:
    """The training figures of ``mode`` (:data:`PLOTS`) and a note for the report (empty when all
    went well); a plotting failure never loses the tables."""
    try:
        paths = plot_training(train_log, run_dir, meta, method_order=method_order, mode=mode, styles=styles)
    except ImportError as exc:
        return [], f"training plots unavailable ({exc})"
    except Exception as exc:  # noqa: BLE001 - a plotting bug must not lose the tables
        log.warning("report: training plots failed: %s", exc)
        return [], f"training plots failed: {one_line(str(exc), 300)}"
    return [Path(p) for p in (paths or [])], ""
