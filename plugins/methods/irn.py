"""``irn``: the Influential Recommender Network (SPEC section 6).

Source: H. Zhu, H. Zhao, Z. Ma, W. Ni, Z. Yang. "Influential Recommender System", ICDE 2023
(arXiv:2211.10002); IRN is its model. Written from the paper's description, no code copied.

The network is a decoder-only transformer over the window ``[history…, path…, objective]``,
left-padded to a fixed width ``W = max_history + max_path_len + 1`` so that the objective always
sits in the last slot. Its attention is biased by the *Personalized Impressionability Mask* (PIM):
row i may attend to

* every earlier-or-equal real position j ≤ i (not the objective slot) with bias ``+w_h``,
* the objective column (slot W − 1), from every row, with bias ``w_obj · r_u`` where
  ``r_u = Linear(user embedding)`` (one value per head): how strongly this user is swayed by
  the objective,
* nothing else (future positions and padding get −inf).

``w_h`` and ``w_obj`` are learned scalars. The output at slot i scores the item of slot i + 1
(tied input/output item embeddings). Position embeddings count from the first real item of the
window; the objective slot carries a learned "objective" embedding instead of a position, so the
row just before the objective cannot tell from its position that its successor is the objective
(in training that row always predicts the objective; at generation it must predict the next step).

Training (``fit``): next-item cross-entropy on windows cut from the training sequences: pick an
item as the objective, take up to ``W − 1`` items before it as the context (a random length, so
every amount of left padding is seen), and predict every context item's successor, the last one
being the objective itself (this is how the model learns to reach T and stop).

Generation (``generate``): greedy. Read the scores at slot W − 2 (the last item before the
objective), drop items of the history and the path, take the best; if it is T the path ends,
otherwise the item is written just before the objective slot (the window shifts left by one) and
the next step runs. At most ``max_path_len`` items. Candidates: :mod:`prorlbench.seq.decoding` (candidate 0 is the
paper's path).

Deviations:

* User embedding. The paper learns one embedding per user id. Here test users are unseen (the
  split is user-disjoint), so the user embedding is the mean of the item embeddings of the
  history: the first ``max_history`` items of a training window, the case's H at generation.
* No validation-based checkpoint selection: a fixed number of ``steps`` (``quick``: about two
  minutes on a busy 2-core CPU; ``paper``: meant for a GPU).
* Training windows come from ``data.sequences["train"]``; a dataset with ready-made cases only
  uses ``H + P*`` of its training cases as the sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from prorlbench import hookimpl
from prorlbench.api import Case, FitContext, MethodSpec
from prorlbench.toolkit import ConfigError, decoding, opt, tqdm


@dataclass
class IRNConfig:
    d_model: int = opt(64, "hidden size")
    n_layers: int = opt(2, "transformer blocks")
    n_heads: int = opt(2, "attention heads")
    dropout: float = opt(0.1, "dropout during training")
    max_history: int = opt(10, "history items the model reads (the most recent ones)")
    steps: int = opt(3000, "gradient steps", ge=0)
    batch_size: int = opt(256, "training windows per step")
    lr: float = opt(1e-3, "AdamW learning rate", gt=0)
    weight_decay: float = opt(0.0, "AdamW weight decay", ge=0)
    min_context: int = opt(2, "shortest context (items before the objective) of a training window")
    gen_batch_size: int = opt(1024, "cases per generation batch")

    PROFILES: ClassVar[dict[str, dict]] = {"quick": {"steps": 400, "batch_size": 128}, "paper": {"steps": 20000}}

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "max_history", "batch_size", "min_context", "gen_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"irn: {name} must be >= 1")
        if self.steps < 0:
            raise ConfigError("irn: steps must be >= 0")
        if self.d_model % self.n_heads:
            raise ConfigError(f"irn: d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("irn: dropout must be in [0, 1)")


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


class Block(nn.Module):
    """Pre-norm transformer block whose attention takes an additive bias (the PIM)."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, W, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, W, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=self.dropout if self.training else 0.0)
        x = x + F.dropout(self.proj(att.transpose(1, 2).reshape(B, W, d)), self.dropout, self.training)
        return x + self.mlp(self.ln2(x))


class IRNNet(nn.Module):
    """Decoder-only transformer with the Personalized Impressionability Mask."""

    def __init__(self, n_items: int, width: int, cfg: IRNConfig):
        super().__init__()
        d = cfg.d_model
        self.n_items, self.width, self.n_heads = n_items, width, cfg.n_heads
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=n_items)
        self.pos_emb = nn.Embedding(width - 1, d)
        self.obj_emb = nn.Parameter(torch.zeros(d))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(d, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.user_proj = nn.Linear(d, cfg.n_heads)  # r_u, one per head
        self.w_h = nn.Parameter(torch.tensor(1.0))
        self.w_obj = nn.Parameter(torch.tensor(1.0))
        nn.init.normal_(self.item_emb.weight, std=0.05)
        nn.init.normal_(self.pos_emb.weight, std=0.05)
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    def user_embedding(self, seqs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """Mean item embedding over the history slots: ``[B, d]``."""
        m = hist_mask.float()
        return (self.item_emb(seqs) * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)

    def pim_bias(self, seqs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """The PIM as an additive attention bias ``[B, heads, W, W]``."""
        B, W = seqs.shape
        dev = seqs.device
        r_u = self.user_proj(self.user_embedding(seqs, hist_mask))  # [B, heads]
        i = torch.arange(W, device=dev)
        causal = (i[None, :] <= i[:, None]) & (i[None, :] < W - 1)  # [W(row), W(col)]
        visible = causal[None] & (seqs != self.n_items)[:, None, :]  # padded columns hidden
        bias = torch.where(visible, self.w_h, torch.tensor(float("-inf"), device=dev))  # [B, W, W]
        bias = bias[:, None].expand(B, self.n_heads, W, W).clone()
        bias[..., W - 1] = (self.w_obj * r_u)[:, :, None]  # objective column: every row, w_obj * r_u
        return bias

    def forward(self, seqs: torch.Tensor, hist_mask: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[B, W, d]`` of left-padded windows whose last slot is the objective."""
        W = seqs.shape[1]
        # Positions count from the first real item (so the row just before the objective slot is
        # not recognisable by its position); the objective slot gets its own learned embedding.
        first = (seqs[:, : W - 1] == self.n_items).sum(1, keepdim=True)
        pos = (torch.arange(W, device=seqs.device)[None, :] - first).clamp(0, W - 2)
        x = self.item_emb(seqs) + self.pos_emb(pos)
        x = torch.cat([x[:, : W - 1], x[:, W - 1:] - self.pos_emb(pos[:, W - 1:]) + self.obj_emb], 1)
        x = self.drop(x)
        mask = self.pim_bias(seqs, hist_mask)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-item scores ``[..., n_items]`` (tied output embeddings)."""
        return hidden @ self.item_emb.weight[: self.n_items].T


# --------------------------------------------------------------------------------------------
# Training windows
# --------------------------------------------------------------------------------------------


def sample_windows(flat: np.ndarray, pos: np.ndarray, eligible: np.ndarray, rng: np.random.Generator,
                   batch: int, width: int, min_context: int, max_history: int, pad: int):
    """A batch of left-padded training windows.

    ``flat``: all training sequences concatenated; ``pos[g]``: index of ``flat[g]`` in its own
    sequence; ``eligible``: global indices that can be objectives (``pos >= 1``).
    Returns ``(seqs [B, W], hist_mask [B, W], targets [B, W])`` with target ``pad`` where no loss.
    """
    g = eligible[rng.integers(0, len(eligible), size=batch)]  # objective positions
    want = rng.integers(min(min_context, width - 1), width, size=batch)  # context length in [min, W-1]
    ctx_len = np.minimum(pos[g], want)
    back = (width - 1) - np.arange(width)  # slot s holds flat[g - back[s]]
    src = g[:, None] - back[None, :]
    real = back[None, :] <= ctx_len[:, None]  # includes the objective slot (back = 0)
    seqs = np.where(real, flat[np.clip(src, 0, None)], pad)
    first = (width - 1) - ctx_len  # slot of the first context item
    slot = np.arange(width)[None, :]
    hist_mask = (slot >= first[:, None]) & (slot < np.minimum(first + max_history, width - 1)[:, None])
    targets = np.full_like(seqs, pad)
    targets[:, :-1] = np.where(real[:, :-1], seqs[:, 1:], pad)
    return seqs, hist_mask, targets


# --------------------------------------------------------------------------------------------
# Method
# --------------------------------------------------------------------------------------------


class IRN:
    """Influential Recommender Network: greedy decoding toward the objective under the PIM."""

    def __init__(self, config: IRNConfig | None = None):
        self.cfg = config or IRNConfig()

    def fit(self, ctx: FitContext) -> None:
        cfg = self.cfg
        self.n_items, self.max_path_len, self.device = ctx.data.n_items, ctx.max_path_len, ctx.device
        self.width = cfg.max_history + ctx.max_path_len + 1
        seqs = [s for s in ctx.data.sequences.get("train", []) if len(s) > 1]
        if not seqs:
            seqs = [tuple(c.history) + tuple(c.reference) for c in ctx.cases.train]
            seqs = [s for s in seqs if len(s) > 1]
        if not seqs:
            raise ConfigError("irn: no training sequence with two or more items to train on")
        flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs])
        pos = np.concatenate([np.arange(len(s)) for s in seqs])
        eligible = np.nonzero(pos >= 1)[0]
        rng = np.random.default_rng(ctx.seed)
        devices = [ctx.device] if ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # seeded init and dropout, global RNG restored
            torch.manual_seed(ctx.seed)
            self.net = IRNNet(self.n_items, self.width, cfg).to(ctx.device)
            opt_ = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            self.net.train()
            for step in tqdm(range(cfg.steps), desc="irn", disable=not ctx.progress):
                s, h, t = sample_windows(flat, pos, eligible, rng, cfg.batch_size, self.width,
                                         cfg.min_context, cfg.max_history, self.n_items)
                s, h, t = (torch.from_numpy(a).to(ctx.device) for a in (s, h, t))
                logits = self.net.item_logits(self.net(s, h))
                loss = F.cross_entropy(logits.reshape(-1, self.n_items), t.reshape(-1), ignore_index=self.n_items)
                opt_.zero_grad(set_to_none=True)
                loss.backward()
                opt_.step()
                if step % 50 == 0 or step == cfg.steps - 1:
                    ctx.logger.log(step, loss=loss.item())
        self.net.eval()

    def generate(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        return decoding.in_batches(self._generate_batch, cases, k, self.cfg.gen_batch_size)

    @torch.no_grad()
    def _generate_batch(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        n, L, W, dev = self.n_items, self.max_path_len, self.width, self.device
        kk = max(1, min(k, n))
        N = len(cases)
        seqs = torch.full((N, W), n, dtype=torch.long)
        hist_mask = torch.zeros(N, W, dtype=torch.bool)
        banned = torch.zeros(N, n + 1, dtype=torch.bool)
        for r, c in enumerate(cases):
            h = list(c.history)[-self.cfg.max_history:]
            if h:
                seqs[r, W - 1 - len(h): W - 1] = torch.tensor(h)
                hist_mask[r, W - 1 - len(h): W - 1] = True
            seqs[r, W - 1] = c.target
            banned[r, list(c.history)] = True  # the whole history, also items beyond max_history
        st = decoding.Rows.start(seqs[:, W - 1].to(dev), banned.to(dev), kk, n, L)
        seqs, hist_mask = (x.to(dev).repeat_interleave(kk, 0) for x in (seqs, hist_mask))
        for step in range(L):
            rows = st.live()
            if rows.numel() == 0:
                break
            scores = self.net.item_logits(self.net(seqs[rows], hist_mask[rows])[:, W - 2]).float()
            scores = scores.masked_fill(st.banned[rows, :n], float("-inf"))
            pick, pick_ok = decoding.pick(scores, step, st.rank[rows], kk)
            go, item = st.advance(step, rows, pick, pick_ok)
            # Write the item just before the objective: shift the window left by one.
            seqs[go] = torch.cat([seqs[go, 1: W - 1], item[:, None], seqs[go, W - 1:]], 1)
            hm = hist_mask[go]
            hist_mask[go] = torch.cat([hm[:, 1: W - 1], torch.zeros_like(hm[:, :1]), hm[:, W - 1:]], 1)
        return st.collect()


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="irn",
        summary="Influential Recommender Network (ICDE 2023): transformer decoding toward the objective under the PIM",
        factory=IRN, config_cls=IRNConfig, family="baseline",
    ))
