"""GRU4Rec user simulator (Hidasi et al., ICLR 2016), the second simulator of SPEC section 2.

A single-layer GRU over item embeddings, as RecBole's GRU4Rec: embedding 64, dropout 0.3 on the
embeddings during training, GRU hidden 64, a dense layer mapping the GRU output to d = 64 so that
``score(S) = u(S) . E`` shares the input item embedding (RecBole's ``CE`` loss setting).
Trained with full-softmax cross-entropy by :mod:`prorlbench.seq.seqtrain`.

Deviations from RecBole: the quick profile (the default) trains 20 epochs at lr 3e-3 without
early stopping (at RecBole's lr 1e-3 a GRU sits at popularity level for ~15 epochs on ML-100K;
the ``paper`` profile restores lr 1e-3, 300 epochs, patience 10, and, like SASRec's, gives an
epoch at least 20 optimizer steps (``min_epoch_steps``: at batch 2048 the shipped datasets' epochs
were one or two steps, and patience ended training before it started); right padding with id
``n_items`` (zero embedding row) and training on every position. A GRU is causal by
construction, so padding after a sequence never changes its earlier states and no packing is
needed.
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
class GRU4RecConfig(SeqTrainConfig):
    """GRU4Rec's architecture keys, and the training defaults it changes (``SeqTrainConfig``)."""

    embedding: int = opt(64, "item embedding size (also the output size d)")
    hidden: int = opt(64, "GRU hidden size")
    n_layers: int = opt(1, "GRU layers")
    dropout: float = opt(0.3, "dropout on the input embeddings during training")
    lr: float = opt(3e-3, "learning rate (AdamW); RecBole's 1e-3 (the paper profile) needs many more epochs")
    epochs: int = opt(20, "maximum training epochs")
    patience: int = opt(20, "stop after this many epochs without a better validation NDCG@10")

    PROFILES: ClassVar[dict[str, dict]] = {
        "quick": {"epochs": 20, "patience": 20, "batch_size": 128, "lr": 3e-3},
        "paper": {"epochs": 300, "patience": 10, "batch_size": 2048, "lr": 1e-3, "min_epoch_steps": 20},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("embedding", "hidden", "n_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"simulators.gru4rec: {key} must be >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"simulators.gru4rec: dropout must be in [0, 1), got {self.dropout}")


class GRU4Rec(SharedEmbeddingHead, nn.Module):
    """Recurrent next-item model implementing ``SequenceModel``."""

    def __init__(self, cfg: GRU4RecConfig, n_items: int):
        super().__init__()
        self.n_items = n_items
        self.max_seq_len = cfg.max_seq_len
        self.item_emb = nn.Embedding(n_items + 1, cfg.embedding)
        self.gru = nn.GRU(cfg.embedding, cfg.hidden, num_layers=cfg.n_layers, batch_first=True, bias=False)
        self.dense = nn.Linear(cfg.hidden, cfg.embedding)
        self.p = cfg.dropout
        nn.init.normal_(self.item_emb.weight, 0.0, cfg.init_std)
        for name, w in self.gru.named_parameters():
            if "weight_ih" in name:
                nn.init.xavier_uniform_(w)
            elif "weight_hh" in name:
                nn.init.orthogonal_(w)
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    def encode(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if seqs.shape[1] > self.max_seq_len:
            raise ValueError(f"sequence length {seqs.shape[1]} exceeds max_seq_len {self.max_seq_len}")
        x = F.dropout(self.item_emb(seqs), self.p, self.training)
        out, _ = self.gru(x)
        return self.dense(out)


build = simulator_build("gru4rec", GRU4Rec)
"""Train GRU4Rec on ``data.sequences["train"]`` (or load it from ``cache_dir``)."""


@hookimpl
def register_simulators(register):
    register(SimulatorSpec(
        name="gru4rec",
        summary="GRU4Rec (1 GRU layer, hidden 64, embedding dropout 0.3)",
        build=build,
        config_cls=GRU4RecConfig,
    ))
