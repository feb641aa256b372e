"""What an executor reports, checked before the runner believes it.

An executor may come from a plugin. One that raises, yields something that is not a
:class:`~prorlbench.folder.results.CellStatus`, reports a cell it was not given (or one cell twice), or
stops before it reported every cell would otherwise end the run with a traceback, or leave
cells without a status. :func:`checked_statuses` passes the good statuses on and, at the first
such fault, stops listening to the executor: every cell it did not report fails with a one-line
reason naming the executor (``work.failed`` writes its status), so the grid goes on, the summary
is written and the run exits 1 like any run with failed cells. A :class:`UserError` (bad input,
e.g. a Ray address that cannot be reached) and ``KeyboardInterrupt`` still stop the run.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Sequence

from ..errors import UserError, one_line
from ..folder.results import CellStatus, cell_name
from .base import CellJob, ExecutorContext, Work

log = logging.getLogger("prorlbench")


def executor_name(executor: Any) -> str:
    """The executor's ``name``, or its class name when it has no string name."""
    name = getattr(executor, "name", None)
    return name if isinstance(name, str) and name else type(executor).__name__


def checked_statuses(executor: Any, jobs: Sequence[CellJob], work: Work,
                     where: ExecutorContext) -> Iterator[CellStatus]:
    """``executor.run(jobs, work, where)``, with every cell it does not report properly failed
    (see the module docstring). Yields exactly one status per job."""
    pending = {j.name: j for j in jobs}
    name = executor_name(executor)
    problem = None
    stream: Any = None
    try:
        stream = iter(executor.run(list(jobs), work, where))
        for st in stream:
            if not isinstance(st, CellStatus):
                problem = f"yielded {one_line(repr(st), 60)} ({type(st).__name__}), not a CellStatus"
                break
            key = cell_name(st.method, st.dataset, st.seed)
            if key not in pending:
                problem = f"reported cell {key}, which it was not given or had reported already"
                break
            del pending[key]
            yield st
        else:
            if pending:
                problem = "finished without reporting every cell"
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a plugin's bug: the cells it did not report fail, the run goes on
        problem = f"raised {one_line(exc, 300)}"
    finally:
        if stream is not None and hasattr(stream, "close"):
            try:
                stream.close()  # let a generator clean up (cancel tasks, shut down a cluster)
            except Exception:
                pass
    if problem is None:
        return
    log.error("executor '%s' %s; %d cell(s) it did not report fail", name, problem, len(pending))
    for job in pending.values():
        yield work.failed(job, f"executor '{name}' {problem}")
