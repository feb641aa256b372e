"""Guidance cases from interaction sequences (SPEC section 4).

Two pieces every dataset loader and the harness share:

* :func:`split_users`: the seeded, user-disjoint train / validation / test split (SPEC 4.2).
* :func:`build_cases`: slide over each split's sequences and pick targets the simulator ranks
  low (SPEC 4.3). For every user, window start positions are visited in a seeded random order;
  a window ``H = seq[p : p + n_history]`` yields a case when some item at distance
  ``2 .. max_path_len + 1`` after ``H`` is not in ``H``, does not occur earlier in the window's
  continuation, and has ``rank(T | H) > min_target_rank`` under the model. Among the eligible
  items the nearest becomes ``T`` (``target_choice="nearest"``, the default: it gives short
  reference paths like ProRL's ML-1M cases, mean 3.85 items) or one drawn uniformly
  (``"random"``, seeded). ``P*`` is the items between ``H`` and ``T``, then ``T``.
  Windows of one user may overlap. Ranks are computed in batches: one ``encode`` call over many
  windows, then the full-catalog logits in chunks (the same definition as
  :func:`prorlbench.seq.scoring.target_stats`: ``rank = 1 + #{j : score[j] > score[T]}``).

Randomness is derived from ``(seed, split, user index)`` only, so a user's cases do not depend
on the other users, on batch sizes or on the device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from ..console.progress import tqdm

from ..api import Case, CaseSplits, Interactions, SequenceModel
from ..config import opt
from ..errors import ConfigError
from .scoring import model_device

log = logging.getLogger("prorlbench")

SPLITS = ("train", "valid", "test")


def split_users(n_users: int, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, list[int]]:
    """Assign user indices ``0 .. n_users - 1`` to ``train`` / ``valid`` / ``test``.

    A seeded permutation is cut by ``ratios`` (normalised to sum 1); the valid and test sizes are
    rounded, train takes the rest. When there are at least as many users as non-zero ratios,
    every split with a non-zero ratio gets at least one user. Each returned list is sorted.
    """
    if len(ratios) != 3:
        raise ConfigError(f"split ratios must be three numbers (train, valid, test), got {list(ratios)}")
    r = [float(x) for x in ratios]
    if any(not np.isfinite(x) or x < 0 for x in r) or sum(r) <= 0:
        raise ConfigError(f"split ratios must be non-negative with a positive sum, got {list(ratios)}")
    if n_users < 0:
        raise ValueError("n_users must be >= 0")
    total = sum(r)
    r = [x / total for x in r]
    n_valid = int(round(n_users * r[1]))
    n_test = int(round(n_users * r[2]))
    nonzero = [x > 0 for x in r]
    if n_users >= sum(nonzero):
        if nonzero[1]:
            n_valid = max(n_valid, 1)
        if nonzero[2]:
            n_test = max(n_test, 1)
        # Leave at least one training user when train has a non-zero share.
        while n_valid + n_test > n_users - (1 if nonzero[0] else 0):
            if n_valid >= n_test and n_valid > (1 if nonzero[1] else 0):
                n_valid -= 1
            elif n_test > (1 if nonzero[2] else 0):
                n_test -= 1
            else:
                break
    n_valid = min(n_valid, n_users)
    n_test = min(n_test, n_users - n_valid)
    perm = np.random.default_rng(seed).permutation(n_users)
    valid = sorted(int(i) for i in perm[:n_valid])
    test = sorted(int(i) for i in perm[n_valid : n_valid + n_test])
    train = sorted(int(i) for i in perm[n_valid + n_test :])
    return {"train": train, "valid": valid, "test": test}


@dataclass(frozen=True)
class CaseConfig:
    """How guidance cases are built from sequences (SPEC section 4, step 3)."""

    n_history: int = opt(10, "history length H: the user's last n_history items before the path")
    max_path_len: int = opt(10, "longest path; targets are drawn at distance 2..max_path_len+1 after H")
    min_target_rank: int = opt(50, "a target must rank worse than this under the simulator given H")
    max_cases_per_user: int | None = opt(3, "cap on cases per user (0 or None: no cap)")
    max_cases_per_split: int | None = opt(None, "cap on cases per split, seeded subsample (0 or None: all)")
    target_choice: str = opt("nearest", "which eligible item becomes T: 'nearest' (the first one, as in "
                             "ProRL's short reference paths) or 'random' (uniform, seeded)")
    seed: int = opt(0, "seed for window order, target choice and subsampling")

    def __post_init__(self) -> None:
        if self.n_history < 1:
            raise ConfigError(f"cases: n_history must be >= 1, got {self.n_history}")
        if self.max_path_len < 1:
            raise ConfigError(f"cases: max_path_len must be >= 1, got {self.max_path_len}")
        if self.min_target_rank < 0:
            raise ConfigError(f"cases: min_target_rank must be >= 0, got {self.min_target_rank}")
        if self.max_cases_per_user is not None and self.max_cases_per_user < 0:
            raise ConfigError(f"cases: max_cases_per_user must be >= 0 (0: no cap), got {self.max_cases_per_user}")
        if self.max_cases_per_split is not None and self.max_cases_per_split < 0:
            raise ConfigError(f"cases: max_cases_per_split must be >= 0 (0: no cap), got {self.max_cases_per_split}")
        if self.target_choice not in ("nearest", "random"):
            raise ConfigError(f"cases: target_choice must be 'nearest' or 'random', got {self.target_choice!r}")


@torch.no_grad()
def _window_ranks(model: SequenceModel, windows: np.ndarray, cands: np.ndarray, device: torch.device,
                  encode_batch: int = 4096) -> np.ndarray:
    """``rank(c | window)`` for windows ``[N, H]`` and candidates ``[N, C]`` (-1 = none)."""
    n, h = windows.shape
    c = cands.shape[1]
    n_items = model.n_items
    h_keep = min(h, int(model.max_seq_len))
    out = np.zeros((n, c), dtype=np.int64)
    # Bound the [rows, C, n_items] comparison to ~16M elements.
    chunk = max(1, min(encode_batch, 16_000_000 // max(1, c * n_items)))
    for s in range(0, n, encode_batch):
        w = torch.as_tensor(windows[s : s + encode_batch, h - h_keep :], dtype=torch.long, device=device)
        lens = torch.full((w.shape[0],), h_keep, dtype=torch.long, device=device)
        states = model.encode(w, lens)[:, h_keep - 1]  # [b, d]
        cand = torch.as_tensor(cands[s : s + encode_batch], dtype=torch.long, device=device)
        for t in range(0, states.shape[0], chunk):
            lg = model.logits(states[t : t + chunk]).float()  # [b, n_items]
            cl = lg.gather(1, cand[t : t + chunk].clamp(min=0))  # [b, C]
            rank = 1 + (lg[:, None, :] > cl[:, :, None]).sum(-1)
            out[s + t : s + t + rank.shape[0]] = rank.cpu().numpy()
    return out


def _split_cases(
    seqs: list[tuple[int, ...]], users: list[str], split_idx: int, model: SequenceModel,
    cfg: CaseConfig, device: torch.device, progress: bool, split: str,
) -> list[Case]:
    h, lmax = cfg.n_history, cfg.max_path_len
    cap = cfg.max_cases_per_user or 1 << 60
    n_items = model.n_items
    # Per user: window starts in seeded random order, and the user's own generator.
    orders: list[np.ndarray] = []
    rngs: list[np.random.Generator] = []
    for u, seq in enumerate(seqs):
        rng = np.random.default_rng([cfg.seed, split_idx, u])
        n_pos = len(seq) - h - 1  # a window needs at least 2 items after H
        orders.append(rng.permutation(n_pos) if n_pos > 0 else np.zeros(0, dtype=np.int64))
        rngs.append(rng)
    cursor = [0] * len(seqs)
    found: list[list[Case]] = [[] for _ in seqs]
    active = [u for u in range(len(seqs)) if len(orders[u]) > 0]
    bar = tqdm(total=len(active), desc=f"cases[{split}]", disable=not progress, leave=False)
    while active:
        # Take a few more window positions from every user still short of the cap.
        req_user, req_pos = [], []
        for u in active:
            want = 2 * (min(cap, len(orders[u])) - len(found[u])) + 2
            take = orders[u][cursor[u] : cursor[u] + want]
            cursor[u] += len(take)
            req_user.extend([u] * len(take))
            req_pos.extend(int(p) for p in take)
        windows = np.empty((len(req_user), h), dtype=np.int64)
        cands = np.full((len(req_user), lmax), -1, dtype=np.int64)
        for r, (u, p) in enumerate(zip(req_user, req_pos)):
            seq = seqs[u]
            windows[r] = seq[p : p + h]
            after = seq[p + h + 1 : p + h + lmax + 1]  # distance 2 .. lmax + 1
            cands[r, : len(after)] = after
        if windows.size and (windows.min() < 0 or windows.max() >= n_items or cands.max() >= n_items):
            raise ValueError(f"{split} sequences contain item ids outside 0..{n_items - 1}")
        ranks = _window_ranks(model, windows, cands, device)
        for r, (u, p) in enumerate(zip(req_user, req_pos)):
            if len(found[u]) >= cap:
                continue
            seq = seqs[u]
            hist = tuple(int(x) for x in seq[p : p + h])
            hset = set(hist)
            ok = []
            for j in range(lmax):
                t = int(cands[r, j])
                if t < 0:
                    break
                before = seq[p + h : p + h + 1 + j]  # items between H and this candidate
                if t in hset or t in before or ranks[r, j] <= cfg.min_target_rank:
                    continue
                ok.append(j)
            if not ok:
                continue
            if cfg.target_choice == "random" and len(ok) > 1:
                j = ok[int(rngs[u].integers(len(ok)))]
            else:
                j = ok[0]
            ref = tuple(int(x) for x in seq[p + h : p + h + j + 2])
            found[u].append(Case(history=hist, target=ref[-1], reference=ref, user=users[u],
                                 case_id=f"u{users[u]}:{p}"))
        still = []
        for u in active:
            if len(found[u]) < cap and cursor[u] < len(orders[u]):
                still.append(u)
            else:
                bar.update(1)
        active = still
    bar.close()
    out: list[Case] = []
    for u in range(len(seqs)):
        out.extend(sorted(found[u], key=lambda c: int(c.case_id.rsplit(":", 1)[1])))
    return out


def _cap(cases: list[Case], cap: int | None, seed: int, split_idx: int) -> list[Case]:
    if not cap or len(cases) <= cap:
        return list(cases)
    keep = np.random.default_rng([seed, split_idx, 7919]).choice(len(cases), size=cap, replace=False)
    return [cases[i] for i in sorted(int(k) for k in keep)]


def build_cases(
    data: Interactions, model: SequenceModel, cfg: CaseConfig, *, device: torch.device | str | None = None,
    progress: bool = False,
) -> CaseSplits:
    """Guidance cases for every split (SPEC section 4, step 3).

    When ``data.cases`` is given (ready-made cases, e.g. ``prorl-json``) those are returned, only
    subsampled to ``cfg.max_cases_per_split`` when that cap is set. Otherwise, and for every split
    that ``data.cases`` leaves out (a released split without targets), cases are built from
    ``data.sequences[split]`` with ``model`` (the simulator) deciding which targets are hard.
    Users with fewer than ``n_history + 2`` items yield no case. ``device`` defaults to the
    model's device.
    """
    ready = data.cases or {}
    if data.cases is not None and all(s in ready for s in SPLITS):
        return CaseSplits(*(_cap(list(ready[s]), cfg.max_cases_per_split, cfg.seed, k)
                            for k, s in enumerate(SPLITS)))
    dev = torch.device(device) if device is not None else model_device(model)
    if isinstance(model, torch.nn.Module):
        was_training = model.training
        model.eval()
    out = []
    try:
        for k, split in enumerate(SPLITS):
            if split in ready:
                out.append(_cap(list(ready[split]), cfg.max_cases_per_split, cfg.seed, k))
                continue
            if data.cases is not None:
                log.info("%s: the %s split has no targets; its cases are built like every other "
                         "dataset's (targets ranked worse than %d, at distance 2..%d after H)",
                         data.name, split, cfg.min_target_rank, cfg.max_path_len + 1)
            seqs = list(data.sequences.get(split, []))
            users = list(data.users.get(split, [])) if data.users else []
            if len(users) != len(seqs):
                users = [str(i) for i in range(len(seqs))]
            cases = _split_cases(seqs, users, k, model, cfg, dev, progress, split)
            cases = _cap(cases, cfg.max_cases_per_split, cfg.seed, k)
            log.info("%s: %d %s cases from %d users", data.name, len(cases), split, len(seqs))
            out.append(cases)
    finally:
        if isinstance(model, torch.nn.Module) and was_training:
            model.train()
    return CaseSplits(*out)
