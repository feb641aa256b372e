"""What may be merged into one table: cells whose files match their status, and whose grid
fingerprints agree.

A dataset's block of the tables compares methods on the same test cases, scored the same way,
against a training simulator trained the same way. Every cell records that as
``CellStatus.grid`` (``data``, ``simulator``, ``score``: :func:`prorlbench.folder.fingerprint.grid_fingerprints`)
and ``metadata.json`` keeps it per dataset (``"grid"``). ``prorlbench report --all-cells``
(:func:`merge_all_cells`) refuses, with one line naming two cells, to merge a cell whose files do
not match the SHA-256 its status stores, a status stored under another cell's name, or cells of
one dataset whose fingerprints differ; ``prorlbench.study.splice`` compares two folders' records
(:func:`grid_difference`). Cells and folders written before grids were recorded carry none: they
are merged, and the notes say so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..folder.files import atomic_write_text, cell_name
from ..folder.results import CellStatus, RunFolder

GRID_PARTS = {"data": "other data, dataset config or [cases]",
              "simulator": "another training simulator or simulator config",
              "score": "other metrics, ks, eval simulators or eval simulator configs"}
"""The parts of a grid fingerprint and what a difference in each means."""


def check_cells(folder: RunFolder, cells: dict[str, CellStatus]) -> list[str]:
    """Raise :class:`UserError` (one line) unless every ok cell of ``cells`` (status by the stem of
    its file name) verifies and the cells of each dataset share one grid; returns notes (cells
    that record no grid)."""
    by_dataset: dict[str, list[tuple[str, CellStatus]]] = {}
    for stem, st in cells.items():
        name = cell_name(st.method, st.dataset, st.seed)
        if stem != name:
            raise UserError(f"cells/{stem}.json holds the status of cell {name}; a status file must keep "
                            "its cell's name (remove or rename it)")
        if not st.ok:
            continue
        why = folder.verify(name, st)
        if why is not None:
            raise UserError(f"cell {name}: {why}; report --all-cells merges only cells whose files match their "
                            "status (re-run the grid to recompute it, or remove its files)")
        by_dataset.setdefault(st.dataset, []).append((name, st))
    notes = []
    for dataset, group in by_dataset.items():
        unknown = [n for n, st in group if not st.grid]
        if unknown:
            notes.append(f"dataset {dataset}: {len(unknown)} cell(s) record no grid fingerprint (made by an "
                         f"older version, e.g. {unknown[0]}): their simulator and data were not compared")
        for part, meaning in GRID_PARTS.items():
            seen: dict[str, str] = {}
            for name, st in group:
                value = st.score_fingerprint if part == "score" else st.grid.get(part)
                if not value:
                    continue
                first = seen.setdefault(value, name)
                if len(seen) > 1:
                    other = next(n for v, n in seen.items() if v != value)
                    raise UserError(f"dataset {dataset}: cells {other} and {first} were made with {meaning} "
                                    f"({part} fingerprint); one table merges only cells of one grid (re-run the "
                                    "odd cells with the grid's config, or move them out of cells/)")
    return notes


def merge_all_cells(folder: RunFolder) -> tuple[list[CellStatus], list[str]]:
    """``report --all-cells``: every finished cell under ``cells/``, checked (:func:`check_cells`),
    merged into the folder's tables; ``metadata.json``'s grid record updated. Returns the cells
    and the notes."""
    found = {p.name[: -len(".json")]: folder.read_status(p.name[: -len(".json")])
             for p in sorted(folder.cells.glob("*.json"))}
    statuses = {stem: st for stem, st in found.items() if st is not None}
    notes = check_cells(folder, statuses)
    cells = list(statuses.values())
    folder.merge(cells)
    grids = {c.dataset: {**c.grid, "score": c.score_fingerprint} for c in cells if c.ok and c.grid}
    update_grid_record(folder.metadata, grids)
    return cells, notes


def read_grid_record(path: Path) -> dict[str, dict[str, str]] | None:
    """``metadata.json``'s ``"grid"`` (dataset -> parts), or ``None`` when it records none."""
    try:
        grid = json.loads(Path(path).read_text(encoding="utf-8")).get("grid")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(grid, dict):
        return None
    return {str(d): {str(k): str(v) for k, v in g.items()} for d, g in grid.items() if isinstance(g, dict)}


def update_grid_record(path: Path, grids: dict[str, dict[str, str]], *, write: bool = True) -> dict[str, Any]:
    """``metadata.json`` with ``grids`` put into its ``"grid"`` record (other datasets' entries
    kept, so a grid run one dataset at a time records all of them). Written only where the file
    exists and ``write``; returns the document."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    doc["grid"] = {**(read_grid_record(path) or {}), **grids}
    if write and grids:
        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return doc


def grid_difference(new: dict[str, dict[str, str]] | None, into: dict[str, dict[str, str]] | None,
                    datasets: set[str]) -> str | None:
    """Why two folders' grid records (:func:`read_grid_record`) disagree on ``datasets``, or
    ``None`` (also where one of them records no such dataset)."""
    for d in sorted(datasets):
        a, b = (new or {}).get(d), (into or {}).get(d)
        if not a or not b:
            continue
        for part, meaning in GRID_PARTS.items():
            if a.get(part) and b.get(part) and a[part] != b[part]:
                return f"dataset {d} was made with {meaning} ({part} fingerprint {a[part]} vs {b[part]})"
    return None
