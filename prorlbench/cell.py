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
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .api import FitContext
from .devices import platform_identity
from .errors import one_line
from . import evaluate
from .executors import CellJob
from .logs import CellTrainLogger, NonFiniteError
from .prepare import DatasetContext, make_backbone_factory
from .resolve import Resolved
from .files import OutputError
from .fingerprint import grid_fingerprints
from .results import CASE_COLUMNS, CellStatus, RunFolder, atomic_write_bytes
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
    watch: Any = None
    """The run's :class:`~prorlbench.guards.InterruptWatch` (not shipped to remote workers)."""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "watch": None}

    def __call__(self, job: CellJob) -> CellStatus:
        return run_cell(self.res, self.dctx, job, self.folder, progress=self.progress, watch=self.watch)

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
                      fingerprint=res.fingerprint(job), score_fingerprint=res.score_fingerprint(),
                      grid=grid_fingerprints(res, job.dataset), platform=platform_identity(res.device))


def store_failure(res: Resolved, job: CellJob, folder: RunFolder, message: str, *,
                  log_error: bool = True) -> CellStatus:
    """A failed cell: its partial files removed, its status (with ``message``) written."""
    status = cell_status(res, job, error=message)
    if log_error:
        log.error("cell %s failed: %s", job.name, message)
    folder.clear_cell(job.name)
    folder.write_status(job.name, status)
    return status


REUSED_FILES = ("paths", "train_log", "policy")
"""The cell files a re-scored cell keeps (each must match its checksum); its per-case table is rebuilt."""


RESCORE_FAILED = "re-scoring stored paths failed"
"""Error prefix of a cell whose stored paths could not be scored (they are kept)."""


def reusable_paths(res: Resolved, folder: RunFolder, job: CellJob) -> CellStatus | None:
    """The stored status of a cell whose paths can be scored again: ok, the same training
    fingerprint, enough candidates stored, and every file matching its checksum."""
    st = folder.read_status(job.name)
    rescore_failed = st is not None and (st.error or "").startswith(RESCORE_FAILED)
    if st is None or not (st.ok or rescore_failed) or st.fingerprint != res.fingerprint(job) \
            or "paths" not in st.files:
        return None
    if st.n_candidates < res.k_max or not backbones_match(res, st) \
            or folder.verify(job.name, st, kinds=REUSED_FILES) is not None:
        return None
    return st


def backbones_match(res: Resolved, st: CellStatus) -> bool:
    """Every backbone the cell's method used still has the config it was trained with."""
    return all(res.backbone_fingerprint(kind) == digest for kind, digest in st.backbones.items())


def score_paths(res: Resolved, dctx: DatasetContext, job: CellJob, test: Sequence[Any],
                candidates: list[list[tuple[int, ...]]]) -> pd.DataFrame:
    """The per-case table of one cell: every eval simulator scores the (first ``max(ks)``) paths."""
    from .guards import model_check

    changed = [n for n, m in [("simulator", dctx.simulator), *((f"eval:{e}", m) for e, m in dctx.eval_models.items())]
               if n in dctx.checks and model_check(m) != dctx.checks[n]]
    if changed:
        raise CellFailure(f"the shared simulator state changed ({', '.join(changed)}) before this cell "
                          "was scored; a plugin edited it outside its own copy")
    if not dctx.eval_models:
        raise CellFailure("no eval simulator exists for this dataset")
    candidates = [c[: res.k_max] for c in candidates]
    frames = []
    metrics = [res.registry.metric(n) for n in dctx.metrics]
    for ev_name, model in dctx.eval_models.items():
        df = evaluate.evaluate_paths(model, test, candidates, metrics, ks=tuple(res.cfg.ks),
                            item_attributes=dctx.data.item_attributes,
                            batch_size=res.cfg.eval_batch_size, device=res.device,
                            cache_dir=dctx.cache_dir, simulator_key=dctx.checks.get(f"eval:{ev_name}", ""))
        frames.append(df.assign(method=job.method, dataset=job.dataset, simulator=ev_name, seed=job.seed))
    table = pd.concat(frames, ignore_index=True)[CASE_COLUMNS]
    values = pd.to_numeric(table["value"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = table[bad]
        which = ", ".join(sorted({f"{r.metric}@{r.k} ({r.simulator})" for r in rows.itertuples()}))
        raise NonFiniteError(f"{int(bad.sum())} non-finite metric value(s): {which}")
    return table


def rescore_cell(res: Resolved, dctx: DatasetContext, job: CellJob, folder: RunFolder,
                 prev: CellStatus) -> CellStatus:
    """Score a cell's stored paths again (new metrics, eval simulators or ks); no method is built."""
    from .store import read_paths

    name = job.name
    status = dataclasses.replace(prev, eval_simulator=",".join(res.eval_simulators), status="ok", error=None,
                                 score_fingerprint=res.score_fingerprint(), skipped=False,
                                 rescored=True)
    try:
        test, candidates = read_paths(folder.cell_paths(name))
        table = score_paths(res, dctx, job, test, candidates)
    except OutputError:
        raise
    except Exception as exc:  # the stored paths stay: the cell can be re-scored again
        status.status, status.error = "failed", f"{RESCORE_FAILED}: {one_line(exc)}"
        log.error("cell %s: %s", name, status.error)
        write_traceback()
        folder.cell_cases(name).unlink(missing_ok=True)
        status.files = {k: v for k, v in status.files.items() if k != "cases"}
        folder.write_status(name, status)
        return status
    folder.write_cell_cases(name, table)
    status.files = folder.checksums(name)
    folder.write_status(name, status)
    log.info("cell %s re-scored from its stored paths (%d cases)", name, len(test))
    return status


def run_cell(res: Resolved, dctx: DatasetContext, job: CellJob, folder: RunFolder, *,
             progress: bool = False, watch: Any = None) -> CellStatus:
    """Fit, generate, evaluate and store one cell; failures are contained in the status.

    A cell whose stored paths are still valid for its training fingerprint is only re-scored
    (:func:`rescore_cell`). The method gets a frozen private copy of the simulator; a cell whose
    method changed it, raised ``SystemExit``, raised ``KeyboardInterrupt`` itself (not a real
    Ctrl-C, which stops the grid) or ran past ``cell_timeout`` fails with a one-line reason.
    """
    from .guards import CellTimeout, deadline, frozen_view, model_check
    from .store import write_paths

    name = job.name
    prev = None if res.cfg.force else reusable_paths(res, folder, job)
    if prev is not None:
        return rescore_cell(res, dctx, job, folder, prev)
    folder.clear_cell(name)
    status = cell_status(res, job)
    weak = list(dctx.weak)  # allowed models below popularity (prorlbench.strength): the row is marked
    tb = Path(res.cfg.tensorboard).expanduser() / name if res.cfg.tensorboard else None
    logger = CellTrainLogger(folder.cell_train_log(name), job.method, job.dataset, job.seed, tensorboard=tb)
    t0 = time.perf_counter()
    if res.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(res.device)
    try:
        with deadline(res.cfg.cell_timeout):
            seed_everything(job.seed)
            spec = res.registry.method(job.method)
            method = spec.factory(res.method_cfgs[job.method])
            make_backbone = make_backbone_factory(res, dctx, progress, weak)

            def recording(kind: str, seed: int) -> Any:
                model = make_backbone(kind, seed)
                status.backbones[kind] = res.backbone_fingerprint(kind)
                return model

            view = frozen_view(dctx.simulator)
            before = model_check(view)
            ctx = FitContext(
                data=dctx.data, cases=dctx.cases, simulator=view, simulator_name=res.cfg.simulator,
                device=res.device, seed=job.seed, cache_dir=dctx.cache_dir, max_path_len=dctx.max_path_len,
                logger=logger, progress=progress, make_backbone=recording,
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
            if model_check(view) != before:
                raise CellFailure("the method changed the simulator it was given (ctx.simulator: weights, "
                                  "train/eval mode or requires_grad); treat it as read-only")
            table = score_paths(res, dctx, job, test, candidates)
        logger.close()
        write_paths(folder.cell_paths(name), test, candidates)
        policy = getattr(method, "policy", None)
        if isinstance(policy, torch.nn.Module):
            state = {k: v.detach().cpu() for k, v in policy.state_dict().items()}
            atomic_write_bytes(folder.cell_policy(name), lambda fh: torch.save(state, fh))
        folder.write_cell_cases(name, table)
        status.files = folder.checksums(name)
        status.status = "ok"
        status.n_cases = len(test)
        status.n_candidates = res.k_max
    except KeyboardInterrupt:
        logger.close()
        if watch is None or watch.real():
            raise
        _fail(status, folder, name, "KeyboardInterrupt raised by the method itself (not a Ctrl-C)")
    except SystemExit as exc:
        _fail(status, folder, name, f"SystemExit({exc.code!r}) raised by the method (sys.exit in a plugin)")
    except CellTimeout as exc:
        _fail(status, folder, name, f"timed out: {exc}; the grid goes on")
    except OutputError:
        raise
    except Exception as exc:  # containment: the grid goes on
        _fail(status, folder, name, one_line(exc))
    finally:
        logger.close()
        if res.device.type == "cuda":
            status.peak_gpu_mib = round(torch.cuda.max_memory_allocated(res.device) / 2**20, 1)
            torch.cuda.empty_cache()
    status.seconds = round(time.perf_counter() - t0, 3)
    status.weak_simulator = "; ".join(weak)
    if status.ok and folder.cell_train_log(name).exists():
        status.files = folder.checksums(name)  # the train log is complete now
    folder.write_status(name, status)
    if status.ok:
        gpu = f", peak GPU memory {status.peak_gpu_mib:.0f} MiB" if status.peak_gpu_mib is not None else ""
        log.info("cell %s ok (%d cases, %.1fs%s)", name, status.n_cases, status.seconds, gpu)
    return status


def _fail(status: CellStatus, folder: RunFolder, name: str, error: str) -> None:
    status.status, status.error = "failed", error
    log.error("cell %s failed: %s", name, status.error)
    write_traceback()


def write_traceback() -> None:
    """The full traceback goes to run.log (file only, not the console)."""
    for h in log.handlers:
        if isinstance(h, logging.FileHandler):
            try:
                h.stream.write(traceback.format_exc())
                h.flush()
            except (OSError, ValueError):
                pass
