"""The ``semantic-id`` policy: the official ProRL architecture (an encoder-decoder over codes).

Each item is a code of ``D`` tokens (:mod:`.semantic_ids`). The encoder reads the codes of the
last ``max_history`` items of H, the target's code and EOS; the decoder emits the path's codes,
then EOS. Defaults follow the official T5 (3 + 3 layers, d_model 128, d_ff 512, 4 heads, ReLU,
dropout 0.1); it is T5-*like*: pre-LN LayerNorm, learned absolute positions, tied output head.

The trainer sees the same interface as :class:`~prorlbench.rl.policy.PathPolicy`: paths are
item ids ``[N, P]`` padded with ``n_items``, and ``action_log_probs`` gives one log-probability
per item position plus the EOS (STOP) position. An item's log-probability is the MEAN of its
``D`` token log-probabilities (``token_logprob = "mean"``, official: an item then gets about
``1 / D`` of the weight EOS gets) or their SUM (``"sum"``, the exact sequence likelihood).

Decoding (``decoding``): ``constrained`` only allows token prefixes of catalog codes, and masks
the items in H, items already in the path and the target (``mask_invalid`` / ``mask_target``), so
every generated item is valid; ``free`` (official) allows any digit token at any position, so a
code may match no item: such an *invalid* item is kept in ``paths`` as a negative id that still
encodes its tokens (``-1 - key(tokens)``), so its log-probability can be recomputed. EOS may
only follow a complete code (both modes).

The encoder runs once per case (its cross-attention keys/values are shared by the case's ``G``
rows); decoding (:mod:`.semantic_decoding`) extends a KV cache one token per step for all rows.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .semantic_ids import SemanticIds
from .seq2seq_blocks import DecoderBlock, DecoderCache, EncoderBlock

DECODINGS = ("constrained", "free")
TOKEN_LOGPROBS = ("mean", "sum")


class SemanticIdPolicy(nn.Module):
    """Encoder-decoder over semantic-ID tokens; actions are items (ids) and STOP (= EOS)."""

    def __init__(self, sem: SemanticIds, max_path_len: int, max_history: int, d_model: int = 128,
                 n_enc_layers: int = 3, n_dec_layers: int = 3, d_ff: int = 512, n_heads: int = 4,
                 dropout: float = 0.1, activation: str = "relu", decoding: str = "constrained",
                 token_logprob: str = "mean", mask_invalid: bool = True, mask_target: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        if decoding not in DECODINGS or token_logprob not in TOKEN_LOGPROBS or activation not in ("relu", "gelu"):
            raise ValueError(f"bad decoding {decoding!r} / token_logprob {token_logprob!r} / activation {activation!r}")
        self.sem, self.n_items, self.stop_id = sem, sem.n_items, sem.n_items
        self.n_digits, self.vocab, self.eos = sem.n_digits, sem.vocab_size, sem.eos
        if self.vocab ** self.n_digits >= 2 ** 62:
            raise ValueError("codes too long for the invalid-item key (vocab ** digits must fit in int64)")
        self.max_path_len, self.max_history = max_path_len, max_history
        self.decoding, self.token_logprob = decoding, token_logprob
        # free decoding is official: nothing is masked there
        self.mask_invalid = mask_invalid and decoding == "constrained"
        self.mask_target = mask_target and decoding == "constrained"
        self.register_buffer("item_tok", sem.item_tokens(), persistent=False)  # [n_items + 1, D]
        powers = torch.tensor([self.vocab ** (self.n_digits - 1 - d) for d in range(self.n_digits)])
        self.register_buffer("key_pow", powers, persistent=False)
        keys = (self.item_tok[:-1] * powers).sum(1)
        order = keys.argsort()
        self.register_buffer("sorted_keys", keys[order], persistent=False)
        self.register_buffer("sorted_items", order, persistent=False)
        digit = sem.token_digit()
        self.register_buffer("token_digit", digit, persistent=False)
        self.tok_emb = nn.Embedding(self.vocab, d_model, padding_idx=0)
        n_enc = (max_history + 1) * self.n_digits + 1
        self.enc_pos = nn.Embedding(n_enc, d_model)
        self.dec_pos = nn.Embedding(max_path_len * self.n_digits + 1, d_model)
        self.encoder = nn.ModuleList(EncoderBlock(d_model, n_heads, d_ff, dropout, activation) for _ in range(n_enc_layers))
        self.decoder = nn.ModuleList(DecoderBlock(d_model, n_heads, d_ff, dropout, activation) for _ in range(n_dec_layers))
        self.enc_ln, self.dec_ln = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.out_bias = nn.Parameter(torch.zeros(self.vocab))
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.tok_emb.weight, std=1.0 / math.sqrt(d_model))
        with torch.no_grad():
            self.tok_emb.weight[0].zero_()

    # -- encoder ---------------------------------------------------------------------------------

    def encode(self, hist_left: torch.Tensor, target: torch.Tensor) -> DecoderCache:
        """Encode ``[codes(H[-max_history:]), code(T), EOS]`` once per case; returns an empty decoder
        cache holding the cross-attention keys/values."""
        hist_left = hist_left[:, hist_left.shape[1] - min(hist_left.shape[1], self.max_history):]
        n = hist_left.shape[0]
        items = torch.cat([hist_left, target[:, None]], 1).clamp(max=self.n_items)
        toks = torch.cat([self.item_tok[items].reshape(n, -1),
                          torch.full((n, 1), self.eos, dtype=torch.long, device=items.device)], 1)
        s = toks.shape[1]
        pos = torch.arange(s, device=toks.device) + (self.enc_pos.num_embeddings - s)  # left-aligned to the end
        x = self.drop(self.tok_emb(toks) + self.enc_pos(pos)[None])
        real = toks != 0
        allow = (real[:, None, :] | torch.eye(s, dtype=torch.bool, device=toks.device)[None])[:, None]
        for blk in self.encoder:
            x = blk(x, allow)
        mem = self.enc_ln(x)
        mem_kv = [blk.cross.keys_values(mem) for blk in self.decoder]
        return DecoderCache([None] * len(self.decoder), mem_kv, real[:, None, None, :], 0)

    # -- decoder ---------------------------------------------------------------------------------

    def decode(self, cache: DecoderCache, tokens: torch.Tensor) -> tuple[torch.Tensor, DecoderCache]:
        """Feed decoder inputs ``[N, t]`` after the cache; returns logits ``[N, t, vocab]`` and the
        extended cache (teacher forcing: the whole input at once; sampling: one token)."""
        n, t = tokens.shape
        start = cache.length
        x = self.drop(self.tok_emb(tokens) + self.dec_pos(torch.arange(start, start + t, device=tokens.device))[None])
        self_allow = None
        if t > 1:
            causal = torch.ones(t, start + t, dtype=torch.bool, device=tokens.device).tril(start)
            self_allow = causal[None, None]
        new_kv = []
        for i, blk in enumerate(self.decoder):
            x, kv = blk(x, self_allow, cache.self_kv[i], cache.mem_kv[i], cache.mem_allow)
            new_kv.append(kv)
        h = self.dec_ln(x)
        logits = h @ self.tok_emb.weight.T + self.out_bias
        return logits, DecoderCache(new_kv, cache.mem_kv, cache.mem_allow, start + t)

    # -- items <-> tokens ------------------------------------------------------------------------

    def items_of(self, tokens: torch.Tensor) -> torch.Tensor:
        """Item ids of complete codes ``[..., D]`` (tokens); ``-1 - key`` where no item has that code."""
        key = (tokens * self.key_pow).sum(-1)
        pos = torch.searchsorted(self.sorted_keys, key).clamp(max=self.n_items - 1)
        hit = self.sorted_keys[pos] == key
        return torch.where(hit, self.sorted_items[pos], -1 - key)

    def tokens_of(self, items: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` tokens of item ids (negative ids: the invalid code they encode; pads: 0)."""
        neg = items < 0
        key = (-1 - items).clamp(min=0)
        from_key = (key[..., None] // self.key_pow) % self.vocab
        return torch.where(neg[..., None], from_key, self.item_tok[items.clamp(min=0, max=self.n_items)])

    def path_tokens(self, paths: torch.Tensor, lengths: torch.Tensor, stopped: torch.Tensor) -> torch.Tensor:
        """``[N, P * D]`` decoder targets: the items' codes, EOS after the last one when stopped, 0 after."""
        n, p = paths.shape
        t = torch.arange(p, device=paths.device)[None]
        items = torch.where(t < lengths[:, None], paths, self.n_items)
        toks = self.tokens_of(items).reshape(n, p * self.n_digits)
        eos_at = (lengths * self.n_digits).clamp(max=p * self.n_digits - 1)
        put = stopped & (lengths < p)
        return toks.scatter(1, eos_at[:, None], torch.where(put, self.eos, toks.gather(1, eos_at[:, None]).squeeze(1))[:, None])

    # -- log-probabilities -----------------------------------------------------------------------

    def token_log_probs(self, hist_left: torch.Tensor, target: torch.Tensor, tokens: torch.Tensor,
                        repeat: int = 1) -> torch.Tensor:
        """Teacher-forced ``log pi(token_s | prefix)`` ``[N, S]`` of the decoder targets ``tokens``
        (``N = cases * repeat``) under the decoding distribution (masked when constrained); 0 at
        padding; ``-inf`` where a target token is forbidden by the mask."""
        return self._token_log_probs(hist_left, target, tokens, repeat)[0]

    def _token_log_probs(self, hist_left: torch.Tensor, target: torch.Tensor, tokens: torch.Tensor,
                         repeat: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        from .semantic_decoding import allowed_tokens_teacher_forced

        n, s = tokens.shape
        cache = self.encode(hist_left, target)
        if repeat > 1:
            cache = cache.select(torch.arange(len(target), device=tokens.device).repeat_interleave(repeat))
        dec_in = torch.cat([torch.zeros(n, 1, dtype=torch.long, device=tokens.device), tokens[:, :-1]], 1)
        logits, _ = self.decode(cache, dec_in)
        allow = allowed_tokens_teacher_forced(self, hist_left, target, tokens, repeat)
        allow = allow | ~allow.any(-1, keepdim=True)  # rows past EOS: no all -inf row (NaN gradients)
        logp = torch.log_softmax(logits.float().masked_fill(~allow, float("-inf")), -1)
        taken = logp.gather(2, tokens[..., None]).squeeze(2)
        return torch.where(tokens != 0, taken, torch.zeros((), device=tokens.device)), logp

    def action_log_probs(self, hist_left: torch.Tensor, target: torch.Tensor, paths: torch.Tensor,
                         lengths: torch.Tensor, stopped: torch.Tensor, repeat: int = 1, full: bool = False
                         ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``log pi(a_t)`` ``[N, P]``: item ``t`` = mean (or sum) of its tokens' log-probabilities,
        STOP = the EOS token's; 0 at inactive positions. With ``full``, also every token decision's
        whole log-distribution ``[N, P, D * vocab]`` (``-inf`` where no decision is made: the digits
        after an EOS, inactive positions), for the exact KL (a sum of per-token KLs)."""
        n, p = paths.shape
        toks = self.path_tokens(paths, lengths, stopped)
        tok_lp, logp = self._token_log_probs(hist_left, target, toks, repeat)
        tok_lp = tok_lp.view(n, p, self.n_digits)
        item_lp = tok_lp.sum(-1) if self.token_logprob == "sum" else tok_lp.mean(-1)
        t = torch.arange(p, device=paths.device)[None]
        is_item = t < lengths[:, None]
        is_stop = (t == lengths[:, None]) & stopped[:, None]
        out = torch.where(is_item, item_lp, tok_lp[..., 0])  # EOS sits at digit 0 of position len
        out = torch.where(is_item | is_stop, out, torch.zeros((), device=paths.device))
        if not full:
            return out
        digit = torch.arange(self.n_digits, device=paths.device)[None, None]
        used = is_item[..., None] | (is_stop[..., None] & (digit == 0))  # [N, P, D]
        logp = logp.view(n, p, self.n_digits, self.vocab).masked_fill(~used[..., None], float("-inf"))
        return out, logp.reshape(n, p, self.n_digits * self.vocab)

    def sft_nll(self, hist_left: torch.Tensor, target: torch.Tensor, paths: torch.Tensor, actions: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """SFT loss as the official pre-training: token cross-entropy on the reference items'
        codes then EOS (``actions [N, P]``: items, then ``stop_id`` when the path is shorter than
        P, -1 after). Tokens the decoding mask forbids give no loss. Returns ``(mean nll, tokens)``."""
        lengths = ((actions >= 0) & (actions != self.stop_id)).sum(1)
        stopped = (actions == self.stop_id).any(1)
        toks = self.path_tokens(paths, lengths, stopped)
        tok_lp, _ = self._token_log_probs(hist_left, target, toks, 1)
        ok = (toks != 0) & torch.isfinite(tok_lp)
        count = ok.sum()
        return -torch.where(ok, tok_lp, torch.zeros((), device=toks.device)).sum() / count.clamp(min=1), count

    # -- decoding (see .semantic_decoding) -------------------------------------------------------

    def sample(self, hist_left: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None,
               greedy: bool | torch.Tensor = False, temperature: float = 1.0, max_len: int | None = None,
               repeat: int = 1, stop_threshold: float = 0.5, top_k: int = 0, rule: str = "threshold"
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled / greedy paths, all ``N * repeat`` rows at once: ``(paths [N*repeat, P], lengths,
        stopped)``; greedy rows follow ``rule`` (``'greedy'``: token argmax, EOS included;
        ``'threshold'``); see :func:`~prorlbench.rl.semantic_decoding.sample_paths`."""
        from .semantic_decoding import sample_paths

        return sample_paths(self, hist_left, target, generator, greedy=greedy, temperature=temperature,
                            max_len=max_len, repeat=repeat, stop_threshold=stop_threshold, top_k=top_k,
                            greedy_rule=rule)

    def beam_search(self, hist_left: torch.Tensor, target: torch.Tensor, k: int, width: int = 10,
                    length_norm: float = 0.0, max_len: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``k`` best paths per case by item-level beam search (``max(width, k)`` beams):
        ``(paths [N * k, P], lengths, stopped, scores [N, k])``; see
        :func:`~prorlbench.rl.semantic_decoding.beam_paths`."""
        from .semantic_decoding import beam_paths

        paths, lengths, stopped, scores = beam_paths(self, hist_left, target, width, k, max_len=max_len,
                                                     length_norm=length_norm)
        return paths, lengths, stopped, scores.view(len(target), k)
