"""The torch device of a run: ``--device auto|cpu|cuda|cuda:N`` checked against this machine;
what a result depends on besides its configuration: the platform (:func:`platform_identity`)
and the code that made it (:func:`code_identity`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """The device ``name`` names (``auto``: CUDA when available); a clear error when absent."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine "
                              "(torch.cuda.is_available() is False); use --device cpu or auto")
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise ConfigError(f"--device {name}: not a valid device name") from None
        if dev.index is None:  # an explicit index, so device comparisons (cuda vs cuda:0) agree
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise ConfigError(f"--device {name}: expected auto, cpu, cuda or cuda:N")


COMPARED = ("torch", "cpu", "cpu_capability", "gpu")
"""The keys of :func:`platform_identity` that make two machines "the same platform" for a seed."""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def platform_identity(device: str | torch.device = "cpu") -> dict[str, str]:
    """What a seeded result depends on besides its configuration: torch's build, the CPU model,
    the SIMD kernels torch dispatches to, the GPU (on CUDA) and the intra-op thread count.

    The same seed on another platform gives other last bits in a matmul; supervised and
    heuristic methods absorb them, RL amplifies them into another trajectory (docs/reliability.md).
    Each cell stores this (``CellStatus.platform``); a resumed run warns when finished cells
    came from another platform (the keys of :data:`COMPARED`)."""
    dev = torch.device(device)
    out = {"torch": torch.__version__, "cpu": _cpu_model(),
           "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
           "threads": str(torch.get_num_threads())}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
    return out


def platform_difference(stored: dict[str, str], current: dict[str, str]) -> str:
    """``key: stored -> current`` for each compared key that differs ('' when none does, or
    when ``stored`` is empty: a cell written before platforms were recorded)."""
    if not stored:
        return ""
    return "; ".join(f"{k}: {stored.get(k, '-')} -> {current.get(k, '-')}"
                     for k in COMPARED if stored.get(k) != current.get(k))


def code_identity(timeout: float = 10.0) -> dict[str, Any]:
    """The code that makes a result: ``{"version": prorlbench's version, "commit": the git commit
    of prorlbench's own checkout, "dirty": whether ``git status --porcelain`` lists anything}``.

    ``commit`` and ``dirty`` are ``None`` when prorlbench is not run from a git checkout of its
    own (an installed wheel, a folder inside someone else's repository), when git is absent or
    fails, or when it takes longer than ``timeout`` seconds: recording provenance never fails a
    run. Three ``git`` calls (``rev-parse --show-toplevel``, ``rev-parse HEAD``, ``status
    --porcelain``; milliseconds); the runner calls this once per run and gives it to its
    ``RunFolder``, which stamps every status it writes, never once per cell. ``GIT_*`` variables
    are ignored, so a ``GIT_DIR`` set for another repository cannot answer for this one."""
    from .. import __version__

    out: dict[str, Any] = {"version": __version__, "commit": None, "dirty": None}
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root:  # not prorlbench's own repository
        return out
    out["commit"] = git("rev-parse", "HEAD")
    if out["commit"] is not None:
        status = git("status", "--porcelain")
        out["dirty"] = None if status is None else bool(status)
    return out


def code_line(code: dict[str, Any]) -> str:
    """``prorlbench 0.1.0, git commit abc123 (dirty)`` (for config.toml and logs)."""
    text = f"prorlbench {code.get('version') or '?'}"
    if code.get("commit"):
        text += f", git commit {code['commit']}" + (" (dirty)" if code.get("dirty") else "")
    return text
