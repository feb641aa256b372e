"""``write_report``: a run folder in, its tables and plots out (see the package docstring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..folder.files import atomic_write_text
from ..settings.runconfig import STYLES
from .csvfiles import write_paper_csv, write_summary_csv
from .colors import display_colors, method_styles
from .latex import WIDTHS, check_label, label_prefix, render_combined_tex, render_paper_tex, render_summary_tex
from .markdown import render_paper_md, render_summary_md
from .metadata import metric_directions
from .plots import PLOTS, plot_metrics, training_plots
from .reading import config_order, load_run
from .stats import mark_ranks, summarize
from .table import build_blocks

PAPER_METRICS = ("ioi", "ior", "ctr", "coherence", "ioi-lift")
"""The paper style's default columns (those present: ``ioi-lift`` only where the run asked for it), at
:data:`PAPER_KS`."""
PAPER_KS = (1, 5, 10)


def _select(requested: list[Any] | None, available: list[Any], defaults: tuple[Any, ...] | None,
            what: str) -> list[Any]:
    if requested is not None:
        missing = [r for r in requested if r not in available]
        if missing:
            hint = did_you_mean(str(missing[0]), [str(a) for a in available]) \
                if isinstance(missing[0], str) else ""
            raise ConfigError(f"report: no results for {what} {', '.join(map(str, missing))}{hint}"
                              f"; available: {', '.join(map(str, available)) or '(none)'}")
        return list(dict.fromkeys(requested))
    if defaults is None:
        return list(available)
    chosen = [d for d in defaults if d in available]
    return chosen or list(available)


def _asked(config: dict[str, Any], key: str) -> list[Any]:
    run = config.get("run", {}) if isinstance(config, dict) else {}
    val = run.get(key) if isinstance(run, dict) else None
    return list(val) if isinstance(val, list) else []


def _plots_mode(plots: bool | str) -> str:
    mode = {True: "summary", False: "none"}.get(plots, plots) if isinstance(plots, bool) else str(plots)
    if mode not in PLOTS:
        raise ConfigError(f"report: unknown --plots '{mode}'{did_you_mean(mode, list(PLOTS))}; "
                          f"valid: {', '.join(PLOTS)}")
    return mode


def write_report(run_dir: Path, *, style: str = "default", metrics: list[str] | None = None,
                 ks: list[int] | None = None, registry: Any | None = None,
                 plots: bool | str = "summary", latex_width: str = "single",
                 latex_label: str | None = None) -> str:
    """Write the report files of a run folder and return the Markdown to print.

    Always writes ``summary.csv``, ``summary.md``, ``summary.tex`` and ``metrics.png`` (when there
    are results), plus the training plots when ``train_log.csv`` exists. ``style="paper"`` also
    writes ``paper.md``, ``paper.tex`` and ``paper.csv`` and returns ``paper.md``'s text.
    ``metrics`` / ``ks`` choose the table columns of the chosen style (defaults: every metric at
    the smallest K for ``default``; IoI, IoR, CTR, Coherence at K = 1, 5, 10 for ``paper``).
    Metric names, decimals and directions and method names come from the folder's
    ``metadata.json`` (:mod:`.metadata`); the plugin registry is never loaded. ``registry``: an
    optional registry-like object whose metric directions override the stored ones (``None`` or
    ``False``: the stored ones). ``plots``: ``"summary"`` (``metrics.png`` and one curated training
    figure per dataset; ``True``), ``"all"`` (also every logged curve and ``train_dynamics``) or
    ``"none"`` (``False``). ``latex_width``: ``single`` (one column of a two-column paper) or
    ``full`` (the text width, ``table*``); ``latex_label``: the prefix of every ``\\label``
    (default: from the folder's name). ``style="paper"`` also writes ``combined.tex``.
    """
    mode = _plots_mode(plots)
    if latex_width not in WIDTHS:
        raise ConfigError(f"report: unknown LaTeX width '{latex_width}'"
                          f"{did_you_mean(latex_width, list(WIDTHS))}; valid: {', '.join(WIDTHS)}")
    if style not in STYLES:
        raise ConfigError(f"report: unknown style '{style}'{did_you_mean(style, list(STYLES))}; "
                          f"valid: {', '.join(STYLES)}")
    run_dir = Path(run_dir)
    label = check_label(latex_label) if latex_label is not None else label_prefix(run_dir.resolve().name)
    run = load_run(run_dir)
    meta = run.meta
    stored = None
    if not (run_dir / "cases.csv.gz").exists() and (run_dir / "summary.csv").exists():
        # A folder committed without its per-case data: the tables are rebuilt from summary.csv,
        # the significance marks come from paper.csv (they need per-case values).
        from .fromsummary import read_stored_marks, read_summary_csv

        summary = read_summary_csv(run_dir / "summary.csv")
        stored = read_stored_marks(run_dir / "paper.csv")
    else:
        summary = summarize(run.cases)
        write_summary_csv(summary, run_dir / "summary.csv")

    available_metrics = meta.order(set(summary["metric"]))
    available_ks = sorted({int(k) for k in summary["k"]})
    if not available_metrics:
        # Nothing succeeded: show the columns asked for (here, else by the run), every row "failed".
        available_metrics = meta.order(set(metrics or _asked(run.config, "metrics") or list(meta.metrics)
                                           or PAPER_METRICS))
        available_ks = sorted({int(k) for k in (ks or _asked(run.config, "ks") or PAPER_KS)})
    directions = metric_directions(available_metrics, registry, meta)

    # summary.md / summary.tex
    if style == "default":
        s_metrics = _select(metrics, available_metrics, None, "metric")
        s_ks = _select(ks, available_ks, None, "K")
        if ks is None and s_ks:
            s_ks = [1] if 1 in s_ks else s_ks[:1]
    else:
        s_metrics = available_metrics
        s_ks = ([1] if 1 in available_ks else available_ks[:1])
    s_blocks = build_blocks(run, summary, s_metrics, s_ks)
    mark_ranks(s_blocks, s_metrics, s_ks, directions, meta=meta)
    profile = str(run.config.get("run", {}).get("profile", "") or "") if isinstance(run.config, dict) else ""
    summary_md = render_summary_md(s_blocks, s_metrics, s_ks, directions, meta, profile=profile)
    # Every file is replaced atomically (files.atomic_write): never written through a link
    # someone put in the folder, and a read-only folder is a one-line OutputError.
    atomic_write_text(run_dir / "summary.tex", render_summary_tex(s_blocks, s_metrics, s_ks, directions, meta,
                                                                  width=latex_width, profile=profile, label=label))

    # plots: the headline metrics (or the chosen ones in the default style) at the table's K
    plot_paths: list[Path] = []
    notes: list[str] = []
    if mode != "none":
        plot_k = s_ks[0] if s_ks else 1
        plot_m = [m for m in meta.headline() if m in available_metrics] or available_metrics[:4]
        if style == "default" and metrics is not None:
            plot_m = s_metrics
        plot_blocks = s_blocks if all(m in s_metrics for m in plot_m) else \
            build_blocks(run, summary, plot_m, [plot_k])
        order = config_order(run.config, "methods")
        every = list(dict.fromkeys([*order, *sorted(set(summary["method"]) | set(run.cells["method"]))]))
        if run.train_log is not None and "method" in run.train_log.columns:
            every += sorted(set(run.train_log["method"].astype(str)) - set(every))
        styles = method_styles(every, display_colors(run.config.get("display") if isinstance(run.config, dict) else None))
        png = plot_metrics(plot_blocks, plot_m, plot_k, run_dir / "metrics.png", meta, styles)
        if png is not None:
            plot_paths += [png, png.with_suffix(".pdf")]
        else:
            (run_dir / "metrics.png").unlink(missing_ok=True)
            (run_dir / "metrics.pdf").unlink(missing_ok=True)
        if run.train_log is None and stored is not None:  # figures of the original run stay listed
            plot_paths += sorted(run_dir.glob("train_*.png"))
        if run.train_log is not None:
            extra, note = training_plots(run.train_log, run_dir, meta, method_order=order, mode=mode, styles=styles)
            plot_paths += extra
            if note:
                notes.append(note)

    def plot_section() -> str:
        if not plot_paths and not notes:
            return ""
        lines = ["", "## Plots", ""]
        for p in plot_paths:
            try:
                rel = p.resolve().relative_to(run_dir.resolve())
            except ValueError:
                rel = p
            lines.append(f"- {rel.as_posix()}")
        lines += [f"- {n}" for n in notes]
        return "\n".join(lines) + "\n"

    summary_md += plot_section()
    atomic_write_text(run_dir / "summary.md", summary_md)
    if style == "default":
        return summary_md

    p_metrics = _select(metrics, available_metrics, PAPER_METRICS, "metric")
    p_ks = _select(ks, available_ks, PAPER_KS, "K")
    p_blocks = build_blocks(run, summary, p_metrics, p_ks, all_methods=True)
    if stored is None:
        mark_ranks(p_blocks, p_metrics, p_ks, directions, cases=run.cases, meta=meta)
    else:
        from .fromsummary import apply_stored_marks

        mark_ranks(p_blocks, p_metrics, p_ks, directions, meta=meta)
        apply_stored_marks(p_blocks, stored)
    paper_md = render_paper_md(p_blocks, p_metrics, p_ks, directions, meta=meta,
                               profile=profile) + plot_section()
    atomic_write_text(run_dir / "paper.md", paper_md)
    atomic_write_text(run_dir / "paper.tex", render_paper_tex(p_blocks, p_metrics, p_ks, directions, meta=meta,
                                                              width=latex_width, profile=profile, label=label))
    atomic_write_text(run_dir / "combined.tex", render_combined_tex(
        p_blocks, p_metrics, p_ks[0] if p_ks else 1, directions, meta=meta, width=latex_width, profile=profile,
        label=label))
    write_paper_csv(p_blocks, p_metrics, p_ks, run_dir / "paper.csv", meta)
    return paper_md
