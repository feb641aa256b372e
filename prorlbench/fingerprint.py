"""Content fingerprints: of input files, and of a model's weights.

A result is keyed by what it was computed from, never by a name or a folder string:

* :func:`inputs_fingerprint` hashes every input file a dataset may read: the run's ``data_dir``
  and every string value of a dataset config that names an existing file or folder (``path``,
  ``data_dir``, ...). A folder contributes every regular file below it (sorted, relative names
  included, so adding, removing or renaming a file changes it too). Each file's SHA-256 is
  remembered by ``(path, size, mtime_ns)`` in ``<cache_dir>/file-hashes.json``: an unchanged
  file is not read again; a changed size or modification time rehashes it, so an edit is always
  noticed (a pure ``touch`` only costs one rehash and gives the same fingerprint).
* :func:`state_fingerprint` hashes a module's ``state_dict`` (names, dtypes, shapes and bytes):
  caches that depend on a simulator (the SFT checkpoint) include it, and the runner compares it
  before and after each cell to catch a method that changed the shared simulator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

import torch

log = logging.getLogger("prorlbench")

MAX_FILES = 10_000
"""A folder with more files than this is fingerprinted by its first ``MAX_FILES`` files."""
HASHES_FILE = "file-hashes.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FileHashes:
    """SHA-256 of files, remembered by ``(resolved path, size, mtime_ns)`` (the fast path)."""

    def __init__(self, store: Path | None = None):
        self.store = store
        self.known: dict[str, list[Any]] = {}
        self.dirty = False
        if store is not None:
            try:
                d = json.loads(store.read_text(encoding="utf-8"))
                if isinstance(d, dict):
                    self.known = {k: v for k, v in d.items() if isinstance(v, list) and len(v) == 3}
            except (OSError, ValueError):
                pass

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = str(path.resolve())
        old = self.known.get(key)
        if old is not None and old[0] == st.st_size and old[1] == st.st_mtime_ns:
            return str(old[2])
        digest = _sha256(path)
        self.known[key] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.store is None or not self.dirty:
            return
        from .files import atomic_write_text

        try:
            atomic_write_text(self.store, json.dumps(self.known, sort_keys=True))
            self.dirty = False
        except Exception as exc:  # the memo is an optimisation only
            log.debug("could not save %s: %s", self.store, exc)


def _files_below(folder: Path) -> list[Path]:
    out: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith("."):
                continue
            p = Path(root) / f
            if p.is_file():
                out.append(p)
                if len(out) >= MAX_FILES:
                    return out
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
        files = [loc] if loc.is_file() else _files_below(loc)
        h.update(f"|loc:{loc.resolve()}:{len(files)}".encode())
        for f in files:
            rel = f.name if f == loc else str(f.relative_to(loc))
            h.update(f"|{rel}:".encode())
            try:
                h.update(hashes.sha256(f).encode())
            except OSError as exc:
                from .errors import DataError

                raise DataError(f, f"cannot read this input file ({exc.strerror or exc})") from None
    return h.hexdigest()[:20]


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
