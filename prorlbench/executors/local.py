"""The ``local`` executor: each cell in a worker process of its own, on this machine.

Isolation. A cell runs in a child process and the runner only collects its status, so nothing a
method does reaches another cell: a method that calls ``os._exit``, is killed (SIGKILL, the
kernel's out-of-memory killer), crashes the interpreter, mutates the data or the cases it was
given, or changes process-wide state fails at most its own cell. The grid goes on and its
summary is written. A cell that runs past ``cell_timeout`` is stopped inside the worker
(:func:`prorlbench.engine.guards.deadline`); one whose method swallows that, or blocks in C, is killed
from outside ``KILL_GRACE`` seconds later and stored as timed out.

Workers. ``workers`` (``--workers N``, ``[run] workers``) cells run at once (default 1). On CPU
a worker is a ``fork`` of the runner, made after the dataset is prepared, so it starts in tens of
milliseconds and inherits the data, cases and simulators without copying; torch's OpenMP threads
are paused before each fork (``omp_pause_resource_all``: GNU OpenMP is not fork-safe after a
parallel region, and a child's first matmul would hang), and each worker runs with the run's
thread count, so per-case values equal those of a cell computed in the runner. On CUDA a worker
is a fresh ``spawn`` process with its own CUDA context (a CUDA context does not survive
``fork``); the work is shipped to it serialised as the Ray executor ships it, which costs
seconds a cell. ``workers = 0`` computes the cells in this process, without isolation: for a
debugger.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import one_line
from ..folder.files import OutputError
from ..folder.results import CellStatus
from .base import CellJob, ExecutorContext, Work

log = logging.getLogger("prorlbench")

KILL_GRACE = 10.0
"""Seconds past ``cell_timeout`` after which a worker that did not stop is killed from outside."""


def _pause_openmp() -> bool:
    """Release torch's OpenMP thread pool so that a forked child can start its own; ``False``
    when the runtime offers no way to (the caller then does not fork a multi-threaded torch)."""
    import torch

    if torch.get_num_threads() <= 1:
        return True
    lib = Path(torch.__file__).parent / "lib"
    for name in ("libgomp.so.1", "libomp.so", "libiomp5.so", "libomp.dylib"):
        if (lib / name).exists():
            try:
                return ctypes.CDLL(str(lib / name)).omp_pause_resource_all(1) == 0
            except (OSError, AttributeError):
                return False
    try:  # a torch linked against the system's runtime: it is in the process already
        return ctypes.CDLL(None).omp_pause_resource_all(1) == 0
    except AttributeError:
        return False


class _Forward(logging.Handler):
    """In a worker: sends each log record to the runner, which logs it as its own (one console,
    one ``run.log`` writer, and records of concurrent cells never interleave mid-line)."""

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args = record.getMessage(), None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            self.conn.send(("log", record))
        except Exception:  # noqa: BLE001: a log record is never worth a cell
            pass


def _forward_logs(conn: Any) -> None:
    """Route the worker's ``prorlbench`` records to the runner. ``run.log``'s handler stays, with
    every record filtered out: tracebacks of failed cells are written to its stream directly."""
    for h in list(log.handlers):
        if isinstance(h, logging.FileHandler):
            h.addFilter(lambda record: False)
        else:
            log.removeHandler(h)
    log.addHandler(_Forward(conn))
    log.propagate = False


def _compute(work: Work, job: CellJob, conn: Any, single_thread: bool = False) -> None:
    """A worker's body: compute the cell and send its status. A real Ctrl-C (SIGINT delivered to
    the worker: from a terminal it reaches the runner too) tells the runner to stop the grid.
    ``single_thread``: a fork whose OpenMP pool could not be paused computes with one thread (a
    parallel region would wait forever on the parent's threads)."""
    try:
        if single_thread:
            import torch

            torch.set_num_threads(1)
        _forward_logs(conn)
        conn.send(("status", work(job)))
    except KeyboardInterrupt:
        conn.send(("interrupted", None))
        conn.close()
        os._exit(130)
    except OutputError as exc:  # a full disk or read-only folder stops the run (exit 2), as in-process
        conn.send(("output-error", str(exc)))
    except BaseException as exc:  # noqa: BLE001: whatever escaped the cell is its failure
        conn.send(("error", one_line(exc)))
    finally:
        conn.close()


def _spawn_worker(blob: bytes, job: CellJob, device: str, log_path: str | None, threads: int,
                  conn: Any) -> None:
    """A spawn worker's body (CUDA): load the shipped work onto ``device`` and compute the cell."""
    import torch

    from ..console.logs import run_log
    from .shipping import load_work

    if threads > 0:
        torch.set_num_threads(threads)
    try:
        work = load_work(blob, device)
    except BaseException as exc:  # noqa: BLE001
        conn.send(("error", f"the work could not be loaded in the worker: {one_line(exc)}"))
        conn.close()
        return
    with run_log(Path(log_path)) if log_path else contextlib.nullcontext():
        _compute(work, job, conn)


@dataclass
class _Running:
    job: CellJob
    proc: Any
    conn: Any
    started: float
    result: CellStatus | str | None = None


def _exit_reason(proc: Any) -> str:
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = f"signal {-code}"
        return f"the cell's worker process was killed by {sig} before the cell finished"
    return (f"the cell's worker process exited with code {code} before the cell finished "
            "(os._exit, a crash or an abort inside the method)")


def _warn_oversubscribed(workers: int, threads: int) -> None:
    """One warning when the workers' torch threads outnumber the cores (several torch processes
    fighting over cores were measured 3-7x slower; the Ray executor divides them itself)."""
    import torch

    cores = os.cpu_count() or 1
    per_worker = threads if threads > 0 else torch.get_num_threads()
    if workers > 1 and workers * per_worker > cores:
        log.warning("%d workers x %d torch threads on %d cores: they will fight over the cores; pass "
                    "--threads %d", workers, per_worker, cores, max(1, cores // workers))


class LocalExecutor:
    """Runs each cell in a worker process on this machine (see the module docstring)."""

    name = "local"

    def __init__(self, workers: int | None = None, start_method: str | None = None) -> None:
        self.workers = workers
        self.start_method = start_method
        """``"fork"``, ``"spawn"`` or ``None`` (fork on CPU, spawn on CUDA); for tests."""

    def run(self, jobs: Sequence[CellJob], work: Work, where: ExecutorContext) -> Iterator[CellStatus]:
        workers = where.workers if self.workers is None else self.workers
        if workers <= 0:
            for job in jobs:
                yield work(job)
            return
        _warn_oversubscribed(workers, where.threads)
        yield from _Pool(work, where, workers, self.start_method).run(jobs)


class _Pool:
    def __init__(self, work: Work, where: ExecutorContext, workers: int, start_method: str | None) -> None:
        import torch

        self.work, self.where, self.workers = work, where, workers
        cuda = torch.device(where.device).type == "cuda" or torch.cuda.is_initialized()
        method = start_method or ("spawn" if cuda else "fork")  # a CUDA context does not survive fork
        self.ctx = mp.get_context(method)
        self.blob: bytes | None = None
        self.limit = (where.cell_timeout + KILL_GRACE) if where.cell_timeout and where.cell_timeout > 0 else None

    def _start(self, job: CellJob) -> _Running:
        recv, send = self.ctx.Pipe(duplex=False)
        if self.ctx.get_start_method() == "fork":
            single = not _pause_openmp()
            if single:
                log.warning("cannot pause torch's OpenMP threads before fork; the worker runs with 1 thread")
            proc = self.ctx.Process(target=_compute, args=(self.work, job, send, single), daemon=True)
        else:
            from .shipping import dump_work

            if self.blob is None:
                self.blob = dump_work(self.work, self.where.plugins_dirs)
            log_path = str(self.where.folder / "run.log") if self.where.folder is not None else None
            proc = self.ctx.Process(target=_spawn_worker, daemon=True,
                                    args=(self.blob, job, self.where.device, log_path, self.where.threads, send))
        proc.start()
        send.close()
        return _Running(job, proc, recv, time.monotonic())

    def _finish(self, r: _Running) -> CellStatus:
        r.proc.join()
        if r.result is None:
            self._receive(r, set())
        r.conn.close()
        if isinstance(r.result, CellStatus):
            return r.result
        message = f"the cell's worker failed: {r.result}" if isinstance(r.result, str) else _exit_reason(r.proc)
        return self.work.failed(r.job, message)

    def _receive(self, r: _Running, ready: set[Any]) -> None:
        """Read what a worker sent: log records (logged here), then its status or error."""
        try:
            while r.result is None and r.conn.poll():
                kind, value = r.conn.recv()
                if kind == "log":
                    if log.isEnabledFor(value.levelno):
                        log.handle(value)
                elif kind == "interrupted":
                    raise KeyboardInterrupt
                elif kind == "output-error":
                    raise OutputError(value)
                else:
                    r.result = value
        except (EOFError, OSError):
            ready.add(r.proc.sentinel)  # the worker died mid-send: collect it

    def run(self, jobs: Sequence[CellJob]) -> Iterator[CellStatus]:
        queue = list(jobs)
        running: list[_Running] = []
        try:
            while queue or running:
                while queue and len(running) < self.workers:
                    running.append(self._start(queue.pop(0)))
                waits = [r.conn for r in running if r.result is None] + [r.proc.sentinel for r in running]
                timeout = None
                if self.limit is not None:
                    timeout = max(0.0, min(r.started + self.limit for r in running) - time.monotonic())
                ready = set(mpc.wait(waits, timeout))
                for r in list(running):
                    if r.result is None and r.conn in ready:
                        self._receive(r, ready)
                    if r.proc.sentinel in ready or (r.result is not None and not r.proc.is_alive()):
                        running.remove(r)
                        yield self._finish(r)
                    elif self.limit is not None and time.monotonic() - r.started > self.limit:
                        r.proc.kill()
                        r.proc.join()
                        r.conn.close()
                        running.remove(r)
                        if isinstance(r.result, CellStatus):  # finished, then stuck on its way out
                            yield r.result
                            continue
                        yield self.work.failed(r.job, (
                            f"timed out: the cell ran past cell_timeout = {self.where.cell_timeout:g} s and did "
                            f"not stop; its worker process was killed after {self.limit:g} s; the grid goes on"))
        finally:
            for r in running:  # a real Ctrl-C or an error in the runner: no worker outlives the run
                r.proc.kill()
                r.proc.join()
