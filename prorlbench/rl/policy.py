"""The one policy of the RL family: ``pi(a | H, T, L[:t])`` over catalog items plus STOP.

A small pre-LN causal transformer over the token row

    [h_1 .. h_n (left-padded), <T>, a_1 .. a_t]

where ``<T>`` is the target's item embedding plus a learned "target" marker. Left padding puts
``<T>`` at a fixed index, so learned absolute positions mean "distance from the end of H". The
output at ``<T>`` predicts action 0, the output at ``a_t`` predicts action ``t``. The output head
is tied to the item embeddings (one logit per item) plus a separate STOP logit (index
``n_items``).

What the trainer needs from a policy (a semantic-ID policy provides the same): ``sample`` (paths,
lengths, stopped for ``repeat`` rows per case, greedy or sampled), ``action_log_probs`` (log pi of
given actions, optionally with the full per-step distribution), ``beam_search``, ``n_items``,
``max_path_len``, ``stop_id`` and ``parameters()``; decoding lives in :mod:`prorlbench.rl.decode`.

Validity mask (``mask_invalid``): items in H, items already in the path and (``mask_target``) the
target itself get probability 0, so sampled paths are valid by construction. STOP is always
allowed. A path that reaches ``max_path_len`` items ends without a STOP action.

The prefix ``[H, <T>]`` does not depend on the path (causal attention), so it is encoded once per
case and its keys/values are shared by the case's ``G`` rows; sampling then extends a KV cache one
token per step for all ``N = B * G`` rows at once (no Python loop over paths).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .taken import dense_ban_mask, taken_log_probs, teacher_forced_bans
from .tensors import CaseTensors

__all__ = ["PathPolicy", "CaseTensors"]


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class _Block(nn.Module):
    """Pre-LN transformer block that attends over cached keys/values plus the new tokens."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.heads = heads
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allow: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x [N, t, d]`` new tokens; ``allow [N, 1, t, s_past + t]``; returns (out, (k, v) incl. past)."""
        n, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        p = self.drop.p if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=allow, dropout_p=p)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(n, t, d)))
        return x + self.drop(self.ff(self.ln2(x))), (k, v)


@dataclass
class _Cache:
    """Keys/values of every block for the tokens seen so far, and which of them are real."""

    kv: list[tuple[torch.Tensor, torch.Tensor]]
    key_ok: torch.Tensor  # [N, s] bool
    length: int  # tokens seen (s)

    def index(self, rows: torch.Tensor) -> "_Cache":
        """The cache of rows ``rows`` (beam search reorders its beams)."""
        return _Cache([(k[rows], v[rows]) for k, v in self.kv], self.key_ok[rows], self.length)

    def repeat(self, g: int) -> "_Cache":
        if g == 1:
            return self
        return _Cache([(k.repeat_interleave(g, 0), v.repeat_interleave(g, 0)) for k, v in self.kv],
                      self.key_ok.repeat_interleave(g, 0), self.length)


class PathPolicy(nn.Module):
    """Autoregressive path policy; action ids are items ``0..n_items-1`` and STOP ``= n_items``."""

    def __init__(self, n_items: int, max_path_len: int, max_history: int, d_model: int = 64,
                 n_layers: int = 2, n_heads: int = 2, dropout: float = 0.1,
                 mask_invalid: bool = True, mask_target: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_items, self.max_path_len, self.max_history = n_items, max_path_len, max_history
        self.stop_id = n_items
        self.mask_invalid, self.mask_target = mask_invalid, mask_target
        self.item_emb = nn.Embedding(n_items + 1, d_model, padding_idx=n_items)  # + pad
        self.target_marker = nn.Parameter(torch.zeros(d_model))
        self.pos_emb = nn.Embedding(max_history + 1 + max_path_len, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, dropout) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.stop_head = nn.Linear(d_model, 1)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.item_emb.weight, std=1.0 / math.sqrt(d_model))
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    # -- the forward pass (prefix once per case, then path tokens against its cache) ------------

    def _run(self, x: torch.Tensor, allow: torch.Tensor, cache: _Cache | None, key_ok_new: torch.Tensor
             ) -> tuple[torch.Tensor, _Cache]:
        kv = []
        for i, blk in enumerate(self.blocks):
            x, kvi = blk(x, allow, cache.kv[i] if cache is not None else None)
            kv.append(kvi)
        key_ok = key_ok_new if cache is None else torch.cat([cache.key_ok, key_ok_new], 1)
        return self.ln(x), _Cache(kv, key_ok, (cache.length if cache is not None else 0) + x.shape[1])

    def _prefill(self, hist_left: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, _Cache]:
        """Encode ``[H, <T>]``: returns the output at ``<T>`` ``[N, d]`` (predicts action 0) and the cache."""
        hist_left = hist_left[:, hist_left.shape[1] - min(hist_left.shape[1], self.max_history):]  # most recent
        n, h = hist_left.shape
        x = torch.cat([self.item_emb(hist_left), (self.item_emb(target) + self.target_marker)[:, None]], 1)
        pos = torch.arange(h + 1, device=x.device) + (self.max_history - h)
        x = self.drop(x + self.pos_emb(pos)[None])
        real = torch.cat([hist_left != self.n_items, torch.ones(n, 1, dtype=torch.bool, device=x.device)], 1)
        s = h + 1
        eye = torch.eye(s, dtype=torch.bool, device=x.device)
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).tril()
        allow = ((causal[None] & real[:, None, :]) | eye[None])[:, None]
        out, cache = self._run(x, allow, None, real)
        return out[:, -1], cache

    def _extend(self, cache: _Cache, tokens: torch.Tensor, start: int) -> tuple[torch.Tensor, _Cache]:
        """Encode path tokens ``[N, t]`` at path positions ``start..start+t-1`` after the cache."""
        n, t = tokens.shape
        x = self.item_emb(tokens)
        pos = torch.arange(t, device=x.device) + self.max_history + 1 + start
        x = self.drop(x + self.pos_emb(pos)[None])
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        allow = torch.cat([cache.key_ok[:, None, :].expand(n, t, cache.length), causal[None].expand(n, t, t)], 2)
        return self._run(x, allow[:, None], cache, torch.ones(n, t, dtype=torch.bool, device=x.device))

    def _head(self, out: torch.Tensor) -> torch.Tensor:
        # the bias inside the matmul (addmm): one pass over the [.., n_items] logits fewer than
        # ``out @ E.T + b``, with bit-identical values and gradients (tests/rl)
        items = torch.addmm(self.item_bias, out.reshape(-1, out.shape[-1]), self.item_emb.weight[: self.n_items].T)
        return torch.cat([items.view(*out.shape[:-1], self.n_items), self.stop_head(out)], -1)

    def _outputs(self, hist_left: torch.Tensor, target: torch.Tensor, gen: torch.Tensor, repeat: int = 1
                 ) -> torch.Tensor:
        """Transformer outputs ``[N * repeat, t + 1, d]`` that predict actions ``0..t``."""
        first, cache = self._prefill(hist_left, target)
        first = first.repeat_interleave(repeat, 0) if repeat > 1 else first
        if gen.shape[1] == 0:
            return first[:, None]
        out, _ = self._extend(cache.repeat(repeat), gen, 0)
        return torch.cat([first[:, None], out], 1)

    def forward(self, hist_left: torch.Tensor, target: torch.Tensor, gen: torch.Tensor, repeat: int = 1
                ) -> torch.Tensor:
        """Raw logits ``[N * repeat, t + 1, n_items + 1]`` for actions ``0..t`` given ``gen [N * repeat, t]``
        (each case's ``repeat`` rows adjacent; the prefix is encoded once per case)."""
        return self._head(self._outputs(hist_left, target, gen, repeat))

    # -- masks ----------------------------------------------------------------------------------

    def _base_banned(self, hist_left: torch.Tensor, target: torch.Tensor, repeat: int = 1) -> torch.Tensor:
        """``[N * repeat, n_items + 2]`` bool: actions banned at every step (column ``n_items + 1``
        is a scratch column for pads; column ``n_items`` is STOP, never banned)."""
        n = hist_left.shape[0]
        banned = torch.zeros(n, self.n_items + 2, dtype=torch.bool, device=hist_left.device)
        if self.mask_invalid:
            banned.scatter_(1, self._pads_to_scratch(hist_left), True)
        if self.mask_target:
            banned.scatter_(1, target[:, None], True)
        banned[:, self.n_items] = False
        return banned.repeat_interleave(repeat, 0) if repeat > 1 else banned

    def _pads_to_scratch(self, items: torch.Tensor) -> torch.Tensor:
        return torch.where(items >= self.n_items, self.n_items + 1, items)

    def masked_log_probs(self, hist_left: torch.Tensor, target: torch.Tensor, paths: torch.Tensor,
                         n_actions: int, repeat: int = 1) -> torch.Tensor:
        """Teacher-forced ``log pi(. | prefix)`` ``[N, n_actions, n_items + 1]`` for the first
        ``n_actions`` decisions of ``paths [N, >= n_actions - 1]`` (padded with ``n_items``);
        ``N = cases * repeat``."""
        gen = paths[:, : n_actions - 1]
        logits = self(hist_left, target, gen, repeat=repeat)
        bans = teacher_forced_bans(self, hist_left, target, gen, n_actions, repeat)
        banned = dense_ban_mask(bans, n_actions, self.n_items + 1)
        if banned is not None:
            logits = logits.masked_fill_(banned, float("-inf"))  # a fresh tensor
        return torch.log_softmax(logits.float(), -1)

    def taken_log_probs(self, hist_left: torch.Tensor, target: torch.Tensor, paths: torch.Tensor,
                        actions: torch.Tensor, repeat: int = 1) -> torch.Tensor:
        """``masked_log_probs(...).gather(actions)`` ``[N, P]``, bit for bit with its gradients,
        without the ``[N, P, n_items + 1]`` tensors (:mod:`prorlbench.rl.taken`)."""
        n_actions = actions.shape[1]
        gen = paths[:, : n_actions - 1]
        out = self._outputs(hist_left, target, gen, repeat)
        return taken_log_probs(out, self.item_emb.weight[: self.n_items], self.item_bias, self.stop_head(out),
                               actions, teacher_forced_bans(self, hist_left, target, gen, n_actions, repeat))

    def action_log_probs(self, hist_left: torch.Tensor, target: torch.Tensor, paths: torch.Tensor,
                         lengths: torch.Tensor, stopped: torch.Tensor, repeat: int = 1,
                         full: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``log pi(a_t)`` ``[N, P]`` of the actions taken (items, then STOP when ``stopped``);
        0 at inactive positions. ``P = paths.shape[1]``; ``N = cases * repeat``. With ``full``,
        also the whole masked ``log pi(. | prefix)`` ``[N, P, n_items + 1]`` (for the exact KL)."""
        n, p = paths.shape
        t = torch.arange(p, device=paths.device)[None]
        actions = torch.where(t < lengths[:, None], paths, self.stop_id)
        active = (t < lengths[:, None]) | ((t == lengths[:, None]) & stopped[:, None])
        if full:
            logp = self.masked_log_probs(hist_left, target, paths, p, repeat)  # [N, P, V + 1]
            taken = logp.gather(2, actions[..., None]).squeeze(2)
        else:
            taken = self.taken_log_probs(hist_left, target, paths, actions, repeat)
        taken = torch.where(active, taken, torch.zeros((), device=paths.device))
        return (taken, logp) if full else taken

    # -- decoding (prorlbench.rl.decode) ---------------------------------------------------------

    @torch.no_grad()
    def sample(self, hist_left: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None,
               greedy: bool | torch.Tensor = False, temperature: float = 1.0,
               max_len: int | None = None, repeat: int = 1, stop_threshold: float = 0.5,
               top_k: int = 0, rule: str = "threshold") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or greedily decode) ``repeat`` paths per case, all rows at once (KV cache).

        ``greedy``: a bool or a ``[N * repeat]`` bool tensor of greedy rows, which follow ``rule``
        (``'threshold'`` or ``'greedy'``, see :mod:`prorlbench.rl.decode`). Sampled rows draw at
        ``temperature`` among the ``top_k`` likeliest actions (all when 0), one uniform number per
        row and step from ``generator``. Returns ``(paths [N * repeat, P] padded with n_items,
        lengths, stopped)``; a case's rows are adjacent.
        """
        from .decode import sample_paths

        return sample_paths(self, hist_left, target, generator, greedy=greedy, temperature=temperature,
                            max_len=max_len, repeat=repeat, stop_threshold=stop_threshold, top_k=top_k,
                            rule=rule)

    @torch.no_grad()
    def beam_search(self, hist_left: torch.Tensor, target: torch.Tensor, k: int, width: int = 10,
                    length_norm: float = 0.0, max_len: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``k`` best paths per case (:func:`prorlbench.rl.decode.beam_search`)."""
        from .decode import beam_search

        return beam_search(self, hist_left, target, k, width=width, length_norm=length_norm, max_len=max_len)
