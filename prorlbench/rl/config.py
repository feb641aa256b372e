"""``RLConfig``: every hyper-parameter of the RL family (policy, SFT stage, RL stage).

One config class serves all RL methods and ``sft``; only the estimator differs between methods.
Defaults follow SPEC section 5 (``paper`` profile); ``quick`` is the small-budget default of
``prorlbench run`` (two CPU cores, a few minutes for a whole run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import opt

SFT_FIELDS = ("d_model", "n_layers", "n_heads", "dropout", "max_history", "mask_invalid",
              "mask_target", "max_path_len", "sft_epochs", "sft_lr", "sft_batch", "sft_weight_decay",
              "n_valid_cases", "stop_threshold")
"""The fields that change the SFT checkpoint (its cache key)."""


@dataclass
class RLConfig:
    """Hyper-parameters of the RL family (SPEC section 5)."""

    # -- policy ---------------------------------------------------------------------------------
    d_model: int = opt(64, "policy transformer width")
    n_layers: int = opt(2, "policy transformer blocks")
    n_heads: int = opt(2, "policy attention heads")
    dropout: float = opt(0.1, "policy dropout (SFT only; RL runs the policy in eval mode)")
    max_history: int = opt(10, "history items the policy sees (most recent)")
    mask_invalid: bool = opt(True, "never sample items in H or already in the path")
    mask_target: bool = opt(True, "never sample the target itself inside the path")
    max_path_len: int = opt(0, "maximum path length; 0: the run's max_path_len")
    # -- stage 1: SFT ---------------------------------------------------------------------------
    sft_epochs: int = opt(30, "supervised epochs on reference paths (best epoch on valid IoI@1 kept)")
    sft_lr: float = opt(1e-3, "SFT learning rate (AdamW)")
    sft_batch: int = opt(128, "SFT cases per batch")
    sft_weight_decay: float = opt(0.01, "SFT AdamW weight decay")
    n_valid_cases: int = opt(512, "validation cases used for checkpoint selection (first N)")
    # -- stage 2: RL ----------------------------------------------------------------------------
    samples_per_case: int = opt(16, "G: paths sampled per case")
    batch_cases: int = opt(32, "cases per RL step (B); a step trains on B * G paths")
    epochs: int = opt(10, "RL epochs over the training cases")
    normalizer_epochs: int = opt(1, "epochs during which the reward normaliser's Welford statistics are "
                                 "updated before they are frozen (default 1: the first epoch; >= epochs: never frozen)")
    max_train_cases: int = opt(0, "cases per RL epoch (a seeded random subset); 0: all training cases")
    lr: float = opt(1e-4, "RL learning rate (AdamW)")
    weight_decay: float = opt(0.0, "RL AdamW weight decay")
    grad_clip: float = opt(1.0, "gradient-norm clip")
    beta: float = opt(0.01, "weight of the KL term to the frozen SFT policy")
    gamma: float = opt(1.0, "discount of the returns-to-go")
    w_ctr: float = opt(1.0, "weight of the (normalised) CTR reward, divided by max_path_len")
    w_ioi: float = opt(1.0, "weight of the (normalised) IoI step reward")
    w_ior: float = opt(1.0, "weight of the (normalised) IoR step reward")
    select: str = opt("valid_ioi", "RL checkpoint: 'valid_ioi' (best epoch on valid IoI@1) or 'last'")
    grad_var_every: int = opt(5, "estimate gradient variance every N steps (0: never)")
    grad_var_splits: int = opt(4, "M: minibatches of cases whose PG gradients give the variance")
    sample_temperature: float = opt(1.0, "temperature of the sampled candidates 2..k of generate()")
    stop_threshold: float = opt(0.5, "greedy decoding (candidate 1, validation) stops once "
                                 "prod(1 - pi(STOP)) along the path drops below this (0.5: median length)")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"samples_per_case": 8, "batch_cases": 32, "epochs": 10, "max_train_cases": 512,
                  "sft_epochs": 8, "n_valid_cases": 256, "lr": 5e-4, "grad_var_every": 4},
        "paper": {"samples_per_case": 16, "batch_cases": 128, "epochs": 10, "sft_epochs": 30,
                  "beta": 0.01, "lr": 1e-4, "grad_clip": 1.0, "n_valid_cases": 2048},
    }

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if self.select not in ("valid_ioi", "last"):
            raise ConfigError(f"select must be 'valid_ioi' or 'last', got {self.select!r}")
        if self.samples_per_case < 1 or self.batch_cases < 1 or self.normalizer_epochs < 1:
            raise ConfigError("samples_per_case, batch_cases and normalizer_epochs must be >= 1")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model {self.d_model} must be divisible by n_heads {self.n_heads}")
        if self.max_path_len < 0 or self.max_train_cases < 0:
            raise ConfigError("max_path_len and max_train_cases must be >= 0 (0: the default)")
