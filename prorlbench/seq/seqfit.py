"""The training loop of the next-item simulators (:func:`train_model`), counted in optimizer steps.

Why steps and not epochs: the simulators train on windows of up to ``max_seq_len + 1`` items, and
the shipped datasets have only 800 to 3,300 windows (synthetic, ML-100K, ProRL's ML-1M). At
RecBole's batch of 2048 an epoch is then one or two optimizer steps, so "stop after ``patience``
epochs without a better validation NDCG@10" ended training after some ten steps: GRU4Rec on
ProRL's ML-1M stopped after 1.2 s, below popularity (issue 25). Two keys of
:class:`~prorlbench.seq.seqdata.SeqTrainConfig` fix it without changing RecBole's values on data
large enough for them:

* ``min_epoch_steps``: the batch shrinks to ``ceil(windows / min_epoch_steps)`` when
  ``batch_size`` would give an epoch fewer steps (:func:`epoch_batch`);
* ``min_steps``: early stopping never ends training before this many optimizer steps;
* ``wait_for_popularity``: nor while the best weights so far are no better than recommending the
  most popular items (validation HR@10). SASRec sits at popularity level for its first epochs
  with some seeds: on ML-100K (quick profile) seeds 1000 and 1002 of a backbone stopped after
  four epochs at HR@10 0.053 and 0.043 (popularity: 0.053) and reach 0.160 when they wait.
  Models that learn at once (every seed-0 simulator of the shipped datasets) stop exactly as
  before, so their weights and every number scored by them are unchanged.

Everything else is :mod:`prorlbench.seq.seqtrain`'s recipe (the module docstring there).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
import torch.nn.functional as F

from ..api import Interactions
from ..console.progress import tqdm
from ..errors import UserError
from .seqdata import evaluate_next_item, popularity_hr, right_pad, training_windows

log = logging.getLogger("prorlbench")


def epoch_batch(batch_size: int, n_windows: int, min_epoch_steps: int) -> int:
    """The batch an epoch uses: ``batch_size``, or less so that an epoch of ``n_windows`` windows
    has at least ``min_epoch_steps`` optimizer steps (never below 1)."""
    return max(1, min(int(batch_size), math.ceil(n_windows / max(1, int(min_epoch_steps)))))


def finite_state(state: dict[str, Any]) -> bool:
    """Every floating-point tensor of a ``state_dict`` is finite."""
    return all(bool(torch.isfinite(v).all()) for v in state.values()
               if isinstance(v, torch.Tensor) and v.is_floating_point())


class SimulatorDiverged(UserError):
    """Training produced a non-finite loss or non-finite weights."""


def train_model(model: torch.nn.Module, cfg: Any, data: Interactions, *, device: torch.device | str,
                seed: int, progress: bool = False) -> dict[str, float]:
    """Train ``model`` in place; returns the best validation metrics and how training went.

    ``cfg`` needs ``max_seq_len, lr, batch_size, epochs, patience, weight_decay`` and may have
    ``min_epoch_steps`` and ``min_steps`` (see the module docstring; absent: 1 and 0, the
    epoch-counted rule). Uses its own generator for shuffling; dropout draws from torch's global
    RNG, so callers wrap this in :func:`torch.random.fork_rng` (as ``train_or_load`` does).
    Without validation sequences the epoch with the lowest training loss is kept and the metrics
    are NaN. The result: ``hr10``, ``ndcg10`` (of the kept weights), ``steps`` and ``epochs``
    (run), ``batch`` (used) and ``best_epoch``.
    """
    device = torch.device(device)
    n_items = data.n_items
    windows = training_windows(data.sequences.get("train", []), cfg.max_seq_len)
    if not windows:
        raise UserError(f"dataset '{data.name}' has no training sequence with two or more items; "
                        "a simulator needs longer sequences (e.g. a larger seq_len or min_seq_len)")
    batch = epoch_batch(cfg.batch_size, len(windows), getattr(cfg, "min_epoch_steps", 1))
    min_steps = int(getattr(cfg, "min_steps", 0))
    seqs, lens = right_pad(windows, n_items, width=min(cfg.max_seq_len + 1, max(len(w) for w in windows)))
    inputs, targets = seqs[:, :-1].contiguous(), seqs[:, 1:].contiguous()
    in_lens = lens - 1
    valid_seqs = data.sequences.get("valid", [])
    # wait_for_popularity: while the kept weights are no better than popularity, patience never ends
    # training (NaN, never reached, when there is no validation split or the key is off).
    floor = popularity_hr(data, valid_seqs)["hr10"] if valid_seqs and getattr(cfg, "wait_for_popularity", False) \
        else math.nan
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best: dict[str, float] = {"hr10": float("nan"), "ndcg10": -math.inf}
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bad_epochs, steps, epochs, best_epoch = 0, 0, 0, 0
    bar = tqdm(range(cfg.epochs), desc=f"train {type(model).__name__}", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(inputs), generator=gen)
        total, count = 0.0, 0
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            x, y, ln = inputs[idx].to(device), targets[idx].to(device), in_lens[idx].to(device)
            width = int(ln.max())
            x, y = x[:, :width], y[:, :width]
            states = model.encode(x, ln)
            mask = y != n_items
            lg = model.logits(states[mask])
            loss = F.cross_entropy(lg.float(), y[mask])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            total += float(loss.detach()) * int(mask.sum())
            count += int(mask.sum())
        epochs = epoch + 1
        if not math.isfinite(total) or not finite_state(model.state_dict()):
            raise SimulatorDiverged(
                f"{type(model).__name__} on dataset '{data.name}': training diverged (non-finite "
                f"{'loss' if not math.isfinite(total) else 'weights'} in epoch {epoch + 1}, lr {cfg.lr:g}); "
                "lower the simulator's lr key; nothing was cached")
        model.eval()
        metrics = evaluate_next_item(model, valid_seqs) if valid_seqs else {"hr10": float("nan"), "ndcg10": -float(total / max(count, 1))}
        bar.set_postfix(loss=f"{total / max(count, 1):.3f}", ndcg10=f"{metrics['ndcg10']:.4f}")
        log.debug("%s epoch %d step %d loss %.4f valid %s", type(model).__name__, epoch, steps,
                  total / max(count, 1), metrics)
        if metrics["ndcg10"] > best["ndcg10"]:
            best, best_epoch = metrics, epochs
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience and steps >= min_steps and not best["hr10"] <= floor:
                break
    model.load_state_dict(best_state)
    model.eval()
    if not valid_seqs:
        best = {"hr10": float("nan"), "ndcg10": float("nan")}
    return {**best, "steps": steps, "epochs": epochs, "batch": batch, "best_epoch": best_epoch}
