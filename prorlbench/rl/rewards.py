"""Per-step raw rewards of sampled paths from the training simulator (SPEC section 5).

One batched forward pass per path (:func:`prorlbench.scoring.score_paths`, tensor form) gives
``log p(T | S_k)``, ``rank(T | S_k)`` and ``accept(S_{k-1}, i_k)``; step ``k`` (prefix
``S_{k-1} -> S_k``) then earns

* ``ioi_k = log p(T | S_k) - log p(T | S_{k-1})``  (so ``sum_k ioi_k`` is the path's IoI),
* ``ior_k = rank(T | S_{k-1}) - rank(T | S_k)``,
* ``ctr_k = accept(S_{k-1}, i_k)``.

An invalid item (in H or repeated) earns ``ctr_k = 0`` and no ioi/ior credit.
"""

from __future__ import annotations

import torch

from ..api import SequenceModel
from ..scoring import PathScores, score_paths


def raw_step_rewards(scores: PathScores) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``({"ctr", "ioi", "ior"} -> [N, L], valid [N, L])`` from path scores; 0 past the length
    and at invalid steps."""
    valid = scores.valid & scores.step_mask
    zero = torch.zeros((), device=scores.log_p.device)
    ioi = scores.log_p[:, 1:] - scores.log_p[:, :-1]
    ior = scores.rank[:, :-1] - scores.rank[:, 1:]
    raw = {
        "ctr": torch.where(valid, scores.accept, zero),
        "ioi": torch.where(valid, ioi, zero),
        "ior": torch.where(valid, ior, zero),
    }
    return raw, valid


@torch.no_grad()
def path_rewards(
    simulator: SequenceModel, hist: torch.Tensor, hist_len: torch.Tensor, targets: torch.Tensor,
    paths: torch.Tensor, lengths: torch.Tensor, chunk: int = 4096,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, PathScores]:
    """Raw step rewards of ``N`` paths ``[N, L]`` (padded with ``n_items``) for their cases.

    Returns ``(raw components [N, L], valid [N, L], scores)``.
    """
    scores = score_paths(simulator, hist=hist, hist_len=hist_len, targets=targets,
                         path_tensor=paths, path_len=lengths, chunk=chunk)
    raw, valid = raw_step_rewards(scores)
    return raw, valid, scores
