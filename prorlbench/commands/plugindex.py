"""The plugin catalogue: what ``prorlbench list`` shows, kept so that listing needs no plugin import.

Loading the plugins imports torch and every plugin module (seconds). ``prorlbench list`` without
``--details`` or ``--config`` needs only each plugin's name, one-line summary and provider, and
the plugins that failed to load; after a full load it stores them in
``<cache>/plugin-catalog.json`` (:func:`save`), and the next ``list`` reads them back
(:func:`load`) when nothing they came from changed. The key holds prorlbench's version, Python's,
the ``prorlbench`` entry points (name, target, distribution version), ``$PRORLBENCH_PLUGINS``, and
the size and modification time of every ``.py`` file of the prorlbench package, of each entry
point's top-level package (found without importing it) and of each ``--plugins-dir``. An edit,
an install, an upgrade or a new file in any of them loads the plugins again. A catalogue that
cannot be read or written is ignored: listing then loads the plugins, as it always did.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable

FILE = "plugin-catalog.json"
FORMAT = 1


def _py_files(root: Path) -> list[str]:
    if root.is_file():
        return [str(root)]
    return sorted(str(p) for p in root.rglob("*.py")) if root.is_dir() else []


def _package_root(module: str) -> Path | None:
    """The folder (or file) of ``module``'s top-level package, located without importing it."""
    import importlib.util

    top = module.split(":", 1)[0].split(".", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin) if spec.origin else None


def key(plugins_dirs: Iterable[str | Path]) -> str:
    """A hash of everything the list of plugins depends on (see the module docstring)."""
    from importlib.metadata import entry_points

    from .. import __version__


    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")  # plugins register what the installed torch offers
    except PackageNotFoundError:
        torch_version = None
    parts: list[Any] = [FORMAT, __version__, sys.version, torch_version, os.environ.get("PRORLBENCH_PLUGINS")]
    roots = [Path(__file__).resolve().parents[1]]
    for ep in sorted(entry_points(group="prorlbench"), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        parts.append([ep.name, ep.value, getattr(dist, "version", None)])
        root = _package_root(ep.value)
        if root is not None:
            roots.append(root)
    files: list[str] = []
    for root in dict.fromkeys(roots):
        files += _py_files(root)
    for d in plugins_dirs:
        parts.append(str(Path(d).resolve()))
        files += _py_files(Path(d).resolve())
    for f in files:
        try:
            st = os.stat(f)
            parts.append([f, st.st_size, st.st_mtime_ns])
        except OSError:
            parts.append([f, None])
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _path() -> Path:
    from ..folder.runnames import default_cache_dir

    return default_cache_dir() / FILE


def load(plugins_dirs: Iterable[str | Path]) -> dict[str, Any] | None:
    """The stored catalogue when its key matches, else ``None``."""
    try:
        doc = json.loads(_path().read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("key") == key(plugins_dirs):
            return doc
    except (OSError, ValueError):
        pass
    return None


def catalogue(registry: Any) -> dict[str, Any]:
    """What ``list`` shows of a loaded registry: per kind ``[name, summary, provider, opt-in]``."""
    rows = {kind: [[n, (registry.get(kind, n).summary or "").split("\n")[0], registry.providers[(kind, n)],
                    kind == "metrics" and not registry.get(kind, n).default] for n in registry.names(kind)]
            for kind in registry.specs}
    return {"rows": rows, "failures": [[f.plugin, f.error] for f in registry.failures]}


def save(registry: Any, plugins_dirs: Iterable[str | Path]) -> None:
    """Store the catalogue of a freshly loaded ``registry`` (silently skipped when it cannot be)."""
    from ..folder.files import atomic_write_text

    try:
        doc = {"key": key(plugins_dirs), **catalogue(registry)}
        path = _path()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(doc) + "\n")
    except Exception:  # noqa: BLE001 - a cache: listing works without it
        pass
