"""The CSV renderer: ``summary.csv`` and ``paper.csv``, byte-reproducible (floats as ``repr``)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..folder.files import atomic_write
from .metadata import LEGACY, Metadata
from .stats import SUMMARY_COLUMNS
from .table import Block

PAPER_CSV_COLUMNS = ("dataset", "simulator", "metric", "k", "method", "mean", "std", "n_seeds",
                     "n_cases", "cell", "rank", "best", "second", "p_value", "significant",
                     "runner_up")


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else repr(float(v))
    return str(v)


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_csv_value(v) for v in r])
    data = buf.getvalue().encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data))  # replaced, never written through a link


def write_summary_csv(summary: pd.DataFrame, path: Path) -> None:
    rows = [[r.method, r.dataset, r.simulator, r.metric, int(r.k), float(r.mean), float(r.std),
             int(r.n_seeds), int(r.n_cases)] for r in summary.itertuples(index=False)]
    _write_csv(path, SUMMARY_COLUMNS, rows)


def write_paper_csv(blocks: list[Block], metrics: list[str], ks: list[int], path: Path,
                    meta: Metadata = LEGACY) -> None:
    rows = []
    for b in blocks:
        for m in metrics:
            for k in ks:
                for meth in b.methods:
                    c = b.cells[(meth, m, k)]
                    rows.append([b.dataset, b.simulator, m, k, meth,
                                 c.mean if c.state == "ok" else math.nan,
                                 c.std if c.state == "ok" else math.nan,
                                 c.n_seeds, c.n_cases, c.text(m, meta=meta), c.rank, c.marked_best,
                                 c.marked_second, c.p_value, c.significant, c.runner_up])
    _write_csv(path, PAPER_CSV_COLUMNS, rows)
