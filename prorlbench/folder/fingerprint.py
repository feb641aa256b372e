"""Content fingerprints: of input files, and of a model's weights.

A result is keyed by what it was computed from, never by a name or a folder string:

* :func:`inputs_fingerprint` hashes every input file a dataset may read: the run's ``data_dir``
  and every string value of a dataset config that names an existing file or folder (``path``,
  ``data_dir``, ...). A folder contributes every regular file below it (sorted, relative names
  included, so adding, removing or renaming a file changes it too). Every file is read and
  hashed (SHA-256 of its content) once per run: :class:`FileHashes` remembers digests in the
  process only, for the datasets of one run that share files, and never by size and
  modification time, which an edit can keep. A location that is not a regular file or folder
  (``/dev/zero``, a FIFO) is a one-line :class:`~prorlbench.errors.DataError`, and so is a folder
  of more than :data:`MAX_FILES` files (a ``data_dir`` of ``/`` would hash the whole disk).
* :func:`state_fingerprint` hashes a module's ``state_dict`` (names, dtypes, shapes and bytes):
  caches that depend on a simulator (the SFT checkpoint) include it, and the runner compares it
  before and after each cell to catch a method that changed the shared simulator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any, Iterable

import torch

from ..errors import DataError
from .files import regular_file

log = logging.getLogger("prorlbench")

MAX_FILES = 100_000
"""A data folder with more files than this is refused (one line), never hashed in part."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FileHashes:
    """SHA-256 of file contents, remembered in this process only (one per run: a file shared by
    several datasets of the run is read once; the next run reads it again)."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    def sha256(self, path: Path) -> str:
        key = str(path.resolve())
        if key not in self.known:
            self.known[key] = _sha256(path)
        return self.known[key]


def _files_below(folder: Path) -> list[Path]:
    out: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith("."):
                continue
            p = Path(root) / f
            if p.is_file():  # a FIFO or device below is skipped here; a loader that reads it refuses it
                out.append(p)
                if len(out) > MAX_FILES:
                    raise DataError(folder, f"holds more than {MAX_FILES} files; point the data path at the "
                                            "dataset's own folder")
    return out


def is_path_key(key: str) -> bool:
    """Dataset config keys that name input files: ``path``, ``data_dir`` and ``*_path``,
    ``*_dir``, ``*_file``."""
    return key in ("path", "data_dir") or key.endswith(("_path", "_dir", "_file"))


def input_locations(data_dir: str | Path | None, dataset_cfg: Any) -> list[Path]:
    """Existing files and folders a dataset may read: ``data_dir`` and config strings naming paths."""
    import dataclasses

    found: list[Path] = []
    base = Path(data_dir).expanduser() if data_dir else None
    if base is not None and base.exists():
        found.append(base)
    values: Iterable[Any] = ()
    if dataclasses.is_dataclass(dataset_cfg):
        values = [getattr(dataset_cfg, f.name) for f in dataclasses.fields(dataset_cfg) if is_path_key(f.name)]
    for v in values:
        if not isinstance(v, str) or not v or "\x00" in v or len(v) > 4096:
            continue
        for cand in (Path(v).expanduser(), base / v if base is not None else None):
            try:
                if cand is not None and cand.exists():
                    found.append(cand)
                    break
            except OSError:
                continue
    return list(dict.fromkeys(found))


def inputs_fingerprint(locations: Iterable[Path], hashes: FileHashes | None = None) -> str:
    """SHA-256 over the content of every file of ``locations`` (see the module docstring)."""
    hashes = hashes or FileHashes()
    h = hashlib.sha256(b"inputs-1")
    for loc in locations:
        loc = Path(loc)
        try:
            folder = stat.S_ISDIR(regular_file(loc, folder_ok=True).st_mode)
        except OSError as exc:
            raise DataError(loc, f"cannot read this input ({exc.strerror or exc})") from None
        files = _files_below(loc) if folder else [loc]
        h.update(f"|loc:{loc.resolve()}:{len(files)}".encode())
        for f in files:
            rel = f.name if f == loc else str(f.relative_to(loc))
            h.update(f"|{rel}:".encode())
            try:
                h.update(hashes.sha256(f).encode())
            except OSError as exc:
                raise DataError(f, f"cannot read this input file ({exc.strerror or exc})") from None
    return h.hexdigest()[:20]


def _digest(key: Any) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def grid_fingerprints(res: Any, dataset: str) -> dict[str, str]:
    """What every cell of one table (a dataset's block) must share, each part hashed on its own so
    that a mismatch can be named: ``data`` (the dataset config without its path keys, the
    content of its input files and the ``[cases]`` config: the test cases), ``simulator`` (the
    training simulator, its config and ``simulator_seed``) and ``score`` (metrics, eval
    simulators and their configs, ks: ``Resolved.score_fingerprint``). Cells store them
    (``CellStatus.grid``), and so does ``metadata.json`` per dataset: ``report --all-cells`` and
    ``prorlbench.study.splice`` refuse to merge cells or folders where they differ."""
    from ..config import to_dict
    from .configpaths import without_paths

    sim = res.cfg.simulator
    return {"data": _digest({"dataset": without_paths(to_dict(res.dataset_cfgs[dataset])),
                             "inputs": res.input_fingerprint(dataset), "cases": to_dict(res.cases_cfg)}),
            "simulator": _digest({"name": sim, "config": to_dict(res.simulator_cfgs[sim]),
                                  "seed": res.cfg.simulator_seed}),
            "score": res.score_fingerprint()}


def state_fingerprint(model: Any) -> str:
    """SHA-256 of a module's ``state_dict`` (names, dtypes, shapes, values); ``""`` for others."""
    if not isinstance(model, torch.nn.Module):
        return ""
    h = hashlib.sha256(type(model).__qualname__.encode())
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not isinstance(t, torch.Tensor):
                h.update(f"|{name}={t!r}".encode())
                continue
            t = t.detach()
            h.update(f"|{name}:{t.dtype}:{tuple(t.shape)}:".encode())
            if t.numel():
                h.update(t.contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]
