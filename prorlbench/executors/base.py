"""The executor contract: a cell job, what an executor is told about the run, and the work.

The runner prepares a dataset once (data, simulators, cases) and hands an executor three things:

* the cells still to do (:class:`CellJob`);
* the ``work`` (:class:`Work`): a picklable callable that computes one cell and writes its files
  (atomically, status last); ``work.on_device(device)`` is the same work computing elsewhere (a
  worker's GPU), ``work.failed(job, message)`` stores a cell whose worker died without a status;
* where the run lives (:class:`ExecutorContext`): its folder, device, cluster address and plugin
  folders, given explicitly, so an executor never reaches inside the work.

The executor decides where and in which order ``work`` runs and yields each cell's
:class:`~prorlbench.folder.results.CellStatus` as it finishes. Cells write only their own files, so they
are independent and a parallel executor may run them concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

from ..folder.results import CellStatus, cell_name


@dataclass(frozen=True)
class CellJob:
    """One cell of the grid."""

    method: str
    dataset: str
    seed: int

    @property
    def name(self) -> str:
        return cell_name(self.method, self.dataset, self.seed)


@dataclass(frozen=True)
class ExecutorContext:
    """What an executor knows about the run (nothing else is reachable from the work)."""

    folder: Path | None = None
    """The run folder (workers write there, so it must be on a shared filesystem); its
    ``run.log`` receives worker-side log records. ``None``: no run log."""
    device: str = "cpu"
    """The run's torch device (``"cpu"``, ``"cuda:0"``)."""
    address: str = ""
    """The cluster to use (``--ray-address``); empty: start a local instance."""
    plugins_dirs: tuple[str, ...] = ()
    """``--plugins-dir`` folders (absolute); their modules are private to the driver process."""
    threads: int = 0
    """torch CPU threads per worker (``--threads``); 0: the executor chooses."""
    workers: int = 1
    """Cells computed at once by the local executor (``--workers``); 0: in the runner's process."""
    cell_timeout: float = 0.0
    """``--cell-timeout`` seconds (0: none); the local executor kills a worker that overruns it."""


class Work(Protocol):
    """Computes one cell (see the module docstring)."""

    def __call__(self, job: CellJob) -> CellStatus: ...

    def on_device(self, device: Any) -> Work: ...

    def failed(self, job: CellJob, message: str) -> CellStatus: ...


class Executor(Protocol):
    """Runs ``work`` on each job and yields the statuses (in any order)."""

    name: str

    def run(self, jobs: Sequence[CellJob], work: Work, where: ExecutorContext) -> Iterator[CellStatus]: ...


def expand_grid(methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int],
                variants: dict[str, dict[str, Any]] | None = None) -> list[CellJob]:
    """All cells, dataset-major then method then seed (the order they are computed in); a method
    variant (``variants``: a RunConfig's) with ``datasets`` only on those."""
    only = {n: set(v["datasets"]) for n, v in (variants or {}).items() if v.get("datasets")}
    return [CellJob(m, d, int(s)) for d in datasets for m in methods for s in seeds
            if m not in only or d in only[m]]
