"""Reading a run folder (the layout of :class:`prorlbench.folder.results.RunFolder`) for the report.

Files are checked as they are read: a missing column, a non-number or a non-integer is a
:class:`~prorlbench.errors.DataError` naming the file and line. Per-case string columns become
sorted categories, so the group-bys of large runs are cheap.
"""

from __future__ import annotations

import gzip
import logging
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..folder.results import CASE_COLUMNS, CELL_COLUMNS, TRAIN_LOG_COLUMNS, RunFolder
from .metadata import LEGACY, Metadata, read_metadata

log = logging.getLogger("prorlbench")

REQUIRED_CELL_COLUMNS = ("method", "dataset", "seed", "status")
"""The columns of ``cells.csv`` the report cannot do without (the others default to empty)."""


@dataclass
class RunData:
    """The parsed contents of a run folder."""

    run_dir: Path
    cases: pd.DataFrame
    cells: pd.DataFrame
    train_log: pd.DataFrame | None
    config: dict[str, Any] = field(default_factory=dict)
    meta: Metadata = LEGACY
    """How metrics and methods are shown (``metadata.json``)."""


def _check_columns(df: pd.DataFrame, required: Sequence[str], path: Path) -> None:
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
                          for c in CASE_COLUMNS})
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
    _check_columns(df, CASE_COLUMNS, path)
    df = df[list(CASE_COLUMNS)].copy()
    _to_int(df, "seed", path)
    _to_int(df, "k", path)
    # Categories (sorted) make the group-bys and sorts of large runs cheap.
    for c in str_cols:
        df[c] = pd.Categorical(df[c])
    return df


def _read_cells(path: Path) -> pd.DataFrame:
    cols = tuple(c for c in CELL_COLUMNS if c != "seconds")
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    if not path.exists():
        return empty
    df = _read_table(path, ("method", "dataset", "simulator", "eval_simulator", "status", "error",
                            "weak_simulator"))
    if df.empty and not len(df.columns):
        return empty
    _check_columns(df, REQUIRED_CELL_COLUMNS, path)
    for c in ("simulator", "eval_simulator", "error", "weak_simulator"):  # older folders lack some
        if c not in df.columns:
            df[c] = ""
    df = df[list(cols)].copy()
    _to_int(df, "seed", path)
    for c in ("simulator", "eval_simulator", "error", "status", "weak_simulator"):
        df[c] = df[c].fillna("").astype(str)
    df["status"] = df["status"].str.strip().str.lower()
    return df


def _read_train_log(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    df = _read_table(path, ("method", "dataset", "metric"))
    if df.empty and not len(df.columns):
        return None
    _check_columns(df, TRAIN_LOG_COLUMNS, path)
    return df


def load_run(run_dir: Path | str) -> RunData:
    """Read a run folder; raise :class:`DataError` for a missing folder or malformed files."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "not a run folder (no such directory)")
    folder = RunFolder(run_dir)
    cases_path, cells_path = folder.cases, folder.cells_csv
    if not cases_path.exists() and not cells_path.exists():
        raise DataError(run_dir, "not a run folder: neither cases.csv.gz nor cells.csv exists")
    config: dict[str, Any] = {}
    cfg_path = folder.config
    if cfg_path.exists():
        try:
            config = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            log.warning("report: ignoring unreadable %s (%s)", cfg_path, exc)
    return RunData(run_dir, _read_cases(cases_path), _read_cells(cells_path),
                   _read_train_log(folder.train_log), config, read_metadata(run_dir))


def config_order(config: dict[str, Any], key: str) -> list[str]:
    """Names in the order the run's config lists them (``key = [...]`` or ``[key.NAME]``
    tables, at the top level or under ``[run]``); empty when the config does not say."""
    for table in (config, config.get("run", {}) if isinstance(config.get("run"), dict) else {}):
        val = table.get(key)
        if isinstance(val, list) and all(isinstance(v, str) for v in val):
            return list(val)
        if isinstance(val, dict):
            return [str(k) for k in val]
    return []


def ordered(names: set[str], preferred: list[str]) -> list[str]:
    first = [n for n in dict.fromkeys(preferred) if n in names]
    return first + sorted(names - set(first))
