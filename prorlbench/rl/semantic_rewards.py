"""Step rewards of paths that may hold invalid codes (``semantic-id`` policy, ``free`` decoding).

The official ProRL trainer's rule, on a batch of sampled paths:

* an *invalid* item (a code that maps to no catalog item, a negative id here) is left out of
  the user's state (the next items are scored as if it had not been shown) and gets
  ``ctr = -1``, ``ioi = min - 1`` and ``ior = min - 1``, where ``min`` is the smallest ioi /
  ior of the batch's real items (0 when there is none);
* a *repeated* item (equal to an earlier item of the same path) is scored normally (it enters
  the state, its ioi / ior count) but gets ``ctr = 0``;
* every other item is scored as usual. Items already in H are not penalised (the official trainer
  does not look for them; the ``Invalid`` metric still counts them).

The normaliser's statistics come from the real items only (not invalid, not repeated), as in
the official code; every item position receives its (penalised) reward.
"""

from __future__ import annotations

import torch

from ..api import SequenceModel
from .rewards import path_rewards


def compact(paths: torch.Tensor, lengths: torch.Tensor, n_items: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop ids outside ``0 .. n_items - 1`` from each path, keeping the order.

    Returns ``(compact [N, P] padded with n_items, compact_len [N], known [N, P], slot [N, P])``;
    ``slot`` is the compact index of each known item (0 elsewhere)."""
    n, p = paths.shape
    t = torch.arange(p, device=paths.device)[None]
    known = (t < lengths[:, None]) & (paths >= 0) & (paths < n_items)
    slot = (known.long().cumsum(1) - 1).clamp(min=0)
    out = torch.full((n, p + 1), n_items, dtype=torch.long, device=paths.device)
    out.scatter_(1, torch.where(known, slot, p), torch.where(known, paths, n_items))
    return out[:, :p], known.sum(1), known, slot


@torch.no_grad()
def official_free_rewards(simulator: SequenceModel, hist: torch.Tensor, hist_len: torch.Tensor,
                          targets: torch.Tensor, paths: torch.Tensor, lengths: torch.Tensor, state: str = "causal"
                          ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """``(raw {"ctr", "ioi", "ior"} [N, P], stats_mask [N, P], credit_mask [N, P])`` by the rule
    above; ``state`` is ``RLConfig.reward_state``."""
    n, p = paths.shape
    n_items = simulator.n_items
    comp, comp_len, known, slot = compact(paths, lengths, n_items)
    _, _, sc = path_rewards(simulator, hist, hist_len, targets, comp, comp_len, state=state)
    ioi_c = sc.log_p[:, 1:] - sc.log_p[:, :-1]
    ior_c = sc.rank[:, :-1] - sc.rank[:, 1:]
    zero = torch.zeros((), device=paths.device)
    ioi = torch.where(known, ioi_c.gather(1, slot), zero)
    ior = torch.where(known, ior_c.gather(1, slot), zero)
    ctr = torch.where(known, sc.accept.float().gather(1, slot), zero)
    t = torch.arange(p, device=paths.device)[None]
    in_path = t < lengths[:, None]
    earlier = torch.ones(p, p, dtype=torch.bool, device=paths.device).tril(-1)
    repeated = ((paths[:, :, None] == paths[:, None, :]) & earlier[None] & known[:, None, :]).any(-1) & known
    invalid = in_path & ~known
    real = known & ~repeated
    has_real = real.any()
    min_ioi = torch.where(has_real, ioi.masked_fill(~real, float("inf")).min(), zero)
    min_ior = torch.where(has_real, ior.masked_fill(~real, float("inf")).min(), zero)
    raw = {
        "ctr": torch.where(invalid, -1.0, torch.where(repeated, zero, ctr)),
        "ioi": torch.where(invalid, min_ioi - 1.0, ioi),
        "ior": torch.where(invalid, min_ior - 1.0, ior),
    }
    return raw, real, in_path


def rollout_rewards(policy, simulator: SequenceModel, hist: torch.Tensor, hist_len: torch.Tensor,
                    targets: torch.Tensor, paths: torch.Tensor, lengths: torch.Tensor, state: str = "causal"
                    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Raw step rewards of sampled paths for the trainer: ``(raw, stats_mask, credit_mask)``.

    The normaliser learns from ``stats_mask``; ioi / ior count where ``credit_mask``. Paths of a
    policy with ``free`` decoding follow the official rule (:func:`official_free_rewards`); every
    other path is scored by :func:`~prorlbench.rl.rewards.path_rewards` (both masks: its valid
    steps)."""
    if getattr(policy, "decoding", "constrained") == "free":
        return official_free_rewards(simulator, hist, hist_len, targets, paths, lengths, state)
    raw, valid, _ = path_rewards(simulator, hist, hist_len, targets, paths, lengths, state=state)
    return raw, valid, valid


def drop_unknown(paths: torch.Tensor, lengths: torch.Tensor, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Paths without their invalid codes (ids outside the catalog), as the metrics see them."""
    comp, comp_len, _, _ = compact(paths, lengths, n_items)
    return comp, comp_len
