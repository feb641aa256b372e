"""``rec2inf``: the X2Inf rule of the Influential Recommender System paper (SPEC section 6).

Source: H. Zhu, H. Zhao, Z. Ma, W. Ni, Z. Yang. "Influential Recommender System", ICDE 2023
(arXiv:2211.10002), baselines "Pop2Inf" / "X2Inf". The rule: at every step take the backbone
recommender's top-``k_c`` items for the sequence so far (history and path removed), choose the
candidate closest to the target T, append it, and stop once T itself is chosen or the path has
``max_path_len`` items. With ``backbone = "pop"`` the candidates are the most popular items
(POP2Inf).

Closeness (``similarity``):

* ``"embedding"`` (default): cosine of the backbone's item embeddings
  (``SequenceModel.item_embeddings()``). With ``backbone = "pop"`` the embeddings come from a
  backbone of kind ``embeddings_from``.
* ``"attribute"``: Jaccard similarity of the items' attribute (genre) sets. Used only where the
  dataset has attributes; otherwise a warning is logged and ``"embedding"`` is used.

Why ``"embedding"`` is the default: it exists on every dataset, it is fine-grained (genre sets of
a few attributes tie on most candidates, so the attribute rule degenerates into "top backbone
item of the target's genre"), and the attribute rule would select on the same genre overlap that
the Coherence metric reports, inflating that column for this one method.

Ties in similarity are broken by backbone rank. T is always the closest item to itself, so as soon
as T enters the top-``k_c`` it is chosen and the path ends (T is not part of the path).

Candidates (``generate(cases, k)``): candidate r takes the r-th closest item among the first
step's candidates, then follows the greedy rule; candidate 0 is the paper's single path. So at
most ``min(k, k_c)`` candidates are returned, all distinct (their first steps differ).

Deviations: the paper's backbones (BERT4Rec, Transformer, ...) are replaced by the harness's own
backbone kinds (``sasrec``, ``gru4rec``), each trained on the training split with its own seed
(``ctx.make_backbone``), never the simulator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch

from prorlbench import hookimpl
from prorlbench.api import Case, FitContext, MethodSpec, SequenceModel
from prorlbench.toolkit import (ConfigError, decoding, histories_tensor, item_embedding_matrix, last_states,
                                opt)

log = logging.getLogger("prorlbench")

BACKBONES = ("sasrec", "gru4rec", "pop")
SIMILARITIES = ("embedding", "attribute")


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class Rec2InfConfig:
    backbone: str = opt("sasrec", "candidate generator: 'sasrec' or 'gru4rec' (own backbone trained "
                        "on the training split) or 'pop' (most popular items: POP2Inf)")
    k_c: int = opt(50, "candidates per step: the backbone's top-k_c items (history and path removed)")
    similarity: str = opt("embedding", "closeness to the target: 'embedding' (cosine of backbone item "
                          "embeddings) or 'attribute' (Jaccard of attribute sets; needs attributes)")
    embeddings_from: str = opt("sasrec", "backbone kind whose item embeddings measure closeness when "
                               "backbone = 'pop' and similarity = 'embedding'")
    batch_size: int = opt(512, "cases per generation batch (memory: rows x n_items logits)")

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"rec2inf: backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.similarity not in SIMILARITIES:
            raise ConfigError(f"rec2inf: similarity must be one of {', '.join(SIMILARITIES)}, got {self.similarity!r}")
        if self.embeddings_from not in ("sasrec", "gru4rec"):
            raise ConfigError(f"rec2inf: embeddings_from must be 'sasrec' or 'gru4rec', got {self.embeddings_from!r}")
        if self.k_c < 1 or self.batch_size < 1:
            raise ConfigError("rec2inf: k_c and batch_size must be >= 1")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def jaccard_to_targets(attrs: torch.Tensor, sizes: torch.Tensor, cand: torch.Tensor,
                       targets: torch.Tensor) -> torch.Tensor:
    """Jaccard similarity of the attribute sets of ``cand [B, C]`` and ``targets [B]`` (0 for 0/0)."""
    inter = (attrs[cand] * attrs[targets][:, None, :]).sum(-1)
    union = sizes[cand] + sizes[targets][:, None] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


# --------------------------------------------------------------------------------------------
# Method
# --------------------------------------------------------------------------------------------


class Rec2Inf:
    """X2Inf / POP2Inf: greedy "most target-like of the backbone's top-k_c" paths."""

    def __init__(self, config: Rec2InfConfig | None = None):
        self.cfg = config or Rec2InfConfig()

    def fit(self, ctx: FitContext) -> None:
        cfg = self.cfg
        self.n_items = ctx.data.n_items
        self.max_path_len = ctx.max_path_len
        self.device = ctx.device
        seed = ctx.seed  # make_backbone offsets it: never the simulator's seed
        similarity = cfg.similarity
        if similarity == "attribute" and not ctx.data.item_attributes:
            log.warning("rec2inf: dataset %s has no item attributes; using similarity = 'embedding'", ctx.data.name)
            similarity = "embedding"
        self.similarity = similarity
        need_model = cfg.backbone != "pop" or similarity == "embedding"
        if need_model and ctx.make_backbone is None:
            raise ConfigError("rec2inf needs a backbone, but this run provides no make_backbone")
        self.model: SequenceModel | None = None
        if cfg.backbone != "pop":
            self.model = ctx.make_backbone(cfg.backbone, seed)
            self.popularity = None
        else:
            self.popularity = ctx.data.popularity().to(self.device)
        if similarity == "embedding":
            emb_model = self.model if self.model is not None else ctx.make_backbone(cfg.embeddings_from, seed)
            emb = item_embedding_matrix(emb_model).to(self.device).float()
            self.unit_emb = emb / emb.norm(dim=1, keepdim=True).clamp(min=1e-12)
        else:
            attrs = ctx.data.item_attributes
            n_attr = 1 + max((a for s in attrs for a in s), default=0)
            rows = [i for i, s in enumerate(attrs) for _ in s]
            cols = [a for s in attrs for a in s]
            A = torch.zeros(self.n_items, n_attr, device=self.device)
            if rows:
                A[torch.tensor(rows, device=self.device), torch.tensor(cols, device=self.device)] = 1.0
            self.attrs, self.attr_sizes = A, A.sum(1)

    # ---- one step of the rule -------------------------------------------------------------

    def _candidate_scores(self, hist, hist_len, paths, lengths) -> torch.Tensor:
        """Backbone scores ``[B, n_items]`` for the next item after ``H + path``."""
        if self.model is None:
            return self.popularity[None, :].expand(hist.shape[0], -1).clone()
        return self.model.logits(last_states(self.model, hist, hist_len, paths, lengths)).float()

    def _ranked_candidates(self, scores, banned, targets) -> tuple[torch.Tensor, torch.Tensor]:
        """The top-k_c candidates sorted by closeness to the target (ties: backbone order).

        Returns ``(items [B, C], ok [B, C])``; ``ok`` is False for padding candidates (fewer than
        ``k_c`` items left).
        """
        scores = scores.masked_fill(banned[:, : self.n_items], float("-inf"))
        C = min(self.cfg.k_c, self.n_items)
        top, cand = scores.topk(C, dim=1)  # sorted by backbone score
        ok = top > float("-inf")
        if self.similarity == "embedding":
            sim = (self.unit_emb[cand] * self.unit_emb[targets][:, None, :]).sum(-1)
        else:
            sim = jaccard_to_targets(self.attrs, self.attr_sizes, cand, targets)
        sim = torch.where(cand == targets[:, None], torch.full_like(sim, 2.0), sim)  # T is closest to itself
        sim = sim.masked_fill(~ok, float("-inf"))
        order = torch.sort(sim, dim=1, descending=True, stable=True).indices
        return cand.gather(1, order), ok.gather(1, order)

    # ---- generation -------------------------------------------------------------------------

    def generate(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        return decoding.in_batches(self._generate_batch, cases, k, self.cfg.batch_size)

    @torch.no_grad()
    def _generate_batch(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        n, L, dev = self.n_items, self.max_path_len, self.device
        kk = max(1, min(k, self.cfg.k_c, n))
        hist, hist_len = histories_tensor(cases, n)
        hist, hist_len = hist.to(dev), hist_len.to(dev)
        targets = torch.tensor([c.target for c in cases], device=dev)
        st = decoding.Rows.start(targets, torch.zeros(len(cases), n + 1, dtype=torch.bool, device=dev)
                                 .scatter_(1, hist, True), kk, n, L)
        hist, hist_len = hist.repeat_interleave(kk, 0), hist_len.repeat_interleave(kk, 0)
        for step in range(L):
            rows = st.live()
            if rows.numel() == 0:
                break
            scores = self._candidate_scores(hist[rows], hist_len[rows], st.paths[rows, :step], st.lengths[rows])
            cand, ok = self._ranked_candidates(scores, st.banned[rows], st.targets[rows])
            col = st.rank[rows] if step == 0 else torch.zeros_like(rows)
            col = col.clamp(max=cand.shape[1] - 1)
            pick = cand.gather(1, col[:, None]).squeeze(1)
            pick_ok = ok.gather(1, col[:, None]).squeeze(1)
            st.advance(step, rows, pick, pick_ok)
        return st.collect()


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="rec2inf",
        summary="X2Inf (IRS, ICDE 2023): greedily take the backbone top-k_c item closest to the target",
        factory=Rec2Inf, config_cls=Rec2InfConfig, family="baseline",
    ))
