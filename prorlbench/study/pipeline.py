"""``prorlbench study CONFIG``: a study grid, its tables, its paired comparisons, the claims' plot
and the findings page, in one command (docs/findings.md).

1. the cells: the grid of CONFIG is run as ``prorlbench run --config CONFIG`` runs it (finished
   cells are skipped, so a second call resumes); with ``--merge RUN...`` nothing is computed and
   the finished cells of those run folders (other sittings, other machines) are merged into the
   study's folder, every one checked first (:mod:`prorlbench.study.merge`);
2. the report of every finished cell of the folder (``prorlbench report --all-cells --style
   paper``: checksums and grid fingerprints checked again);
3. ``comparisons.md`` and ``claims_dynamics.png`` (:mod:`prorlbench.study.claims`: Holm's
   correction over each dataset's family, recomputed from the per-case values of every cell);
   a merged RUN with tables only (no ``cells/``) has its datasets' rows spliced in
   (:mod:`prorlbench.study.splice`, Holm redone per dataset as the splice does);
4. the findings page: the template with every marker filled from ``comparisons.md``
   (:mod:`prorlbench.study.findings`), and the README's headline table when a README is given.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

PROG = "prorlbench"


@dataclass(frozen=True)
class FindingsFiles:
    """Where the findings page comes from and goes (``None``: not written)."""

    template: Path | None
    page: Path | None
    readme: Path | None
    root: Path
    """``[[include:PATH]]`` markers read ``root / PATH``."""


def refuse_tables_only(out: Path) -> None:
    """A study folder of tables without cells (a committed one) is never the study's target: its
    tables are rebuilt from cells, so every block without cells would be dropped."""
    if (out / "summary.csv").is_file() and not (out / "cells").is_dir():
        raise UserError(f"{out} holds tables without cells (a committed folder): the study rebuilds its tables "
                        "from cells, which would drop every other block; study into a new --out, then "
                        f"python -m prorlbench.study.splice NEW {out} --datasets NAME")


def merge(cfg, registry, runs: list[Path], config: str) -> tuple[Path, list[Path]]:
    """Merge the cells of ``runs`` into the study folder; returns the folder and the tables-only RUNs."""
    from ..engine.devices import code_identity
    from ..engine.guards import run_lock
    from ..engine.resolve import resolve
    from ..engine.runner import write_run_documents
    from ..folder.results import RunFolder
    from .merge import check_target, copy_cells, plan_merge, tables_only

    res = resolve(cfg, registry)
    refuse_tables_only(res.out)
    plan = plan_merge(res, runs, config)
    for note in plan.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    dst = RunFolder(res.out, code=code_identity())
    try:
        dst.make()
    except OSError as exc:
        raise UserError(f"cannot create the study folder {res.out}: {exc.strerror or exc}") from None
    with run_lock(res.out, wait=res.cfg.wait):
        todo = check_target(plan, dst)
        write_run_documents(res, dst)
        copy_cells(plan, dst, todo)
    print(f"merged {len(todo)} cell(s) into {res.out} ({len(plan.cells) - len(todo)} already there)")
    return res.out, [r for r in runs if tables_only(r)]


def build(out: Path, spliced: list[Path], files: FindingsFiles, plot: bool = True) -> list[Path]:
    """Steps 2-4 on the study folder ``out``; returns the files written."""
    import pandas as pd

    from ..engine.guards import run_lock
    from ..engine.selection import write_selection
    from ..folder.files import atomic_write_text
    from ..folder.results import RunFolder
    from ..report import write_report
    from ..report.gridcheck import merge_all_cells
    from . import claims, findings, splice

    if not (out / "cells").is_dir():
        raise UserError(f"{out}: no cells/ folder: the study has no finished cell yet")
    with run_lock(out):
        cells, notes = merge_all_cells(RunFolder(out))
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    print(f"merged {sum(c.ok for c in cells)} finished cell(s) of {out / 'cells'}")
    write_report(out, style="paper")
    written = [out / "summary.csv", out / "paper.csv"]
    try:  # --select-on valid: the chosen variants, as prorlbench report writes them
        if write_selection(out):
            written.append(out / "selection.md")
    except (OSError, ValueError, KeyError) as exc:
        print(f"{PROG}: note: no variant selection ({' '.join(str(exc).split())})", file=sys.stderr)
    atomic_write_text(out / "comparisons.md", claims.build(out) + "\n")
    written.append(out / "comparisons.md")
    if plot:
        png = claims.plot_claims(out)
        written += [png] if png is not None else []
    for run in spliced:
        datasets = sorted(set(pd.read_csv(run / "summary.csv", keep_default_na=False)["dataset"]))
        log = io.StringIO()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            code = splice.main([str(run), str(out), "--datasets", ",".join(datasets)])
        if code != 0:
            raise UserError(f"--merge {run}: cannot splice its tables in: {' '.join(log.getvalue().split())[-300:]}")
        print(f"spliced the {', '.join(datasets)} rows of {run} into {out}")
    if files.template is not None and files.page is not None:
        try:
            page, readme = findings.render(out, files.template, files.readme, files.root)
        except findings.MarkerError as exc:
            raise UserError(f"{files.template}: {exc}") from None
        atomic_write_text(files.page, page)
        written.append(files.page)
        if readme is not None and files.readme is not None:
            atomic_write_text(files.readme, readme)
            written.append(files.readme)
    return written
