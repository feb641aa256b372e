"""Executors: how the cells of one dataset are run (the contract: :mod:`.base`).

Two ship: ``local`` (:mod:`.local`, each cell in a worker process of its own on this machine,
``--workers`` at once) and ``ray`` (:mod:`.ray`,
parallel Ray tasks; needs the optional extra ``prorlbench[ray]``, imported only when chosen).
A plugin adds one with the ``register_executors`` hook (an
:class:`~prorlbench.api.ExecutorSpec` whose ``factory()`` returns an :class:`Executor`); the
registry lists the built-ins too (provider ``prorlbench``), so a plugin cannot take their names,
and the runner passes every registered factory to :func:`make_executor`.

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config), console, folder.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

from ..errors import UnknownNameError, UserError, one_line
from .base import CellJob, Executor, ExecutorContext, Work, expand_grid
from .local import LocalExecutor

__all__ = ["CellJob", "Executor", "ExecutorContext", "Work", "expand_grid", "LocalExecutor", "EXECUTORS", "make_executor"]


def _ray_executor() -> Executor:
    from .ray import RayExecutor  # lazily: ray is an optional extra

    return RayExecutor()


EXECUTORS: Mapping[str, Callable[[], Executor]] = MappingProxyType({"local": LocalExecutor,
                                                                    "ray": _ray_executor})
"""The built-in executor factories by name (read-only)."""
SUMMARIES: Mapping[str, str] = MappingProxyType({
    "local": "each cell in a worker process of its own on this machine (--workers N at once)",
    "ray": "parallel Ray tasks, on this machine or a cluster (pip install 'prorlbench[ray]')"})


def make_executor(name: str, extra: Mapping[str, Callable[[], Executor]] | None = None) -> Executor:
    """The executor called ``name``; ``extra`` adds factories (plugins' ``register_executors``)."""
    table = {**EXECUTORS, **(extra or {})}
    if name not in table:
        raise UnknownNameError("executor", name, list(table))
    try:
        return table[name]()
    except UserError:  # e.g. the ray extra is not installed
        raise
    except Exception as exc:  # a plugin's factory: one line, exit 2, not a traceback
        raise UserError(f"executor '{name}': its factory failed ({one_line(exc, 300)})") from None
