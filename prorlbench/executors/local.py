"""The ``local`` executor: the cells one after another in this process, in grid order."""

from __future__ import annotations

from typing import Iterator, Sequence

from ..results import CellStatus
from .base import CellJob, ExecutorContext, Work


class LocalExecutor:
    """Runs the cells one after another in this process, in grid order."""

    name = "local"

    def run(self, jobs: Sequence[CellJob], work: Work, where: ExecutorContext) -> Iterator[CellStatus]:
        for job in jobs:
            yield work(job)
