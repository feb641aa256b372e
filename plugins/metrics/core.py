"""The core per-path metrics of SPEC section 3, computed from :class:`prorlbench.seq.scoring.PathScores`.

With ``S_0 = H`` and ``S_k = H + (i_1..i_k)`` and m the path length (after unknown ids were
dropped):

========== ====================================================================== =========
name       value per path                                                          better
========== ====================================================================== =========
ioi        ``log p(T|S_m) - log p(T|S_0)``                                         higher
ior        ``rank(T|S_0) - rank(T|S_m)``                                           higher
ctr        ``mean_k accept(S_{k-1}, i_k)`` over all m shown items; 0 when m = 0    higher
coherence  share of the m consecutive pairs of ``(i_1..i_m, T)`` sharing an         higher
           attribute; 0 when m = 0 (no pair)
sr10       ``1[rank(T|S_m) <= 10]``                                                higher
len        m                                                                       (none)
invalid    share of the path's items (unknown ids included) that are unknown,      lower
           repeated in the path or already in H; 0 for an empty path
========== ====================================================================== =========

Choices not fixed by the SPEC: CTR is the plain mean over every shown item, invalid ones
included with their simulator acceptance (the RL reward sets an invalid step's ctr to 0; the
*metric* does not, so it reports what the simulated user would do); an empty path has CTR 0 and
Coherence 0. Names are lowercase identifiers; each spec carries how reports print it (``display``
IoI, IoR, CTR, Coherence, SR@10, Len, Invalid; ``decimals``; ``headline``: shown in metrics.png).

Everything is vectorised over paths. Coherence uses a boolean ``[n_items, n_attributes]`` matrix
(:func:`prorlbench.seq.scoring.attribute_matrix`); ``PathScores.item_attributes`` may hold that matrix already (what
:func:`prorlbench.seq.evaluate.evaluate_paths` passes, built once per call) or the per-item sets.
"""

from __future__ import annotations

from typing import Sequence

import torch

from prorlbench import hookimpl
from prorlbench.api import MetricSpec
from prorlbench.toolkit import PathScores, attribute_matrix


def ioi(s: PathScores) -> torch.Tensor:
    return s.final(s.log_p) - s.log_p[:, 0]


def ior(s: PathScores) -> torch.Tensor:
    return s.rank[:, 0] - s.final(s.rank)


def ctr(s: PathScores) -> torch.Tensor:
    total = (s.accept * s.step_mask).sum(1)
    return torch.where(s.lengths > 0, total / s.lengths.clamp(min=1), torch.zeros_like(total))


def coherence(s: PathScores) -> torch.Tensor:
    if s.item_attributes is None:
        raise ValueError("coherence needs item attributes, and this dataset has none")
    attrs = attribute_matrix(s.item_attributes, device=s.paths.device)  # [n_items, A]
    n_items = attrs.shape[0]
    N, L = s.paths.shape
    # The sequence (i_1..i_m, T): write T at position m of a right-padded [N, L + 1] row.
    seq = torch.cat([s.paths, torch.full((N, 1), n_items, dtype=s.paths.dtype, device=s.paths.device)], 1)
    seq = seq.scatter(1, s.lengths[:, None], s.targets[:, None])
    padded = torch.cat([attrs, torch.zeros(1, attrs.shape[1], dtype=torch.bool, device=attrs.device)], 0)
    a = padded[seq.clamp(max=n_items)]  # [N, L + 1, A]
    share = (a[:, :-1] & a[:, 1:]).any(-1)  # pair (k, k + 1), k = 0..L-1
    pair_mask = s.step_mask  # pairs k < m
    total = (share & pair_mask).sum(1).float()
    return torch.where(s.lengths > 0, total / s.lengths.clamp(min=1), torch.zeros_like(total))


def sr10(s: PathScores) -> torch.Tensor:
    return (s.final(s.rank) <= 10).float()


def length(s: PathScores) -> torch.Tensor:
    return s.lengths.float()


def invalid(s: PathScores) -> torch.Tensor:
    bad = (s.step_mask & ~s.valid).sum(1) + s.n_unknown
    shown = s.lengths + s.n_unknown
    return torch.where(shown > 0, bad.float() / shown.clamp(min=1), torch.zeros((), device=bad.device))


METRICS = (
    MetricSpec("ioi", "IoI: log p(T|S_m) - log p(T|S_0), increase of interest", ioi, True,
               display="IoI", decimals=3, headline=True),
    MetricSpec("ior", "IoR: rank(T|S_0) - rank(T|S_m), increase of rank", ior, True,
               display="IoR", decimals=1, headline=True),
    MetricSpec("ctr", "CTR: mean acceptance sigmoid(u(S_{k-1}).e_{i_k}) of the shown items (0 if empty)", ctr, True,
               display="CTR", decimals=3, headline=True),
    MetricSpec("coherence", "share of consecutive pairs in (path, T) sharing an attribute (0 if empty)",
               coherence, True, needs_attributes=True, display="Coherence", decimals=3),
    MetricSpec("sr10", "SR@10: rank(T|S_m) <= 10", sr10, True, display="SR@10", decimals=3, headline=True),
    MetricSpec("len", "Len: number of path items m", length, None, display="Len", decimals=2),
    MetricSpec("invalid", "share of path items unknown, repeated or already in H", invalid, False,
               display="Invalid", decimals=3),
)
"""In this order in report tables; ``display`` and ``decimals`` are how reports print them."""


@hookimpl
def register_metrics(register):
    for spec in METRICS:
        register(spec)
