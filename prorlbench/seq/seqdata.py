"""Next-item models: the config keys and output head the built-in simulators share, batching of
sequences, and leave-last-out evaluation (HR@10 / NDCG@10). Training and caching:
:mod:`prorlbench.seq.seqtrain`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..api import Interactions, SequenceModel
from ..config import opt
from .scoring import model_device

log = logging.getLogger("prorlbench")


@dataclass
class SeqTrainConfig:
    """The training keys every next-item simulator shares (read by
    :func:`prorlbench.seq.seqtrain.train_model`; defaults: RecBole's). A simulator's config subclasses
    it, adds its architecture keys, and may override a default."""

    init_std: float = opt(0.02, "std of the normal weight initialisation")
    max_seq_len: int = opt(50, "longest input sequence; older items are dropped")
    lr: float = opt(1e-3, "learning rate (AdamW)")
    weight_decay: float = opt(0.0, "AdamW weight decay (0 = Adam, RecBole's default)")
    batch_size: int = opt(128, "training windows per batch")
    epochs: int = opt(15, "maximum training epochs")
    patience: int = opt(3, "stop after this many epochs without a better validation NDCG@10")
    min_epoch_steps: int = opt(1, "an epoch has at least this many optimizer steps: the batch shrinks to "
                                  "ceil(windows / min_epoch_steps) on small data")
    min_steps: int = opt(0, "early stopping never ends training before this many optimizer steps")
    wait_for_popularity: bool = opt(True, "patience runs out only once validation HR@10 beats popularity's "
                                          "(SASRec can sit at popularity level for its first epochs)")

    def __post_init__(self) -> None:
        """The training keys are checked when the config is read, before anything trains."""
        from ..errors import ConfigError

        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.init_std <= 0:
            raise ConfigError(f"init_std must be > 0, got {self.init_std}")
        for key in ("batch_size", "epochs", "patience", "min_epoch_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.min_steps < 0:
            raise ConfigError(f"min_steps must be >= 0, got {self.min_steps}")
        if self.max_seq_len < 2:
            raise ConfigError(f"max_seq_len must be >= 2, got {self.max_seq_len}")


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------


class SharedEmbeddingHead:
    """The output head both built-in simulators share: the input item embedding scores items.

    Mix into an ``nn.Module`` that has ``self.item_emb`` (``n_items + 1`` rows, the last one the
    padding item) and ``self.n_items``; it supplies ``logits``, ``accept_logit`` and
    ``item_embeddings`` of the :class:`~prorlbench.api.SequenceModel` protocol.
    """

    item_emb: torch.nn.Embedding
    n_items: int

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        return states @ self.item_emb.weight[: self.n_items].T

    def accept_logit(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (states * self.item_emb(items)).sum(-1)

    def item_embeddings(self) -> torch.Tensor:
        """The shared input/output item embedding ``[n_items, d]`` (``logits(s) == s @ E.T``)."""
        return self.item_emb.weight[: self.n_items]


def training_windows(sequences: Sequence[Sequence[int]], max_seq_len: int) -> list[tuple[int, ...]]:
    """Cut sequences into windows of at most ``max_seq_len + 1`` items, from the end backwards.

    Consecutive windows share one item (the last input of a window is the first target of the
    next), so every transition of a sequence is predicted exactly once. Windows shorter than two
    items (nothing to predict) are dropped.
    """
    out: list[tuple[int, ...]] = []
    span = max_seq_len + 1
    for seq in sequences:
        seq = tuple(int(i) for i in seq)
        end = len(seq)
        while end >= 2:
            start = max(0, end - span)
            out.append(seq[start:end])
            end = start + 1
            if start == 0:
                break
    return out


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tensor [B, width], lengths [B])``, right-padded with ``pad_id``."""
    lens = [len(s) for s in seqs]
    width = width if width is not None else max(lens + [1])
    out = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for r, s in enumerate(seqs):
        if s:
            out[r, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, torch.as_tensor(lens, dtype=torch.long)


def _prefix_and_target(sequences: Sequence[Sequence[int]], max_seq_len: int) -> tuple[list[tuple[int, ...]], list[int]]:
    prefixes, targets = [], []
    for s in sequences:
        if len(s) < 2:
            continue
        prefixes.append(tuple(s[:-1])[-max_seq_len:])
        targets.append(int(s[-1]))
    return prefixes, targets


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _hr_ndcg(ranks: torch.Tensor, k: int) -> dict[str, float]:
    if ranks.numel() == 0:
        return {f"hr{k}": float("nan"), f"ndcg{k}": float("nan")}
    hit = ranks <= k
    ndcg = torch.where(hit, 1.0 / torch.log2(ranks.double() + 1.0), torch.zeros((), dtype=torch.double))
    return {f"hr{k}": float(hit.double().mean()), f"ndcg{k}": float(ndcg.mean())}


@torch.no_grad()
def evaluate_next_item(model: SequenceModel, sequences: Sequence[Sequence[int]], k: int = 10,
                       batch_size: int = 512) -> dict[str, float]:
    """Leave-last-out HR@k and NDCG@k of a next-item model.

    For every sequence with at least two items, the last item is predicted from the preceding
    items (the most recent ``max_seq_len`` of them) by ranking the *full catalog*;
    ``rank = 1 + #{items scored strictly higher than the target}``. Items that already occur in
    the sequence are **not** removed from the ranking (a simulator must be able to predict
    re-consumption, and the path metrics rank the whole catalog too). Returns
    ``{"hr10": ..., "ndcg10": ...}`` for ``k = 10`` (keys follow ``k``).
    """
    prefixes, targets = _prefix_and_target(sequences, model.max_seq_len)
    if not prefixes:
        return _hr_ndcg(torch.zeros(0), k)
    device = model_device(model)
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    ranks = []
    for s in range(0, len(prefixes), batch_size):
        seqs, lens = right_pad(prefixes[s : s + batch_size], model.n_items)
        seqs, lens = seqs.to(device), lens.to(device)
        tg = torch.as_tensor(targets[s : s + batch_size], device=device)
        enc = model.encode(seqs, lens)
        state = enc[torch.arange(len(lens), device=device), lens - 1]
        lg = model.logits(state).float()
        t = lg.gather(1, tg[:, None])
        ranks.append((1 + (lg > t).sum(1)).cpu())
    if was_training and isinstance(model, torch.nn.Module):
        model.train()
    return _hr_ndcg(torch.cat(ranks), k)


def popularity_hr(data: Interactions, sequences: Sequence[Sequence[int]], k: int = 10) -> dict[str, float]:
    """The same leave-last-out HR@k / NDCG@k for the popularity ranking of the training split.

    Scores are training-split item counts; ``rank = 1 + #{items strictly more popular}``.
    """
    pop = data.popularity().double()
    targets = torch.as_tensor([int(s[-1]) for s in sequences if len(s) >= 2], dtype=torch.long)
    if targets.numel() == 0:
        return _hr_ndcg(torch.zeros(0), k)
    sorted_pop, _ = torch.sort(pop)
    # number of items with a strictly larger count than the target's count
    higher = pop.numel() - torch.searchsorted(sorted_pop, pop[targets], right=True)
    return _hr_ndcg(1 + higher, k)


def warn_if_weak(kind: str, dataset: str, hr10: Any, popularity_hr10: Any) -> bool:
    """Warn (and return ``True``) when a trained simulator's held-out HR@10 is below that of
    recommending the most popular items: every metric scored by it then means little."""
    if not isinstance(hr10, (int, float)) or not isinstance(popularity_hr10, (int, float)):
        return False
    if hr10 >= popularity_hr10:
        return False
    log.warning("simulator %s on %s is weaker than popularity on held-out users (valid HR@10 %.4f < "
                "popularity's %.4f): metrics scored by it mean little; train it longer or check the data",
                kind, dataset, hr10, popularity_hr10)
    return True
