"""Guards around a cell: a frozen simulator view, interrupts, a time limit, and the run lock.

* :func:`frozen_view`: methods get a private copy of the simulator in eval mode with gradients
  off, never the object the harness scores with. :func:`model_check` (weights, module modes and
  ``requires_grad`` flags) is compared before the cell is scored: a method that called
  ``ctx.simulator.train()`` or edited its weights fails its own cell, and no other cell sees it.
* :class:`InterruptWatch`: tells a real Ctrl-C (SIGINT delivered to the process) from a
  ``KeyboardInterrupt`` a plugin raised itself. The first stops the grid; the second, like a
  plugin's ``SystemExit``, only fails its cell.
* :func:`deadline`: ``--cell-timeout SECONDS`` as a SIGALRM timer that raises :class:`CellTimeout`
  in the cell (Python code, sleeps and waits are interrupted; a single long C call is interrupted
  when it returns). Only in the main thread; elsewhere (Ray workers' threads) it is not enforced.
* :func:`run_lock`: an exclusive ``flock`` on ``<out>/.lock``; a second run on the same folder
  exits 2 with a clear message, or waits for the first with ``--wait``.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import hashlib
import os
import signal
import threading
from pathlib import Path
from typing import Any, Iterator

import torch

from ..errors import UserError
from ..folder.files import refuse_link
from ..folder.fingerprint import state_fingerprint


def frozen_view(model: Any) -> Any:
    """A private copy of ``model`` for a method: eval mode, no gradients (others as they are)."""
    if not isinstance(model, torch.nn.Module):
        return model
    view = copy.deepcopy(model)
    view.eval()
    for p in view.parameters():
        p.requires_grad_(False)
    return view


def model_check(model: Any) -> str:
    """Fingerprint of weights, module modes and gradient flags (changes when a method edits it)."""
    if not isinstance(model, torch.nn.Module):
        return ""
    modes = "".join("t" if m.training else "e" for m in model.modules())
    grads = "".join("g" if p.requires_grad else "-" for p in model.parameters())
    return hashlib.sha256(f"{state_fingerprint(model)}|{modes}|{grads}".encode()).hexdigest()[:20]


class InterruptWatch:
    """While active (main thread only), records whether SIGINT really arrived."""

    def __init__(self) -> None:
        self.hit = False
        self._old: Any = None
        self.active = False

    def _handler(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def __enter__(self) -> "InterruptWatch":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
            self.active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            signal.signal(signal.SIGINT, self._old)
            self.active = False

    def real(self) -> bool:
        """Was the last KeyboardInterrupt a real Ctrl-C? (Always ``True`` when not watching.)"""
        return self.hit or not self.active


class CellTimeout(BaseException):
    """The cell ran past ``cell_timeout`` (a BaseException, so ``except Exception`` in a plugin
    cannot swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CellTimeout` in this block after ``seconds`` (``None`` or 0: no limit)."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise CellTimeout(f"the cell ran longer than cell_timeout = {seconds:g} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def run_lock(folder: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``<folder>/.lock`` for the block (see the module docstring)."""
    path = Path(folder) / ".lock"
    refuse_link(path)  # and O_NOFOLLOW: never create or lock a file through a link
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the run lock ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"{path}: cannot lock ({exc.strerror or exc})") from None
            try:
                other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            except OSError:
                other = "?"
            raise UserError(f"{folder}: another prorlbench run (pid {other}) is using this output folder; "
                            "wait for it to finish, pass --wait to queue behind it, or use another --out") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock
