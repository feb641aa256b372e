"""Decoding for :class:`~prorlbench.rl.policy.PathPolicy`: sampling, greedy rules and beam search.

Sampling draws ONE uniform number per row and step and inverts the cumulative distribution over
the actions (:func:`draw`). Temperature is folded into the output head (the hidden state and the
bias are scaled before the one catalog matmul), and top-k sampling takes ``topk`` over the
catalog and then works on ``k`` values only, so neither costs an extra full-catalog pass.

Three rules make the greedy candidate (``RLConfig.decode``):

* ``threshold`` (our own rule): the likeliest *item* at every step, and STOP once the probability
  of having continued so far, ``prod_k (1 - pi(STOP at k))``, drops below ``stop_threshold`` (a
  plain argmax over items and STOP would almost always stop at once: STOP is one action holding
  the whole "end here" mass, while the "continue" mass is spread over the catalog);
* ``greedy`` (the official @1): argmax over items and STOP at every step;
* ``beam`` (:func:`beam_search`): beam search over items and STOP.

A policy that is not a ``PathPolicy`` (for example a semantic-ID policy) provides its own
``sample`` and ``beam_search`` with the signatures of :meth:`PathPolicy.sample` and
:func:`beam_search`; the trainer uses nothing else from this module.
"""

from __future__ import annotations

import torch

from ..seq import rowshare
from .taken import base_bans

GREEDY_RULES = ("threshold", "greedy")


def draw(logits: torch.Tensor, generator: torch.Generator | None, top_k: int = 0,
         probs: torch.Tensor | None = None, u: torch.Tensor | None = None) -> torch.Tensor:
    """One categorical draw per row of ``logits [n, A]`` (``-inf`` = impossible), with one
    uniform number per row: the inverse of the cumulative distribution.

    ``top_k > 0`` restricts the draw to the ``top_k`` largest logits of each row (renormalised).
    ``probs``: ``softmax(logits, -1)`` when the caller has it already (one catalog pass fewer;
    ignored with ``top_k``). ``u``: the ``[n, 1]`` uniform numbers, when drawn by the caller
    (a compiled step draws them outside: :mod:`prorlbench.rl.compiled`).
    """
    n = logits.shape[0]
    idx = None
    if 0 < top_k < logits.shape[1]:
        logits, idx = logits.topk(top_k, dim=-1)
        probs = None
    cum = (torch.softmax(logits, -1) if probs is None else probs).cumsum(-1)
    if u is None:
        u = torch.rand(n, 1, device=logits.device, generator=generator, dtype=cum.dtype)
    pick = torch.searchsorted(cum, u * cum[:, -1:], right=True).clamp_(max=logits.shape[1] - 1)
    return pick.squeeze(1) if idx is None else idx.gather(1, pick).squeeze(1)


def sampling_head(pol: "PathPolicy", out: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None
                  ) -> torch.Tensor:
    """Logits ``[n, items + 1]`` for decoding, ``weight = [E, b]`` precomputed once per call;
    ``scale [n, 1]`` multiplies each row's logits (1 / temperature) inside the one catalog
    matmul, which writes straight into the logits (no concatenation with STOP's column)."""
    stop = pol.stop_head(out)
    if scale is not None:
        out, stop = out * scale, stop * scale
        ones = scale
    else:
        ones = torch.ones(out.shape[0], 1, dtype=out.dtype, device=out.device)
    logits = out.new_empty(out.shape[0], weight.shape[0] + 1)
    torch.mm(torch.cat([out, ones], 1), weight.T, out=logits[:, :-1])
    logits[:, -1:] = stop
    return logits


def sample_paths(policy: "PathPolicy", hist_left: torch.Tensor, target: torch.Tensor,
                 generator: torch.Generator | None, greedy: bool | torch.Tensor = False,
                 temperature: float = 1.0, max_len: int | None = None, repeat: int = 1,
                 stop_threshold: float = 0.5, top_k: int = 0, rule: str = "threshold"
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """See :meth:`PathPolicy.sample`."""
    if rule not in GREEDY_RULES:
        raise ValueError(f"greedy rule must be one of {GREEDY_RULES}, got {rule!r}")
    pol = policy
    p = max_len or pol.max_path_len
    first, cache = pol._prefill(hist_left, target)
    out = first.repeat_interleave(repeat, 0) if repeat > 1 else first
    cache = cache.repeat(repeat)
    n, dev, v = out.shape[0], out.device, pol.n_items
    paths = torch.full((n, p), v, dtype=torch.long, device=dev)
    # banned ids per row (the history, the target; the path so far is appended at each step,
    # its unfilled slots hold STOP, i.e. nothing), written as -inf with one scatter per step
    base_ids = base_bans(pol, hist_left, target, repeat)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    lengths = torch.zeros(n, dtype=torch.long, device=dev)
    # No host sync inside the loop on accelerators: which rows are greedy is known without looking
    # at the device when ``greedy`` is a bool; the early exit once every row is done (it only
    # saves work) is taken on the CPU only, where checking costs nothing.
    gidx = None  # the greedy rows, when only some are: their rule's catalog work is done on them alone
    if isinstance(greedy, bool):
        any_greedy, sample_any = greedy, not greedy
        greedy_rows = torch.full((n,), greedy, dtype=torch.bool, device=dev)
    else:
        greedy_rows = torch.as_tensor(greedy, device=dev).expand(n)
        any_greedy, sample_any = True, not bool(greedy_rows.all())
        if sample_any:
            gidx = greedy_rows.nonzero().squeeze(1)  # once per call, outside the loop
            any_greedy = gidx.numel() > 0
    # temperature folded into the head: logits / T == [out / T, 1 / T] @ [E, b]^T (greedy rows: T = 1)
    inv_t = 1.0 / max(temperature, 1e-6)
    scale = None
    if sample_any and inv_t != 1.0:
        scale = torch.where(greedy_rows, 1.0, inv_t).to(out.dtype)[:, None]
    weight = torch.cat([pol.item_emb.weight[:v], pol.item_bias[:, None]], 1)  # [V, d + 1], once
    check_done = rowshare.host_reads_cheap(dev)
    survive = torch.ones(n if gidx is None else gidx.numel(), device=dev)  # P(no STOP so far), greedy rows
    for t in range(p):
        logits = sampling_head(pol, out, weight, scale).float()
        if base_ids is not None:
            stop = logits[:, v].clone()  # "nothing" lands on STOP: written back after
            logits.scatter_(1, torch.cat([base_ids, paths], 1) if pol.mask_invalid else base_ids, float("-inf"))
            logits[:, v] = stop
        action = None
        # softmax once, shared by the threshold rule's P(STOP) and the draw (top-k draws use their own)
        probs = torch.softmax(logits, -1) if (any_greedy and rule != "greedy") or (sample_any and not top_k) else None
        if any_greedy:
            g_logits = logits if gidx is None else logits.index_select(0, gidx)
            if rule == "greedy":
                g_action = g_logits.argmax(-1)
            else:
                p_stop = probs[:, v] if gidx is None else probs[:, v].index_select(0, gidx)
                best_val, best_item = g_logits[:, :v].max(-1)  # the first maximum, as argmax
                survive = survive * (1.0 - p_stop)
                g_action = torch.where(survive < stop_threshold, v, best_item)
                if v:  # every item banned (the best logit is -inf): STOP
                    g_action = torch.where(torch.isinf(best_val), v, g_action)
            action = g_action if gidx is None else torch.zeros(n, dtype=torch.long, device=dev).index_copy_(0, gidx, g_action)
        if sample_any:
            drawn = draw(logits, generator, top_k, probs=probs)
            action = drawn if action is None else torch.where(greedy_rows, action, drawn)
        is_item = (action != v) & ~done
        paths[:, t] = torch.where(is_item, action, v)
        lengths += is_item.long()
        done |= ~is_item
        if t == p - 1 or (check_done and bool(done.all())):
            break
        step_out, cache = pol._extend(cache, paths[:, t : t + 1], t)
        out = step_out[:, 0]
    return paths, lengths, lengths < p


def beam_search(policy: "PathPolicy", hist_left: torch.Tensor, target: torch.Tensor, k: int,
                width: int = 10, length_norm: float = 0.0, max_len: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k`` best paths per case by beam search over items and STOP (``max(width, k)`` beams).

    A beam's score is ``sum_t log pi(a_t) / n_actions ** length_norm`` (``n_actions``: its items
    plus its STOP, if any); a path of ``max_len`` items ends without STOP. Finished beams stay in
    the beam with their score. Returns ``(paths [N * k, P], lengths, stopped, scores [N, k])``,
    best first; with ``width`` at least the number of partial paths, this is exhaustive search.
    """
    pol = policy
    p = max_len or pol.max_path_len
    w = max(width, k)
    c, v = target.shape[0], pol.n_items
    first, cache = pol._prefill(hist_left, target)
    out, cache = first.repeat_interleave(w, 0), cache.repeat(w)
    dev = out.device
    banned = pol._base_banned(hist_left, target, w)
    score = torch.full((c, w), float("-inf"), device=dev)
    score[:, 0] = 0.0
    n_act = torch.zeros(c, w, dtype=torch.long, device=dev)
    finished = torch.zeros(c, w, dtype=torch.bool, device=dev)
    paths = torch.full((c * w, p), v, dtype=torch.long, device=dev)
    lengths = torch.zeros(c * w, dtype=torch.long, device=dev)
    stay = torch.full((v + 1,), float("-inf"), device=dev)
    stay[v] = 0.0  # a finished beam's only continuation: itself, unchanged
    base = (torch.arange(c, device=dev) * w)[:, None]
    key = score
    for t in range(p):
        logp = torch.log_softmax(pol._head(out).float().masked_fill_(banned[:, : v + 1], float("-inf")), -1)
        logp = torch.where(finished.reshape(-1, 1), stay, logp).view(c, w, v + 1)
        cand = score[..., None] + logp
        cand_len = (n_act + (~finished).long()).clamp(min=1).float()[..., None]
        cand_key = cand / cand_len.pow(length_norm) if length_norm else cand
        key, top = cand_key.reshape(c, -1).topk(w, dim=-1)
        parent, action = top // (v + 1), top % (v + 1)
        rows = (base + parent).reshape(-1)
        score = cand.reshape(c, -1).gather(1, top)
        was_done = finished.gather(1, parent)
        n_act = n_act.gather(1, parent) + (~was_done).long()
        finished = was_done | (action == v)
        paths, lengths, banned = paths[rows], lengths[rows], banned[rows]
        cache, out = cache.index(rows), out[rows]
        new_item = (~finished).reshape(-1)
        paths[:, t] = torch.where(new_item, action.reshape(-1), paths[:, t])
        lengths = lengths + new_item.long()
        if t == p - 1:
            break
        if pol.mask_invalid:
            banned.scatter_(1, pol._pads_to_scratch(paths[:, t : t + 1]), True)
            banned[:, v] = False
        step_out, cache = pol._extend(cache, paths[:, t : t + 1], t)
        out = step_out[:, 0]
    sel = (base + torch.arange(k, device=dev)[None]).reshape(-1)  # topk sorted: the k best first
    return paths[sel], lengths[sel], lengths[sel] < p, key[:, :k]


def candidates(policy: "PathPolicy", hist_left: torch.Tensor, target: torch.Tensor, k: int, cfg,
               generator: torch.Generator | None = None, max_len: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` candidates per case of ``RLConfig.decode``: ``(paths [N * k, P], lengths)``.

    ``beam``: the ``k`` best beams. ``threshold`` / ``greedy``: candidate 1 by that rule, then
    ``k - 1`` samples at ``sample_temperature`` among the ``sample_top_k`` likeliest actions.
    """
    if cfg.decode == "beam":
        paths, lengths, _, _ = policy.beam_search(hist_left, target, k, width=cfg.beam_width,
                                                  length_norm=cfg.beam_length_norm, max_len=max_len)
        return paths, lengths
    n = target.shape[0] * k
    greedy = (torch.arange(n, device=target.device) % k) == 0
    paths, lengths, _ = policy.sample(hist_left, target, generator, greedy=greedy if k > 1 else True,
                                      repeat=k, temperature=cfg.sample_temperature, top_k=cfg.sample_top_k,
                                      stop_threshold=cfg.stop_threshold, rule=cfg.decode, max_len=max_len)
    return paths, lengths
