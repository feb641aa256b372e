"""Shared training, evaluation and disk caching of causal next-item models (SPEC section 2).

Used by the ``sasrec`` and ``gru4rec`` simulator plugins (and therefore by every backbone a
baseline asks for); their shared config keys, output head, batching and next-item evaluation live
in :mod:`prorlbench.seq.seqdata`. The recipe follows RecBole's defaults for sequential recommenders:

* training data: ``data.sequences["train"]`` only. Each user sequence is cut into windows of at
  most ``max_seq_len + 1`` items, counted back from its end (the most recent items form the first
  window, so a model trained with a single window per user sees exactly RecBole's "last
  ``max_seq_len`` items"); inputs are ``window[:-1]`` right-padded with ``n_items``, targets
  ``window[1:]``;
* loss: full-softmax cross-entropy over the whole catalog at *every* position (not only the last);
* optimiser: AdamW (``weight_decay`` 0 makes it Adam, RecBole's default), lr 1e-3;
* early stopping: after every epoch the model is scored on ``data.sequences["valid"]`` with
  :func:`evaluate_next_item`; the weights with the best NDCG@10 are kept and training stops after
  ``patience`` epochs without improvement, but never before ``min_steps`` optimizer steps, and an
  epoch has at least ``min_epoch_steps`` steps (the batch shrinks on small data; the loop and
  why: :mod:`prorlbench.seq.seqfit`).

:func:`train_or_load` caches the trained weights in ``cache_dir`` under a key that hashes the
dataset (name and a fingerprint of its training/validation sequences and catalog size), the
model kind, the full config, the seed and :data:`CODE_VERSION`. A cache entry is two files:
``<stem>.pt`` (a plain ``state_dict``, loaded with ``weights_only=True``) and ``<stem>.json``
(metadata: key, HR@10, NDCG@10 and the SHA-256 of the ``.pt`` file). Both are written atomically
(temporary file + ``os.replace``, file mode following the umask); an unreadable or inconsistent
entry, or one with non-finite weights, is logged and rebuilt from a fresh initialisation (never
from the module a failed load may have half-filled). Building an entry holds ``<stem>.lock``
(an exclusive ``flock``): a second process that wants the same entry waits, then loads it.
Training whose loss or weights become non-finite fails with :class:`SimulatorDiverged` (a
:class:`~prorlbench.errors.UserError` naming the model and the ``lr`` key) and is never cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..api import Interactions, SimulatorInfo
from ..config import to_dict
from ..folder.files import atomic_write, cache_folder, entry_lock, safe_name
from ..folder.files import sha256_file as _sha256_file
from .seqdata import (SeqTrainConfig, SharedEmbeddingHead, evaluate_next_item, popularity_hr, right_pad,
                      training_windows, warn_if_weak)
from .seqfit import SimulatorDiverged, finite_state, train_model

__all__ = ["train_model", "train_or_load", "cache_key", "data_fingerprint", "CODE_VERSION", "SimulatorDiverged", "entry_lock", "SeqTrainConfig",
           "SharedEmbeddingHead", "evaluate_next_item", "popularity_hr", "right_pad", "training_windows",
           "warn_if_weak"]
"""With the helpers of :mod:`prorlbench.seq.seqdata` it uses (re-exported)."""

log = logging.getLogger("prorlbench")

CODE_VERSION = "seqtrain-2"
"""Bump when a change to training or to a model's code invalidates cached weights."""


# --------------------------------------------------------------------------------------------
# Caching
# --------------------------------------------------------------------------------------------


def data_fingerprint(data: Interactions) -> str:
    """SHA-256 over the catalog size and the training and validation sequences."""
    h = hashlib.sha256()
    h.update(f"n_items={data.n_items};".encode())
    for split in ("train", "valid"):
        seqs = data.sequences.get(split, [])
        h.update(f"{split}:{len(seqs)};".encode())
        for s in seqs:
            h.update(torch.as_tensor(list(s), dtype=torch.int64).numpy().tobytes())
            h.update(b"|")
    return h.hexdigest()


def cache_key(kind: str, cfg: Any, data: Interactions, seed: int) -> str:
    """The hash that names a cache entry (see the module docstring)."""
    payload = {
        "dataset": data.name,
        "data": data_fingerprint(data),
        "kind": kind,
        "config": to_dict(cfg),
        "seed": seed,
        "code": CODE_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def _try_load(model: torch.nn.Module, pt: Path, meta_path: Path, key: str) -> dict[str, Any] | None:
    """Load a cache entry into ``model``; ``None`` when absent, a warning when corrupt."""
    if not pt.exists() and not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            raise ValueError("metadata key does not match")
        if meta.get("sha256") != _sha256_file(pt):
            raise ValueError("weights file checksum does not match its metadata")
        state = torch.load(pt, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not finite_state(state):
            raise ValueError("the weights are not a state_dict of finite values")
        model.load_state_dict(state, strict=True)
        return meta
    except Exception as exc:  # any unreadable / inconsistent entry is rebuilt
        log.warning("simulator cache %s is unreadable (%s: %s); retraining", pt, type(exc).__name__, exc)
        return None


def _freeze(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    model.to(device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def train_or_load(kind: str, model_factory: Callable[[Any, int], torch.nn.Module], cfg: Any,
                  data: Interactions, *, device: torch.device | str = "cpu", seed: int = 0,
                  cache_dir: str | Path | None = None, progress: bool = False
                  ) -> tuple[torch.nn.Module, SimulatorInfo]:
    """Train a ``kind`` model on ``data`` (or load it from ``cache_dir``).

    ``model_factory(cfg, n_items)`` builds an untrained module; it is called under a forked RNG
    seeded with ``seed``, so initialisation and training are reproducible and torch's global RNG
    is left as it was. Returns the model in eval mode on ``device`` with gradients off, and a
    :class:`SimulatorInfo` whose ``trained`` says whether this call trained it. ``cache_dir=None``
    disables caching. A failed load never leaks into training: the model is rebuilt from a fresh
    initialisation first.
    """
    device = torch.device(device)
    key = cache_key(kind, cfg, data, seed)
    stem = f"{kind}-{safe_name(data.name, limit=40, default='data')}-s{seed}-{key[:16]}"
    pt = meta_path = lock = None

    def fresh() -> torch.nn.Module:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            return model_factory(cfg, data.n_items)

    if cache_dir is not None:
        folder = cache_folder(cache_dir)
        pt, meta_path, lock = folder / f"{stem}.pt", folder / f"{stem}.json", folder / f"{stem}.lock"
    with entry_lock(lock):
        model = fresh()
        if pt is not None and meta_path is not None:
            meta = _try_load(model, pt, meta_path, key)
            if meta is not None:
                info = SimulatorInfo(name=kind, hr10=meta.get("hr10"), ndcg10=meta.get("ndcg10"),
                                     cache_path=str(pt), trained=False,
                                     popularity_hr10=meta.get("popularity_hr10"))
                log.info("%s on %s loaded from cache %s: valid HR@10 %.4f NDCG@10 %.4f (popularity HR@10 "
                         "%.4f NDCG@10 %.4f)", kind, data.name, pt, _num(meta.get("hr10")),
                         _num(meta.get("ndcg10")), _num(meta.get("popularity_hr10")),
                         _num(meta.get("popularity_ndcg10")))
                return _freeze(model, device), info
            if pt.exists() or meta_path.exists():
                model = fresh()  # a failed strict load may have filled part of the module
        return _train_and_store(kind, model, cfg, data, key, seed, device, progress, pt, meta_path)


def _train_and_store(kind: str, model: torch.nn.Module, cfg: Any, data: Interactions, key: str, seed: int,
                     device: torch.device, progress: bool, pt: Path | None, meta_path: Path | None
                     ) -> tuple[torch.nn.Module, SimulatorInfo]:
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model.to(device)
        best = train_model(model, cfg, data, device=device, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    pop = popularity_hr(data, data.sequences.get("valid", []))
    log.info("%s on %s trained in %.1fs (%s steps): valid HR@10 %.4f NDCG@10 %.4f (popularity HR@10 %.4f "
             "NDCG@10 %.4f)", kind, data.name, seconds, best.get("steps", "?"), best["hr10"], best["ndcg10"],
             pop["hr10"], pop["ndcg10"])
    if pt is not None and meta_path is not None:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_write(pt, lambda f: torch.save(state, f))
        meta = {"key": key, "kind": kind, "dataset": data.name, "seed": seed, "config": to_dict(cfg),
                "code": CODE_VERSION, "hr10": best["hr10"], "ndcg10": best["ndcg10"],
                "popularity_hr10": pop["hr10"], "popularity_ndcg10": pop["ndcg10"],
                "train_seconds": seconds, "steps": best.get("steps"), "epochs": best.get("epochs"),
                "batch": best.get("batch"), "sha256": _sha256_file(pt)}
        atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=1, default=repr)), mode="w")
    info = SimulatorInfo(name=kind, hr10=best["hr10"], ndcg10=best["ndcg10"],
                         cache_path=str(pt) if pt is not None else None, trained=True,
                         popularity_hr10=pop["hr10"])
    return _freeze(model, device), info


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) else float("nan")


def simulator_build(kind: str, model_cls: Callable[[Any, int], torch.nn.Module]) -> Callable[..., Any]:
    """The ``SimulatorSpec.build`` of a next-item simulator: :func:`train_or_load` of
    ``model_cls(cfg, n_items)`` under the cache name ``kind``."""

    def build(cfg: Any, data: Interactions, *, device: Any = "cpu", seed: int = 0, cache_dir: Any = None,
              progress: bool = False) -> tuple[torch.nn.Module, SimulatorInfo]:
        """Train the model on ``data.sequences["train"]`` (or load it from ``cache_dir``)."""
        return train_or_load(kind, model_cls, cfg, data, device=device, seed=seed, cache_dir=cache_dir,
                             progress=progress)

    return build
