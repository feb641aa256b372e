"""Turn a run folder into tables and plots (``prorlbench report``).

Input (written by the runner)::

    <dir>/config.toml        the run's configuration (only used to order methods and datasets)
    <dir>/metadata.json      how metrics and methods are shown (from their specs; see .metadata)
    <dir>/cases.csv.gz       per-case long table: method, dataset, simulator, seed, case, metric, k, value
                             (``simulator`` is the *evaluating* simulator)
    <dir>/cells.csv          one row per cell: method, dataset, seed, simulator, eval_simulator,
                             status ("ok" | "failed"), error, seconds
    <dir>/train_log.csv      optional: method, dataset, seed, step, metric, value

Outputs (all in ``<dir>``):

* ``summary.csv``: one row per (method, dataset, simulator, metric, k), sorted by those keys, with
  ``mean``, ``std``, ``n_seeds``, ``n_cases``. Per seed the per-case values are averaged; then
  mean and sample std (``ddof=1``) over seeds. With a single seed ``std`` is ``0.0`` (and the
  tables print the mean alone). Floats are written as Python ``repr`` so two reports of the same
  folder give byte-identical files.
* ``summary.md`` / ``summary.tex``: one block per (dataset, evaluating simulator), rows methods,
  columns ``metric@k``; best per column in bold.
* ``metrics.png`` / ``.pdf``: headline metrics per method with error bars (std over seeds);
  ``train_curves_<dataset>.png`` / ``.pdf``: curated training curves (``plots="all"``: more).
* ``style="paper"`` adds ``paper.md``, ``paper.tex``, ``combined.tex``, ``paper.csv``: bold best,
  underlined second (dense ranking of means rounded to the printed precision) and a dagger on the
  best where a paired two-sided Wilcoxon signed-rank test against the runner-up gives p < 0.05.

One concern per module: :mod:`.reading` (the run folder), :mod:`.metadata` (names, decimals,
directions), :mod:`.stats` (summaries, per-case means, paired test, ranks), :mod:`.table` (the
``Cell`` / ``Block`` model), one renderer per format (:mod:`.markdown`, :mod:`.latex` with
:mod:`.texlayout`, :mod:`.csvfiles`), the figures (:mod:`.colors`, :mod:`.figures`, :mod:`.plots`,
:mod:`.training`), and :mod:`.build` (``write_report``). The report reads the run
folder only; it never loads the plugin registry. See ``docs/report.md`` for the exact rules.

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config), folder, settings
(the report reads the run folder only: never prorlbench.plugins, never engine).
"""

from __future__ import annotations

from .build import PAPER_KS, PAPER_METRICS, write_report
from .csvfiles import write_paper_csv, write_summary_csv
from .colors import MethodStyle, method_color, method_styles
from .latex import latex_escape, render_combined_tex, render_paper_tex, render_summary_tex
from .markdown import md_escape, render_paper_md, render_summary_md
from .metadata import LEGACY, Metadata, MetricInfo, metric_directions, read_metadata
from .plots import PLOTS, plot_dynamics, plot_metrics, plot_training
from .reading import RunData, load_run
from .stats import ALPHA, SUMMARY_COLUMNS, mark_ranks, paired_wilcoxon, per_case_means, summarize
from .table import Block, Cell, build_blocks, fmt_number, rounded

__all__ = ["write_report", "load_run", "RunData", "summarize", "per_case_means", "paired_wilcoxon",
           "mark_ranks", "Block", "Cell", "build_blocks", "fmt_number", "rounded", "latex_escape",
           "md_escape", "metric_directions", "Metadata", "MetricInfo", "LEGACY", "read_metadata",
           "render_summary_md", "render_paper_md", "render_summary_tex", "render_paper_tex",
           "render_combined_tex", "write_summary_csv", "write_paper_csv", "plot_metrics", "plot_training",
           "plot_dynamics", "PLOTS", "MethodStyle", "method_color", "method_styles", "ALPHA",
           "SUMMARY_COLUMNS", "PAPER_METRICS", "PAPER_KS"]
