"""One cell of the grid: its job, its work, its failure status, built in one place.

:class:`CellWork` computes one (method, dataset, seed) cell of a prepared dataset and writes its
files (status last, see :mod:`prorlbench.folder.results`): seed ``random``, ``numpy`` and ``torch`` with
the cell's seed, build the method from its config, ``fit`` it with a
:class:`~prorlbench.api.FitContext` holding the method's own read-only copies of the data and
cases (test cases without ``reference``: :mod:`prorlbench.engine.pathrules`), ``generate`` ``max(ks)``
candidate paths per test case, check them against the path rules, score them against each eval
simulator (:mod:`prorlbench.engine.cellscore`). A cell that raises, breaks a path rule, changes
process-wide torch state, or whose per-case metrics are NaN or infinite, is stored as failed with
a one-line reason (traceback in run.log). A method may keep a mid-training checkpoint in
``cells/<cell>.resume.pt`` (``FitContext.checkpoint``, keyed by the cell's fingerprint): it
survives a kill, Ctrl-C or a failure, so the next run resumes the cell, and is deleted once the
cell is stored (and at the start of ``--force``). :class:`CellWork` is what executors receive (the ``Work`` protocol of
:mod:`prorlbench.executors`): picklable, movable to another device, able to store a failure.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..api import FitContext
from .devices import platform_identity
from ..errors import one_line
from ..executors import CellJob
from ..console.logs import CellTrainLogger
from .prepare import DatasetContext, make_backbone_factory
from .resolve import Resolved
from ..folder.files import OutputError
from ..folder.fingerprint import grid_fingerprints
from .pathrules import PathRuleViolation, check_paths, method_inputs
from .cellscore import (REUSED_FILES, RESCORE_FAILED, CellFailure, backbones_match, rescore_cell,  # noqa: F401
                        reusable_paths, score_paths, write_traceback)
from ..folder.results import CellStatus, RunFolder, atomic_write_bytes
from .seeding import global_state, global_state_change, seed_everything

log = logging.getLogger("prorlbench")


@dataclass
class CellWork:
    """Computes one cell of a prepared dataset and writes its files (picklable state only
    besides the dataset context, so a remote executor can ship it)."""

    res: Resolved
    dctx: DatasetContext
    folder: RunFolder
    progress: bool
    watch: Any = None
    """The run's :class:`~prorlbench.engine.guards.InterruptWatch` (not shipped to remote workers)."""

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


def run_cell(res: Resolved, dctx: DatasetContext, job: CellJob, folder: RunFolder, *,
             progress: bool = False, watch: Any = None) -> CellStatus:
    """Fit, generate, evaluate and store one cell; failures are contained in the status.

    A cell whose stored paths are still valid for its training fingerprint is only re-scored
    (:func:`rescore_cell`). The method gets a frozen private copy of the simulator; a cell whose
    method changed it, raised ``SystemExit``, raised ``KeyboardInterrupt`` itself (not a real
    Ctrl-C, which stops the grid) or ran past ``cell_timeout`` fails with a one-line reason.
    """
    from .guards import CellTimeout, deadline, frozen_view, model_check
    from ..folder.store import write_paths

    name = job.name
    prev = None if res.cfg.force else reusable_paths(res, folder, job)
    if prev is not None:
        return rescore_cell(res, dctx, job, folder, prev)
    folder.clear_cell(name)
    resume = folder.cells / f"{name}.resume.pt"  # the method's mid-training checkpoint, kept until stored
    if res.cfg.force:
        _remove(resume)
    status = cell_status(res, job)
    weak = list(dctx.weak)  # allowed models below popularity (prorlbench.seq.strength): the row is marked
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
            data_view, cases_view = method_inputs(dctx.data, dctx.cases)
            state = global_state()
            ctx = FitContext(
                data=data_view, cases=cases_view, simulator=view, simulator_name=res.cfg.simulator,
                device=res.device, seed=job.seed, cache_dir=dctx.cache_dir, max_path_len=dctx.max_path_len,
                logger=logger, progress=progress, make_backbone=recording, checkpoint=resume,
                checkpoint_key=status.fingerprint,
            )
            method.fit(ctx)
            test = dctx.cases.test  # the harness's own cases; the method saw blind copies
            candidates = check_paths(job.method, test, method.generate(cases_view.test, res.k_max),
                                     n_items=dctx.data.n_items, max_path_len=dctx.max_path_len,
                                     k_max=res.k_max)
            changed_state = global_state_change(state)
            if changed_state:
                raise CellFailure(f"the method changed global state ({changed_state}) and did not restore it")
            if model_check(view) != before:
                raise CellFailure("the method changed the simulator it was given (ctx.simulator: weights, "
                                  "train/eval mode or requires_grad); treat it as read-only")
            table = score_paths(res, dctx, job, test, candidates)
            if res.cfg.select_on == "valid":  # after test, so the test values do not change
                from .selection import valid_scores

                status.valid = valid_scores(res, dctx, job, method, cases_view.valid)
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
    except (CellFailure, PathRuleViolation) as exc:  # the harness's own rules: their words suffice
        _fail(status, folder, name, one_line(str(exc)))
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
        _remove(resume)
        gpu = f", peak GPU memory {status.peak_gpu_mib:.0f} MiB" if status.peak_gpu_mib is not None else ""
        log.info("cell %s ok (%d cases, %.1fs%s)", name, status.n_cases, status.seconds, gpu)
    return status


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # e.g. a folder of that name: not ours
        pass


def _fail(status: CellStatus, folder: RunFolder, name: str, error: str) -> None:
    status.status, status.error = "failed", error
    log.error("cell %s failed: %s", name, status.error)
    write_traceback()
