"""Per-step raw rewards of sampled paths from the training simulator (SPEC section 5).

One batched forward pass per path (:func:`prorlbench.seq.scoring.score_paths`, tensor form) gives
``log p(T | S_k)``, ``rank(T | S_k)`` and ``accept(S_{k-1}, i_k)``; step ``k`` (prefix
``S_{k-1} -> S_k``) then earns

* ``ioi_k = log p(T | S_k) - log p(T | S_{k-1})``  (so ``sum_k ioi_k`` is the path's IoI),
* ``ior_k = rank(T | S_{k-1}) - rank(T | S_k)``,
* ``ctr_k = accept(S_{k-1}, i_k)``.

An invalid item (in H or repeated) earns ``ctr_k = 0`` and no ioi/ior credit.

``reward_state = "official-leftpad"`` (:func:`leftpad_scores`) reproduces what the official ProRL
trainer feeds RecBole's SASRec instead: every prefix ``S_k`` is its own sequence, left-padded to
the simulator's window, with RecBole's additive attention mask (0 for a real, earlier-or-same key,
-10000 otherwise) and the output read at index ``len(S_k) - 1``. While ``S_k`` is shorter than the
window that index is a padding slot whose attention row is fully masked, so its softmax spreads
over the whole window (future items included). It costs one pass per prefix, and needs a
simulator whose ``encode`` takes ``positions``, ``key_mask`` and ``attn_bias`` (``sasrec``).
"""

from __future__ import annotations

import torch

import inspect

from ..api import SequenceModel
from ..errors import ConfigError
from ..seq.scoring import PathScores, _validity, build_sequences, score_paths, target_stats


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


def check_leftpad(simulator: SequenceModel) -> None:
    """ConfigError unless ``simulator.encode`` accepts the keywords ``official-leftpad`` needs."""
    params = inspect.signature(simulator.encode).parameters
    if not {"positions", "key_mask", "attn_bias"} <= set(params):
        raise ConfigError("reward_state = 'official-leftpad' needs a simulator whose encode() takes "
                          "positions, key_mask and attn_bias (the built-in 'sasrec'); "
                          f"{type(simulator).__name__} does not")


def leftpad_states(simulator: SequenceModel, seqs: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
    """RecBole-style state of each right-padded sequence ``seqs [R, T]``: left-padded to the
    window ``W = simulator.max_seq_len``, positions ``0..W-1``, additive mask, read at ``len - 1``."""
    r, t = seqs.shape
    w = simulator.max_seq_len
    n = seq_len.clamp(max=w)
    col = torch.arange(w, device=seqs.device)[None]
    src = (seq_len - n)[:, None] + col - (w - n)[:, None]  # left padding: item j at w - n + j
    real = col >= (w - n)[:, None]
    left = torch.where(real, seqs.gather(1, src.clamp(0, t - 1)), simulator.n_items)
    causal = torch.ones(w, w, dtype=torch.bool, device=seqs.device).tril()
    bias = torch.where(causal[None] & real[:, None, :], 0.0, -10000.0)
    enc = simulator.encode(left, n, positions=col.expand(r, w), key_mask=real, attn_bias=bias)
    return enc[torch.arange(r, device=seqs.device), (n - 1).clamp(min=0)]


@torch.no_grad()
def leftpad_scores(simulator: SequenceModel, hist: torch.Tensor, hist_len: torch.Tensor, targets: torch.Tensor,
                   paths: torch.Tensor, lengths: torch.Tensor) -> PathScores:
    """:class:`PathScores` of ``reward_state = 'official-leftpad'`` (one encoder pass per prefix)."""
    n, p = paths.shape
    seqs, seq_len, hl = build_sequences(hist, hist_len, paths, lengths, simulator.n_items,
                                        max(simulator.max_seq_len, hist.shape[1] + p))
    k = torch.arange(p + 1, device=paths.device)[None]
    fin = torch.minimum(k, lengths[:, None])  # prefixes past the length repeat S_m
    pre_len = (hl[:, None] + fin).reshape(-1)
    rows = seqs.repeat_interleave(p + 1, 0)
    keep = torch.arange(rows.shape[1], device=rows.device)[None] < pre_len[:, None]
    rows = torch.where(keep, rows, simulator.n_items)
    states = leftpad_states(simulator, rows, pre_len).view(n, p + 1, -1)
    log_p, rank = target_stats(simulator, states, targets)
    items = paths.clamp(max=simulator.n_items - 1)
    acc = torch.sigmoid(simulator.accept_logit(states[:, :p], items).float())
    mask = k[:, :p] < lengths[:, None]
    acc = torch.where(mask, acc, torch.zeros((), device=acc.device))
    return PathScores(log_p=log_p, rank=rank, accept=acc, lengths=lengths, paths=paths, targets=targets,
                      valid=_validity(hist, hist_len, paths, lengths),
                      n_unknown=torch.zeros(n, dtype=torch.long, device=paths.device))


@torch.no_grad()
def path_rewards(
    simulator: SequenceModel, hist: torch.Tensor, hist_len: torch.Tensor, targets: torch.Tensor,
    paths: torch.Tensor, lengths: torch.Tensor, chunk: int | None = None, state: str = "causal",
) -> tuple[dict[str, torch.Tensor], torch.Tensor, PathScores]:
    """Raw step rewards of ``N`` paths ``[N, L]`` (padded with ``n_items``) for their cases;
    ``state`` is ``RLConfig.reward_state``.

    Returns ``(raw components [N, L], valid [N, L], scores)``.
    """
    if state == "official-leftpad":
        scores = leftpad_scores(simulator, hist, hist_len, targets, paths, lengths)
    else:
        scores = score_paths(simulator, hist=hist, hist_len=hist_len, targets=targets,
                             path_tensor=paths, path_len=lengths, chunk=chunk)
    raw, valid = raw_step_rewards(scores)
    return raw, valid, scores
