"""SASRec user simulator (Kang & McAuley, ICDM 2018), the default simulator of SPEC section 2.

Our own small torch module that keeps RecBole's SASRec hyper-parameters and layout: learned item
and positional embeddings summed, LayerNorm + dropout, ``n_layers`` post-LN transformer blocks
(multi-head causal self-attention with attention dropout, then a GELU feed-forward layer), item
embedding shared between input and output (``score(S) = u(S) . E``), weights initialised from
N(0, 0.02), LayerNorm eps 1e-12, dropout 0.5 on hidden states and attention during training.
Trained with full-softmax cross-entropy by :mod:`prorlbench.seq.seqtrain` (RecBole's ``CE`` loss).

Deviations from RecBole: the ``paper`` profile keeps RecBole's batch of 2048 windows only where
an epoch still has 20 optimizer steps (``min_epoch_steps``; the shipped datasets have 800 to 3,300
windows, an epoch of one or two steps), and patience never ends training while the model is no
better than popularity (``wait_for_popularity``; :mod:`prorlbench.seq.seqfit`); sequences are right-padded with the id ``n_items`` (RecBole pads with
0 and shifts item ids by one); the padding row of the embedding is zero and is never a target.
Position ids count from 0 at the first real item, as in RecBole's right-padded batches; padded
positions come *after* the sequence, so the causal mask alone keeps them out of every real row
(their own rows are unspecified). Every position is a training target (RecBole trains on the
last position of each prefix-augmented sequence, which covers the same transitions). Attention
uses :func:`torch.nn.functional.scaled_dot_product_attention`.

For reference implementations that left-pad (the official ProRL code), :meth:`SASRec.encode`
takes optional explicit ``positions`` and a ``key_mask`` of real items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from prorlbench import hookimpl
from prorlbench.api import SimulatorSpec
from prorlbench.toolkit import ConfigError, SeqTrainConfig, SharedEmbeddingHead, opt, simulator_build


@dataclass
class SASRecConfig(SeqTrainConfig):
    """SASRec's architecture keys; the training keys (lr, epochs, ...) are ``SeqTrainConfig``'s."""

    hidden: int = opt(64, "hidden size d (item and position embeddings, attention, output)")
    n_layers: int = opt(2, "number of transformer blocks")
    n_heads: int = opt(2, "attention heads per block")
    inner: int = opt(256, "feed-forward inner size")
    dropout: float = opt(0.5, "dropout on hidden states and attention weights during training")
    layer_norm_eps: float = opt(1e-12, "LayerNorm epsilon (RecBole default)")

    PROFILES: ClassVar[dict[str, dict]] = {
        "quick": {"epochs": 15, "patience": 3, "batch_size": 128},
        "paper": {"epochs": 300, "patience": 10, "batch_size": 2048, "min_epoch_steps": 20},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("hidden", "n_layers", "n_heads", "inner"):
            if getattr(self, key) < 1:
                raise ConfigError(f"simulators.sasrec: {key} must be >= 1, got {getattr(self, key)}")
        if self.hidden % self.n_heads:
            raise ConfigError(f"simulators.sasrec: hidden {self.hidden} must be divisible by n_heads "
                              f"{self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"simulators.sasrec: dropout must be in [0, 1), got {self.dropout}")
        if self.layer_norm_eps <= 0:
            raise ConfigError(f"simulators.sasrec: layer_norm_eps must be > 0, got {self.layer_norm_eps}")


MIN_SHARED_ROWS = 64
"""The fewest token rows of either part of :meth:`SASRec.encode_shared_prefix` (else the plain call)."""


class _Block(nn.Module):
    """Post-LN transformer block as in RecBole (attention -> add & norm -> FFN -> add & norm)."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        d = cfg.hidden
        if d % cfg.n_heads:
            raise ValueError(f"hidden {d} is not divisible by n_heads {cfg.n_heads}")
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.ff1 = nn.Linear(d, cfg.inner)
        self.ff2 = nn.Linear(cfg.inner, d)
        self.ln2 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.p = cfg.dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        return self._after(x, self._attend(self.qkv(x), attn_mask))

    def _attend(self, qkv: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, d3 = qkv.shape
        d = d3 // 3
        q, k, v = qkv.view(B, T, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        p = self.p if self.training else 0.0
        if attn_mask is None:
            a = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask[:, None], dropout_p=p)
        return a.transpose(1, 2).reshape(B, T, d)

    def _after(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        p = self.p if self.training else 0.0
        x = self.ln1(x + F.dropout(self.out(a), p, self.training))
        h = self.ff2(F.gelu(self.ff1(x)))
        return self.ln2(x + F.dropout(h, p, self.training))

    def forward_shared(self, xs: torch.Tensor, xo: torch.Tensor, group: torch.Tensor, first: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` of rows ``cat([xs[group], xo], 1)`` whose first ``S`` positions are
        shared by the rows of a group: their per-token work once per group (``xs [C, S, d]``),
        the attention over every row's whole sequence, as :meth:`forward` runs it."""
        s = xs.shape[1]
        a = self._attend(torch.cat([self.qkv(xs)[group], self.qkv(xo)], 1), None)
        return self._after(xs, a[first, :s]), self._after(xo, a[:, s:])


class SASRec(SharedEmbeddingHead, nn.Module):
    """Causal self-attentive sequential recommender implementing ``SequenceModel``."""

    def __init__(self, cfg: SASRecConfig, n_items: int):
        super().__init__()
        self.n_items = n_items
        self.max_seq_len = cfg.max_seq_len
        self.item_emb = nn.Embedding(n_items + 1, cfg.hidden)
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.hidden)
        self.ln = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.p = cfg.dropout
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, cfg.init_std)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    def encode(self, seqs: torch.Tensor, lengths: torch.Tensor, *, positions: torch.Tensor | None = None,
               key_mask: torch.Tensor | None = None, attn_bias: torch.Tensor | None = None) -> torch.Tensor:
        """States after each prefix, ``[B, T, d]`` (see ``SequenceModel.encode``).

        Right-padded input needs no keyword. ``positions [B, T]`` and ``key_mask [B, T]``
        (True at real items) let a caller feed left-padded sequences: keys outside ``key_mask``
        are hidden from every row (a row still sees itself, so all-padding rows stay finite).
        ``attn_bias [B, T, T]`` replaces that mask by an additive one, as RecBole builds it
        (the RL switch ``reward_state = 'official-leftpad'``).
        """
        T = seqs.shape[1]
        if T > self.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds max_seq_len {self.max_seq_len}")
        if positions is None:
            pos = self.pos_emb.weight[:T][None]
        else:
            pos = self.pos_emb(positions.clamp(0, self.max_seq_len - 1))
        x = self.item_emb(seqs) + pos
        x = F.dropout(self.ln(x), self.p, self.training)
        mask = attn_bias
        if key_mask is not None and attn_bias is None:
            causal = torch.ones(T, T, dtype=torch.bool, device=seqs.device).tril()
            eye = torch.eye(T, dtype=torch.bool, device=seqs.device)
            mask = (causal[None] & key_mask[:, None, :]) | eye[None]
        for blk in self.blocks:
            x = blk(x, mask)
        return x

    def encode_shared_prefix(self, seqs: torch.Tensor, lengths: torch.Tensor, shared: int, group: torch.Tensor,
                             first: torch.Tensor) -> torch.Tensor:
        """``encode(seqs, lengths)``, bit for bit, for rows that come in groups with equal first
        ``shared`` items (``group [B]``: each row's group; ``first [C]``: one row of each group).

        The shared items' per-token work (embeddings, projections, feed-forward layers, layer
        norms) is done once per group, and the causal attention over every row's whole sequence
        is the one call :meth:`encode` makes, on the same inputs: a row of a matmul does not depend
        on the other rows, so the result is identical. That holds from a few rows on (a matmul of
        fewer than about 11 rows takes another kernel, whose last bits differ): a part of fewer
        than :data:`MIN_SHARED_ROWS` token rows, or a model in training mode, takes :meth:`encode`."""
        T = seqs.shape[1]
        if self.training or min(first.shape[0] * shared, seqs.shape[0] * (T - shared)) < MIN_SHARED_ROWS:
            return self.encode(seqs, lengths)
        if T > self.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds max_seq_len {self.max_seq_len}")
        pos = self.pos_emb.weight[:T][None]
        xs = self.ln(self.item_emb(seqs[first, :shared]) + pos[:, :shared])
        xo = self.ln(self.item_emb(seqs[:, shared:]) + pos[:, shared:])
        for blk in self.blocks:
            xs, xo = blk.forward_shared(xs, xo, group, first)
        return torch.cat([xs[group], xo], 1)


build = simulator_build("sasrec", SASRec)
"""Train SASRec on ``data.sequences["train"]`` (or load it from ``cache_dir``)."""


@hookimpl
def register_simulators(register):
    register(SimulatorSpec(
        name="sasrec",
        summary="SASRec (2 blocks, 2 heads, hidden 64, max 50, dropout 0.5; RecBole hyper-parameters)",
        build=build,
        config_cls=SASRecConfig,
    ))
