"""Scoring a cell's paths, and scoring stored paths again without refitting.

:func:`score_paths` is the one place a cell's candidates meet the eval simulators (after the
shared-simulator check); :func:`rescore_cell` scores a cell's stored paths again (new metrics,
eval simulators or ``ks``), after the same path rules as a fresh cell
(:mod:`prorlbench.engine.pathrules`) and, for a resumed cell, after checking that the stored cases are
the dataset's own. :func:`reusable_paths` says when stored paths may be reused.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..console.logs import NonFiniteError
from ..errors import one_line
from ..executors import CellJob
from ..folder.files import OutputError
from ..folder.results import CASE_COLUMNS, CellStatus, RunFolder
from ..seq import evaluate
from .pathrules import PathRuleViolation, check_paths
from .prepare import DatasetContext
from .resolve import Resolved

log = logging.getLogger("prorlbench")


class CellFailure(Exception):
    """A method broke the output contract, or the harness refused what it was given."""


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
    from ..folder.store import read_paths

    name = job.name
    status = dataclasses.replace(prev, eval_simulator=",".join(res.eval_simulators), status="ok", error=None,
                                 score_fingerprint=res.score_fingerprint(), skipped=False,
                                 rescored=True)
    try:
        stored, candidates = read_paths(folder.cell_paths(name))
        test = dctx.cases.test or stored  # re-scoring only (no cases built): the stored ones
        if test is not stored:
            _same_cases(stored, test)
        candidates = check_paths(job.method, test, candidates, n_items=dctx.data.n_items,
                                 max_path_len=dctx.max_path_len, k_max=res.k_max)
        table = score_paths(res, dctx, job, test, candidates)
    except OutputError:
        raise
    except Exception as exc:  # the stored paths stay: the cell can be re-scored again
        why = one_line(str(exc) if isinstance(exc, (CellFailure, PathRuleViolation)) else exc)
        status.status, status.error = "failed", f"{RESCORE_FAILED}: {why}"
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


def _same_cases(stored: Sequence[Any], test: Sequence[Any]) -> None:
    """A resumed cell's stored paths are scored against the harness's own test cases: the stored
    cases must be those cases, in order (a forged history or target is refused). ``prorlbench
    rescore`` builds no cases and scores the stored ones; the path rules still hold there."""
    if len(stored) != len(test):
        raise CellFailure(f"the stored paths hold {len(stored)} cases; this dataset has {len(test)} test cases")
    for i, (s, t) in enumerate(zip(stored, test)):
        if (s.case_id, tuple(s.history), int(s.target)) != (t.case_id, tuple(t.history), int(t.target)):
            raise CellFailure(f"stored case #{i} ({s.case_id}) differs from this dataset's test case "
                              f"({t.case_id}): history or target changed")


def write_traceback() -> None:
    """The full traceback goes to run.log (file only, not the console)."""
    for h in log.handlers:
        if isinstance(h, logging.FileHandler):
            try:
                h.stream.write(traceback.format_exc())
                h.flush()
            except (OSError, ValueError):
                pass
