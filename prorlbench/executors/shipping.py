"""Shipping the work to another process: :func:`dump_work` and :func:`load_work`.

Used by the executors whose workers do not inherit the runner's memory: the Ray executor's tasks
and the local executor's ``spawn`` workers (CUDA). The work is saved with ``torch.save``, so its
tensors travel as storages and are mapped to the loading process's device. Modules imported from
the run's ``--plugins-dir`` folders are private to the runner's process (their names cannot be
imported elsewhere), so their classes are pickled by value through ``cloudpickle`` (it comes with
Ray; without it, plain ``pickle`` ships the built-in and installed plugins).
"""

from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path
from typing import Any, Sequence

from .base import Work


def _loose_modules(plugins_dirs: Sequence[str]) -> list[Any]:
    """Modules imported from the run's ``--plugins-dir`` folders."""
    dirs = [Path(d).resolve() for d in plugins_dirs]
    if not dirs:
        return []
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        try:
            parent = Path(path).resolve().parent
        except (OSError, ValueError):
            continue
        if any(parent == d for d in dirs):
            found.append(module)
    return found


def _cloudpickle() -> Any:
    try:
        from ray import cloudpickle
    except ImportError:
        try:
            import cloudpickle  # type: ignore[import-not-found, no-redef]
        except ImportError:
            return None
    return cloudpickle


def dump_work(work: Work, plugins_dirs: Sequence[str] = ()) -> bytes:
    """``work`` as bytes for :func:`load_work` in another process."""
    import torch

    cp = _cloudpickle()
    modules = _loose_modules(plugins_dirs) if cp is not None else []
    for m in modules:
        cp.register_pickle_by_value(m)
    try:
        buf = io.BytesIO()
        torch.save(work, buf, pickle_module=cp if cp is not None else pickle)
        return buf.getvalue()
    finally:
        for m in modules:
            try:
                cp.unregister_pickle_by_value(m)
            except ValueError:
                pass


def load_work(blob: bytes, device: Any) -> Work:
    """The work of :func:`dump_work`, with its tensors on ``device`` and computing there."""
    import torch

    work = torch.load(io.BytesIO(blob), map_location=device, weights_only=False)
    return work.on_device(device)
