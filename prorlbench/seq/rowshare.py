"""Work shared between the rows of a scoring batch, bit for bit (:mod:`prorlbench.seq.scoring`).

The ``G`` samples of an RL case and the ``K`` candidates of a test case are adjacent rows that
start with the same history and aim at the same target. Two things are then computed once per
group instead of once per row, on CPU (finding the groups reads values on the host):

* the history's per-token work in the simulator's encoder (:func:`encode_batch`, for models with
  ``encode_shared_prefix``, SASRec);
* the full-catalog statistics of the state after the history, ``S_0``
  (:func:`repeated_start_states`).

Both rest on one property of the CPU matmul: a row's result does not depend on the other rows
of the batch, from a few rows on (a matmul of one or two rows of width 64, or of up to ten of
width 256, takes another kernel whose last bits differ). Both keep every matmul above that
size, so every value equals the one computed row by row (``tests/test_scoring.py``).
"""

from __future__ import annotations

import torch

from ..api import SequenceModel


def host_reads_cheap(device: torch.device | str) -> bool:
    """Whether code on ``device`` may read tensor values on the host (``int(t)``, ``bool(t)``,
    ``.tolist()``) to save work: on the CPU that costs nothing; on an accelerator it waits for
    every queued kernel, so the RL step and scoring take their sync-free paths there. The one
    switch for those shortcuts (``tests/rl/test_no_sync.py`` turns it off on CPU to check that the
    accelerator path reads nothing on the host)."""
    return torch.device(device).type == "cpu"


def encode_batch(model: SequenceModel, seqs: torch.Tensor, seq_len: torch.Tensor, hist_len: torch.Tensor
                 ) -> torch.Tensor:
    """``model.encode(seqs, seq_len)``. On CPU, where the model has ``encode_shared_prefix``
    (SASRec), adjacent rows that start with the same history items (the ``G`` samples of an RL
    case, the ``K`` candidates of a test case) share those items' per-token work; the result is
    bit for bit the same. Finding the groups reads the device, so accelerators take the plain call."""
    shared = getattr(model, "encode_shared_prefix", None)
    if shared is None or not host_reads_cheap(seqs.device) or seqs.shape[0] < 2 or getattr(model, "training", False):
        return model.encode(seqs, seq_len)
    s = int(hist_len.min())  # every row's first s items are history items
    same = (seqs[1:, :s] == seqs[:-1, :s]).all(1) if s > 0 else None
    if same is None or not bool(same.any()):
        return model.encode(seqs, seq_len)
    starts = torch.cat([torch.ones(1, dtype=torch.bool), ~same])
    return shared(seqs, seq_len, s, starts.cumsum(0) - 1, starts.nonzero().squeeze(1))


def repeated_start_states(start: torch.Tensor, targets: torch.Tensor, live: torch.Tensor, chunk: int
                           ) -> torch.Tensor | None:
    """For rows whose state after the history and target equal the previous row's (the samples
    of a case), the row whose ``log p``/``rank`` they can copy: ``[N]`` index of each row's first
    row of its run. ``None`` when no row repeats, or when leaving those rows out would move the
    statistics' last chunk to fewer than 16 rows (or away from that): a matmul of a few rows
    takes another kernel, and every row must get the same bits as in a batch without the copy."""
    same = (start[1:] == start[:-1]).all(1) & (targets[1:] == targets[:-1])
    if not bool(same.any()):
        return None
    rows = int(live.sum())
    tails = (rows % chunk, (rows - int(same.sum())) % chunk)
    if any(0 < t < 16 for t in tails):
        return None
    idx = torch.arange(start.shape[0], device=start.device)
    return torch.where(torch.cat([same.new_zeros(1), same]), 0, idx).cummax(0).values
