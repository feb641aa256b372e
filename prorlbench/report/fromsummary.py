"""Rebuilding tables of a run folder that holds no per-case data (``cases.csv.gz``).

Committed result folders (``results/paper``) keep ``summary.csv``, ``paper.csv`` and
``cells.csv`` but not the large per-case table. The report then takes the means, stds and seed
and case counts from ``summary.csv`` (exactly what :func:`.stats.summarize` wrote), ranks them as
usual, and copies the significance marks (p-value, runner-up) of the best cells from the stored
``paper.csv``, since the paired test needs per-case values. Nothing is recomputed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from .stats import SUMMARY_COLUMNS
from .table import Block


def read_summary_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"method": str, "dataset": str, "simulator": str, "metric": str},
                         keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None
    missing = [c for c in SUMMARY_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}")
    return df[list(SUMMARY_COLUMNS)]


def read_stored_marks(path: Path) -> dict[tuple[str, str, str, int, str], tuple[float | None, bool, str]]:
    """``(dataset, simulator, metric, k, method) -> (p_value, significant, runner_up)``."""
    if not path.exists():
        return {}
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = {}
    for r in df.itertuples(index=False):
        p = float(r.p_value) if r.p_value else None
        out[(r.dataset, r.simulator, r.metric, int(r.k), r.method)] = (p, r.significant == "true",
                                                                        r.runner_up)
    return out


def apply_stored_marks(blocks: list[Block], stored: dict) -> None:
    for b in blocks:
        for (meth, m, k), cell in b.cells.items():
            got = stored.get((b.dataset, b.simulator, m, k, meth))
            if got is not None and cell.rank == 1:
                cell.p_value, cell.significant, cell.runner_up = got
