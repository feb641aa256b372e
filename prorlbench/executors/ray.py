"""The ``ray`` executor: the cells of a dataset run as parallel Ray tasks (``--executor ray``).

Optional: it needs the extra ``pip install 'prorlbench[ray]'`` (plain ``ray>=2.9``); without it,
choosing the executor is a one-line :class:`~prorlbench.errors.UserError`.

How it runs. The runner prepares the dataset in the driver (data, simulators, cases) and hands
over the work (:class:`~prorlbench.executors.base.Work`) and an
:class:`~prorlbench.executors.base.ExecutorContext` (run folder, device, address, plugin
folders). This executor serialises the work once per dataset
(:mod:`.shipping`: ``torch.save`` through cloudpickle, so tensors can be mapped to the worker's device), puts the
bytes in the Ray object store, and starts one task per (method, dataset, seed) cell. A task
deserialises the work, moves it to its device (``work.on_device``), calls ``work(job)`` (which seeds the cell, fits, generates, evaluates and
writes the cell's files, status last) and returns the :class:`~prorlbench.folder.results.CellStatus`.
Statuses are yielded as tasks finish (``ray.wait``), so the order differs from the grid order;
the merged tables do not, and the numbers equal the ``local`` executor's (the cell's seeding
happens inside ``work``; on CPU a task runs torch with one thread, which gives the same values
for the built-in methods).

Containment. A method that raises already fails only its cell inside ``work``. A task that dies
without returning (the worker process crashed or was killed for memory, the node was lost, the
work could not be deserialised) becomes a failed cell with a one-line reason, written to the
cell's status file like any other failure (``work.failed``); the grid goes on. Tasks are not retried
(``max_retries=0``): a crash is reported, not repeated.

Resources. Each task asks for one CPU, and for ``num_gpus_per_cell`` GPUs (default 1; a fraction
packs several cells on one GPU) when the run's device is CUDA. Ray then makes the granted GPU the
task's ``cuda:0``; the work's tensors are mapped there and the work moved there. With ``--device cuda`` the
driver needs a GPU too, because it trains the simulators.

Where. ``--ray-address ADDR`` (``[run] ray_address``) connects to a running cluster (``auto``,
``HOST:PORT`` or ``ray://HOST:10001``); empty starts a local instance with one CPU per core,
which is shut down at the end of the dataset's cells. An instance that was already initialised
in this process (``ray.init`` called by the user) is used as it is and left running. Before
``ray.init`` connects to ``HOST:PORT`` (or ``ray://HOST:PORT``), a plain TCP connection is tried
for at most ``connect_timeout`` seconds (10): Ray itself retries a closed port without end, so a
wrong address would otherwise hang the run; now it is a one-line error (exit 2). Workers
write into the run folder and the simulator cache by the paths the driver resolved, so on a
multi-node cluster ``--out`` and ``--cache-dir`` must be on a filesystem shared by every node,
and prorlbench (with any ``--plugins-dir`` folder, at the same path) must be installed there.
Environment variables whose names start with ``PRORLBENCH_`` (e.g. the plugin allow-list) are
passed on to the tasks. Ray runs its workers at nice 15: other work on the same machine takes
their CPU first. Worker-side log records (failures with their tracebacks) are appended to
the run's ``run.log``.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import ConfigError, UserError, one_line
from ..console.logs import run_log
from ..folder.results import CellStatus
from .base import CellJob, ExecutorContext, Work
from .shipping import dump_work, load_work

log = logging.getLogger("prorlbench")

MISSING_EXTRA = "the ray executor needs the optional extra: pip install 'prorlbench[ray]'"
ENV_PREFIX = "PRORLBENCH_"
"""Environment variables with this prefix are passed on to the Ray tasks."""


def import_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`UserError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError(MISSING_EXTRA) from None
    return ray


# --------------------------------------------------------------------------------------------
# Shipping the work
# --------------------------------------------------------------------------------------------


def _task_device(driver_device: Any) -> Any:
    """The device a task computes on: the GPU Ray granted (``cuda:0`` in the task) or the CPU."""
    import torch

    if driver_device is not None and torch.device(driver_device).type == "cuda":
        return torch.device("cuda", 0)
    return torch.device("cpu")


def run_cell_task(blob: bytes, job: CellJob, driver_device: str | None,
                  log_path: str | None = None, threads: int = 0) -> CellStatus:
    """The body of one Ray task: load the work and compute the cell (log records to ``log_path``)
    with ``threads`` torch CPU threads (0: leave the worker's setting alone)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    work = load_work(blob, _task_device(driver_device))
    if log_path is None:
        return work(job)
    with run_log(Path(log_path)):
        return work(job)


# --------------------------------------------------------------------------------------------
# The executor
# --------------------------------------------------------------------------------------------


def worker_threads(ray: Any, n_jobs: int) -> int:
    """torch threads (and Ray CPUs) per cell task: the cluster's CPUs divided by the tasks that can
    run at once, at most one node's CPUs, at least 1, so that workers never oversubscribe cores
    (several torch processes fighting over the same cores were measured 3-7x slower)."""
    total = int(ray.cluster_resources().get("CPU", 1))
    per_node = [int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive", True)]
    node_max = max(per_node, default=total) or total
    at_once = max(1, min(n_jobs, total))
    return max(1, min(node_max, total // at_once))


def _task_error(exc: BaseException, limit: int = 400) -> str:
    """A Ray error as one line: the task's own exception, without the embedded remote traceback."""
    cause = getattr(exc, "cause", None)  # RayTaskError carries the task's own exception
    inner = cause if isinstance(cause, BaseException) else exc
    text = " ".join(str(inner).split())
    for marker in (" Traceback (most recent call last)", " ray::"):
        if marker in text:  # Ray's messages embed the remote traceback; keep the first part
            text = text.split(marker, 1)[0].strip()
    return one_line(f"{type(inner).__name__}: {text}" if text else type(inner).__name__, limit)


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT``, ``ray://HOST:PORT`` or ``[IPv6]:PORT``; ``None`` for
    ``auto`` and anything else Ray resolves itself."""
    rest = address.strip()
    if rest.startswith("ray://"):
        rest = rest[len("ray://"):]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or len(port) > 5:
        return None
    return host.strip("[]"), int(port)


def probe_address(address: str, timeout: float) -> None:
    """A one-line :class:`UserError` unless something accepts a TCP connection at ``address``
    within ``timeout`` seconds (a closed port, an unknown host, a filtered port)."""
    where = host_port(address)
    if where is None:
        return
    try:
        with socket.create_connection(where, timeout=timeout):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or one_line(exc))
        raise UserError(f"--ray-address {address}: cannot connect to a Ray cluster ({why} at "
                        f"{where[0]}:{where[1]} within {timeout:g} s); is its head running "
                        "(`ray start --head`)?") from None


class RayExecutor:
    """Runs the cells of a dataset as Ray tasks, in parallel, yielding statuses as they finish.

    ``address``: a Ray cluster to connect to; ``None`` takes the run's (``where.address``,
    from ``--ray-address``), and an empty address starts a local instance with ``num_cpus`` CPUs
    (default: one per core). ``num_gpus_per_cell``: GPUs each task asks for when the run's device
    is CUDA (a fraction shares a GPU). See the module docstring.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_gpus_per_cell: float = 1.0, *,
                 num_cpus: int | None = None, connect_timeout: float = 10.0):
        self._ray = import_ray()
        if not num_gpus_per_cell > 0:
            raise ConfigError(f"ray executor: num_gpus_per_cell must be > 0, got {num_gpus_per_cell}")
        if num_cpus is not None and num_cpus < 1:
            raise ConfigError(f"ray executor: num_cpus must be >= 1, got {num_cpus}")
        self.address = address
        self.num_gpus_per_cell = float(num_gpus_per_cell)
        self.num_cpus = num_cpus
        self.connect_timeout = float(connect_timeout)

    def _connect(self, address: str) -> bool:
        """Initialise Ray unless it already is; ``True`` when this call started it."""
        ray = self._ray
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = dict(ignore_reinit_error=True, log_to_driver=False,
                                      logging_level=logging.WARNING)
        if address:
            probe_address(address, self.connect_timeout)
            kwargs["address"] = address
        else:
            kwargs.update(num_cpus=self.num_cpus or os.cpu_count() or 1, include_dashboard=False)
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise UserError(f"--ray-address {address}: cannot connect to a Ray cluster "
                            f"({' '.join(str(exc).split())})") from None
        return True

    def run(self, jobs: Sequence[CellJob], work: Work, where: ExecutorContext) -> Iterator[CellStatus]:
        jobs = list(jobs)
        if not jobs:
            return
        ray = self._ray
        started = self._connect(self.address if self.address is not None else where.address)
        pending: dict[Any, CellJob] = {}
        try:
            cuda = where.device.startswith("cuda")
            threads = where.threads or worker_threads(ray, len(jobs))
            options: dict[str, Any] = dict(num_cpus=threads, num_gpus=self.num_gpus_per_cell if cuda else 0,
                                           max_retries=0)
            env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
            if env:
                options["runtime_env"] = {"env_vars": env}
            task = ray.remote(run_cell_task).options(**options)
            blob = ray.put(dump_work(work, where.plugins_dirs))
            log_path = str(where.folder / "run.log") if where.folder is not None else None
            for job in jobs:
                pending[task.remote(blob, job, where.device, log_path, threads)] = job
            log.info("ray: %d cell task(s) submitted (%d CPU thread(s)%s each)", len(jobs), threads,
                     f", {options['num_gpus']:g} GPU" if cuda else "")
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    job = pending.pop(ref)
                    try:
                        status = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        status = work.failed(job, f"ray task died: {_task_error(exc)}")
                    yield status
        finally:
            for ref in pending:  # interrupted or abandoned: stop what is still running
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or the cluster is gone
                    pass
            if started:
                ray.shutdown()
