"""Executors: how the cells of one dataset are run.

The runner prepares a dataset once (data, simulators, cases) and hands the executor the list of
cells still to do plus a ``work`` callable that computes one cell and writes its files (atomically,
status last). The executor decides where and in which order ``work`` runs and yields each cell's
:class:`~prorlbench.results.CellStatus` as it finishes. Because every cell writes its own files
and nothing else, cells are independent: a parallel executor is free to run them concurrently.

Two ship: ``local`` (in this process, in grid order) and ``ray`` (parallel Ray tasks, see
:mod:`prorlbench.ray_executor`; needs the optional extra ``prorlbench[ray]``). Another executor is
a factory in :data:`EXECUTORS`-compatible form (``extra`` of :func:`make_executor`); it receives
the same ``work`` object, which is a picklable :class:`prorlbench.runner.CellWork` (the run's
resolved configuration and the dataset's prepared context), so a worker can call ``work(job)``
after it is shipped. Workers write into the same run folder, so it must be on a shared filesystem.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterator, Mapping, Protocol, Sequence

from .errors import UnknownNameError
from .results import CellStatus


@dataclass(frozen=True)
class CellJob:
    """One cell of the grid."""

    method: str
    dataset: str
    seed: int

    @property
    def name(self) -> str:
        from .results import cell_name

        return cell_name(self.method, self.dataset, self.seed)


class Executor(Protocol):
    """Runs ``work`` on each job and yields the statuses (in any order)."""

    name: str

    def run(self, jobs: Sequence[CellJob], work: Callable[[CellJob], CellStatus]) -> Iterator[CellStatus]: ...


class LocalExecutor:
    """Runs the cells one after another in this process, in grid order."""

    name = "local"

    def run(self, jobs: Sequence[CellJob], work: Callable[[CellJob], CellStatus]) -> Iterator[CellStatus]:
        for job in jobs:
            yield work(job)


def _ray_executor() -> Executor:
    from .ray_executor import make_ray_executor  # lazily: ray is an optional extra

    return make_ray_executor()


EXECUTORS: Mapping[str, Callable[[], Executor]] = MappingProxyType({"local": LocalExecutor,
                                                                    "ray": _ray_executor})
"""Executor factories by name (read-only; see the module docstring for adding one)."""


def make_executor(name: str, extra: Mapping[str, Callable[[], Executor]] | None = None) -> Executor:
    """The executor called ``name`` (``extra`` adds factories, e.g. from tests)."""
    table = dict(EXECUTORS)
    table.update(extra or {})
    if name not in table:
        raise UnknownNameError("executor", name, list(table))
    return table[name]()
