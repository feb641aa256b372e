"""Statistics of a run: summaries over seeds, per-case means, the paired test and the ranks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from .metadata import LEGACY, Metadata
from .table import Block, rounded

ALPHA = 0.05
"""Significance level of the paired Wilcoxon test."""
SUMMARY_COLUMNS = ("method", "dataset", "simulator", "metric", "k", "mean", "std", "n_seeds",
                   "n_cases")

KEYS = ["method", "dataset", "simulator", "metric", "k"]


def summarize(cases: pd.DataFrame) -> pd.DataFrame:
    """Per (method, dataset, simulator, metric, k): mean over cases per seed, then ``mean``,
    ``std`` (sample, ddof=1; ``0.0`` with one seed) and ``n_seeds`` over seeds, and ``n_cases``
    (distinct case ids with a value). NaN per-case values are skipped. Rows sorted by the keys."""
    d = cases.dropna(subset=["value"])
    if d.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS})
    # Sort first so the floating-point sums do not depend on the row order of the input file.
    d = d.sort_values(KEYS + ["seed", "case", "value"], kind="mergesort")
    per_seed = d.groupby(KEYS + ["seed"], sort=True, observed=True)["value"].mean()
    grouped = per_seed.groupby(level=KEYS, sort=True, observed=True)
    out = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1),
                        "n_seeds": grouped.size()})
    out["std"] = out["std"].where(out["n_seeds"] > 1, 0.0)
    out["n_cases"] = d.groupby(KEYS, sort=True, observed=True)["case"].nunique()
    out = out.reset_index()
    for c in ("method", "dataset", "simulator", "metric"):
        out[c] = out[c].astype(str)
    return out[list(SUMMARY_COLUMNS)].sort_values(KEYS, kind="mergesort").reset_index(drop=True)


def per_case_means(cases: pd.DataFrame) -> pd.Series:
    """Per-case values averaged over seeds, indexed by (method, dataset, simulator, metric, k,
    case); ``.loc[(method, dataset, simulator, metric, k)]`` is one method's series by case id."""
    d = cases.dropna(subset=["value"]).sort_values(KEYS + ["case", "seed"], kind="mergesort")
    return d.groupby(KEYS + ["case"], sort=True, observed=True)["value"].mean()


def _case_series(pc: pd.Series, key: tuple[str, str, str, str, int]) -> pd.Series:
    try:
        return pc.loc[key]
    except KeyError:
        return pd.Series(dtype="float64")


def paired_wilcoxon(best: pd.Series, other: pd.Series) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value on the cases both series have (paired by case id).
    ``None`` when there is no pair or every difference is zero (the test is undefined)."""
    from scipy.stats import wilcoxon

    common = best.index.intersection(other.index)
    if len(common) == 0:
        return None
    diff = best.loc[common].to_numpy(float) - other.loc[common].to_numpy(float)
    if not np.any(diff != 0):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = float(wilcoxon(diff).pvalue)
        except ValueError:
            return None
    return None if math.isnan(p) else p


def mark_ranks(blocks: list[Block], metrics: list[str], ks: list[int],
               directions: dict[str, bool | None], cases: pd.DataFrame | None = None,
               alpha: float = ALPHA, meta: Metadata = LEGACY) -> None:
    """Set ``Cell.rank`` (dense rank of the printed means, 1 = best, by the metric's direction;
    metrics without a direction get no rank) and, when ``cases`` is given, ``p_value`` /
    ``significant`` / ``runner_up`` of a unique best against every method ranked second."""
    pc = per_case_means(cases) if cases is not None else None
    for b in blocks:
        for m in metrics:
            direction = directions.get(m)
            if direction is None:
                continue
            for k in ks:
                col = {meth: b.cells[(meth, m, k)] for meth in b.methods}
                vals = {meth: rounded(c.mean, m, meta) for meth, c in col.items()
                        if c.state == "ok" and not math.isnan(c.mean)}
                distinct = sorted(set(vals.values()), reverse=bool(direction))
                rank_of = {v: i + 1 for i, v in enumerate(distinct)}
                for meth, v in vals.items():
                    col[meth].rank = rank_of[v]
                    col[meth].column_size = len(vals)
                if pc is None:
                    continue
                best = [meth for meth, v in vals.items() if rank_of[v] == 1]
                second = sorted(meth for meth, v in vals.items() if rank_of[v] == 2)
                if len(best) != 1 or not second:
                    continue
                winner = col[best[0]]
                a = _case_series(pc, (best[0], b.dataset, b.simulator, m, k))
                ps = []
                for other in second:
                    o = _case_series(pc, (other, b.dataset, b.simulator, m, k))
                    p = paired_wilcoxon(a, o)
                    common = a.index.intersection(o.index)
                    gain = (a.loc[common] - o.loc[common]).mean() if len(common) else 0.0
                    favourable = gain > 0 if direction else gain < 0
                    ps.append(p if (p is not None and favourable) else None)
                winner.runner_up = ";".join(second)
                known = [p for p in ps if p is not None]
                winner.p_value = max(known) if len(known) == len(ps) else None
                winner.significant = winner.p_value is not None and winner.p_value < alpha
