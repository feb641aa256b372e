"""The run folder: where every result lives, and how it is written so an interrupted run resumes.

Layout (the contract with :mod:`prorlbench.report`)::

    <out>/config.toml                 everything needed to re-run
    <out>/metadata.json               how to show the metrics and methods (from their specs), so
                                      reports need no plugin registry
    <out>/cells/<cell>.cases.csv.gz   per-case tidy table of one cell
    <out>/cells/<cell>.train_log.csv  per-step training diagnostics of one cell
    <out>/cells/<cell>.json           the cell's status, written LAST and atomically
    <out>/cases.csv.gz                all ok cells: method, dataset, simulator, seed, case, metric, k, value
    <out>/cells.csv                   one row per cell: method, dataset, seed, simulator, eval_simulator,
                                      status, error, seconds
    <out>/train_log.csv               method, dataset, seed, step, metric, value
    <out>/run.log                     the log (INFO and up)

``<cell>`` is ``<method>__<dataset>__s<seed>``. Every file is written to a temporary name in the
same folder and moved into place with :func:`os.replace`, so a killed run leaves either the old
file or the new one, never half of one. A cell counts as done only when its status file says
``"ok"``; the status file is written after the cell's other files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .files import atomic_write, atomic_write_text, safe_name

CASE_COLUMNS = ["method", "dataset", "simulator", "seed", "case", "metric", "k", "value"]
CELL_COLUMNS = ["method", "dataset", "seed", "simulator", "eval_simulator", "status", "error", "seconds"]
TRAIN_LOG_COLUMNS = ["method", "dataset", "seed", "step", "metric", "value"]


@dataclass
class CellStatus:
    """The content of ``cells/<cell>.json``."""

    method: str
    dataset: str
    seed: int
    simulator: str
    eval_simulator: str
    """Comma-separated names of the simulators that scored the paths."""
    status: str
    """``"ok"`` or ``"failed"``."""
    error: str | None = None
    seconds: float = 0.0
    n_cases: int = 0
    peak_gpu_mib: float | None = None
    """Peak GPU memory allocated by torch during the cell (MiB), on CUDA only."""
    fingerprint: str = ""
    """Hash of every setting the cell's numbers depend on; a done cell whose fingerprint differs
    from the current configuration is recomputed."""
    skipped: bool = field(default=False, compare=False)
    """Not stored: ``True`` when this run found the cell done and did not recompute it."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("skipped")
        return d


def cell_name(method: str, dataset: str, seed: int) -> str:
    """``<method>__<dataset>__s<seed>`` (characters unsafe in file names become ``-``)."""
    return f"{safe_name(method)}__{safe_name(dataset)}__s{int(seed)}"


class RunFolder:
    """Paths and atomic reads/writes of one run folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.cells = self.root / "cells"

    # paths ---------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metadata(self) -> Path:
        return self.root / "metadata.json"

    @property
    def cases(self) -> Path:
        return self.root / "cases.csv.gz"

    @property
    def cells_csv(self) -> Path:
        return self.root / "cells.csv"

    @property
    def train_log(self) -> Path:
        return self.root / "train_log.csv"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    def cell_status(self, cell: str) -> Path:
        return self.cells / f"{cell}.json"

    def cell_cases(self, cell: str) -> Path:
        return self.cells / f"{cell}.cases.csv.gz"

    def cell_train_log(self, cell: str) -> Path:
        return self.cells / f"{cell}.train_log.csv"

    def make(self) -> None:
        self.cells.mkdir(parents=True, exist_ok=True)

    # cells ---------------------------------------------------------------------------------
    def read_status(self, cell: str) -> CellStatus | None:
        """The stored status of a cell, or ``None`` when absent or unreadable."""
        p = self.cell_status(cell)
        try:
            d = json.loads(p.read_text())
            fields = CellStatus.__dataclass_fields__
            return CellStatus(**{k: v for k, v in d.items() if k in fields and k != "skipped"})
        except (OSError, ValueError, TypeError):
            return None

    def write_status(self, cell: str, status: CellStatus) -> None:
        atomic_write_text(self.cell_status(cell), json.dumps(status.to_json(), indent=2) + "\n")

    def clear_cell(self, cell: str) -> None:
        """Remove a cell's files before recomputing it (status first, so no stale 'ok' remains)."""
        for p in (self.cell_status(cell), self.cell_cases(cell), self.cell_train_log(cell)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def write_cell_cases(self, cell: str, df: pd.DataFrame) -> None:
        atomic_write_frame(self.cell_cases(cell), df[CASE_COLUMNS])

    # merged tables ---------------------------------------------------------------------------
    def merge(self, cells: Iterable[CellStatus]) -> pd.DataFrame:
        """Write cases.csv.gz, cells.csv and train_log.csv from the given cells' files.

        Returns the merged per-case table.
        """
        cells = list(cells)
        frames = []
        for c in cells:
            if c.ok:
                p = self.cell_cases(cell_name(c.method, c.dataset, c.seed))
                if p.exists():
                    frames.append(read_cases(p))
        cases = pd.concat(frames, ignore_index=True) if frames else empty_cases()
        atomic_write_frame(self.cases, cases[CASE_COLUMNS])
        rows = [{k: getattr(c, k) for k in CELL_COLUMNS} for c in cells]
        atomic_write_frame(self.cells_csv, pd.DataFrame(rows, columns=CELL_COLUMNS))
        logs = []
        for c in cells:
            p = self.cell_train_log(cell_name(c.method, c.dataset, c.seed))
            if p.exists() and p.stat().st_size > 0:
                try:
                    logs.append(pd.read_csv(p))
                except (pd.errors.EmptyDataError, pd.errors.ParserError):
                    continue
        log = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame(columns=TRAIN_LOG_COLUMNS)
        atomic_write_frame(self.train_log, log[TRAIN_LOG_COLUMNS])
        return cases


def empty_cases() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else "object") for c in CASE_COLUMNS})


def read_cases(path: str | Path) -> pd.DataFrame:
    """A per-case table with stable dtypes (``case`` is read as a string)."""
    return pd.read_csv(path, dtype={"method": str, "dataset": str, "simulator": str, "case": str,
                                    "metric": str})


def atomic_write_frame(path: str | Path, df: pd.DataFrame) -> None:
    """Write a CSV (gzip when the name ends in ``.gz``, with a fixed header time so equal tables
    give equal bytes) atomically."""
    compression: Any = {"method": "gzip", "mtime": 0} if str(path).endswith(".gz") else None
    atomic_write(path, lambda fh: df.to_csv(fh, index=False, compression=compression), "wb")
