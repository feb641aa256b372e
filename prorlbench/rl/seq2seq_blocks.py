"""Transformer blocks of the ``semantic-id`` policy (:mod:`.seq2seq_policy`): pre-LN encoder and
decoder blocks, and the decoder's key/value cache (self-attention grows one token per step; the
cross-attention keys/values of the encoder output are computed once per case)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.q, self.kv, self.o = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.heads, self.p = heads, dropout

    def split(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        return x.view(n, t, self.heads, d // self.heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, -1)
        return self.split(k), self.split(v)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allow: torch.Tensor | None) -> torch.Tensor:
        n, t, d = x.shape
        att = F.scaled_dot_product_attention(self.split(self.q(x)), k, v, attn_mask=allow,
                                             dropout_p=self.p if self.training else 0.0)
        return self.o(att.transpose(1, 2).reshape(n, t, d))


class FeedForward(nn.Sequential):
    def __init__(self, d: int, d_ff: int, dropout: float, activation: str):
        act = {"relu": nn.ReLU(), "gelu": nn.GELU()}[activation]
        super().__init__(nn.Linear(d, d_ff), act, nn.Dropout(dropout), nn.Linear(d_ff, d))


class EncoderBlock(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int, dropout: float, activation: str):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.att, self.ff, self.drop = Attention(d, heads, dropout), FeedForward(d, d_ff, dropout, activation), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allow: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.drop(self.att(h, *self.att.keys_values(h), allow))
        return x + self.drop(self.ff(self.ln2(x)))


class DecoderBlock(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int, dropout: float, activation: str):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_att, self.cross = Attention(d, heads, dropout), Attention(d, heads, dropout)
        self.ff, self.drop = FeedForward(d, d_ff, dropout, activation), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, self_allow: torch.Tensor | None, past: tuple | None,
                mem_kv: tuple[torch.Tensor, torch.Tensor], mem_allow: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        h = self.ln1(x)
        k, v = self.self_att.keys_values(h)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        x = x + self.drop(self.self_att(h, k, v, self_allow))
        x = x + self.drop(self.cross(self.ln2(x), *mem_kv, mem_allow))
        return x + self.drop(self.ff(self.ln3(x))), (k, v)


@dataclass
class DecoderCache:
    """Per decoder block: self-attention keys/values so far and the cross-attention keys/values."""

    self_kv: list[tuple[torch.Tensor, torch.Tensor] | None]
    mem_kv: list[tuple[torch.Tensor, torch.Tensor]]
    mem_allow: torch.Tensor  # [N, 1, 1, S_enc]
    length: int = 0

    def select(self, idx: torch.Tensor) -> "DecoderCache":
        """Rows ``idx`` (repeat, reorder or prune rows: beams, G samples per case)."""
        pick = (lambda kv: None if kv is None else (kv[0][idx], kv[1][idx]))
        return DecoderCache([pick(kv) for kv in self.self_kv], [pick(kv) for kv in self.mem_kv],  # type: ignore[misc]
                            self.mem_allow[idx], self.length)
