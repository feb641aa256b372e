"""Turn a run folder into tables and plots (``prorlbench report``).

Input (written by the runner)::

    <dir>/config.toml        the run's configuration (only used to order methods and datasets)
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
* ``metrics.png``: headline metrics per method with error bars (std over seeds).
* ``style="paper"`` adds ``paper.md``, ``paper.tex``, ``paper.csv``: bold best, underlined
  second (dense ranking of means rounded to the printed precision) and a dagger on the best where
  a paired two-sided Wilcoxon signed-rank test against the runner-up gives p < 0.05.

See ``docs/report.md`` for the exact rules.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import re
import tomllib
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, did_you_mean

log = logging.getLogger("prorlbench")

# --------------------------------------------------------------------------------------------
# Metric metadata (fallbacks; the registry wins for directions when it knows the metric)
# --------------------------------------------------------------------------------------------

DISPLAY: dict[str, str] = {"ioi": "IoI", "ior": "IoR", "ctr": "CTR", "coherence": "Coherence",
                           "sr10": "SR@10", "len": "Len", "invalid": "Invalid"}
"""Display names of the built-in metrics (also their canonical column order)."""

DIRECTIONS: dict[str, bool | None] = {"ioi": True, "ior": True, "ctr": True, "coherence": True,
                                      "sr10": True, "len": None, "invalid": False}
"""``higher_is_better`` of the built-in metrics, used when the registry does not know a metric."""

DECIMALS: dict[str, int] = {"ioi": 3, "ior": 1, "ctr": 3, "coherence": 3, "sr10": 3, "len": 2,
                            "invalid": 3}
"""Printed decimals per metric (mean and std alike, Markdown and LaTeX alike); others: 3."""
DEFAULT_DECIMALS = 3

HEADLINE = ("ioi", "ior", "ctr", "sr10")
"""Metrics shown in ``metrics.png`` (those present)."""
PAPER_METRICS = ("ioi", "ior", "ctr", "coherence")
PAPER_KS = (1, 5, 10)
ALPHA = 0.05
"""Significance level of the paired Wilcoxon test."""
STYLES = ("default", "paper")

CASES_COLUMNS = ("method", "dataset", "simulator", "seed", "case", "metric", "k", "value")
CELLS_COLUMNS = ("method", "dataset", "seed", "status")
TRAIN_COLUMNS = ("method", "dataset", "seed", "step", "metric", "value")
SUMMARY_COLUMNS = ("method", "dataset", "simulator", "metric", "k", "mean", "std", "n_seeds",
                   "n_cases")
PAPER_CSV_COLUMNS = ("dataset", "simulator", "metric", "k", "method", "mean", "std", "n_seeds",
                     "n_cases", "cell", "rank", "best", "second", "p_value", "significant",
                     "runner_up")


def display_name(metric: str) -> str:
    return DISPLAY.get(metric, metric)


def decimals(metric: str) -> int:
    return DECIMALS.get(metric, DEFAULT_DECIMALS)


def metric_order(names: list[str] | set[str]) -> list[str]:
    """Built-in metrics in their canonical order, then the others alphabetically."""
    names = set(names)
    return [m for m in DISPLAY if m in names] + sorted(names - set(DISPLAY))


def metric_directions(metrics: list[str], registry: Any | None = None) -> dict[str, bool | None]:
    """``higher_is_better`` per metric: from the registry when it knows the metric, else from
    :data:`DIRECTIONS`, else ``None`` (no best marked). ``registry=None`` loads the installed
    plugins; a registry that fails to load is ignored (the report must work without plugins)."""
    if registry is None:
        try:
            from .plugins import load_registry

            registry = load_registry()
        except Exception as exc:  # noqa: BLE001 - a broken plugin set must not break reports
            log.warning("report: could not load the plugin registry (%s); using built-in metric "
                        "directions", exc)
            registry = False
    out: dict[str, bool | None] = {}
    for m in metrics:
        direction = DIRECTIONS.get(m)
        if registry:
            try:
                direction = registry.metric(m).higher_is_better
            except Exception:  # noqa: BLE001 - unknown metric: a plugin no longer installed
                pass
        out[m] = direction
    return out


# --------------------------------------------------------------------------------------------
# Reading a run folder
# --------------------------------------------------------------------------------------------


@dataclass
class RunData:
    """The parsed contents of a run folder."""

    run_dir: Path
    cases: pd.DataFrame
    cells: pd.DataFrame
    train_log: pd.DataFrame | None
    config: dict[str, Any] = field(default_factory=dict)


def _check_columns(df: pd.DataFrame, required: tuple[str, ...], path: Path) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; found: "
                              f"{', '.join(map(str, df.columns)) or '(none)'}")


def _to_int(df: pd.DataFrame, col: str, path: Path) -> None:
    num = pd.to_numeric(df[col], errors="coerce")
    bad = num.isna() | (num != np.floor(num))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"column '{col}': expected an integer, got {df[col].iloc[i]!r}",
                        line=i + 2)
    df[col] = num.astype("int64")


_NA_VALUES = ["", "nan", "NaN", "NAN", "NA", "None", "none", "null", "NULL"]


def _read_table(path: Path, str_cols: tuple[str, ...], float_cols: tuple[str, ...] = ()
                ) -> pd.DataFrame:
    """``str_cols`` as strings (no NA guessing); ``float_cols`` parsed as floats by the C parser
    (raises ``ValueError`` on a non-number: the caller then finds the line)."""
    dtype: dict[str, Any] = {c: str for c in str_cols}
    dtype.update({c: "float64" for c in float_cols})
    try:
        return pd.read_csv(path, dtype=dtype, keep_default_na=False,
                           na_values={c: _NA_VALUES for c in float_cols})
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError,
            pd.errors.ParserError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None


def _read_cases(path: Path) -> pd.DataFrame:
    str_cols = ("method", "dataset", "simulator", "case", "metric")
    empty = pd.DataFrame({c: pd.Series(dtype=object if c in str_cols else "float64")
                          for c in CASES_COLUMNS})
    if not path.exists():
        return empty
    try:
        df = _read_table(path, str_cols, ("value",))
    except ValueError:   # a non-number in 'value': read it as text to name the line
        df = _read_table(path, str_cols + ("value",))
        raw = df["value"].astype(str).str.strip()
        bad = pd.to_numeric(raw, errors="coerce").isna() & ~raw.isin(_NA_VALUES)
        i = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        raise DataError(path, f"column 'value': expected a number, got {raw.iloc[i]!r}",
                        line=i + 2) from None
    if df.empty and not len(df.columns):
        return empty
    _check_columns(df, CASES_COLUMNS, path)
    df = df[list(CASES_COLUMNS)].copy()
    _to_int(df, "seed", path)
    _to_int(df, "k", path)
    # Categories (sorted) make the group-bys and sorts of large runs cheap.
    for c in str_cols:
        df[c] = pd.Categorical(df[c])
    return df


def _read_cells(path: Path) -> pd.DataFrame:
    cols = ("method", "dataset", "seed", "simulator", "eval_simulator", "status", "error")
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    if not path.exists():
        return empty
    df = _read_table(path, ("method", "dataset", "simulator", "eval_simulator", "status", "error"))
    if df.empty and not len(df.columns):
        return empty
    _check_columns(df, CELLS_COLUMNS, path)
    for c in ("simulator", "eval_simulator", "error"):
        if c not in df.columns:
            df[c] = ""
    df = df[list(cols)].copy()
    _to_int(df, "seed", path)
    for c in ("simulator", "eval_simulator", "error", "status"):
        df[c] = df[c].fillna("").astype(str)
    df["status"] = df["status"].str.strip().str.lower()
    return df


def _read_train_log(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    df = _read_table(path, ("method", "dataset", "metric"))
    if df.empty and not len(df.columns):
        return None
    _check_columns(df, TRAIN_COLUMNS, path)
    return df


def load_run(run_dir: Path | str) -> RunData:
    """Read a run folder; raise :class:`DataError` for a missing folder or malformed files."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "not a run folder (no such directory)")
    cases_path, cells_path = run_dir / "cases.csv.gz", run_dir / "cells.csv"
    if not cases_path.exists() and not cells_path.exists():
        raise DataError(run_dir, "not a run folder: neither cases.csv.gz nor cells.csv exists")
    config: dict[str, Any] = {}
    cfg_path = run_dir / "config.toml"
    if cfg_path.exists():
        try:
            config = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            log.warning("report: ignoring unreadable %s (%s)", cfg_path, exc)
    return RunData(run_dir, _read_cases(cases_path), _read_cells(cells_path),
                   _read_train_log(run_dir / "train_log.csv"), config)


def _config_order(config: dict[str, Any], key: str) -> list[str]:
    """Names in the order the run's config lists them (``key = [...]`` or ``[key.NAME]``
    tables, at the top level or under ``[run]``); empty when the config does not say."""
    for table in (config, config.get("run", {}) if isinstance(config.get("run"), dict) else {}):
        val = table.get(key)
        if isinstance(val, list) and all(isinstance(v, str) for v in val):
            return list(val)
        if isinstance(val, dict):
            return [str(k) for k in val]
    return []


def _ordered(names: set[str], preferred: list[str]) -> list[str]:
    first = [n for n in dict.fromkeys(preferred) if n in names]
    return first + sorted(names - set(first))


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def fmt_number(x: float, metric: str) -> str:
    """``x`` with the metric's fixed decimals; ``-0.000`` is printed as ``0.000``."""
    s = f"{x:.{decimals(metric)}f}"
    if s.startswith("-") and float(s) == 0.0:
        s = s[1:]
    return s


def rounded(x: float, metric: str) -> float:
    """The value as printed (what ranks and ties are decided on)."""
    return float(fmt_number(x, metric))


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text (method and dataset names, errors)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def md_escape(text: str) -> str:
    """Escape characters that would break a Markdown table cell (``|``) or start emphasis or
    code (``*``, backtick). Underscores stay readable: GitHub Markdown ignores intraword ``_``."""
    return re.sub(r"([|*`])", r"\\\1", str(text))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arrow(direction: bool | None, *, latex: bool) -> str:
    if direction is None:
        return ""
    if latex:
        return r"$\uparrow$" if direction else r"$\downarrow$"
    return "↑" if direction else "↓"


def _tex_num(s: str) -> str:
    return "$-$" + s[1:] if s.startswith("-") else s


# --------------------------------------------------------------------------------------------
# Table model: blocks (dataset, simulator) x columns (metric, k) x rows (methods)
# --------------------------------------------------------------------------------------------


@dataclass
class Cell:
    """One table cell: the numbers and the marks decided for it."""

    mean: float = math.nan
    std: float = math.nan
    n_seeds: int = 0
    n_cases: int = 0
    state: str = "missing"
    """``"ok"`` (numbers), ``"failed"`` (every cell of the row failed) or ``"missing"``."""
    rank: int | None = None
    p_value: float | None = None
    significant: bool = False
    runner_up: str = ""

    def text(self, metric: str, *, latex: bool = False) -> str:
        if self.state == "failed":
            return "failed"
        if self.state != "ok" or math.isnan(self.mean):
            return "--" if latex else "–"
        m = fmt_number(self.mean, metric)
        if latex:
            m = _tex_num(m)
        if self.n_seeds <= 1:
            return m
        s = fmt_number(self.std, metric)
        return f"{m}$\\pm${s}" if latex else f"{m} ± {s}"


@dataclass
class Block:
    dataset: str
    simulator: str
    methods: list[str]
    cells: dict[tuple[str, str, int], Cell]
    """``(method, metric, k) -> Cell``."""
    labels: dict[str, str]
    """Row label per method (with ``(n/m seeds)`` when some of its cells failed)."""
    failures: list[tuple[str, int, str]]
    """``(method, seed, error)`` of the failed cells of this block."""

    @property
    def title(self) -> str:
        return f"{self.dataset} (eval: {self.simulator})"


def _split_sims(text: str) -> list[str]:
    return [s for s in re.split(r"[,;|\s]+", text.strip()) if s]


def build_blocks(run: RunData, summary: pd.DataFrame, metrics: list[str], ks: list[int],
                 *, all_methods: bool = False) -> list[Block]:
    """The table blocks. ``all_methods``: every block lists every method of the run (paper
    style, one shared row set); otherwise only methods with results or failures there."""
    cases, cells = run.cases, run.cells
    datasets_cfg = _config_order(run.config, "datasets")
    methods_cfg = _config_order(run.config, "methods")

    blocks: dict[tuple[str, str], set[str]] = {}
    for (ds, sim, meth) in summary[["dataset", "simulator", "method"]].drop_duplicates() \
            .itertuples(index=False):
        blocks.setdefault((ds, sim), set()).add(meth)

    sims_of: dict[str, set[str]] = {}
    for ds, sim in blocks:
        sims_of.setdefault(ds, set()).add(sim)
    # cells per (dataset, eval simulator, method): (n_total, failures)
    status: dict[tuple[str, str, str], list[tuple[int, str, str]]] = {}
    for row in cells.itertuples(index=False):
        sims = _split_sims(row.eval_simulator) or sorted(sims_of.get(row.dataset, set())) \
            or _split_sims(row.simulator) or ["?"]
        for sim in sims:
            status.setdefault((row.dataset, sim, row.method), []).append(
                (int(row.seed), row.status, row.error))
            if row.status != "ok":
                blocks.setdefault((row.dataset, sim), set()).add(row.method)

    every_method = _ordered({m for ms in blocks.values() for m in ms}, methods_cfg)
    ds_order = _ordered({ds for ds, _ in blocks}, datasets_cfg)
    out: list[Block] = []
    summ = {(r.method, r.dataset, r.simulator, r.metric, int(r.k)): r
            for r in summary.itertuples(index=False)}
    for ds in ds_order:
        for sim in sorted({s for d, s in blocks if d == ds}):
            present = blocks[(ds, sim)]
            methods = every_method if all_methods else [m for m in every_method if m in present]
            block_cells: dict[tuple[str, str, int], Cell] = {}
            labels: dict[str, str] = {}
            failures: list[tuple[str, int, str]] = []
            for meth in methods:
                st = status.get((ds, sim, meth), [])
                failed = sorted((seed, err) for seed, s, err in st if s != "ok")
                failures += [(meth, seed, err) for seed, err in failed]
                has_data = any((meth, ds, sim, m, k) in summ for m in metrics for k in ks)
                labels[meth] = meth
                if failed and has_data:
                    labels[meth] = f"{meth} ({len(st) - len(failed)}/{len(st)} seeds)"
                for m in metrics:
                    for k in ks:
                        r = summ.get((meth, ds, sim, m, k))
                        if r is not None:
                            c = Cell(float(r.mean), float(r.std), int(r.n_seeds), int(r.n_cases),
                                     "ok")
                        else:
                            c = Cell(state="failed" if failed and not has_data else "missing")
                        block_cells[(meth, m, k)] = c
            out.append(Block(ds, sim, methods, block_cells, labels, failures))
    return out


def mark_ranks(blocks: list[Block], metrics: list[str], ks: list[int],
               directions: dict[str, bool | None], cases: pd.DataFrame | None = None,
               alpha: float = ALPHA) -> None:
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
                vals = {meth: rounded(c.mean, m) for meth, c in col.items()
                        if c.state == "ok" and not math.isnan(c.mean)}
                distinct = sorted(set(vals.values()), reverse=bool(direction))
                rank_of = {v: i + 1 for i, v in enumerate(distinct)}
                for meth, v in vals.items():
                    col[meth].rank = rank_of[v]
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


# --------------------------------------------------------------------------------------------
# Markdown and LaTeX rendering
# --------------------------------------------------------------------------------------------


def _md_cell(c: Cell, metric: str, *, second: bool, dagger: bool) -> str:
    t = c.text(metric)
    if c.rank == 1:
        t = f"**{t}**"
        if dagger and c.significant:
            t += "†"
    elif second and c.rank == 2:
        t = f"<u>{t}</u>"
    return t


def _tex_cell(c: Cell, metric: str, *, second: bool, dagger: bool) -> str:
    if c.state == "failed":
        return r"\textit{failed}"
    t = c.text(metric, latex=True)
    if c.rank == 1:
        t = rf"\textbf{{{t}}}"
        if dagger and c.significant:
            t += r"$^\dagger$"
    elif second and c.rank == 2:
        t = rf"\underline{{{t}}}"
    return t


def _md_failures(b: Block) -> list[str]:
    if not b.failures:
        return []
    lines = ["", "Failed cells:", ""]
    lines += [f"- {md_escape(meth)}, seed {seed}: {md_escape(_one_line(err) or '(no message)')}"
              for meth, seed, err in b.failures]
    return lines


def _seeds_note(blocks: list[Block]) -> str:
    ns = sorted({c.n_seeds for b in blocks for c in b.cells.values() if c.state == "ok"})
    if not ns:
        return "no results"
    if ns == [1]:
        return "one seed (mean only)"
    return f"mean ± std over {'/'.join(map(str, ns))} seeds"


def _col_label(metric: str, k: int, directions: dict[str, bool | None], *, latex: bool) -> str:
    name = display_name(metric)
    name = latex_escape(name) if latex else md_escape(name)
    arrow = _arrow(directions.get(metric), latex=latex)
    return f"{name}@{k}" + (f" {arrow}" if arrow and not latex else arrow)


def _md_document(lines: list[str], blocks: list[Block], metrics: list[str], ks: list[int],
                 directions: dict[str, bool | None], *, paper: bool) -> str:
    """``lines`` (title and caption) then one Markdown table per block; ``paper`` adds the
    second-best underline and the significance mark."""
    from tabulate import tabulate

    if not blocks:
        lines.append("No results.")
    headers = ["Method"] + [_col_label(m, k, directions, latex=False) for m in metrics for k in ks]
    for b in blocks:
        rows = [[md_escape(b.labels[meth])]
                + [_md_cell(b.cells[(meth, m, k)], m, second=paper, dagger=paper)
                   for m in metrics for k in ks] for meth in b.methods]
        lines += [f"## {md_escape(b.title)}", "",
                  tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
        lines += _md_failures(b)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_summary_md(blocks: list[Block], metrics: list[str], ks: list[int],
                      directions: dict[str, bool | None]) -> str:
    lines = ["# Summary", "",
             f"{_seeds_note(blocks)}; best per column in **bold** (ties: all bold; ↑ higher is "
             "better, ↓ lower is better).", ""]
    return _md_document(lines, blocks, metrics, ks, directions, paper=False)


def _tex_failure_comments(blocks: list[Block]) -> list[str]:
    out = []
    for b in blocks:
        for meth, seed, err in b.failures:
            out.append(f"% failed: {b.dataset} / {b.simulator} / {meth} / seed {seed}: "
                       f"{_one_line(err) or '(no message)'}")
    return out


def render_summary_tex(blocks: list[Block], metrics: list[str], ks: list[int],
                       directions: dict[str, bool | None]) -> str:
    ncols = 1 + len(metrics) * len(ks)
    head = ["Method"] + [_col_label(m, k, directions, latex=True) for m in metrics for k in ks]
    lines = [r"% Generated by prorlbench report. Needs \usepackage{booktabs}.",
             *_tex_failure_comments(blocks),
             r"\begin{table}[t]", r"\centering", r"\small",
             r"\caption{" + latex_escape(_seeds_note(blocks)).replace("±", r"$\pm$")
             + r"; best per column in bold (ties: all bold).}",
             r"\label{tab:prorlbench-summary}",
             r"\begin{tabular}{" + "l" + "c" * (ncols - 1) + "}", r"\toprule",
             " & ".join(head) + r" \\", r"\midrule"]
    for i, b in enumerate(blocks):
        if i:
            lines.append(r"\midrule")
        lines.append(rf"\multicolumn{{{ncols}}}{{l}}{{\textit{{{latex_escape(b.title)}}}}} \\")
        for meth in b.methods:
            cells = [_tex_cell(b.cells[(meth, m, k)], m, second=False, dagger=False)
                     for m in metrics for k in ks]
            lines.append(" & ".join([latex_escape(b.labels[meth])] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


PAPER_CAPTION_MD = (
    "{seeds}. Per column the best mean is in **bold** and the second best <u>underlined</u>: "
    "methods are ranked by their means rounded to the printed precision (dense ranking, so tied "
    "methods share a rank and are all marked). † marks a best method that is significantly "
    "better than the runner-up (every method ranked second): two-sided Wilcoxon signed-rank "
    "test on per-case values (averaged over seeds, paired by case id), p < {alpha}. No mark when "
    "the best is tied or every paired difference is zero. ↑ higher is better, ↓ lower is better.")

PAPER_CAPTION_TEX = (
    "{seeds}. Best per column in bold, second underlined (dense ranking of means rounded to the "
    r"printed precision; ties share a rank). $^\dagger$: best significantly better than the "
    "runner-up, two-sided Wilcoxon signed-rank test on per-case values averaged over seeds and "
    r"paired by case, $p < {alpha}$.")


def render_paper_md(blocks: list[Block], metrics: list[str], ks: list[int],
                    directions: dict[str, bool | None], alpha: float = ALPHA) -> str:
    lines = ["# Results (paper style)", "",
             PAPER_CAPTION_MD.format(seeds=_seeds_note(blocks), alpha=alpha), ""]
    return _md_document(lines, blocks, metrics, ks, directions, paper=True)


def render_paper_tex(blocks: list[Block], metrics: list[str], ks: list[int],
                     directions: dict[str, bool | None], alpha: float = ALPHA) -> str:
    per_block = len(metrics) * len(ks)
    ncols = 1 + per_block * len(blocks)
    caption = PAPER_CAPTION_TEX.replace("{seeds}", latex_escape(_seeds_note(blocks))
                                        .replace("±", r"$\pm$")).replace("{alpha}", f"{alpha:g}")
    if any(b.labels.get(meth, meth) != meth for b in blocks for meth in b.methods):
        caption += r" $^*$: some seeds of this method failed (listed in paper.md)."
    lines = [r"% Generated by prorlbench report --style paper. Needs \usepackage{booktabs}.",
             *_tex_failure_comments(blocks),
             r"\begin{table}[t]", r"\centering", r"\scriptsize", r"\setlength{\tabcolsep}{3pt}",
             r"\caption{" + caption + "}", r"\label{tab:prorlbench-paper}",
             r"\begin{tabular}{" + "l" + "c" * (ncols - 1) + "}", r"\toprule"]
    if blocks:
        row, rules = [""], []
        for i, b in enumerate(blocks):
            row.append(rf"\multicolumn{{{per_block}}}{{c}}{{{latex_escape(b.title)}}}")
            start = 2 + i * per_block
            rules.append(rf"\cmidrule(lr){{{start}-{start + per_block - 1}}}")
        lines += [" & ".join(row) + r" \\", " ".join(rules)]
        row, rules = [""], []
        for i, _ in enumerate(blocks):
            for j, m in enumerate(metrics):
                label = latex_escape(display_name(m)) + _arrow(directions.get(m), latex=True)
                row.append(rf"\multicolumn{{{len(ks)}}}{{c}}{{{label}}}")
                start = 2 + i * per_block + j * len(ks)
                rules.append(rf"\cmidrule(lr){{{start}-{start + len(ks) - 1}}}")
        lines += [" & ".join(row) + r" \\", " ".join(rules)]
        lines.append(" & ".join(["Method"] + [f"@{k}" for _ in blocks for _ in metrics
                                              for k in ks]) + r" \\")
    else:
        lines.append(r"Method \\")
    lines.append(r"\midrule")
    methods = blocks[0].methods if blocks else []
    for meth in methods:
        partial = any(b.labels.get(meth, meth) != meth for b in blocks)
        cells = [_tex_cell(b.cells[(meth, m, k)], m, second=True, dagger=True)
                 for b in blocks for m in metrics for k in ks]
        name = latex_escape(meth) + (r"$^*$" if partial else "")
        lines.append(" & ".join([name] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# CSV writers (byte-reproducible)
# --------------------------------------------------------------------------------------------


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
    path.write_bytes(buf.getvalue().encode("utf-8"))


def write_summary_csv(summary: pd.DataFrame, path: Path) -> None:
    rows = [[r.method, r.dataset, r.simulator, r.metric, int(r.k), float(r.mean), float(r.std),
             int(r.n_seeds), int(r.n_cases)] for r in summary.itertuples(index=False)]
    _write_csv(path, SUMMARY_COLUMNS, rows)


def write_paper_csv(blocks: list[Block], metrics: list[str], ks: list[int], path: Path) -> None:
    rows = []
    for b in blocks:
        for m in metrics:
            for k in ks:
                for meth in b.methods:
                    c = b.cells[(meth, m, k)]
                    rows.append([b.dataset, b.simulator, m, k, meth,
                                 c.mean if c.state == "ok" else math.nan,
                                 c.std if c.state == "ok" else math.nan,
                                 c.n_seeds, c.n_cases, c.text(m), c.rank, c.rank == 1,
                                 c.rank == 2, c.p_value, c.significant, c.runner_up])
    _write_csv(path, PAPER_CSV_COLUMNS, rows)


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _mpl_text(text: str) -> str:
    """Plain text for matplotlib: a ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def plot_metrics(blocks: list[Block], metrics: list[str], k: int, path: Path) -> Path | None:
    """Bar chart per (dataset, simulator) row and metric column: mean per method with std over
    seeds as error bars. Returns ``None`` (and writes nothing) when there is nothing to plot."""
    # A bare Figure (no pyplot): no global figure state, no display; PNG goes through Agg.
    from matplotlib.figure import Figure

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
            ax.set_xticks(x, [_mpl_text(meth) for meth in meths], rotation=45, ha="right",
                          fontsize=7)
            ax.axhline(0.0, color="black", linewidth=0.5)
            ax.set_title(_mpl_text(f"{display_name(m)}@{k}: {b.dataset} ({b.simulator})"),
                         fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
    fig.savefig(path, dpi=100, format="png", metadata={"Software": None})
    return path


def _training_plots(train_log: pd.DataFrame, run_dir: Path) -> tuple[list[Path], str]:
    try:
        from .rl.plots import plot_training
    except ImportError as exc:
        return [], f"training plots unavailable ({exc})"
    try:
        paths = plot_training(train_log, run_dir)
    except Exception as exc:  # noqa: BLE001 - a plotting bug must not lose the tables
        log.warning("report: training plots failed: %s", exc)
        return [], f"training plots failed: {_one_line(str(exc))}"
    return [Path(p) for p in (paths or [])], ""


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


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


def write_report(run_dir: Path, *, style: str = "default", metrics: list[str] | None = None,
                 ks: list[int] | None = None, registry: Any | None = None,
                 plots: bool = True) -> str:
    """Write the report files of a run folder and return the Markdown to print.

    Always writes ``summary.csv``, ``summary.md``, ``summary.tex`` and ``metrics.png`` (when there
    are results), plus the training plots when ``train_log.csv`` exists. ``style="paper"`` also
    writes ``paper.md``, ``paper.tex`` and ``paper.csv`` and returns ``paper.md``'s text.
    ``metrics`` / ``ks`` choose the table columns of the chosen style (defaults: every metric at
    the smallest K for ``default``; IoI, IoR, CTR, Coherence at K = 1, 5, 10 for ``paper``).
    ``registry``: a loaded plugin registry for metric directions (``None``: load the installed
    plugins; ``False``: built-in directions only). ``plots=False`` skips every plot.
    """
    if style not in STYLES:
        raise ConfigError(f"report: unknown style '{style}'{did_you_mean(style, list(STYLES))}; "
                          f"valid: {', '.join(STYLES)}")
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    summary = summarize(run.cases)
    write_summary_csv(summary, run_dir / "summary.csv")

    available_metrics = metric_order(set(summary["metric"]))
    available_ks = sorted({int(k) for k in summary["k"]})
    if not available_metrics:
        # Nothing succeeded: show the requested (or default) columns, every row "failed".
        available_metrics = metric_order(set(metrics or PAPER_METRICS))
        available_ks = sorted(set(ks or PAPER_KS))
    directions = metric_directions(available_metrics, registry)

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
    mark_ranks(s_blocks, s_metrics, s_ks, directions)
    summary_md = render_summary_md(s_blocks, s_metrics, s_ks, directions)
    (run_dir / "summary.tex").write_text(
        render_summary_tex(s_blocks, s_metrics, s_ks, directions), encoding="utf-8")

    # plots: the headline metrics (or the chosen ones in the default style) at the table's K
    plot_paths: list[Path] = []
    notes: list[str] = []
    if plots:
        plot_k = s_ks[0] if s_ks else 1
        plot_m = [m for m in HEADLINE if m in available_metrics] or available_metrics[:4]
        if style == "default" and metrics is not None:
            plot_m = s_metrics
        plot_blocks = s_blocks if all(m in s_metrics for m in plot_m) else \
            build_blocks(run, summary, plot_m, [plot_k])
        png = plot_metrics(plot_blocks, plot_m, plot_k, run_dir / "metrics.png")
        if png is not None:
            plot_paths.append(png)
        else:
            (run_dir / "metrics.png").unlink(missing_ok=True)
        if run.train_log is not None:
            extra, note = _training_plots(run.train_log, run_dir)
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
    (run_dir / "summary.md").write_text(summary_md, encoding="utf-8")
    if style == "default":
        return summary_md

    p_metrics = _select(metrics, available_metrics, PAPER_METRICS, "metric")
    p_ks = _select(ks, available_ks, PAPER_KS, "K")
    p_blocks = build_blocks(run, summary, p_metrics, p_ks, all_methods=True)
    mark_ranks(p_blocks, p_metrics, p_ks, directions, cases=run.cases)
    paper_md = render_paper_md(p_blocks, p_metrics, p_ks, directions) + plot_section()
    (run_dir / "paper.md").write_text(paper_md, encoding="utf-8")
    (run_dir / "paper.tex").write_text(render_paper_tex(p_blocks, p_metrics, p_ks, directions),
                                       encoding="utf-8")
    write_paper_csv(p_blocks, p_metrics, p_ks, run_dir / "paper.csv")
    return paper_md
