"""Mid-training checkpoints of the RL stage, so that a killed or interrupted cell resumes.

Every ``checkpoint_every`` steps (``RLConfig``; 0: about every :data:`AUTO_SECONDS` of training,
-1: never) and once after the last epoch, :func:`~prorlbench.rl.trainer.train_rl` writes
everything the rest of its training depends on to ``ctx.checkpoint`` (the cell's
``cells/<cell>.resume.pt``): the policy, AdamW's moments and the learning-rate schedule, the
reward normaliser's statistics, the step, the epoch, the position in the epoch and its case
order, the best validation epoch so far (with its weights), the position profile of the epoch,
the states of every generator it draws from (sampling, ``noise-pg``'s noise, the case order)
and of the process-wide ones (torch CPU and CUDA, NumPy, Python's ``random``), and every
train-log row logged so far in the cell (the SFT stage's too).

The file is written atomically (a temporary file, ``fsync``, then a rename), so a kill at any
moment leaves the last complete checkpoint; Ctrl-C and a cell timeout leave it too. On the
next run of an unfinished cell the trainer loads it, logs the stored rows again (after the rows
this process logged already, e.g. a retrained SFT stage's, which are the same) and continues:
the cell's per-case values and train log are byte for byte those of an uninterrupted run on
the same platform (``tests/rl/test_resume.py`` kills a run at a random step). A checkpoint is
used only when its key matches: the cell's training fingerprint (``ctx.checkpoint_key``: config,
data, seed, simulator), the estimator, the RL config, the device type, torch's version and a
digest of the code that trains (:func:`code_digest`); any other is ignored and overwritten. The
harness deletes the file once the cell is stored, and at the start of ``--force``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..api import EstimatorSpec, FitContext, TrainLogger
from ..config import to_dict
from ..folder.files import atomic_write

log = logging.getLogger("prorlbench")

VERSION = 1
AUTO_SECONDS = 180.0
"""``checkpoint_every = 0``: a checkpoint after the first step that ends this long after the last."""


class RecordingLogger:
    """A train logger that passes every row on and keeps a copy (a checkpoint stores them)."""

    def __init__(self, inner: TrainLogger):
        self.inner = inner
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log(self, step: int, **values: float) -> None:
        self.rows.append((int(step), {k: float(v) for k, v in values.items()}))
        self.inner.log(step, **values)

    def replay(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Log the rows of a checkpoint that this process has not logged yet (it may have logged
        the first ones already, e.g. an SFT stage trained again: those are the same rows)."""
        done = len(self.rows) if rows[: len(self.rows)] == self.rows else 0
        for step, values in rows[done:]:
            self.log(step, **values)


def recording(logger: TrainLogger) -> RecordingLogger:
    return logger if isinstance(logger, RecordingLogger) else RecordingLogger(logger)


def code_digest(*objects: Any) -> str:
    """SHA-256 of the source files the RL training runs: ``prorlbench/rl/``, the scoring
    modules, and the files defining ``objects`` (the estimator, the simulator's class)."""
    here = Path(__file__).resolve().parent
    files = sorted(here.glob("*.py")) + [here.parent / "seq" / "scoring.py", here.parent / "seq" / "rowshare.py"]
    for obj in objects:
        try:
            files.append(Path(inspect.getsourcefile(obj) or ""))
        except TypeError:
            continue
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        try:
            h.update(f.read_bytes())
        except OSError:
            h.update(b"?")
    return h.hexdigest()


def global_rng_state(device: torch.device) -> dict[str, Any]:
    py = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    out = {"torch": torch.get_rng_state(), "python": py,
           "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def to_device(obj: Any, device: torch.device) -> Any:
    """Every tensor of a nested dict / list / tuple moved to ``device``."""
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


@dataclass
class Checkpointer:
    """Where the RL stage keeps its checkpoint (``path``; None: nowhere), its key, and when."""

    path: Path | None
    key: str
    every: int
    last: float = field(default_factory=time.monotonic)

    @classmethod
    def for_training(cls, ctx: FitContext, cfg, estimator: EstimatorSpec, max_path_len: int,
                     step_offset: int) -> "Checkpointer":
        path = getattr(ctx, "checkpoint", None)
        if path is None or cfg.checkpoint_every < 0:
            return cls(None, "", -1)
        key = {"v": VERSION, "cell": getattr(ctx, "checkpoint_key", ""), "estimator": estimator.name,
               "cfg": to_dict(cfg), "seed": ctx.seed, "max_path_len": max_path_len, "offset": step_offset,
               "device": torch.device(ctx.device).type, "torch": torch.__version__,
               "code": code_digest(estimator.estimate, type(ctx.simulator))}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return cls(Path(path), digest, cfg.checkpoint_every)

    def due(self, steps_done: int) -> bool:
        """Save after this step? (``steps_done``: steps of this training so far, resumed ones too)."""
        if self.path is None:
            return False
        if self.every > 0:
            return steps_done % self.every == 0
        return time.monotonic() - self.last >= AUTO_SECONDS

    def load(self) -> dict[str, Any] | None:
        """The stored state when there is one with this key (None otherwise: start afresh)."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # damaged: start over (a later save replaces it)
            log.warning("RL checkpoint %s unreadable (%s); training starts afresh", self.path, exc)
            return None
        if not isinstance(state, dict) or state.get("key") != self.key:
            log.info("RL checkpoint %s is for another config or code; training starts afresh", self.path)
            return None
        return state

    def save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            return
        state = {**state, "key": self.key}
        atomic_write(self.path, lambda fh: torch.save(state, fh))
        self.last = time.monotonic()
