"""``RLConfig.autocast``: bf16 autocast for the forward passes of an RL step.

With ``autocast = "bf16"`` the step's forward passes (the policy's sampling and its
teacher-forced log-probabilities, the frozen reference, the simulator's reward pass) run under
``torch.autocast(dtype=torch.bfloat16)``: matrix products in bf16, softmax and log-softmax in
float32 (autocast's own policy), the loss, the backward pass and AdamW's update in float32. The
default is ``off``, and it stays off: bf16 keeps 8 bits of mantissa, so the simulator's ranks
and log-probabilities, and with them every reward, move in their third digit, and a seeded run
follows another trajectory (docs/performance.md, "bf16 autocast", has the measured figures).
Evaluation (scoring the generated paths) never runs under autocast.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

AUTOCAST_CHOICES = ("off", "bf16")


def autocast(cfg, device: torch.device | str) -> ContextManager:
    """The autocast context of ``cfg.autocast`` on ``device`` (a no-op context when off)."""
    if getattr(cfg, "autocast", "off") == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
