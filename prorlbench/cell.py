"""One cell of the grid: its job, its work, its failure status, built in one place.

:class:`CellWork` computes one (method, dataset, seed) cell of a prepared dataset and writes its
files (status last, see :mod:`prorlbench.results`): seed ``random``, ``numpy`` and ``torch`` with
the cell's seed, build the method from its config, ``fit`` it with a
:class:`~prorlbench.api.FitContext`, ``generate`` ``max(ks)`` candidate paths per test case, score
them with :func:`prorlbench.evaluate.evaluate_paths` against each eval simulator. A cell that
raises, or whose per-case metrics are NaN or infinite, is stored as failed with a one-line reason
(traceback in run.log). :class:`CellWork` is what executors receive (the ``Work`` protocol of
:mod:`prorlbench.executors`): picklable, movable to another device, able to store a failure.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .api import FitContext
from .errors import one_line
from . import evaluate
from .executors import CellJob
from .logs import CellTrainLogger, NonFiniteError
from .prepare import DatasetContext, make_backbone_factory
from .resolve import Resolved
from .results import CASE_COLUMNS, CellStatus, RunFolder
from .seeding import seed_everything

log = logging.getLogger("prorlbench")


class CellFailure(Exception):
    """A method broke the output contract (wrong number of candidate lists, ...)."""


@dataclass
class CellWork:
    """Computes one cell of a prepared dataset and writes its files (picklable state only
    besides the dataset context, so a remote executor can ship it)."""

    res: Resolved
    dctx: DatasetContext
    folder: RunFolder
    progress: bool

    def __call__(self, job: CellJob) -> CellStatus:
        return run_cell(self.res, self.dctx, job, self.folder, progress=self.progress)

    def on_device(self, device: str | torch.device) -> CellWork:
        """This work computing on ``device`` (an executor's worker; tensors already mapped)."""
        return dataclasses.replace(self, res=dataclasses.replace(self.res, device=torch.device(device)))

    def failed(self, job: CellJob, message: str) -> CellStatus:
        """Store ``job`` as failed with ``message`` (a worker that died without a status)."""
        return store_failure(self.res, job, self.folder, message)


def cell_status(res: Resolved, job: CellJob, *, error: str | None = None) -> CellStatus:
    """A cell's status before it is computed: ``failed`` until the cell proves otherwise."""
    return CellStatus(method=job.method, dataset=job.dataset, seed=job.seed, simulator=res.cfg.simulator,
                      eval_simulator=",".join(res.eval_simulators), status="failed", error=error,
                      fingerprint=res.fingerprint(job))


def store_failure(res: Resolved, job: CellJob, folder: RunFolder, message: str, *,
                  log_error: bool = True) -> CellStatus:
    """A failed cell: its partial files removed, its status (with ``message``) written."""
    status = cell_status(res, job, error=message)
    if log_error:
        log.error("cell %s failed: %s", job.name, message)
    folder.clear_cell(job.name)
    folder.write_status(job.name, status)
    return status


def run_cell(res: Resolved, dctx: DatasetContext, job: CellJob, folder: RunFolder, *,
             progress: bool = False) -> CellStatus:
    """Fit, generate, evaluate and store one cell; failures are contained in the status."""
    name = job.name
    folder.clear_cell(name)
    status = cell_status(res, job)
    tb = Path(res.cfg.tensorboard).expanduser() / name if res.cfg.tensorboard else None
    logger = CellTrainLogger(folder.cell_train_log(name), job.method, job.dataset, job.seed, tensorboard=tb)
    t0 = time.perf_counter()
    if res.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(res.device)
    try:
        seed_everything(job.seed)
        spec = res.registry.method(job.method)
        method = spec.factory(res.method_cfgs[job.method])
        ctx = FitContext(
            data=dctx.data, cases=dctx.cases, simulator=dctx.simulator, simulator_name=res.cfg.simulator,
            device=res.device, seed=job.seed, cache_dir=dctx.cache_dir, max_path_len=dctx.max_path_len,
            logger=logger, progress=progress, make_backbone=make_backbone_factory(res, dctx, progress),
        )
        method.fit(ctx)
        test = dctx.cases.test
        candidates = method.generate(test, res.k_max)
        if len(candidates) != len(test):
            raise CellFailure(f"generate returned {len(candidates)} candidate lists for {len(test)} cases")
        candidates = [[tuple(int(i) for i in p) for p in list(c)[: res.k_max]] for c in candidates]
        too_long = max((len(p) for c in candidates for p in c), default=0)
        if too_long > dctx.max_path_len:
            raise CellFailure(f"generate returned a path of {too_long} items; max_path_len is {dctx.max_path_len}")
        frames = []
        for ev_name, model in dctx.eval_models.items():
            metrics = [res.registry.metric(n) for n in dctx.metrics]
            df = evaluate.evaluate_paths(model, test, candidates, metrics, ks=tuple(res.cfg.ks),
                                item_attributes=dctx.data.item_attributes,
                                batch_size=res.cfg.eval_batch_size, device=res.device)
            df = df.assign(method=job.method, dataset=job.dataset, simulator=ev_name, seed=job.seed)
            frames.append(df)
        table = pd.concat(frames, ignore_index=True)[CASE_COLUMNS]
        values = pd.to_numeric(table["value"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            rows = table[bad]
            which = ", ".join(sorted({f"{r.metric}@{r.k} ({r.simulator})" for r in rows.itertuples()}))
            raise NonFiniteError(f"{int(bad.sum())} non-finite metric value(s): {which}")
        folder.write_cell_cases(name, table)
        status.status = "ok"
        status.n_cases = len(test)
    except KeyboardInterrupt:
        logger.close()
        raise
    except Exception as exc:  # containment: the grid goes on
        status.error = one_line(exc)
        log.error("cell %s failed: %s", name, status.error)
        write_traceback()
    finally:
        logger.close()
        if res.device.type == "cuda":
            status.peak_gpu_mib = round(torch.cuda.max_memory_allocated(res.device) / 2**20, 1)
            torch.cuda.empty_cache()
    status.seconds = round(time.perf_counter() - t0, 3)
    folder.write_status(name, status)
    if status.ok:
        gpu = f", peak GPU memory {status.peak_gpu_mib:.0f} MiB" if status.peak_gpu_mib is not None else ""
        log.info("cell %s ok (%d cases, %.1fs%s)", name, status.n_cases, status.seconds, gpu)
    return status


def write_traceback() -> None:
    """The full traceback goes to run.log (file only, not the console)."""
    for h in log.handlers:
        if isinstance(h, logging.FileHandler):
            try:
                h.stream.write(traceback.format_exc())
                h.flush()
            except (OSError, ValueError):
                pass
