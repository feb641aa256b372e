"""The run folder: where every result lives, and how it is written so an interrupted run resumes.

Layout (the contract with :mod:`prorlbench.report`)::

    <out>/config.toml                 everything needed to re-run
    <out>/metadata.json               how to show the metrics and methods (from their specs), so
                                      reports need no plugin registry
    <out>/cells/<cell>.cases.csv.gz   per-case tidy table of one cell
    <out>/cells/<cell>.train_log.csv  per-step training diagnostics of one cell
    <out>/cells/<cell>.paths.json.gz  the candidate paths the method generated, with the test cases
                                      (:mod:`prorlbench.folder.store`; what ``prorlbench rescore`` scores)
    <out>/cells/<cell>.policy.pt      final policy weights of a method that keeps them in ``.policy``
    <out>/cells/<cell>.json           the cell's status, written LAST and atomically; it holds the
                                      SHA-256 of each file above
    <out>/cases.csv.gz                all ok cells: method, dataset, simulator, seed, case, metric, k, value
    <out>/cells.csv                   one row per cell: method, dataset, seed, simulator, eval_simulator,
                                      status, error, seconds
    <out>/train_log.csv               method, dataset, seed, step, metric, value
    <out>/run.log                     the log (INFO and up)

``<cell>`` is ``<method>__<dataset>__s<seed>``. Every file is written to a temporary name in the
same folder, flushed to disk (``fsync``) and moved into place with :func:`os.replace`, so a killed
run leaves either the old file or the new one, never half of one. A cell counts as done only when
its status file says ``"ok"`` and every file it lists still has the checksum it lists; the status
file is written after the cell's other files. A write that fails (read-only folder, full disk)
raises :class:`OutputError`, a one-line :class:`~prorlbench.errors.UserError`; what was finished
stays on disk. Files are created with the mode the umask gives (``0o666 & ~umask``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..errors import UserError
from .files import (OutputError, atomic_write_bytes, atomic_write_frame, atomic_write_text,  # noqa: F401
                    cell_name, refuse_link, sha256_file)

CELL_FILES = ("cases", "paths", "train_log", "policy")
"""The files of a cell besides its status, by the names the status's checksums use."""
CASE_COLUMNS = ["method", "dataset", "simulator", "seed", "case", "metric", "k", "value"]
CELL_COLUMNS = ["method", "dataset", "seed", "simulator", "eval_simulator", "status", "error", "seconds",
                "weak_simulator"]
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
    """Hash of every setting the method's training and its paths depend on (the training
    fingerprint); a done cell whose fingerprint differs from the current configuration is
    recomputed."""
    score_fingerprint: str = ""
    """Hash of how the stored paths were scored (metrics, eval simulators, ks): when only this
    differs, the stored paths are scored again and nothing is retrained."""
    n_candidates: int = 0
    """Candidate paths stored per case (``max(ks)`` of the run that generated them)."""
    backbones: dict[str, str] = field(default_factory=dict)
    """Config hash of each backbone kind the method asked for (``ctx.make_backbone``)."""
    grid: dict[str, str] = field(default_factory=dict)
    """What every cell of its table must share (``data``, ``simulator``, ``score``:
    ``fingerprint.grid_fingerprints``); empty in cells of older versions."""
    files: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each of the cell's files (``cases``, ``paths``, ``train_log``, ``policy``)."""
    platform: dict[str, str] = field(default_factory=dict)
    """Where the cell was computed (``devices.platform_identity``: torch, CPU, SIMD kernels, GPU,
    threads); a seeded RL cell need not reproduce on another platform."""
    code: dict[str, Any] = field(default_factory=dict)
    """The code that made the cell (``devices.code_identity``: prorlbench's version, its git
    commit and whether the checkout was dirty; ``None`` where unknown). Empty in cells written
    before it was recorded."""
    weak_simulator: str = ""
    """Why a simulator or backbone this cell used is below popularity (``; ``-joined), kept because
    ``allow_weak_simulator``; the report marks the row (:mod:`prorlbench.seq.strength`). Empty: none."""
    valid: dict[str, float] = field(default_factory=dict)
    """``--select-on valid``: ``{"METRIC@K": mean}`` on the validation cases (:mod:`prorlbench.engine.selection`)."""
    skipped: bool = field(default=False, compare=False)
    """Not stored: ``True`` when this run found the cell done and did not recompute it."""
    rescored: bool = field(default=False, compare=False)
    """Not stored: ``True`` when this run only scored the cell's stored paths again."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("skipped")
        d.pop("rescored")
        return d


class RunFolder:
    """Paths and atomic reads/writes of one run folder. ``code``: the code of the run writing it
    (``devices.code_identity``, computed once per run), recorded in every status it writes."""

    def __init__(self, root: str | Path, code: dict[str, Any] | None = None):
        self.root = Path(root)
        self.cells = self.root / "cells"
        self.code = dict(code or {})

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

    def cell_paths(self, cell: str) -> Path:
        return self.cells / f"{cell}.paths.json.gz"

    def cell_policy(self, cell: str) -> Path:
        return self.cells / f"{cell}.policy.pt"

    def cell_file(self, cell: str, kind: str) -> Path:
        """One of a cell's files by the name its status uses (``cases``, ``paths``, ...)."""
        return {"cases": self.cell_cases, "paths": self.cell_paths, "train_log": self.cell_train_log,
                "policy": self.cell_policy}[kind](cell)

    def checksums(self, cell: str) -> dict[str, str]:
        """SHA-256 of every cell file that exists (stored in the status)."""
        out = {}
        for kind in CELL_FILES:
            p = self.cell_file(cell, kind)
            if p.is_file():
                out[kind] = sha256_file(p)
        return out

    def verify(self, cell: str, status: "CellStatus", kinds: Iterable[str] | None = None) -> str | None:
        """``None`` when every file the status lists (or those of ``kinds``) is there with its
        checksum, else why not."""
        if not status.files:
            return "the status lists no file checksums (written by an older version)"
        wanted = set(status.files) if kinds is None else set(kinds)
        for kind, digest in status.files.items():
            if kind not in wanted:
                continue
            if kind not in CELL_FILES:
                return f"unknown file kind {kind!r} in the status"
            p = self.cell_file(cell, kind)
            try:
                if sha256_file(p) != digest:
                    return f"{p.name} does not match the checksum in its status"
            except OSError:
                return f"{p.name} is missing or unreadable"
        if kinds is None and "cases" not in status.files:
            return "the status lists no per-case table"
        return None

    def remove_stale_tmp(self) -> int:
        """Delete temporary files a killed run left behind (call with the run lock held)."""
        n = 0
        for folder in (self.root, self.cells):
            for p in folder.glob(".*.tmp"):
                try:
                    p.unlink()
                    n += 1
                except OSError:
                    pass
        return n

    def make(self) -> None:
        """Create ``cells/``; a link at ``cells``, ``.lock`` or ``run.log`` (written in place, not
        replaced) is refused: a run writes no file through a link it did not make."""
        for p in (self.cells, self.root / ".lock", self.log):
            refuse_link(p)
        self.cells.mkdir(parents=True, exist_ok=True)

    # cells ---------------------------------------------------------------------------------
    def read_status(self, cell: str) -> CellStatus | None:
        """The stored status of a cell, or ``None`` when absent or unreadable."""
        p = self.cell_status(cell)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
            fields = CellStatus.__dataclass_fields__
            st = CellStatus(**{k: v for k, v in d.items() if k in fields and k not in ("skipped", "rescored")})
            if not (isinstance(st.method, str) and isinstance(st.dataset, str) and isinstance(st.seed, int)
                    and isinstance(st.status, str) and isinstance(st.files, dict)
                    and isinstance(st.backbones, dict) and isinstance(st.platform, dict) and isinstance(st.code, dict)
                    and isinstance(st.grid, dict)
                    and isinstance(st.n_candidates, int)):
                raise ValueError("fields of the wrong type")
            return st
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, RecursionError) as exc:  # deeply nested JSON too
            import logging

            logging.getLogger("prorlbench").warning("%s: malformed status file (%s); the cell is "
                                                    "recomputed", p, " ".join(str(exc).split())[:120])
            return None

    def write_status(self, cell: str, status: CellStatus) -> None:
        if self.code:
            status.code = dict(self.code)
        atomic_write_text(self.cell_status(cell), json.dumps(status.to_json(), indent=2) + "\n")

    def clear_cell(self, cell: str) -> None:
        """Remove a cell's files before recomputing it (status first, so no stale 'ok' remains)."""
        for p in (self.cell_status(cell), *(self.cell_file(cell, k) for k in CELL_FILES)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # e.g. a folder where the file belongs: not ours to remove
                raise OutputError(f"{p}: cannot replace it ({exc.strerror or exc}; prorlbench keeps a "
                                  "cell file there); move it away and re-run") from None

    def write_cell_cases(self, cell: str, df: pd.DataFrame) -> None:
        atomic_write_frame(self.cell_cases(cell), df[CASE_COLUMNS])

    def finished_cells(self) -> list[CellStatus]:
        """Every cell under ``cells/`` with a readable status, whatever grid made it."""
        found = (self.read_status(p.name[: -len(".json")]) for p in sorted(self.cells.glob("*.json")))
        return [st for st in found if st is not None]

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
                    try:
                        frames.append(read_cases(p))
                    except Exception as exc:  # EOFError, BadGzipFile, ParserError, UnicodeDecodeError
                        raise UserError(f"{p}: unreadable per-case table ({type(exc).__name__}); "
                                        "re-run the same command to recompute the cell") from None
        cases = pd.concat(frames, ignore_index=True) if frames else empty_cases()
        atomic_write_frame(self.cases, cases[CASE_COLUMNS])
        rows = [{k: getattr(c, k) for k in CELL_COLUMNS} for c in cells]
        atomic_write_frame(self.cells_csv, pd.DataFrame(rows, columns=CELL_COLUMNS))
        logs = []
        for c in cells:
            p = self.cell_train_log(cell_name(c.method, c.dataset, c.seed))
            if p.exists() and p.stat().st_size > 0:
                try:
                    logs.append(pd.read_csv(p, encoding="utf-8"))
                except (pd.errors.EmptyDataError, pd.errors.ParserError):
                    continue
                except UnicodeDecodeError as exc:
                    raise UserError(f"{p}: not UTF-8 text (byte {exc.start}); delete the cell's files "
                                    "and re-run to recompute it") from None
        log = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame(columns=TRAIN_LOG_COLUMNS)
        atomic_write_frame(self.train_log, log[TRAIN_LOG_COLUMNS])
        return cases


def empty_cases() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else "object") for c in CASE_COLUMNS})


def read_cases(path: str | Path) -> pd.DataFrame:
    """A per-case table with stable dtypes (``case`` is read as a string)."""
    return pd.read_csv(path, dtype={"method": str, "dataset": str, "simulator": str, "case": str,
                                    "metric": str})
