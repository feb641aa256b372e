"""Decoding for the ``semantic-id`` policy: which tokens may come next, sampling, greedy, beam.

**Which tokens may come next.** ``free`` (official): any digit token, at any digit of a code;
EOS only where a code may start. ``constrained``: a prefix trie over the catalog's codes. A trie
node (the prefix decoded so far inside the current item) is held as the set of catalog items whose
code starts with that prefix (``cons [N, n_items]`` bool), so "which children does the node have
that still lead to an allowed item" is one scatter over the catalog: token ``v`` may follow iff
some item in the node, not in H, not already in the path and not the target, has ``v`` at this
digit. EOS is allowed where a code may start, and is the only choice once every item is banned.
Every completed code is therefore a catalog item that the masks allow.

**Sampling and greedy** run at the token level, all rows at once, and an item is complete after
``D`` tokens. ``greedy_rule = "greedy"`` takes the likeliest token (EOS included, the official
greedy decoding); ``"threshold"`` takes the likeliest non-EOS token at a code's first digit until
``prod(1 - pi(EOS))`` along the path drops below ``stop_threshold`` (our own rule, as for the item
policy). Sampled rows draw from the temperature-scaled distribution restricted to its ``top_k``
likeliest tokens (0: all).

**Beam search** works at the item level: one beam step completes a whole item's code. Each live
beam proposes its ``W`` best codes (an inner token-level beam of width ``W`` over the ``D``
digits; exact when ``W`` is at least the number of children of every node) and EOS; the ``W``
best of all proposals (score: sum of the item log-probabilities, each the mean or sum of its
tokens', plus EOS) survive. Finished beams are ranked by ``score / (actions ** length_norm)``.
"""

from __future__ import annotations

import torch

from ..seq import rowshare
from .decode import draw

NEG = float("-inf")


def base_banned(policy, hist_left: torch.Tensor, target: torch.Tensor, repeat: int = 1) -> torch.Tensor:
    """``[N * repeat, n_items + 1]`` items banned from the start (H, target; the last column is a
    scratch column for pads and invalid ids)."""
    n_items = policy.n_items
    banned = torch.zeros(hist_left.shape[0], n_items + 1, dtype=torch.bool, device=hist_left.device)
    if policy.mask_invalid:
        banned.scatter_(1, hist_left.clamp(max=n_items), True)
    if policy.mask_target:
        banned.scatter_(1, target[:, None], True)
    banned[:, n_items] = False
    return banned.repeat_interleave(repeat, 0) if repeat > 1 else banned


def ban(banned: torch.Tensor, items: torch.Tensor, n_items: int) -> None:
    """Ban ``items [N]`` in place (invalid ids and pads go to the scratch column)."""
    idx = torch.where((items >= 0) & (items < n_items), items, n_items)
    banned.scatter_(1, idx[:, None], True)
    banned[:, n_items] = False


def allowed(policy, digit: int, cons: torch.Tensor | None, banned: torch.Tensor) -> torch.Tensor:
    """``[N, vocab]`` bool: tokens allowed at ``digit`` of the next code (see the module docstring)."""
    n = banned.shape[0]
    if policy.decoding == "free":
        out = (policy.token_digit >= 0)[None].expand(n, policy.vocab).clone()
    else:
        ok = (cons & ~banned[:, : policy.n_items]).float()
        idx = policy.item_tok[: policy.n_items, digit][None].expand(n, policy.n_items)
        out = torch.zeros(n, policy.vocab, device=banned.device).scatter_reduce_(1, idx, ok, "amax") > 0
    if digit == 0:
        out[:, policy.eos] = True
    return out


def narrow(policy, cons: torch.Tensor | None, digit: int, tok: torch.Tensor) -> torch.Tensor | None:
    """The trie node after ``tok`` at ``digit``: items whose code has ``tok`` there."""
    if cons is None:
        return None
    return cons & (policy.item_tok[: policy.n_items, digit][None] == tok[:, None])


def allowed_tokens_teacher_forced(policy, hist_left: torch.Tensor, target: torch.Tensor, tokens: torch.Tensor,
                                  repeat: int = 1) -> torch.Tensor:
    """``[N, S, vocab]``: the allowed-token mask at every position of decoder targets ``tokens``."""
    n, s = tokens.shape
    d_n = policy.n_digits
    if policy.decoding == "free":
        free = [allowed(policy, d, None, torch.zeros(1, 1, dtype=torch.bool, device=tokens.device))[0]
                for d in range(d_n)]
        return torch.stack([free[i % d_n] for i in range(s)])[None].expand(n, s, policy.vocab)
    banned = base_banned(policy, hist_left, target, repeat)
    out = torch.empty(n, s, policy.vocab, dtype=torch.bool, device=tokens.device)
    full = torch.ones(n, policy.n_items, dtype=torch.bool, device=tokens.device)
    cons = full
    for i in range(s):
        d = i % d_n
        if d == 0:
            cons = full
        out[:, i] = allowed(policy, d, cons, banned)
        cons = narrow(policy, cons, d, tokens[:, i])
        if d == d_n - 1 and policy.mask_invalid:
            ban(banned, policy.items_of(tokens[:, i - d_n + 1 : i + 1]), policy.n_items)
    return out


def _pick(logits: torch.Tensor, greedy_rows: torch.Tensor, any_greedy: bool, sample_any: bool,
          generator: torch.Generator | None, temperature: float, top_k: int) -> torch.Tensor:
    tok = logits.argmax(-1) if any_greedy else None
    if sample_any:
        lg = logits / max(temperature, 1e-6) if temperature != 1.0 else logits
        drawn = draw(lg, generator, top_k)  # one uniform number per row, as the item policy draws
        tok = drawn if tok is None else torch.where(greedy_rows, tok, drawn)
    assert tok is not None
    return tok


@torch.no_grad()
def sample_paths(policy, hist_left: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None,
                 greedy: bool | torch.Tensor = False, temperature: float = 1.0, max_len: int | None = None,
                 repeat: int = 1, stop_threshold: float = 0.5, top_k: int = 0, greedy_rule: str = "greedy"
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``repeat`` paths per case (rows of a case adjacent): ``(paths [N, P], lengths, stopped)``;
    invalid codes (free decoding) are negative ids (see :mod:`.seq2seq_policy`)."""
    p, d_n, n_items = max_len or policy.max_path_len, policy.n_digits, policy.n_items
    dev = target.device
    cache = policy.encode(hist_left, target)
    n = len(target) * repeat
    if repeat > 1:
        cache = cache.select(torch.arange(len(target), device=dev).repeat_interleave(repeat))
    if isinstance(greedy, bool):
        any_greedy, sample_any = greedy, not greedy
        greedy_rows = torch.full((n,), greedy, dtype=torch.bool, device=dev)
    else:
        greedy_rows = torch.as_tensor(greedy, device=dev).expand(n)
        any_greedy, sample_any = True, not bool(greedy_rows.all())
    threshold = greedy_rule == "threshold"
    logits, cache = policy.decode(cache, torch.zeros(n, 1, dtype=torch.long, device=dev))
    paths = torch.full((n, p), n_items, dtype=torch.long, device=dev)
    lengths = torch.zeros(n, dtype=torch.long, device=dev)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    banned = base_banned(policy, hist_left, target, repeat)
    full = torch.ones(n, n_items, dtype=torch.bool, device=dev) if policy.decoding == "constrained" else None
    survive = torch.ones(n, device=dev)
    check_done = rowshare.host_reads_cheap(dev)
    for t in range(p):
        cons, toks = full, []
        for d in range(d_n):
            allow = allowed(policy, d, cons, banned) | done[:, None]
            lg = logits[:, -1].float().masked_fill(~allow, NEG)
            tok = _pick(lg, greedy_rows, any_greedy, sample_any, generator, temperature, top_k)
            if d == 0 and threshold and any_greedy:
                p_eos = torch.softmax(lg, -1)[:, policy.eos]
                survive = survive * (1.0 - p_eos)
                best = lg.masked_fill(torch.arange(policy.vocab, device=dev) == policy.eos, NEG)
                g_tok = torch.where((survive < stop_threshold) | torch.isinf(best.max(-1).values),
                                    policy.eos, best.argmax(-1))
                tok = torch.where(greedy_rows, g_tok, tok)
            if d == 0:
                done = done | (tok == policy.eos)
                if check_done and bool(done.all()):
                    break
            toks.append(tok)
            cons = narrow(policy, cons, d, tok)
            if not (t == p - 1 and d == d_n - 1):
                logits, cache = policy.decode(cache, tok[:, None])
        if len(toks) < d_n:
            break
        item = policy.items_of(torch.stack(toks, 1))
        paths[:, t] = torch.where(done, n_items, item)
        lengths += (~done).long()
        if policy.mask_invalid:
            ban(banned, item, n_items)
    return paths, lengths, lengths < p


@torch.no_grad()
def beam_paths(policy, hist_left: torch.Tensor, target: torch.Tensor, width: int, n_return: int,
               max_len: int | None = None, length_norm: float = 0.0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Item-level beam search: the ``n_return`` best paths per case (adjacent rows), best first.

    Returns ``(paths [B * n_return, P], lengths, stopped, scores [B * n_return])``; ``scores`` is
    the path log-probability (items + EOS) divided by ``actions ** length_norm``; ``-inf`` (and an
    empty path) where a case has fewer valid paths than ``n_return``."""
    p, d_n, n_items, eos = max_len or policy.max_path_len, policy.n_digits, policy.n_items, policy.eos
    dev = target.device
    b, w = len(target), max(width, n_return, 1)
    bw = b * w
    cache = policy.encode(hist_left, target).select(torch.arange(b, device=dev).repeat_interleave(w))
    logits, cache = policy.decode(cache, torch.zeros(bw, 1, dtype=torch.long, device=dev))
    score = torch.full((b, w), NEG, device=dev)
    score[:, 0] = 0.0
    score = score.reshape(bw)
    paths = torch.full((bw, p), n_items, dtype=torch.long, device=dev)
    lengths = torch.zeros(bw, dtype=torch.long, device=dev)
    finished = torch.zeros(bw, dtype=torch.bool, device=dev)
    banned = base_banned(policy, hist_left, target, w)
    full = torch.ones(bw, n_items, dtype=torch.bool, device=dev) if policy.decoding == "constrained" else None
    item_div = 1.0 if policy.token_logprob == "sum" else float(d_n)
    vocab = policy.vocab
    not_eos = torch.arange(vocab, device=dev) != eos
    for t in range(p):
        lp0 = torch.log_softmax(logits[:, -1].float().masked_fill(~allowed(policy, 0, full, banned), NEG), -1)
        eos_lp = lp0[:, eos]
        top = lp0.masked_fill(~not_eos, NEG).topk(min(w, vocab), -1)  # [BW, w']
        wi = top.values.shape[1]
        rows = torch.arange(bw, device=dev).repeat_interleave(wi)
        cum, toks = top.values.reshape(-1), [top.indices.reshape(-1)]
        inner = cache.select(rows)
        cons = narrow(policy, None if full is None else full[rows], 0, toks[0])
        ban_in = banned[rows]
        for d in range(1, d_n):
            lg, inner = policy.decode(inner, toks[-1][:, None])
            ok = allowed(policy, d, cons, ban_in)
            ok = ok | ~ok.any(-1, keepdim=True)  # a dead inner row (score -inf) stays finite-free, not NaN
            lpd = torch.log_softmax(lg[:, -1].float().masked_fill(~ok, NEG), -1)
            cand = (cum[:, None] + lpd).view(bw, wi * vocab)
            best = cand.topk(wi, -1)
            parent = torch.arange(bw, device=dev)[:, None] * wi + best.indices // vocab  # inner row
            parent = parent.reshape(-1)
            tok = (best.indices % vocab).reshape(-1)
            inner, ban_in = inner.select(parent), ban_in[parent]
            toks = [x[parent] for x in toks] + [tok]
            cons = narrow(policy, None if cons is None else cons[parent], d, tok)
            cum = best.values.reshape(-1)
        items = policy.items_of(torch.stack(toks, 1))  # [BW * wi]
        nxt, inner = policy.decode(inner, toks[-1][:, None]) if t < p - 1 else (logits[rows], inner)
        # candidates per beam: wi items, then EOS (live beams) / carry (finished beams)
        item_score = torch.where(finished[:, None], NEG, score[:, None] + cum.view(bw, wi) / item_div)
        end_score = torch.where(finished, score, score + eos_lp)
        cand = torch.cat([item_score, end_score[:, None]], 1).view(b, w * (wi + 1))
        best = cand.topk(w, -1)
        beam = torch.arange(b, device=dev)[:, None] * w + best.indices // (wi + 1)  # [B, w] old row
        opt = best.indices % (wi + 1)
        beam, opt = beam.reshape(-1), opt.reshape(-1)
        is_item = opt < wi
        src = beam * wi + torch.where(is_item, opt, 0)  # inner row (any row of the beam for ends)
        new_item = torch.where(is_item, items[src], n_items)
        paths, lengths, banned = paths[beam], lengths[beam], banned[beam]
        finished = finished[beam] | ~is_item
        paths[:, t] = torch.where(is_item, new_item, paths[:, t])
        lengths = lengths + is_item.long()
        if policy.mask_invalid:
            ban(banned, torch.where(is_item, new_item, n_items), n_items)
        score = best.values.reshape(-1)
        cache, logits = inner.select(src), nxt[src]
        if bool(finished.all()):
            break
    dead = torch.isinf(score)  # fewer valid paths than beams: these rows hold no path
    paths = torch.where(dead[:, None], n_items, paths)
    lengths = torch.where(dead, 0, lengths)
    stopped = (finished & (lengths < p)) | dead
    norm = (lengths + stopped.long()).clamp(min=1).float() ** length_norm
    ranked = (score / norm).view(b, w)
    order = torch.sort(ranked, dim=-1, descending=True, stable=True).indices[:, :n_return]
    rows = (torch.arange(b, device=dev)[:, None] * w + order).reshape(-1)
    return paths[rows], lengths[rows], stopped[rows], ranked.reshape(-1)[rows]
