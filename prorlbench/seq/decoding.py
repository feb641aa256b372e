"""The candidate rule shared by the greedy baselines (rec2inf, ipg, irn): pick, advance, collect.

Each case gets ``kk`` rows: row ``r`` of a case takes the ``r``-th best first step, then is greedy;
a row stops when its pick is the target or no eligible item is left. A row whose first step does
not exist (fewer than ``r + 1`` eligible items) is dropped, except row 0, which stays as the empty
path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch


def pick(scores: torch.Tensor, step: int, rank: torch.Tensor, kk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The item each row takes at ``step`` from ``scores`` (banned items at ``-inf``).

    Returns ``(item [R], ok [R])``: ``ok`` is False where no eligible item is left (or, at step 0,
    where the row's ``rank``-th best does not exist).
    """
    if step == 0:
        top, idx = scores.topk(kk, dim=1)
        col = rank[:, None]
        return idx.gather(1, col).squeeze(1), top.gather(1, col).squeeze(1) > float("-inf")
    top, item = scores.max(1)
    return item, top > float("-inf")


def advance(step: int, rows: torch.Tensor, item: torch.Tensor, ok: torch.Tensor, targets: torch.Tensor,
            rank: torch.Tensor, *, paths: torch.Tensor, lengths: torch.Tensor, banned: torch.Tensor,
            active: torch.Tensor, exists: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the picks of the active ``rows`` (in place) and return ``(rows that went on, their item)``.

    A row stops (no item written) when its pick is the target or there was none (``ok`` False); at
    step 0 a row whose ``rank``-th best first step does not exist is marked as not existing.
    """
    if step == 0:
        exists[rows] = ok | (rank[rows] == 0)
    stop = ~ok | (item == targets[rows])
    go, item = rows[~stop], item[~stop]
    paths[go, step] = item
    lengths[go] += 1
    banned[go, item] = True
    active[rows[stop]] = False
    return go, item


def collect(paths: torch.Tensor, lengths: torch.Tensor, exists: torch.Tensor, n_cases: int,
            kk: int) -> list[list[tuple[int, ...]]]:
    """Per case, the paths of its ``kk`` rows that exist (rows ``c * kk .. (c + 1) * kk - 1``)."""
    paths_l, lengths_l, exists_l = paths.tolist(), lengths.tolist(), exists.tolist()
    return [[tuple(paths_l[b][: lengths_l[b]]) for b in range(c * kk, (c + 1) * kk) if exists_l[b]]
            for c in range(n_cases)]


@dataclass
class Rows:
    """The decoding state of ``kk`` rows per case (row ``b``: case ``b // kk``, candidate rank
    ``b % kk``), as every greedy baseline starts it; see the module docstring."""

    kk: int
    targets: torch.Tensor
    """``[B]`` the case's target, per row."""
    rank: torch.Tensor
    """``[B]`` the row's candidate rank (which first step it takes)."""
    paths: torch.Tensor
    """``[B, max_len]`` items so far, padded with ``n_items``."""
    lengths: torch.Tensor
    banned: torch.Tensor
    """``[B, n_items + 1]`` items a row may not take (its history, its own path)."""
    active: torch.Tensor
    exists: torch.Tensor
    """False for a row whose ``rank``-th first step does not exist."""

    @classmethod
    def start(cls, targets: torch.Tensor, banned: torch.Tensor, kk: int, n_items: int,
              max_len: int) -> Rows:
        """``kk`` rows per case from the per-case ``targets [N]`` and ``banned [N, n_items + 1]``
        (on the decoding device)."""
        dev, n_cases = targets.device, len(targets)
        B = n_cases * kk
        return cls(kk=kk, targets=targets.repeat_interleave(kk), rank=torch.arange(kk, device=dev).repeat(n_cases),
                   paths=torch.full((B, max_len), n_items, dtype=torch.long, device=dev),
                   lengths=torch.zeros(B, dtype=torch.long, device=dev), banned=banned.repeat_interleave(kk, 0),
                   active=torch.ones(B, dtype=torch.bool, device=dev),
                   exists=torch.ones(B, dtype=torch.bool, device=dev))

    def live(self) -> torch.Tensor:
        """The rows still decoding."""
        return self.active.nonzero().squeeze(1)

    def advance(self, step: int, rows: torch.Tensor, item: torch.Tensor,
                ok: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`advance` on this state."""
        return advance(step, rows, item, ok, self.targets, self.rank, paths=self.paths, lengths=self.lengths,
                       banned=self.banned, active=self.active, exists=self.exists)

    def collect(self) -> list[list[tuple[int, ...]]]:
        """:func:`collect` on this state."""
        return collect(self.paths, self.lengths, self.exists, len(self.targets) // self.kk, self.kk)


def in_batches(generate: Callable[[Sequence[Any], int], list[list[tuple[int, ...]]]], cases: Sequence[Any],
               k: int, batch_size: int) -> list[list[tuple[int, ...]]]:
    """``generate(part, k)`` over consecutive parts of ``batch_size`` cases, concatenated."""
    out: list[list[tuple[int, ...]]] = []
    for s in range(0, len(cases), batch_size):
        out.extend(generate(cases[s : s + batch_size], k))
    return out
