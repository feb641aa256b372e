"""Training figures from ``train_log.csv`` (long format: method, dataset, seed, step, metric, value).

``plot_training`` writes, per dataset, ``train_curves_<dataset>.png`` / ``.pdf``: at most eight
curated panels (:data:`CURATED`, those logged: sampled path length, the reward components IoI,
IoR and CTR of the sampled paths, the KL to the reference policy, the validation IoI@1, the
gradient variance, the learning rate; ``sft_loss`` when no RL curve is there). Each panel has a
line per method, the mean over seeds, and a band of ± one std over seeds when there are several;
the placebo ``noise-pg`` is drawn like any method (black). Curves of many steps are smoothed per
seed by a centred moving average (:func:`smoothing_window`), stated in the figure title. Every
logged key stays in ``train_log.csv``; ``mode="all"`` (``report --plots all``) also draws
``train_all_<dataset>`` (a panel per key logged at two steps or more, raw names, means only) and
``train_dynamics`` (:func:`plot_dynamics`).

``plot_dynamics`` draws one row per dataset (sampled path length, raw reward components, KL,
validation IoI@1 of the decode and of sampled paths); ``prorlbench/study/claims.py`` uses it for the
claims plots. Every line is a method's, drawn in its :class:`~.colors.MethodStyle` and named in
the figure legend.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..folder.files import safe_name
from . import figures
from .colors import MethodStyle, method_styles
from .figures import legend_height, line_handle, method_legend, mpl_text, panel_grid
from .figures import title as figure_title
from .metadata import LEGACY, Metadata

CURATED = (
    ("path_len", "Sampled path length", "items per path"),
    ("reward_ioi", "Reward: {ioi} of sampled paths", "raw {ioi} per path"),
    ("reward_ior", "Reward: {ior} of sampled paths", "raw {ior} per path"),
    ("reward_ctr", "Reward: {ctr} of sampled items", "accepted share per item"),
    ("kl", "KL to the reference policy", "nats per path"),
    ("valid_ioi", "Validation {ioi}@1", "{ioi}@1 of the decoded path"),
    ("grad_var", "Gradient variance", "variance per coordinate"),
    ("lr", "Learning rate", "learning rate"),
    ("sft_loss", "SFT loss", "cross-entropy"),
)
"""``(logged key, panel title, y label)`` in panel order; the first eight logged are drawn."""
MAX_PANELS = 8
LOG_SCALE = ("grad_var", "grad_var_rel")
"""Curves drawn on a log scale (when positive)."""
DYNAMICS = (("path_len", "sampled path length", "items per path"),
            ("reward_ioi", "raw {ioi} of sampled paths", "{ioi} per path"),
            ("reward_ior", "raw {ior} of sampled paths", "{ior} per path"),
            ("reward_ctr", "raw {ctr} per sampled item", "accepted share"),
            ("kl", "KL term per path", "nats"),
            ("valid_ioi", "validation {ioi}@1 (decode)", "{ioi}@1"),
            ("vs_ioi", "validation {ioi} of sampled paths", "{ioi} per path"))


def smoothing_window(n_steps: int) -> int:
    """The moving-average window of a curve of ``n_steps`` points (1: no smoothing)."""
    return max(1, n_steps // 40)


def _names(text: str, meta: Metadata) -> str:
    return text.format(ioi=meta.display("ioi"), ior=meta.display("ior"), ctr=meta.display("ctr"))


def _prepare(train_log: pd.DataFrame | None) -> pd.DataFrame:
    needed = {"method", "step", "metric", "value"}
    if train_log is None or train_log.empty or not needed <= set(train_log.columns):
        return pd.DataFrame()
    df = train_log.copy()
    for col, default in (("dataset", ""), ("seed", 0)):
        if col not in df.columns:
            df[col] = default
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df = df[df["value"].notna()]
    for col in ("method", "dataset", "metric"):
        df[col] = df[col].astype(str)
    return df


def _seed_curves(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Steps x seeds (each seed's curve smoothed) and the smoothing window used."""
    wide = rows.groupby(["step", "seed"])["value"].mean().unstack("seed").sort_index()
    w = smoothing_window(len(wide))
    if w > 1:
        wide = wide.rolling(w, min_periods=1, center=True).mean()
    return wide, w


def _draw(ax, rows: pd.DataFrame, method: str, style: MethodStyle, band: bool) -> int:
    """One method's line (mean over seeds) and its ± std band; returns the smoothing window."""
    wide, w = _seed_curves(rows)
    mean = wide.mean(axis=1)
    ax.plot(mean.index, mean.values, linewidth=1.4, gid=method, **style.line_kw(len(mean)))
    if band and wide.shape[1] > 1:
        std = wide.std(axis=1, ddof=1).fillna(0.0)
        ax.fill_between(mean.index, (mean - std).values, (mean + std).values, color=style.color,
                        alpha=0.15, linewidth=0)
    return w


def _finish(ax, key: str, title: str, ylabel: str, values: pd.Series) -> None:
    if key in LOG_SCALE and len(values) and (values > 0).all():
        from matplotlib.ticker import LogFormatterSciNotation, NullFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=True))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(mpl_text(title), fontsize=9)
    ax.set_xlabel("SFT epoch" if key.startswith("sft_") else "RL step", fontsize=8)
    ax.set_ylabel(mpl_text(ylabel), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)


def _figure(part: pd.DataFrame, panels: list[tuple[str, str, str]], shown: list[str],
            styles: dict[str, MethodStyle], meta: Metadata, *, ncols: int, band: bool) -> tuple[Figure, set[int]]:
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    leg = legend_height(len(shown), 6)
    fig = Figure(figsize=(0.95 + 3.1 * ncols - 0.85, 2.3 * nrows + 0.75 * (nrows - 1) + 1.1 + leg))
    axes = panel_grid(fig, nrows, ncols, bottom=0.5 + leg, top=0.6)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    windows: set[int] = set()
    by_key = dict(tuple(part.groupby("metric")))
    for ax, (key, title, ylabel) in zip(axes, panels):
        sub = by_key[key]
        by_method = dict(tuple(sub.groupby("method")))
        for method in shown:
            if method in by_method:
                windows.add(_draw(ax, by_method[method], method, styles[method], band))
        _finish(ax, key, title, ylabel, sub["value"])
    method_legend(fig, [line_handle(styles[m], meta.method(m)) for m in shown])
    return fig, windows


def _title(what: str, ds: str, part: pd.DataFrame, windows: set[int], meta: Metadata, band: bool) -> str:
    n = part.groupby("method")["seed"].nunique().max()
    seeds = f"mean over {n} seeds" + (" (band: ± std)" if band and n > 1 else "") if n > 1 else "one seed"
    w = max(windows, default=1)
    smooth = f", per-step curves smoothed over {w} steps" if w > 1 else ""
    return f"{what} on {meta.dataset(ds) or 'the dataset'}: {seeds}{smooth}"


def plot_training(train_log: pd.DataFrame, out_dir: Path, meta: Metadata = LEGACY,
                  method_order: list[str] | None = None, *, mode: str = "summary",
                  styles: dict[str, MethodStyle] | None = None) -> list[Path]:
    """Write the training figures (see the module docstring); returns the PNG and PDF paths.
    ``styles``: the run's method styles (default: from the methods in the log)."""
    out_dir = Path(out_dir)
    df = _prepare(train_log)
    if df.empty or mode == "none":
        return []
    methods = list(dict.fromkeys([*(method_order or []), *sorted(df["method"].unique())]))
    styles = styles or method_styles(methods)
    written: list[Path] = []
    for ds in sorted(df["dataset"].unique()):
        part = df[df["dataset"] == ds]
        shown = [m for m in methods if m in set(part["method"])]
        logged = set(part["metric"])
        panels = [(k, _names(t, meta), _names(y, meta)) for k, t, y in CURATED if k in logged][:MAX_PANELS]
        name = safe_name(ds, default="data")
        if panels:
            fig, windows = _figure(part, panels, shown, styles, meta, ncols=4, band=True)
            figure_title(fig, _title("Training", ds, part, windows, meta, True))
            written += figures.save_figure(fig, out_dir / f"train_curves_{name}.png")
        if mode == "all":
            steps = part.groupby("metric")["step"].nunique()
            keys = [k for k in dict.fromkeys(part["metric"]) if steps[k] >= 2]
            if keys:
                fig, windows = _figure(part, [(k, k, k) for k in keys], shown, styles, meta, ncols=5, band=False)
                figure_title(fig, _title("Every logged curve", ds, part, windows, meta, False))
                written += figures.save_figure(fig, out_dir / f"train_all_{name}.png")
    if mode == "all":
        dyn = plot_dynamics(df, out_dir, meta=meta, styles=styles, method_order=methods)
        if dyn is not None:
            written += [dyn, dyn.with_suffix(".pdf")]
    return written


def plot_dynamics(df: pd.DataFrame, out_dir: Path, filename: str = "train_dynamics.png", dpi: int = 110,
                  *, meta: Metadata = LEGACY, styles: dict[str, MethodStyle] | None = None,
                  method_order: list[str] | None = None) -> Path | None:
    """``train_dynamics.png`` and ``.pdf`` (``filename``: another name): one row per dataset, a
    panel per :data:`DYNAMICS` curve, a line per method (mean over seeds). Returns the PNG path,
    or None when the log has no RL steps."""
    df = _prepare(df)
    if df.empty:
        return None
    sub = df[df["metric"].isin([m for m, _, _ in DYNAMICS])]
    if sub[sub["metric"] == "path_len"].empty:
        return None
    methods = list(dict.fromkeys([*(method_order or []), *sorted(sub["method"].unique())]))
    methods = [m for m in methods if m in set(sub["method"])]
    styles = styles or method_styles(methods)
    datasets = sorted(sub["dataset"].unique())
    leg = legend_height(len(methods), 8)
    fig = Figure(figsize=(0.95 + 3.0 * len(DYNAMICS) - 0.85, 2.2 * len(datasets) + 0.75 * (len(datasets) - 1) + 1.1 + leg))
    flat = panel_grid(fig, len(datasets), len(DYNAMICS), bottom=0.5 + leg, top=0.6)
    axes = [flat[i * len(DYNAMICS):(i + 1) * len(DYNAMICS)] for i in range(len(datasets))]
    for row, ds in zip(axes, datasets):
        part = sub[sub["dataset"] == ds]
        by_key = dict(tuple(part.groupby("metric")))
        for ax, (key, title, ylabel) in zip(row, DYNAMICS):
            rows = by_key.get(key, pd.DataFrame(columns=part.columns))
            by_method = dict(tuple(rows.groupby("method"))) if len(rows) else {}
            for method in methods:
                if method in by_method:
                    _draw(ax, by_method[method], method, styles[method], band=False)
            _finish(ax, key, f"{meta.dataset(ds)}: {_names(title, meta)}", _names(ylabel, meta),
                    rows["value"] if len(rows) else pd.Series([], dtype=float))
    method_legend(fig, [line_handle(styles[m], meta.method(m)) for m in methods], max_cols=8)
    figure_title(fig, "Training dynamics: mean over seeds, per-step curves smoothed (window: steps / 40)")
    path = Path(out_dir) / filename
    figures.save_figure(fig, path, dpi=dpi)
    return path
