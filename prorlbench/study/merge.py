"""``prorlbench study CONFIG --merge RUN...``: the finished cells of several sittings or machines in
the study's folder, checked before anything is copied.

A cell of a RUN is taken when it is finished (``ok``) and

* it is a cell of CONFIG's grid (another cell is left out, and a note says so);
* its files match the SHA-256 its status stores (:meth:`RunFolder.verify`);
* its grid fingerprints (``data``, ``simulator``, ``score``) are the ones CONFIG resolves to for its
  dataset, and its training fingerprint is CONFIG's for that cell: it was computed on the same
  data and cases, against the same training simulator, trained with the same settings and
  scored the same way; only the machine may differ (its status records the platform);
* no other RUN holds the same cell with other files, and the study's folder holds it with the
  same files or not at all (merging again is a no-op: the command resumes).

Every check runs before a file is written; then, under the study folder's lock, ``config.toml``
and ``metadata.json`` are written as a run of CONFIG writes them, and each cell's files are copied,
its status last. A RUN without ``cells/`` (a committed folder: tables and ``comparisons.md`` only)
is not merged here: :func:`tables_only` names it, and the study splices its datasets' rows in
after the comparisons are built (:mod:`prorlbench.study.splice`, Holm redone per dataset).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..folder.files import cell_name
from ..folder.results import CellStatus, RunFolder
from ..report.gridcheck import GRID_PARTS


@dataclass
class MergePlan:
    """What a merge takes: the cells by name (with the folder each comes from) and the notes."""

    cells: dict[str, tuple[RunFolder, CellStatus]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def tables_only(run: Path) -> bool:
    """A folder of tables without per-cell files (spliced in, not merged)."""
    return not (run / "cells").is_dir() and (run / "summary.csv").is_file() and (run / "comparisons.md").is_file()


def plan_merge(res, runs: list[Path], config: str) -> MergePlan:
    """Check every finished cell of ``runs`` against the resolved study ``res``; raise
    :class:`UserError` (one line naming the RUN and the cell) at the first that may not be merged."""
    from ..folder.fingerprint import grid_fingerprints
    from ..executors.base import expand_grid

    cfg = res.cfg
    jobs = {j.name: j for j in expand_grid(cfg.methods, cfg.datasets, cfg.seeds, cfg.variants)}
    grids = {d: grid_fingerprints(res, d) for d in cfg.datasets}
    plan = MergePlan()
    for run in runs:
        if not run.is_dir():
            raise UserError(f"--merge {run}: not a folder")
        if tables_only(run):
            continue
        src = RunFolder(run)
        if not src.cells.is_dir():
            raise UserError(f"--merge {run}: no cells/ folder (and no summary.csv with comparisons.md); "
                            "is it a run folder of prorlbench run?")
        left_out = []
        for st in src.finished_cells():
            name = cell_name(st.method, st.dataset, st.seed)
            if not st.ok:
                continue
            if name not in jobs:
                left_out.append(name)
                continue
            why = src.verify(name, st)
            if why is not None:
                raise UserError(f"--merge {run}: cell {name}: {why}")
            if not st.grid:
                raise UserError(f"--merge {run}: cell {name} records no grid fingerprints (written by an older "
                                "version), so its data and scoring cannot be checked; run it again")
            for part, what in GRID_PARTS.items():
                if st.grid.get(part) != grids[st.dataset].get(part):
                    raise UserError(f"--merge {run}: cell {name} was made with {what} than {config} sets")
            if st.fingerprint != res.fingerprint(jobs[name]):
                raise UserError(f"--merge {run}: cell {name} was trained with other settings than {config} "
                                "sets (its training fingerprint differs)")
            if name in plan.cells and plan.cells[name][1].files != st.files:
                raise UserError(f"--merge: cell {name} is in {plan.cells[name][0].root} and in {run} with "
                                "other results; merge only one of them")
            plan.cells.setdefault(name, (src, st))
        if left_out:
            plan.notes.append(f"{run}: {len(left_out)} finished cell(s) not in {config}'s grid left out "
                              f"({', '.join(left_out[:3])}{', ...' if len(left_out) > 3 else ''})")
    return plan


def check_target(plan: MergePlan, dst: RunFolder) -> list[str]:
    """The cells the study's folder still needs; raise when it holds one with other results."""
    todo = []
    for name, (src, st) in plan.cells.items():
        have = dst.read_status(name)
        if have is not None and have.ok and have.files == st.files and dst.verify(name, have) is None:
            continue
        if have is not None and have.ok and have.files != st.files:
            raise UserError(f"{dst.root}: cell {name} holds other results than {src.root}'s; remove "
                            f"{dst.cell_status(name)} to take {src.root}'s")
        todo.append(name)
    return todo


def copy_cells(plan: MergePlan, dst: RunFolder, names: list[str]) -> None:
    """Copy each named cell's files into ``dst`` (status last, so a cut copy is never a done cell)."""
    for name in names:
        src, st = plan.cells[name]
        dst.clear_cell(name)
        for kind in st.files:
            _copy(src.cell_file(name, kind), dst.cell_file(name, kind))
        _copy(src.cell_status(name), dst.cell_status(name))


def _copy(a: Path, b: Path) -> None:
    tmp = b.with_name(f".{b.name}.tmp")
    shutil.copyfile(a, tmp)
    tmp.replace(b)
