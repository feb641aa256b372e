"""A vectorised re-implementation of the official ProRL per-step scoring scheme (the baseline
that :mod:`benchmarks.scoring` compares our one-pass :func:`prorlbench.seq.scoring.score_paths` with).

The official code scores step k of a path by building the sequence before the step
(``S_{k-1} = H + L[:k-1]``) and after it (``S_k``), truncating each to the model's
``max_seq_len`` most recent items and LEFT-padding it to ``max_seq_len``, then running one full
forward pass of the simulator and one full-catalog softmax per sequence: two passes per step.
Here that is done for all paths and all steps at once (every (path, step) pair is a row of one
big batch, processed in chunks of rows), so the comparison measures the scheme, not Python
loops.

Position convention: RecBole/ProRL's SASRec gives a left-padded window positions 0..49 over the
whole window. Our SASRec numbers positions from 0 at the first real item (right padding). For the
two schemes to compute *equal* quantities, the reference passes explicit position ids so that
the real items of a left-padded row get positions 0..n-1 (exactly as in our right-padded
encoding), and hides padding keys from attention (``SASRec.encode(positions=, key_mask=)``).
The work per row is unchanged: the full 50-slot window is still processed.
"""

from __future__ import annotations

import torch


def left_pad_windows(seqs: torch.Tensor, lengths: torch.Tensor, width: int, pad_id: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``seqs [R, T]`` -> left-padded ``[R, width]`` keeping the last ``width`` items.

    Returns ``(window, positions, key_mask)``; positions count from 0 at the first kept item.
    """
    R, T = seqs.shape
    n = lengths.clamp(max=width)
    slot = torch.arange(width, device=seqs.device)[None, :]
    first = width - n[:, None]  # first real slot
    src = (lengths[:, None] - n[:, None]) + (slot - first)  # index into the right-padded row
    real = slot >= first
    window = torch.where(real, seqs.gather(1, src.clamp(0, T - 1)), pad_id)
    positions = (slot - first).clamp(min=0)
    return window, positions, real


@torch.no_grad()
def twopass_step_scores(model, hist: torch.Tensor, hist_len: torch.Tensor, targets: torch.Tensor,
                        paths: torch.Tensor, path_len: torch.Tensor, rows_per_pass: int | None = None
                        ) -> dict[str, torch.Tensor]:
    """Per-step ``ioi, ior, ctr`` (each ``[N, L]``, 0 past a path's length), ProRL style.

    ``model`` is a SASRec (needs ``encode(..., positions=, key_mask=)``). ``rows_per_pass``:
    sequences per forward pass (default: 2,048 on CPU, where larger batches gain nothing, and
    32,768 on an accelerator, its fastest setting in our measurements; fewer when a pass's logits
    would exceed 2**26 floats, i.e. above 32k items on CPU).
    """
    if rows_per_pass is None:
        rows_per_pass = 2048 if hist.device.type == "cpu" else 32768
        # large catalogs: cap a pass's logits at 2**26 floats (256 MiB), so that 100k items stay
        # within memory; the work per row is unchanged
        rows_per_pass = max(64, min(rows_per_pass, (1 << 26) // max(model.n_items, 1)))
    dev = hist.device
    N, L = paths.shape
    W, pad = model.max_seq_len, model.n_items
    H = hist.shape[1]
    col = torch.arange(H + L, device=dev)[None, :]
    hsrc = col.clamp(max=H - 1).expand(N, -1)
    psrc = (col - hist_len[:, None]).clamp(0, L - 1)
    full = torch.where(col < hist_len[:, None], hist.gather(1, hsrc), paths.gather(1, psrc))
    # every (path, step k=1..L): "before" = first hist_len+k-1 items, "after" = first hist_len+k
    k = torch.arange(1, L + 1, device=dev)
    before_len = (hist_len[:, None] + k[None, :] - 1).reshape(-1)
    after_len = before_len + 1
    rep = full.repeat_interleave(L, 0)  # [N*L, H+L]
    tg = targets.repeat_interleave(L)
    items = paths.reshape(-1).clamp(max=pad - 1)

    def run(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logp, rank, acc = [], [], []
        for s in range(0, rep.shape[0], rows_per_pass):
            sl = slice(s, s + rows_per_pass)
            seq = torch.where(col < lengths[sl, None], rep[sl], pad)
            win, pos, mask = left_pad_windows(seq, lengths[sl], W, pad)
            u = model.encode(win, mask.sum(1), positions=pos, key_mask=mask)[:, -1]  # last slot
            lg = model.logits(u).float()
            lsm = torch.log_softmax(lg, -1)  # full-catalog softmax
            t = tg[sl, None]
            logp.append(lsm.gather(1, t).squeeze(1))
            rank.append(1.0 + (lg > lg.gather(1, t)).sum(1).float())
            acc.append(torch.sigmoid(model.accept_logit(u, items[sl]).float()))
        return torch.cat(logp), torch.cat(rank), torch.cat(acc)

    lp_b, rk_b, acc_b = run(before_len)
    lp_a, rk_a, _ = run(after_len)
    step = (k[None, :] <= path_len[:, None])
    zero = torch.zeros((), device=dev)
    return {
        "ioi": torch.where(step, (lp_a - lp_b).view(N, L), zero),
        "ior": torch.where(step, (rk_b - rk_a).view(N, L), zero),
        "ctr": torch.where(step, acc_b.view(N, L), zero),
    }
