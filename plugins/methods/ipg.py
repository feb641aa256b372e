"""``ipg``: Iterative Preference Guidance (SPEC section 6).

Source: S. Bi, W. Wang, H. Pan, F. Feng, X. He. "Proactive Recommendation with Iterative
Preference Guidance", WWW 2024 Companion (arXiv:2403.07571).

The rule, per step, over every catalog item j not in the history or the path:

    score(j) = p̂(j | S) · g_j,   g_j = e_Tᵀ ê_u′ − e_Tᵀ ê_u,   ê_u′ = γ ê_u + (1 − γ) e_j

so ``g_j = (1 − γ) (e_Tᵀ e_j − e_Tᵀ ê_u)``: how far showing j would move the user's preference
toward the target, weighted by how likely the user is to accept j. Take the argmax, append it,
update ``ê_u ← γ ê_u + (1 − γ) e_j``, and stop once T itself is chosen (T is not part of the path)
or the path has ``max_path_len`` items.

What the symbols are here:

* ``S`` is ``H + path so far``; ``p̂(j | S) = sigmoid(u(S) · e_j)``, the backbone's acceptance
  probability (the public code's ``sigmoid(h_u · e_j)``, and the SPEC's per-step CTR), with
  ``u(S)`` re-encoded by the backbone after every step.
* ``e_j`` are the backbone's item embeddings (``SequenceModel.item_embeddings()``), the same
  vectors ``accept_logit`` uses, so ``u(S)`` and ``e_j`` live in one space.
* ``ê_u`` starts as ``u(H)``, the backbone's user state after the history, and then drifts by the
  update rule above (the paper's preference-evolution model).
* ``guidance = "cosine"`` replaces the dot products in g by cosines, as the public code does
  (``cos(e_j, e_T) − cos(ê_u, e_T)``); the default ``"dot"`` is the paper's formula.

Candidates (``generate(cases, k)``): candidate r takes the r-th best first step, then the greedy
rule; candidate 0 is the paper's single path. All candidates are distinct.

Deviation: the paper's base recommender (an MF-style model over user ids) is replaced by a
sequential backbone (``sasrec`` or ``gru4rec``) trained on the training split with its own seed,
because test users are not seen in training; the user embedding is the backbone's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from prorlbench import hookimpl
from prorlbench.api import Case, FitContext, MethodSpec, SequenceModel
from prorlbench.toolkit import (ConfigError, decoding, histories_tensor, item_embedding_matrix, last_states,
                                opt)


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class IPGConfig:
    backbone: str = opt("sasrec", "backbone kind: 'sasrec' or 'gru4rec' (own instance, trained on the training split)")
    gamma: float = opt(0.8, "preference inertia γ in ê_u′ = γ ê_u + (1 − γ) e_j")
    guidance: str = opt("dot", "g_j with 'dot' products (paper) or 'cosine' similarities (public code)")
    batch_size: int = opt(512, "cases per generation batch (memory: rows x n_items scores)")

    def __post_init__(self) -> None:
        if self.backbone not in ("sasrec", "gru4rec"):
            raise ConfigError(f"ipg: backbone must be 'sasrec' or 'gru4rec', got {self.backbone!r}")
        if self.guidance not in ("dot", "cosine"):
            raise ConfigError(f"ipg: guidance must be 'dot' or 'cosine', got {self.guidance!r}")
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"ipg: gamma must be in [0, 1), got {self.gamma}")
        if self.batch_size < 1:
            raise ConfigError("ipg: batch_size must be >= 1")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Method
# --------------------------------------------------------------------------------------------


class IPG:
    """Iterative Preference Guidance: argmax of acceptance x preference gain toward T."""

    def __init__(self, config: IPGConfig | None = None):
        self.cfg = config or IPGConfig()

    def fit(self, ctx: FitContext) -> None:
        if ctx.make_backbone is None:
            raise ConfigError("ipg needs a backbone, but this run provides no make_backbone")
        self.n_items = ctx.data.n_items
        self.max_path_len = ctx.max_path_len
        self.device = ctx.device
        self.model = ctx.make_backbone(self.cfg.backbone, ctx.seed)
        self.emb = item_embedding_matrix(self.model).to(self.device).float()

    def _scores(self, states: torch.Tensor, pref: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``p̂(j | S) · g_j`` for all items: ``[B, n_items]``."""
        E, eT = self.emb, self.emb[targets]
        accept = torch.sigmoid(states.float() @ E.T)
        if self.cfg.guidance == "dot":
            gain = (eT @ E.T) - (eT * pref).sum(-1, keepdim=True)
        else:
            En, eTn = F.normalize(E, dim=-1), F.normalize(eT, dim=-1)
            gain = (eTn @ En.T) - (eTn * F.normalize(pref, dim=-1)).sum(-1, keepdim=True)
        return accept * (1.0 - self.cfg.gamma) * gain

    def generate(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        return decoding.in_batches(self._generate_batch, cases, k, self.cfg.batch_size)

    @torch.no_grad()
    def _generate_batch(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        n, L, dev, gamma = self.n_items, self.max_path_len, self.device, self.cfg.gamma
        kk = max(1, min(k, n))
        hist, hist_len = histories_tensor(cases, n)
        hist, hist_len = hist.to(dev), hist_len.to(dev)
        targets = torch.tensor([c.target for c in cases], device=dev)
        st = decoding.Rows.start(targets, torch.zeros(len(cases), n + 1, dtype=torch.bool, device=dev)
                                 .scatter_(1, hist, True), kk, n, L)
        hist, hist_len = hist.repeat_interleave(kk, 0), hist_len.repeat_interleave(kk, 0)
        pref = torch.zeros(len(st.targets), self.emb.shape[1], device=dev)
        for step in range(L):
            rows = st.live()
            if rows.numel() == 0:
                break
            states = last_states(self.model, hist[rows], hist_len[rows], st.paths[rows, :step],
                                 st.lengths[rows]).float()
            if step == 0:
                pref[rows] = states  # ê_u starts as the backbone's user state u(H)
            scores = self._scores(states, pref[rows], st.targets[rows])
            scores = scores.masked_fill(st.banned[rows, :n], float("-inf"))
            pick, pick_ok = decoding.pick(scores, step, st.rank[rows], kk)
            go, item = st.advance(step, rows, pick, pick_ok)
            pref[go] = gamma * pref[go] + (1.0 - gamma) * self.emb[item]
        return st.collect()


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="ipg",
        summary="Iterative Preference Guidance (Bi et al. 2024): argmax p(accept j) x preference gain toward T",
        factory=IPG, config_cls=IPGConfig, family="baseline",
    ))
