"""Seeding and threads: the one place that sets and restores torch's process-wide state
(the global random generators, the number of CPU threads)."""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's global RNG states after the block."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (``n <= 0``: leave the setting alone), then
    restore the previous setting."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0:
            torch.set_num_threads(before)


def global_state() -> dict[str, str]:
    """The process-wide torch settings a method could change and forget to restore (default dtype
    and device, gradient mode, threads, deterministic algorithms, the cuDNN flags, anomaly mode).
    In a worker process a change dies with the cell; in this process it would reach every later
    cell, and in either it would change how the cell's own paths are scored."""
    state = {
        "torch default dtype": str(torch.get_default_dtype()),
        "torch grad mode": str(torch.is_grad_enabled()),
        "torch threads": str(torch.get_num_threads()),
        "torch deterministic algorithms": str(torch.are_deterministic_algorithms_enabled()),
        "torch anomaly detection": str(torch.is_anomaly_enabled()),
        "cudnn benchmark": str(torch.backends.cudnn.benchmark),
        "cudnn deterministic": str(torch.backends.cudnn.deterministic),
    }
    get_device = getattr(torch, "get_default_device", None)
    if get_device is not None:
        state["torch default device"] = str(get_device())
    return state


def global_state_change(before: dict[str, str]) -> str:
    """What changed since ``before`` (``"torch default dtype: torch.float32 -> torch.float64"``),
    empty when nothing did."""
    now = global_state()
    return ", ".join(f"{k}: {before[k]} -> {now.get(k)}" for k in before if now.get(k) != before[k])
