"""Which policy the RL family trains (``RLConfig.policy``) and how it is built.

* ``item``: :class:`~prorlbench.rl.policy.PathPolicy`, a decoder choosing among catalog items
  and STOP;
* ``semantic-id``: :class:`~prorlbench.rl.seq2seq_policy.SemanticIdPolicy`, the official ProRL
  architecture over semantic-ID codes (the dataset's own codes, else RQ-KMeans codes,
  :func:`~prorlbench.rl.semantic_ids.codes_for`);
* ``auto``: ``semantic-id`` where the dataset ships codes (``Interactions.item_codes``), else
  ``item`` (what the ``official`` profile uses).

Both have the interface the trainer uses (``sample``, ``beam_search``, ``action_log_probs``;
SFT also calls ``sft_nll`` where a policy has it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import nn

from ..api import Interactions
from .config import RLConfig
from .policy import PathPolicy
from .semantic_ids import SemanticIds, codes_for
from .seq2seq_policy import SemanticIdPolicy


def policy_kind(cfg: RLConfig, data: Interactions) -> str:
    """``'item'`` or ``'semantic-id'`` for this config on this dataset."""
    if cfg.policy == "auto":
        return "semantic-id" if data.item_codes is not None else "item"
    return cfg.policy


def policy_codes(cfg: RLConfig, data: Interactions, cache_dir: Path | str | None) -> SemanticIds | None:
    """The semantic IDs the policy uses (None for the item policy)."""
    if policy_kind(cfg, data) != "semantic-id":
        return None
    return codes_for(data, cache_dir, n_codebooks=cfg.n_codebooks, codebook_size=cfg.codebook_size,
                     seed=cfg.codes_seed)


def codes_digest(codes: SemanticIds | None) -> str:
    """A short hash of the codes (part of the SFT cache key)."""
    if codes is None:
        return ""
    return hashlib.sha256(codes.codes.numpy().tobytes() + repr(codes.codes.shape).encode()).hexdigest()[:16]


def build_policy(cfg: RLConfig, n_items: int, max_path_len: int, codes: SemanticIds | None = None) -> nn.Module:
    """A fresh policy: the semantic-ID policy when ``codes`` are given, else the item policy."""
    if codes is not None:
        if codes.n_items != n_items:
            raise ValueError(f"semantic IDs cover {codes.n_items} items, the catalog has {n_items}")
        return SemanticIdPolicy(codes, max_path_len, cfg.max_history, d_model=cfg.sem_d_model,
                                n_enc_layers=cfg.sem_enc_layers, n_dec_layers=cfg.sem_dec_layers,
                                d_ff=cfg.sem_d_ff, n_heads=cfg.sem_heads, dropout=cfg.dropout,
                                activation=cfg.sem_activation, decoding=cfg.decoding,
                                token_logprob=cfg.token_logprob, mask_invalid=cfg.mask_invalid,
                                mask_target=cfg.mask_target)
    return PathPolicy(n_items, max_path_len, cfg.max_history, d_model=cfg.d_model, n_layers=cfg.n_layers,
                      n_heads=cfg.n_heads, dropout=cfg.dropout, mask_invalid=cfg.mask_invalid,
                      mask_target=cfg.mask_target)
