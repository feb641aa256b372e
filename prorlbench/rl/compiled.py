"""``RLConfig.compile_sampling``: the per-token steps of RL sampling through ``torch.compile``.

Sampling a path costs ``P + 1`` small steps for the item policy and ``D (P + 1)`` token steps for
the semantic-ID decoder, each a few dozen kernels: on a GPU the launches, not the arithmetic,
take the time (issue 26). With ``compile_sampling = true`` the RL rollouts sample through two
compiled functions per policy: the head, the validity mask and the draw (one function), and one
step of the transformer against its key/value cache (the other). On CUDA they are compiled with
``mode="reduce-overhead"`` (CUDA graphs: one launch per step), elsewhere with inductor's default.

What stays the same: the prefix is encoded eagerly once per call, the uniform numbers are drawn
outside the compiled functions from the same generator in the same order (one ``[n, 1]`` draw
per row and step, as :func:`~prorlbench.rl.decode.draw` does), and the CPU keeps its early exit.
So the compiled sampler draws from the same distribution with the same random numbers; only the
last bits of the softmax and the cumulative sum can differ (fused kernels), which on the CPU
gives the eager sampler's paths (``tests/rl/test_compiled.py``; on CUDA a chi-square test
compares the two distributions). Greedy rows, beam search and validation keep the eager code.
A policy of another kind samples eagerly.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from torch._dynamo.exc import BackendCompilerFailed

from ..seq import rowshare
from ..errors import ConfigError, one_line
from .decode import draw, sampling_head
from .policy import PathPolicy, _Cache
from .semantic_decoding import NEG, allowed, ban, base_banned, narrow
from .seq2seq_blocks import DecoderCache
from .seq2seq_policy import SemanticIdPolicy
from .taken import base_bans


def _item_head_draw(pol: PathPolicy, out: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None,
                    banned: torch.Tensor | None, u: torch.Tensor, top_k: int) -> torch.Tensor:
    v = pol.n_items
    logits = sampling_head(pol, out, weight, scale).float()
    if banned is not None:
        stop = logits[:, v].clone()
        logits.scatter_(1, banned, float("-inf"))
        logits[:, v] = stop
    return draw(logits, None, top_k, probs=None if top_k else torch.softmax(logits, -1), u=u)


def _item_extend(pol: PathPolicy, kv: list, key_ok: torch.Tensor, length: int, tok: torch.Tensor, t: int
                 ) -> tuple[torch.Tensor, list, torch.Tensor]:
    out, cache = pol._extend(_Cache(kv, key_ok, length), tok, t)
    return out[:, 0], cache.kv, cache.key_ok


def _sem_token_draw(pol: SemanticIdPolicy, last: torch.Tensor, d: int, cons: torch.Tensor | None,
                    banned: torch.Tensor, done: torch.Tensor, u: torch.Tensor, temperature: float,
                    top_k: int) -> torch.Tensor:
    allow = allowed(pol, d, cons, banned) | done[:, None]
    lg = last.float().masked_fill(~allow, NEG)
    lg = lg / max(temperature, 1e-6) if temperature != 1.0 else lg
    return draw(lg, None, top_k, u=u)


def _sem_decode(pol: SemanticIdPolicy, self_kv: list, mem_kv: list, mem_allow: torch.Tensor, length: int,
                tok: torch.Tensor) -> tuple[torch.Tensor, list]:
    logits, cache = pol.decode(DecoderCache(self_kv, mem_kv, mem_allow, length), tok[:, None])
    return logits[:, -1], cache.self_kv


STEPS: dict[str, Callable[..., Any]] = {"item_head_draw": _item_head_draw, "item_extend": _item_extend,
                                        "sem_token_draw": _sem_token_draw, "sem_decode": _sem_decode}


@functools.cache
def compiled_steps(device_type: str) -> dict[str, Callable[..., Any]]:
    """The step functions compiled for ``device_type`` (compiled on first call). One set per
    process, shared by every policy: torch keeps compiled code per function and guards it on the
    inputs' shapes and types, not on which policy it is, so a set per policy would only compile
    the same graphs again (and reach dynamo's recompile limit after a few cells in one process)."""
    mode = "reduce-overhead" if device_type == "cuda" else "default"
    return {name: torch.compile(fn, mode=mode) for name, fn in STEPS.items()}


def _uniform(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, 1, device=device, generator=generator, dtype=torch.float32)


@torch.no_grad()
def sample(policy: Any, hist_left: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None,
           temperature: float = 1.0, max_len: int | None = None, repeat: int = 1, top_k: int = 0
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sampled paths as ``policy.sample(..., greedy=False)`` gives them, through the compiled steps."""
    dev = hist_left.device
    if isinstance(policy, PathPolicy):
        fn = _sample_items
    elif isinstance(policy, SemanticIdPolicy):
        fn = _sample_codes
    else:
        return policy.sample(hist_left, target, generator, temperature=temperature, max_len=max_len,
                             repeat=repeat, top_k=top_k)
    if dev.type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()  # the previous call's outputs may be overwritten
    try:
        return fn(policy, compiled_steps(dev.type), hist_left, target, generator, temperature,
                  max_len or policy.max_path_len, repeat, top_k)
    except BackendCompilerFailed as exc:  # e.g. no C++ compiler for inductor on a CPU
        raise ConfigError(f"compile_sampling = true: torch.compile failed here ({one_line(exc, 300)}); "
                          "set compile_sampling = false") from None


def _sample_items(pol: PathPolicy, steps: dict, hist_left, target, generator, temperature, p, repeat,
                  top_k):
    first, cache = pol._prefill(hist_left, target)
    out = first.repeat_interleave(repeat, 0) if repeat > 1 else first
    cache = cache.repeat(repeat)
    n, dev, v = out.shape[0], out.device, pol.n_items
    paths = torch.full((n, p), v, dtype=torch.long, device=dev)
    base_ids = base_bans(pol, hist_left, target, repeat)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    lengths = torch.zeros(n, dtype=torch.long, device=dev)
    inv_t = 1.0 / max(temperature, 1e-6)
    scale = None if inv_t == 1.0 else torch.full((n, 1), inv_t, dtype=out.dtype, device=dev)
    weight = torch.cat([pol.item_emb.weight[:v], pol.item_bias[:, None]], 1)
    kv, key_ok, length = cache.kv, cache.key_ok, cache.length
    check_done = rowshare.host_reads_cheap(dev)
    for t in range(p):
        banned = None if base_ids is None else (torch.cat([base_ids, paths], 1) if pol.mask_invalid else base_ids)
        action = steps["item_head_draw"](pol, out, weight, scale, banned, _uniform(n, generator, dev), top_k)
        is_item = (action != v) & ~done
        paths[:, t] = torch.where(is_item, action, v)
        lengths += is_item.long()
        done |= ~is_item
        if t == p - 1 or (check_done and bool(done.all())):
            break
        out, kv, key_ok = steps["item_extend"](pol, kv, key_ok, length, paths[:, t : t + 1], t)
        length += 1
    return paths, lengths, lengths < p


def _sample_codes(pol: SemanticIdPolicy, steps: dict, hist_left, target, generator, temperature, p,
                  repeat, top_k):
    d_n, n_items, dev = pol.n_digits, pol.n_items, target.device
    cache = pol.encode(hist_left, target)
    n = len(target) * repeat
    if repeat > 1:
        cache = cache.select(torch.arange(len(target), device=dev).repeat_interleave(repeat))
    logits, cache = pol.decode(cache, torch.zeros(n, 1, dtype=torch.long, device=dev))
    last, self_kv, length = logits[:, -1], cache.self_kv, cache.length
    paths = torch.full((n, p), n_items, dtype=torch.long, device=dev)
    lengths = torch.zeros(n, dtype=torch.long, device=dev)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    banned = base_banned(pol, hist_left, target, repeat)
    full = torch.ones(n, n_items, dtype=torch.bool, device=dev) if pol.decoding == "constrained" else None
    check_done = rowshare.host_reads_cheap(dev)
    for t in range(p):
        cons, toks = full, []
        for d in range(d_n):
            tok = steps["sem_token_draw"](pol, last, d, cons, banned, done, _uniform(n, generator, dev),
                                              temperature, top_k)
            if d == 0:
                done = done | (tok == pol.eos)
                if check_done and bool(done.all()):
                    break
            toks.append(tok)
            cons = narrow(pol, cons, d, tok)
            if not (t == p - 1 and d == d_n - 1):
                last, self_kv = steps["sem_decode"](pol, self_kv, cache.mem_kv, cache.mem_allow, length, tok)
                length += 1
        if len(toks) < d_n:
            break
        item = pol.items_of(torch.stack(toks, 1))
        paths[:, t] = torch.where(done, n_items, item)
        lengths += (~done).long()
        if pol.mask_invalid:
            ban(banned, item, n_items)
    return paths, lengths, lengths < p
