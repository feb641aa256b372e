"""Scoring paths with a simulator: one causal forward pass per path (SPEC section 2).

For a batch of N cases with histories H and paths L, the sequence ``H + L`` is encoded once;
the state after the history (S_0) and after every path prefix (S_1 .. S_m) are rows of that one
encoding. Everything per step (log p(T | S_k), rank(T | S_k), accept(S_{k-1}, i_k)) is read off
those states. Full-catalog work (logits, log-sum-exp, rank counting) is done in chunks so memory
stays bounded at paper batch sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from . import rowshare
from ..api import Case, SequenceModel
from .rowshare import encode_batch, repeated_start_states


@dataclass
class PathScores:
    """Per-step simulator quantities of N paths, each up to L items.

    Positions past a path's length repeat the value at its length (``log_p``, ``rank``) or are 0
    (``accept``), so ``log_p[:, -1]`` is always ``log p(T | S_m)``.
    """

    log_p: torch.Tensor
    """``[N, L + 1]``: ``log p(T | S_k)`` for k = 0..L."""
    rank: torch.Tensor
    """``[N, L + 1]``: ``rank(T | S_k)`` (1 = top), float."""
    accept: torch.Tensor
    """``[N, L]``: ``accept(S_{k-1}, i_k) = sigmoid(u(S_{k-1}) . e_{i_k})``; 0 past the length."""
    lengths: torch.Tensor
    """``[N]`` path lengths m (after unknown ids were dropped)."""
    valid: torch.Tensor
    """``[N, L]`` bool: the step's item is new (not in H, not repeated); False past the length."""
    n_unknown: torch.Tensor
    """``[N]`` number of unknown (out-of-catalog) ids that were dropped from each path."""
    paths: torch.Tensor
    """``[N, L]`` the scored item ids, right-padded with ``n_items``."""
    targets: torch.Tensor
    """``[N]``."""
    item_attributes: Sequence[frozenset[int]] | torch.Tensor | None = None
    """Passed through for attribute-based metrics (Coherence): per-item attribute sets, or the
    ``[n_items, n_attributes]`` bool matrix of :func:`attribute_matrix`."""

    @property
    def max_len(self) -> int:
        return self.accept.shape[1]

    @property
    def step_mask(self) -> torch.Tensor:
        """``[N, L]`` bool: position k < length."""
        ar = torch.arange(self.max_len, device=self.lengths.device)
        return ar[None, :] < self.lengths[:, None]

    def final(self, x: torch.Tensor) -> torch.Tensor:
        """Value at S_m of a ``[N, L + 1]`` tensor."""
        return x.gather(1, self.lengths[:, None]).squeeze(1)


def attribute_matrix(item_attributes: Sequence[frozenset[int]] | torch.Tensor, device=None) -> torch.Tensor:
    """``[n_items, n_attributes]`` bool: item i has attribute a (a tensor is passed through)."""
    if isinstance(item_attributes, torch.Tensor):
        return item_attributes.to(device=device, dtype=torch.bool)
    n_attr = 1 + max((max(a) for a in item_attributes if a), default=-1)
    rows = [i for i, attrs in enumerate(item_attributes) for _ in attrs]
    cols = [a for attrs in item_attributes for a in attrs]
    out = torch.zeros(len(item_attributes), max(n_attr, 1), dtype=torch.bool)
    if rows:
        out[torch.tensor(rows), torch.tensor(cols)] = True
    return out.to(device)


def pad_paths(
    paths: Sequence[Sequence[int]], n_items: int, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paths as a right-padded tensor; unknown ids (outside the catalog) are dropped and counted.

    Returns ``(paths [N, L], lengths [N], n_unknown [N])``.
    """
    clean: list[list[int]] = []
    unknown: list[int] = []
    for p in paths:
        kept = [int(i) for i in p if 0 <= int(i) < n_items]
        clean.append(kept)
        unknown.append(len(p) - len(kept))
    width = max([len(p) for p in clean] + [max_len or 0, 1])
    out = torch.full((len(clean), width), n_items, dtype=torch.long)
    for r, p in enumerate(clean):
        if p:
            out[r, : len(p)] = torch.tensor(p, dtype=torch.long)
    lengths = torch.tensor([len(p) for p in clean], dtype=torch.long)
    return out, lengths, torch.tensor(unknown, dtype=torch.long)


def histories_tensor(cases: Sequence[Case], n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Histories right-padded with ``n_items``: ``(hist [N, H], hist_len [N])``."""
    width = max(1, max((len(c.history) for c in cases), default=1))
    out = torch.full((len(cases), width), n_items, dtype=torch.long)
    for r, c in enumerate(cases):
        if c.history:
            out[r, : len(c.history)] = torch.tensor(c.history, dtype=torch.long)
    lens = torch.tensor([len(c.history) for c in cases], dtype=torch.long)
    return out, lens


def _validity(hist: torch.Tensor, hist_len: torch.Tensor, paths: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``[N, L]``: item is not in the history and not an earlier path item, and k < length."""
    N, L = paths.shape
    H = hist.shape[1]
    hmask = torch.arange(H, device=hist.device)[None, :] < hist_len[:, None]
    in_hist = ((paths[:, :, None] == hist[:, None, :]) & hmask[:, None, :]).any(-1)
    earlier = torch.ones(L, L, dtype=torch.bool, device=paths.device).tril(-1)
    repeated = ((paths[:, :, None] == paths[:, None, :]) & earlier[None]).any(-1)
    in_path = torch.arange(L, device=paths.device)[None, :] < lengths[:, None]
    return in_path & ~in_hist & ~repeated


def build_sequences(
    hist: torch.Tensor, hist_len: torch.Tensor, paths: torch.Tensor, lengths: torch.Tensor,
    pad_id: int, max_seq_len: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``H + L`` per row, right-padded, oldest history items dropped to fit ``max_seq_len``.

    Returns ``(seqs [N, T], seq_len [N], hist_len_kept [N])``.
    """
    N, L = paths.shape
    keep = (max_seq_len - L)
    if keep < 1:
        raise ValueError(f"max path length {L} leaves no room for history in max_seq_len {max_seq_len}")
    # Drop the oldest history items of rows whose history is longer than `keep` (no host sync:
    # rows with nothing to drop gather with offset 0).
    if hist.shape[1] > keep:
        drop = (hist_len - keep).clamp(min=0)
        idx = torch.arange(hist.shape[1], device=hist.device)[None, :] + drop[:, None]
        hist = hist.gather(1, idx.clamp(max=hist.shape[1] - 1))
        hist_len = hist_len - drop
        hist = torch.where(torch.arange(hist.shape[1], device=hist.device)[None, :] < hist_len[:, None], hist, pad_id)
    H = hist.shape[1]
    T = min(H + L, max_seq_len)
    both = torch.cat([hist, paths], 1)  # [N, H + L]
    pos = torch.arange(T, device=hist.device)[None, :].expand(N, T)
    src = torch.where(pos < hist_len[:, None], pos, H + (pos - hist_len[:, None]))
    src = src.clamp(max=H + L - 1)
    seqs = both.gather(1, src)
    seq_len = hist_len + lengths
    seqs = torch.where(pos < seq_len[:, None], seqs, pad_id)
    return seqs, seq_len, hist_len


def default_chunk_rows(n_items: int, device: torch.device) -> int:
    """Rows of full-catalog logits per chunk: ~4 MB on CPU (the softmax and the rank count then
    re-read the chunk from cache), ~512 MB on an accelerator (fewer, larger kernels)."""
    budget = (1 << 20) if device.type == "cpu" else (1 << 27)
    return max(16, budget // max(n_items, 1))


@torch.no_grad()
def target_stats_flat(
    model: SequenceModel, states: torch.Tensor, targets: torch.Tensor, chunk: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(T | S)`` and ``rank(T | S)`` for states ``[R, d]`` and targets ``[R]``.

    Full-catalog logits are formed ``chunk`` rows at a time (see :func:`default_chunk_rows`), so
    nothing of size ``[R, n_items]`` is held. Per chunk: one fused ``log_softmax`` (cheaper than
    ``logsumexp``, which makes four passes over the logits) gives ``log p``, and one comparison
    against the target's logit counts the items ranked above it.
    """
    R = states.shape[0]
    chunk = chunk or default_chunk_rows(model.n_items, states.device)
    logp = torch.empty(R, device=states.device)
    rank = torch.empty(R, device=states.device)
    for s in range(0, R, chunk):
        lg = model.logits(states[s : s + chunk]).float()
        tg = targets[s : s + chunk, None]
        rank[s : s + chunk] = (lg > lg.gather(1, tg)).sum(1)
        logp[s : s + chunk] = torch.log_softmax(lg, 1).gather(1, tg).squeeze(1)
    return logp, rank.add_(1.0)


@torch.no_grad()
def target_stats(
    model: SequenceModel, states: torch.Tensor, targets: torch.Tensor, chunk: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(T | S)`` and ``rank(T | S)`` for states ``[N, K, d]`` and targets ``[N]``."""
    N, K, d = states.shape
    logp, rank = target_stats_flat(model, states.reshape(N * K, d),
                                   targets[:, None].expand(N, K).reshape(-1), chunk)
    return logp.view(N, K), rank.view(N, K)


@torch.no_grad()
def score_paths(
    model: SequenceModel,
    cases: Sequence[Case] | None = None,
    paths: Sequence[Sequence[int]] | None = None,
    *,
    hist: torch.Tensor | None = None,
    hist_len: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    path_tensor: torch.Tensor | None = None,
    path_len: torch.Tensor | None = None,
    item_attributes: Sequence[frozenset[int]] | torch.Tensor | None = None,
    chunk: int | None = None,
) -> PathScores:
    """Score N paths in one forward pass each.

    Either give ``cases`` and ``paths`` (Python lists; unknown ids are dropped and counted), or
    the tensors ``hist, hist_len, targets, path_tensor, path_len`` directly (the RL hot path).
    """
    device = next(iter(model.parameters()), torch.zeros(0)).device if isinstance(model, torch.nn.Module) else torch.device("cpu")
    n_items = model.n_items
    if cases is not None:
        assert paths is not None and len(paths) == len(cases)
        hist, hist_len = histories_tensor(cases, n_items)
        targets = torch.tensor([c.target for c in cases], dtype=torch.long)
        path_tensor, path_len, n_unknown = pad_paths(paths, n_items)
    else:
        assert hist is not None and hist_len is not None and targets is not None
        assert path_tensor is not None and path_len is not None
        n_unknown = torch.zeros(path_tensor.shape[0], dtype=torch.long, device=path_tensor.device)
    hist, hist_len, targets = hist.to(device), hist_len.to(device), targets.to(device)
    path_tensor, path_len, n_unknown = path_tensor.to(device), path_len.to(device), n_unknown.to(device)

    N, L = path_tensor.shape
    seqs, seq_len, hl = build_sequences(hist, hist_len, path_tensor, path_len, n_items, model.max_seq_len)
    enc = encode_batch(model, seqs, seq_len, hl)  # [N, T, d]: the one forward pass
    # State after S_k sits at index hl - 1 + k; clamp to the last real position past the length.
    k = torch.arange(L + 1, device=device)[None, :]
    idx = hl[:, None] - 1 + torch.minimum(k, path_len[:, None])
    states = enc.gather(1, idx[:, :, None].expand(N, L + 1, enc.shape[-1]))
    # Full-catalog statistics only for the distinct states S_0..S_m of each path (rows past a
    # path's length repeat S_m and are filled in afterwards, not recomputed).
    live = k <= path_len[:, None]  # [N, L + 1]
    # Compacting costs a host sync; it pays on CPU (compute-bound), not on accelerators.
    cheap = rowshare.host_reads_cheap(device)
    src0 = repeated_start_states(states[:, 0], targets, live, chunk or default_chunk_rows(n_items, device)) \
        if cheap else None
    if src0 is not None:
        live[:, 0] = src0 == torch.arange(N, device=device)
    if not cheap or (src0 is None and bool(live.all())):
        log_p, rank = target_stats(model, states, targets, chunk=chunk)
    else:
        flat_live = live.reshape(-1)
        lp, rk = target_stats_flat(model, states.reshape(N * (L + 1), -1)[flat_live],
                                   targets[:, None].expand(N, L + 1).reshape(-1)[flat_live], chunk)
        log_p = torch.empty(N * (L + 1), device=device)
        rank = torch.empty(N * (L + 1), device=device)
        log_p[flat_live], rank[flat_live] = lp, rk
        log_p, rank = log_p.view(N, L + 1), rank.view(N, L + 1)
        if src0 is not None:  # S_0 of a row equal to its group's first row's: copied from it
            log_p[:, 0], rank[:, 0] = log_p[src0, 0], rank[src0, 0]
        fin = torch.minimum(k, path_len[:, None])
        log_p, rank = log_p.gather(1, fin), rank.gather(1, fin)
    items = path_tensor.clamp(max=n_items - 1)
    acc = torch.sigmoid(model.accept_logit(states[:, :L], items).float())
    mask = k[:, :L] < path_len[:, None]
    acc = torch.where(mask, acc, torch.zeros((), device=device))
    valid = _validity(hist, hist_len, path_tensor, path_len)
    return PathScores(
        log_p=log_p, rank=rank, accept=acc, lengths=path_len, valid=valid, n_unknown=n_unknown,
        paths=path_tensor, targets=targets, item_attributes=item_attributes,
    )


def item_embedding_matrix(model: SequenceModel) -> torch.Tensor:
    """The backbone's ``[n_items, d]`` item embedding matrix.

    ``model.item_embeddings()`` where the model has it (the SequenceModel protocol). Otherwise,
    for an affine output head ``logits(s) = s @ E.T + b``: ``E = (logits(I_d) - logits(0)).T``.
    """
    fn = getattr(model, "item_embeddings", None)
    if fn is not None:
        return fn().detach()
    tensors = [*model.parameters(), *model.buffers()] if isinstance(model, torch.nn.Module) else []
    dev = tensors[0].device if tensors else torch.device("cpu")
    with torch.no_grad():
        one = torch.zeros(1, 1, dtype=torch.long, device=dev)
        d = model.encode(one, torch.ones(1, dtype=torch.long, device=dev)).shape[-1]
        return (model.logits(torch.eye(d, device=dev)) - model.logits(torch.zeros(1, d, device=dev))).T


def last_states(model: SequenceModel, hist: torch.Tensor, hist_len: torch.Tensor,
                paths: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``u(H + path)`` for every row: one causal forward pass, state at the last position."""
    seqs, seq_len, hl = build_sequences(hist, hist_len, paths, lengths, model.n_items, model.max_seq_len)
    enc = encode_batch(model, seqs, seq_len, hl)
    return enc[torch.arange(enc.shape[0], device=enc.device), seq_len - 1]


def model_device(model: Any) -> torch.device:
    """The device of a torch model's first parameter (else buffer); CPU for anything else."""
    if isinstance(model, torch.nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return torch.device("cpu")
