"""The torch device of a run: ``--device auto|cpu|cuda|cuda:N`` checked against this machine."""

from __future__ import annotations

import torch

from .errors import ConfigError


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
