"""prorlbench: a plugin-based benchmarking harness for proactive recommenders.

The public Python API (docs/api.md; part of the stability promise in docs/plugins.md):

* :func:`run` ``(config=None, **keys)``: run or resume a grid, return :class:`Results`;
* :func:`load` ``(folder)``: the :class:`Results` of a run folder;
* :class:`Results`: ``summary``, ``cases``, ``cells``, ``train_log``, ``selection`` as pandas
  DataFrames, ``paths(...)`` for stored paths;
* :class:`RunConfig`, and ``hookimpl`` for plugins.

Names are imported on first use, so ``import prorlbench`` (and ``prorlbench --version``) load
neither torch nor pandas nor any plugin.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run", "load", "Results", "RunConfig", "hookimpl", "__version__"]
__version__ = "0.1.0"

_LAZY = {"run": "pyapi", "load": "pyapi", "Results": "pyapi", "RunConfig": "settings.runconfig", "hookimpl": "hookspecs"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'prorlbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
