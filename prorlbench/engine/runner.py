"""The runner: a grid of (method, dataset, seed) cells, computed, stored and resumable.

This module keeps :func:`run` and its :class:`RunResult`; the steps live in their own modules:
:mod:`.resolve` (every name and plugin config checked and built up front), :mod:`.seeding`,
:mod:`.prepare` (one dataset: data, simulators, cases), :mod:`.cell` (one cell: its job, work and
failure status) and :mod:`.executors` (where the cells run).

``run(cfg)`` does, for each dataset:

1. load the data (``DatasetSpec.load``), train or load from the cache the training simulator and
   every eval simulator (``SimulatorSpec.build``), build the guidance cases
   (:func:`prorlbench.seq.cases.build_cases`; datasets that ship cases keep theirs);
2. for each (method, seed) cell not already done: seed ``random``, ``numpy`` and ``torch`` with the
   cell's seed, build the method from its config (profile applied), ``fit`` it with a
   :class:`~prorlbench.api.FitContext`, ``generate`` ``max(ks)`` candidate paths per test case,
   score them with :func:`prorlbench.seq.evaluate.evaluate_paths` against each eval simulator, and
   write the cell's files (status last, see :mod:`prorlbench.folder.results`);
3. merge the cells into ``cases.csv.gz``, ``cells.csv``, ``train_log.csv`` and build the report
   (from the run folder and its ``metadata.json``, never from the registry).

Seeds. The run seed of a cell seeds only the method (its initialisation, sampling, and the
backbones it asks for). The data split, the case construction and the simulators depend only on
the dataset, ``[cases]`` and simulator configs and ``simulator_seed``, so all seeds of a method
see the same cases and the spread over seeds is the method's own. A backbone built with
``ctx.make_backbone(kind, seed)`` is a separate model of that simulator kind, trained with seed
``1000 + seed`` through the same cache (never the simulator object, never its seed).

Reliability. A cell that raises, or whose per-case metrics or logged training values are NaN or
infinite, is stored as failed with a one-line reason (traceback in run.log) and the grid goes on.
A :class:`~prorlbench.errors.UserError` from loading data or resolving configs aborts the run
(what is already stored stays). A cell whose status file says ``ok`` with the same configuration
fingerprint is skipped unless ``force``; so re-running an interrupted command resumes it. What
invalidates a cell (input file content, the training and scoring fingerprints, file checksums),
the run lock, ``cell_timeout`` and re-scoring: docs/reliability.md. An executor that raises or
reports garbage fails the cells it did not report (:mod:`.executors.guard`). ``config.toml`` and
every status record the code that wrote them (version, git commit, dirty flag), read once per run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..console.logs import run_log
from ..console.progress import tqdm
from ..errors import UserError, one_line
from ..executors import CellJob, make_executor
from ..executors.guard import checked_statuses, executor_name
from ..folder.files import OutputError, atomic_write_text
from ..folder.fingerprint import grid_fingerprints
from ..folder.results import CellStatus, RunFolder, cell_name
from ..folder.tomlwriter import write_toml
from ..plugins import Registry, load_registry
from ..report import write_report
from ..report.gridcheck import read_grid_record
from ..settings.runconfig import RunConfig
from .cell import (REUSED_FILES, CellWork, backbones_match, reusable_paths, run_cell, store_failure,
                   write_traceback)
from .devices import code_identity, code_line, platform_difference, platform_identity
from .prepare import BACKBONE_SEED_OFFSET, DatasetContext, make_backbone_factory, prepare_dataset
from .resolve import Resolved, expand_grid, resolve, resolve_device
from .seeding import preserved_rng, seed_everything, torch_threads

__all__ = ["run", "RunResult", "resolve", "resolve_device", "expand_grid", "Resolved", "prepare_dataset",
           "DatasetContext", "make_backbone_factory", "BACKBONE_SEED_OFFSET", "CellWork", "run_cell",
           "seed_everything", "preserved_rng"]
"""Re-exported: the names tests and benchmarks import from ``prorlbench.engine.runner``."""

log = logging.getLogger("prorlbench")


@dataclass
class RunResult:
    """What :func:`run` did."""

    out: Path
    cells: list[CellStatus]
    summary: str | None = None
    """The Markdown summary table from :func:`prorlbench.report.write_report`."""
    report_error: str | None = None

    @property
    def failed(self) -> list[CellStatus]:
        return [c for c in self.cells if not c.ok]

    @property
    def skipped(self) -> list[CellStatus]:
        return [c for c in self.cells if c.skipped]

    @property
    def computed(self) -> list[CellStatus]:
        return [c for c in self.cells if not c.skipped]

    @property
    def rescored(self) -> list[CellStatus]:
        """Cells whose stored paths were only scored again (no fit)."""
        return [c for c in self.cells if c.rescored]


def _done(folder: RunFolder, res: Resolved, job: CellJob) -> CellStatus | None:
    """The stored status when the cell needs nothing: ok, the same training and scoring
    fingerprints, and every file matching the checksum in its status."""
    if res.cfg.force:
        return None
    st = folder.read_status(job.name)
    if st is None or not st.ok or st.fingerprint != res.fingerprint(job):
        return None
    if st.score_fingerprint != res.score_fingerprint() or st.n_candidates < res.k_max \
            or not backbones_match(res, st):
        return None
    problem = folder.verify(job.name, st)
    if problem is not None:
        log.warning("cell %s: %s; recomputing it", job.name, problem)
        return None
    st.skipped = True
    return st


def _warn_other_platform(dataset: str, done: list[CellStatus], res: Resolved) -> None:
    """One warning when finished cells of ``dataset`` were computed on another platform."""
    here = platform_identity(res.device)
    other = [(st, d) for st in done if (d := platform_difference(st.platform, here))]
    if other:
        log.warning("dataset %s: %d finished cell(s) were computed on another platform (%s, e.g. %s); seeded RL "
                    "cells need not reproduce across platforms (docs/reliability.md), so the grid mixes "
                    "trajectories; --force recomputes them here", dataset, len(other), other[0][1],
                    other[0][0].method)


def _why_not_rescorable(res: Resolved, folder: RunFolder, job: CellJob) -> str | None:
    if reusable_paths(res, folder, job) is not None:
        return None
    st = folder.read_status(job.name)
    if st is None or not st.ok:
        return "it is not stored as ok"
    if st.fingerprint != res.fingerprint(job):
        return "its training configuration differs from the stored one"
    if st.n_candidates < res.k_max:
        return f"only {st.n_candidates} candidates are stored (max ks {res.k_max})"
    if not backbones_match(res, st):
        return "a backbone its method used has another config now"
    return folder.verify(job.name, st, kinds=REUSED_FILES) or "no paths are stored"


def write_run_documents(res: Resolved, folder: RunFolder) -> None:
    """``config.toml`` and ``metadata.json`` of the run (call with the run lock held); metadata.json
    keeps each dataset's grid fingerprints (report.gridcheck), for splices and merges."""
    atomic_write_text(folder.config, write_toml(res.config_document(), {"run": f"written by {code_line(folder.code)}"}))
    grids = {d: grid_fingerprints(res, d) for d in res.cfg.datasets}
    meta = {**res.metadata_document(), "grid": {**(read_grid_record(folder.metadata) or {}), **grids}}
    atomic_write_text(folder.metadata, json.dumps(meta, indent=1) + "\n")


def run(cfg: RunConfig, registry: Registry | None = None, *, progress: bool | None = None,
        report: bool = True, rescore_only: bool = False) -> RunResult:
    """Run (or resume) the grid of ``cfg`` and write the run folder; see the module docstring.

    ``rescore_only`` (``prorlbench rescore``): every cell must have stored paths valid for its
    training fingerprint; they are scored again and no method is built or fitted.
    The run holds the output folder's lock (:func:`prorlbench.engine.guards.run_lock`; ``cfg.wait``
    waits for another run instead of failing). Raises :class:`UserError` for bad input and lets
    ``KeyboardInterrupt`` through (finished cells stay on disk). Never prints.
    """
    if registry is None:
        registry = load_registry(cfg.plugins_dirs)
    progress = cfg.progress if progress is None else progress
    res = resolve(cfg, registry)
    cfg = res.cfg  # --set sweeps and methods = "all" expanded (prorlbench.settings.sweeps)
    folder = RunFolder(res.out, code=code_identity())  # once per run; every status records it
    try:
        fresh = not res.out.exists()  # may raise too, e.g. a name longer than the file system allows
        folder.make()
    except OSError as exc:
        raise UserError(f"cannot create output folder {res.out}: {exc.strerror or exc}") from None
    executor = make_executor(cfg.executor, res.executor_factories())
    jobs = expand_grid(cfg.methods, cfg.datasets, cfg.seeds, cfg.variants)
    try:
        return _locked_run(res, folder, executor, jobs, progress, report, rescore_only)
    except UserError:
        # Bad input found on the way (e.g. while preparing data): a folder this run made and
        # that holds no cell is removed, so no half-made results folder stays behind.
        if fresh:
            _remove_empty_run_folder(folder)
        raise


def _to_run_log(message: str) -> None:
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for h in log.handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(record)


def _remove_empty_run_folder(folder: RunFolder) -> None:
    import shutil

    if folder.cells.exists() and any(folder.cells.iterdir()):
        return
    shutil.rmtree(folder.root, ignore_errors=True)


def _locked_run(res: Resolved, folder: RunFolder, executor: Any, jobs: list[CellJob], progress: bool,
                report: bool, rescore_only: bool) -> RunResult:
    from .guards import InterruptWatch, run_lock

    cfg = res.cfg
    with run_lock(res.out, wait=cfg.wait), InterruptWatch() as watch:
        if rescore_only:
            for j in jobs:
                why = _why_not_rescorable(res, folder, j)
                if why is not None:
                    raise UserError(f"cell {j.name} cannot be re-scored: {why}; run `prorlbench run` "
                                    "to compute it")
        folder.remove_stale_tmp()
        write_run_documents(res, folder)
        try:
            log_cm = run_log(folder.log)
            log_cm.__enter__()
        except OSError as exc:
            raise OutputError(f"{folder.log}: cannot write ({exc.strerror or exc})") from None
        try:
            with torch_threads(cfg.threads):
                return _run_grid(res, folder, executor, jobs, progress, report, watch, rescore_only)
        except UserError as exc:
            _to_run_log(f"run stopped: {exc}")  # the console gets the error once, from the CLI
            raise
        finally:
            log_cm.__exit__(None, None, None)


def _run_grid(res: Resolved, folder: RunFolder, executor: Any, jobs: list[CellJob], progress: bool,
              report: bool, watch: Any, rescore_only: bool) -> RunResult:
    cfg = res.cfg
    where = res.executor_context(folder.root)
    statuses: dict[str, CellStatus] = {}
    log.info("run %s: %d cells (%s x %s x seeds %s), device %s, executor %s", res.out, len(jobs),
             ",".join(cfg.methods), ",".join(cfg.datasets), ",".join(map(str, cfg.seeds)),
             res.device, executor_name(executor))
    bar = tqdm(total=len(jobs), desc="cells", unit="cell", disable=not progress, leave=False)
    try:
        for dataset in cfg.datasets:
            ds_jobs = [j for j in jobs if j.dataset == dataset]
            todo = []
            for j in ds_jobs:
                done = None if rescore_only else _done(folder, res, j)
                if done is not None:
                    statuses[j.name] = done
                    log.info("cell %s already done; skipped (use --force to recompute)", j.name)
                    bar.update(1)
                else:
                    todo.append(j)
            _warn_other_platform(dataset, [statuses[j.name] for j in ds_jobs if j.name in statuses], res)
            if not todo:
                continue
            scoring_only = rescore_only or (not cfg.force and all(reusable_paths(res, folder, j) is not None
                                                                   for j in todo))
            # The cells bar would sit at its count while simulators train: name the stage.
            bar.set_postfix_str(f"{dataset}: loading data, training simulators, building cases")
            log.info("dataset %s: preparing (data, simulators, cases) for %d cell(s)", dataset, len(todo))
            try:
                dctx = prepare_dataset(res, dataset, progress, scoring_only=scoring_only)
            except (UserError, KeyboardInterrupt):
                raise
            except Exception as exc:  # e.g. a simulator crashed: this dataset's cells fail
                msg = f"preparing dataset '{dataset}' failed: {one_line(exc)}"
                log.error(msg)
                write_traceback()
                if scoring_only:  # never turn cells with stored paths into failures
                    raise UserError(f"{msg}; the stored cells are unchanged") from None
                for j in todo:
                    statuses[j.name] = store_failure(res, j, folder, msg, log_error=False)
                    bar.update(1)
                continue
            work = CellWork(res, dctx, folder, progress, watch)
            for st in checked_statuses(executor, todo, work, where):
                statuses[cell_name(st.method, st.dataset, st.seed)] = st
                bar.set_postfix_str(f"{st.method}/{st.dataset}/s{st.seed} {st.status}")
                bar.update(1)
    finally:
        bar.close()
    cells = [statuses[j.name] for j in jobs]
    folder.merge(cells)
    result = RunResult(out=res.out, cells=cells)
    n_fail = len(result.failed)
    log.info("run finished: %d cells, %d computed, %d skipped, %d failed", len(cells),
             len(result.computed), len(result.skipped), n_fail)
    if report:
        try:
            result.summary = write_report(res.out, style=cfg.style, latex_width=cfg.latex_width)
        except UserError as exc:
            result.report_error = str(exc)
            log.error("report: %s", exc)
        except Exception as exc:
            result.report_error = one_line(exc)
            log.error("report failed: %s", result.report_error)
            write_traceback()
    return result
