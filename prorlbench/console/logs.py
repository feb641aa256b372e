"""Logging for a run: ``run.log`` and per-cell training logs.

Library code logs through ``logging.getLogger("prorlbench")``; :func:`run_log` attaches a file
handler (INFO and up, with tracebacks of failed cells) for the duration of a run and removes it
afterwards. :class:`CellTrainLogger` is the ``ctx.logger`` a method gets: each ``log(step, **values)``
call appends rows ``method, dataset, seed, step, metric, value`` to the cell's train log, and a
NaN or infinite value fails the cell (after it has been written, so the log shows it). With
``tensorboard`` set (``--tensorboard DIR``), every value is also written as a TensorBoard scalar
(``torch.utils.tensorboard``; ``pip install 'prorlbench[tensorboard]'``), one run per cell under
``DIR/<cell>``; ``train_log.csv`` stays the reference. A cell that is computed again (resumed
after a kill, ``--force``, a changed config) starts its TensorBoard run afresh: the event files
an earlier computation left in ``DIR/<cell>`` are removed, as its ``train_log.csv`` is replaced,
so a killed and resumed run shows the same scalars as a clean one (not both runs' steps).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
from pathlib import Path
from typing import IO, Iterator

LOGGER_NAME = "prorlbench"
log = logging.getLogger(LOGGER_NAME)

_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class NonFiniteError(FloatingPointError):
    """A training diagnostic or a metric came out NaN or infinite."""


@contextlib.contextmanager
def run_log(path: Path, level: int = logging.INFO) -> Iterator[logging.Handler]:
    """Append the ``prorlbench`` log to ``path`` while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_FORMAT))
    old_level = log.level
    if log.level == logging.NOTSET or log.level > level:
        log.setLevel(level)
    log.addHandler(handler)
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(old_level)


class OneLineFormatter(logging.Formatter):
    """For the console: the message only, never a traceback (those go to run.log)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}" if record.levelno >= logging.WARNING \
            else record.getMessage()


class CellTrainLogger:
    """``ctx.logger`` of one cell: writes ``cells/<cell>.train_log.csv`` as it goes."""

    def __init__(self, path: Path | None, method: str, dataset: str, seed: int,
                 tensorboard: Path | None = None):
        self.path = path
        self.tensorboard = tensorboard
        self._tb = None
        self.key = (method, dataset, seed)
        self._fh: IO[str] | None = None
        self._writer = None
        self.n_rows = 0
        if tensorboard is not None:
            clear_events(tensorboard)

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(["method", "dataset", "seed", "step", "metric", "value"])

    def log(self, step: int, **values: float) -> None:
        bad = []
        rows = []
        for name, v in values.items():
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"train log value {name}={v!r} at step {step} is not a number") from None
            if not math.isfinite(x):
                bad.append(f"{name}={x}")
            rows.append([*self.key, int(step), name, repr(x)])
        if self.path is not None:
            if self._fh is None:
                self._open()
            assert self._writer is not None and self._fh is not None
            self._writer.writerows(rows)
            self._fh.flush()
        if self.tensorboard is not None:
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.tensorboard))
            for name, _, x in ((r[4], r[3], float(r[5])) for r in rows):
                self._tb.add_scalar(name, x, int(step))
        self.n_rows += len(rows)
        if bad:
            raise NonFiniteError(f"non-finite training value at step {step}: {', '.join(bad)}")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._fh is not None:
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())  # on disk before the cell's status is written
            except (OSError, ValueError):
                pass
            self._fh.close()
            self._fh = None


def clear_events(folder: Path) -> None:
    """Remove the TensorBoard event files (``events.out.tfevents.*``, nothing else) in ``folder``."""
    try:
        stale = [p for p in Path(folder).glob("events.out.tfevents.*") if p.is_file() and not p.is_symlink()]
    except OSError:
        return
    for p in stale:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def check_tensorboard() -> None:
    """Raise a one-line error when ``--tensorboard`` is given but TensorBoard is not installed."""
    from ..errors import ConfigError

    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"--tensorboard needs TensorBoard ({exc}); pip install "
                          "'prorlbench[tensorboard]'") from None
