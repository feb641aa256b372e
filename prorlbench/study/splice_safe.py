"""What ``prorlbench.study.splice`` checks before it splices, and how it writes: one grid, all or nothing.

* :func:`grid_mismatch`: the two folders must come from one grid. Their ``config.toml`` must agree
  on the training simulator and its table, ``simulator_seed``, the scoring (metrics, ks, eval
  simulators and their tables, ``eval_batch_size``), ``[cases]`` and the spliced datasets' tables
  (without path keys, which differ between machines); and where both ``metadata.json`` record grid
  fingerprints (:mod:`prorlbench.report.gridcheck`), the spliced datasets' must be equal, which
  also compares the content of the data files. A folder without ``config.toml`` (made by hand) is
  not compared, and a note says so.
* :func:`staged`: the splice is built in a temporary sibling folder (a copy of the study folder's
  files), then :func:`commit` moves every changed file into place; a write error while building
  leaves the study folder as it was, and one while moving puts back the files already moved.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Iterator

from ..report.gridcheck import grid_difference, read_grid_record

RUN_KEYS = ("simulator", "simulator_seed", "eval_simulators", "metrics", "ks", "eval_batch_size")
"""``[run]`` keys two spliced folders must share."""
PATH_KEYS = ("path", "data_dir")


def _config(folder: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads((folder / "config.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _first_difference(a: Any, b: Any, where: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return f"{where} {k} ({a.get(k, 'absent')!r} vs {b.get(k, 'absent')!r})"
        return None
    return None if a == b else f"{where} ({a!r} vs {b!r})"


def grid_mismatch(new: Path, into: Path, datasets: set[str]) -> tuple[str | None, list[str]]:
    """Why ``new`` and ``into`` are not of one grid (``None`` when they are), and notes."""
    a, b = _config(new), _config(into)
    notes: list[str] = []
    if a is None or b is None:
        missing = new if a is None else into
        notes.append(f"{missing / 'config.toml'} is missing or unreadable: the grids were not compared")
    else:
        ra, rb = a.get("run", {}), b.get("run", {})
        tables: list[tuple[Any, Any, str]] = [(ra.get(k), rb.get(k), f"[run] {k}") for k in RUN_KEYS]
        sims = {rb.get("simulator"), *(rb.get("eval_simulators") or [])} - {None}
        tables += [(a.get("simulators", {}).get(s), b.get("simulators", {}).get(s), f"[simulators.{s}]")
                   for s in sorted(map(str, sims))]
        tables.append((a.get("cases"), b.get("cases"), "[cases]"))
        for d in sorted(datasets):
            da, db = a.get("datasets", {}).get(d), b.get("datasets", {}).get(d)
            if isinstance(da, dict) and isinstance(db, dict):
                tables.append(({k: v for k, v in da.items() if k not in PATH_KEYS},
                               {k: v for k, v in db.items() if k not in PATH_KEYS}, f"[datasets.{d}]"))
        for x, y, where in tables:
            why = _first_difference(x, y, where)
            if why is not None:
                return f"{new / 'config.toml'} and {into / 'config.toml'} differ in {why}", notes
    ga, gb = read_grid_record(new / "metadata.json"), read_grid_record(into / "metadata.json")
    why = grid_difference(ga, gb, datasets)
    if why is not None:
        return f"{new} and {into}: {why}", notes
    if ga is None or gb is None:
        notes.append(f"{(into if gb is None else new) / 'metadata.json'} records no grid fingerprints (an older "
                     "version): the data files' content was not compared")
    return None, notes


@contextlib.contextmanager
def staged(into: Path) -> Iterator[Path]:
    """A temporary sibling folder holding a copy of ``into``'s files (not its sub-folders),
    removed when the block ends, whatever happens."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{into.name}.splice-", dir=into.parent))
    try:
        for p in into.iterdir():
            if p.is_file() and not p.is_symlink():
                shutil.copy2(p, tmp / p.name)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def commit(tmp: Path, into: Path) -> list[str]:
    """Move every file of ``tmp`` that is new or changed into ``into``, and remove the files
    ``tmp`` no longer has; on an error, put back every file already moved or removed (then
    re-raise). Returns the names changed."""
    names = sorted({p.name for p in tmp.iterdir() if p.is_file()} | {p.name for p in into.iterdir() if p.is_file()})
    changed = [n for n in names if not (tmp / n).exists() or not (into / n).exists()
               or not filecmp.cmp(tmp / n, into / n, shallow=False)]
    backup = Path(tempfile.mkdtemp(prefix=f".{into.name}.splice-old-", dir=into.parent))
    done: list[str] = []
    try:
        for n in changed:
            if (into / n).exists():
                shutil.copy2(into / n, backup / n)
        for n in changed:
            if (tmp / n).exists():
                _replace(tmp / n, into / n)
            else:
                (into / n).unlink()
            done.append(n)
    except BaseException:
        for n in done:
            if (backup / n).exists():
                os.replace(backup / n, into / n)
            else:
                (into / n).unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
    return changed
