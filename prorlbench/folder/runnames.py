"""Where a run writes: the default run name and output folder, and the model cache folder.

Re-exported by :mod:`prorlbench.settings.runconfig`; ``cfg`` is a :class:`~prorlbench.settings.runconfig.RunConfig`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .files import safe_name

CACHE_ENV = "PRORLBENCH_CACHE_DIR"
"""Environment variable naming the default model cache folder."""


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prorlbench"


RUN_NAME_LIMIT = 100


def default_run_name(cfg: Any) -> str:
    """``<methods>_<datasets>``; a name longer than :data:`RUN_NAME_LIMIT` is cut and ends in a
    short hash of the full name, so two long grids never share a folder."""
    full = f"{'+'.join(cfg.methods)}_{'+'.join(cfg.datasets)}"
    name = safe_name(full, limit=10_000, default="run")
    if len(name) <= RUN_NAME_LIMIT:
        return name
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return name[: RUN_NAME_LIMIT - 9].rstrip("+_-.") + "-" + digest


def out_dir(cfg: Any) -> Path:
    if cfg.out:
        return Path(cfg.out).expanduser()
    return Path("results") / (cfg.name or default_run_name(cfg))
