"""The candidate rule shared by the greedy baselines (rec2inf, ipg, irn): pick, advance, collect.

Each case gets ``kk`` rows: row ``r`` of a case takes the ``r``-th best first step, then is greedy;
a row stops when its pick is the target or no eligible item is left. A row whose first step does
not exist (fewer than ``r + 1`` eligible items) is dropped, except row 0, which stays as the empty
path.
"""

from __future__ import annotations

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
