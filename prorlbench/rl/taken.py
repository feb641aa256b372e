"""Teacher-forced ``log pi(a_t)`` of the taken actions only, in cache-sized chunks.

The plain way (:meth:`PathPolicy.masked_log_probs`, then ``gather``) builds the whole masked
``log pi(. | prefix)`` ``[N, P, n_items + 1]``: at the paper profile on ML-1M that is 2,048 × 10
× 3,044 floats, 250 MB, and autograd then makes several more tensors of that size (the
concatenation with STOP, the dense ban mask, the log-softmax output, the zeros the ``gather``
scatters its gradient into, the masked gradient), each one a pass over main memory.

:func:`taken_log_probs` does the same arithmetic a few paths at a time, so that everything but
the head's output and its gradient stays in cache. The validity mask is a short list of banned
ids per decision (the history, the target, the path's earlier items: :func:`ban_index`) written
as ``-inf`` with one ``scatter_`` instead of a dense boolean ``masked_fill_`` over the catalog.
The backward pass rebuilds a chunk's log-softmax and runs ATen's own log-softmax backward kernel
on the one-hot gradient; a banned action's ``log pi`` is ``-inf`` there, so its gradient is
already ``+0``, as the masked fill of autograd's way leaves it. Values and gradients equal the
plain way's bit for bit (``tests/rl/test_taken.py``).
"""

from __future__ import annotations

import torch

from ..seq.scoring import default_chunk_rows


def ban_index(base: torch.Tensor | None, gen: torch.Tensor | None, n_actions: int, stop_id: int
              ) -> torch.Tensor | None:
    """``[N, n_actions, k]`` ids banned at each decision; ``stop_id`` fills "nothing".

    ``base [N, b]``: ids banned at every decision (anything ``>= stop_id`` counts as nothing);
    ``gen [N, >= n_actions - 1]``: the path, whose item ``s`` is banned from decision ``s + 1``
    on. ``None`` when both are ``None``. STOP itself is never banned."""
    parts = []
    if base is not None:
        parts.append(base.clamp(max=stop_id)[:, None, :].expand(base.shape[0], n_actions, base.shape[1]))
    if gen is not None and n_actions > 1:
        g = gen[:, : n_actions - 1].clamp(max=stop_id)
        t = torch.arange(n_actions, device=g.device)[:, None]
        s = torch.arange(n_actions - 1, device=g.device)[None, :]
        parts.append(torch.where(s < t, g[:, None, :], stop_id))
    return torch.cat(parts, 2) if parts else None


def base_bans(policy, hist_left: torch.Tensor, target: torch.Tensor, repeat: int = 1) -> torch.Tensor | None:
    """``[N * repeat, b]`` ids a :class:`~prorlbench.rl.policy.PathPolicy` bans at every decision:
    the history (``mask_invalid``; its pads are STOP, i.e. nothing) and the target
    (``mask_target``). ``None`` when neither is masked."""
    base = [hist_left] if policy.mask_invalid else []
    base += [target[:, None]] if policy.mask_target else []
    if not base:
        return None
    b = torch.cat(base, 1).clamp(max=policy.stop_id)
    return b.repeat_interleave(repeat, 0) if repeat > 1 else b


def teacher_forced_bans(policy, hist_left: torch.Tensor, target: torch.Tensor, gen: torch.Tensor,
                        n_actions: int, repeat: int = 1) -> torch.Tensor | None:
    """A policy's validity mask for teacher forcing, as :func:`ban_index`: :func:`base_bans` at
    every decision, and (``mask_invalid``) the path's item ``s`` from decision ``s + 1`` on."""
    b = base_bans(policy, hist_left, target, repeat)
    return None if b is None else ban_index(b, gen if policy.mask_invalid else None, n_actions, policy.stop_id)


def dense_ban_mask(index: torch.Tensor | None, n_actions: int, width: int) -> torch.Tensor | None:
    """The boolean ``[N, n_actions, width]`` form of :func:`ban_index` (column ``width - 1`` is STOP)."""
    if index is None:
        return None
    banned = torch.zeros(index.shape[0], n_actions, width, dtype=torch.bool, device=index.device)
    banned.scatter_(2, index, True)
    banned[..., width - 1] = False
    return banned


def _chunk_log_softmax(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stop: torch.Tensor,
                       index: torch.Tensor | None) -> torch.Tensor:
    """Masked ``log pi`` ``[n, P, V + 1]`` of one chunk: its item logits (``addmm``, whose rows
    do not depend on the other rows of the batch), STOP, the bans, ATen's ``log_softmax``."""
    n, p, d = hidden.shape
    v = weight.shape[0]
    logits = torch.empty(n, p, v + 1, dtype=hidden.dtype, device=hidden.device)
    # written in place into the first v columns (the same values as a separate addmm's)
    torch.addmm(bias, hidden.reshape(n * p, d), weight.T, out=logits.view(n * p, v + 1)[:, :v])
    if index is not None:
        logits.scatter_(2, index, float("-inf"))  # "nothing" lands on STOP, written next
    logits[..., v:] = stop
    return torch.log_softmax(logits.float(), -1)


class _TakenLogProbs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, stop, actions, index, paths_per_chunk):
        out = torch.empty(actions.shape, dtype=torch.float32, device=hidden.device)
        for s in range(0, hidden.shape[0], paths_per_chunk):
            e = s + paths_per_chunk
            lsm = _chunk_log_softmax(hidden[s:e], weight, bias, stop[s:e], _rows(index, s, e))
            out[s:e] = lsm.gather(2, actions[s:e, :, None]).squeeze(2)
        ctx.save_for_backward(hidden, weight, bias, stop, actions, index, out)
        ctx.paths_per_chunk = paths_per_chunk
        return out

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, bias, stop, actions, index, out = ctx.saved_tensors
        n, p, d = hidden.shape
        v = weight.shape[0]
        grad_items = hidden.new_empty(n * p, v)  # the item logits' gradient, the one big tensor
        # STOP's gradient as a column of a two-column buffer: a strided [.., 1] column, as the
        # concatenation's backward hands it over, so the STOP head's matmuls see the same strides
        grad_stop = stop.new_empty(*stop.shape[:-1], 2)[..., :1]
        banned_taken = out == float("-inf")  # the plain way's masked fill zeroes these too
        for s in range(0, n, ctx.paths_per_chunk):
            e = s + ctx.paths_per_chunk
            lsm = _chunk_log_softmax(hidden[s:e], weight, bias, stop[s:e], _rows(index, s, e))
            a = actions[s:e, :, None]
            one_hot = torch.zeros_like(lsm).scatter_(2, a, grad[s:e, :, None])
            g = torch._log_softmax_backward_data(one_hot, lsm, -1, lsm.dtype)
            if index is not None:
                g.scatter_(2, a, torch.where(banned_taken[s:e, :, None], 0.0, g.gather(2, a)))
            grad_items[s * p : e * p] = g[..., :v].reshape(-1, v)
            grad_stop[s:e] = g[..., v:]
        # addmm's own backward, call for call: mat1 = hidden, mat2 = weight.T (a transposed view,
        # whose gradient autograd computes as grad.T @ mat1 to keep its layout), self = bias
        flat = hidden.reshape(n * p, d)
        grad_hidden = grad_items.mm(weight).view(n, p, d) if ctx.needs_input_grad[0] else None
        grad_weight = grad_items.t().mm(flat) if ctx.needs_input_grad[1] else None
        grad_bias = grad_items.sum(0) if ctx.needs_input_grad[2] else None
        return grad_hidden, grad_weight, grad_bias, grad_stop, None, None, None


def _rows(t: torch.Tensor | None, s: int, e: int) -> torch.Tensor | None:
    return None if t is None else t[s:e]


def taken_log_probs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stop: torch.Tensor,
                    actions: torch.Tensor, index: torch.Tensor | None = None,
                    paths_per_chunk: int | None = None) -> torch.Tensor:
    """``log pi(a_t)`` ``[N, P]`` with ``pi = softmax(mask([hidden @ weight.T + bias, stop]))``.

    ``hidden [N, P, d]`` the policy's outputs, ``weight [V, d]`` and ``bias [V]`` the item head,
    ``stop [N, P, 1]`` the STOP logit (action ``V``), ``actions [N, P]``, ``index [N, P, k]``
    the ids banned at each decision (:func:`ban_index`; ``V`` means none). Equal, with its
    gradients, to ``log_softmax(cat(addmm(bias, hidden, weight.T), stop) masked).gather(actions)``;
    the forward pass holds nothing of size ``[N, P, V]``, the backward pass only the item
    logits' gradient."""
    if paths_per_chunk is None:
        rows = default_chunk_rows(weight.shape[0] + 1, hidden.device)
        paths_per_chunk = max(1, rows // max(1, hidden.shape[1]))
    return _TakenLogProbs.apply(hidden, weight, bias, stop, actions, index, paths_per_chunk)
