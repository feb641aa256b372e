"""``RLConfig``: every hyper-parameter of the RL family (policy, SFT stage, RL stage).

One config class serves all RL methods and ``sft``; only the estimator differs between methods.
Defaults follow the ProRL paper's definitions (``paper`` profile); ``quick`` is the small-budget
default of ``prorlbench run`` (two CPU cores, a few minutes for a whole run); ``official`` holds the
values of the authors' released code and scripts (sized for 4 GPUs). Every place where our protocol
differs from that code is a key below (``decode``, ``kl``, ``warmup_frac``, ``weight_decay``,
``empty_paths``, ``centering``, ``reward_state``, ``sample_top_k``); ``docs/rl.md`` measures each.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import opt

SFT_FIELDS = ("d_model", "n_layers", "n_heads", "dropout", "max_history", "mask_invalid",
              "mask_target", "max_path_len", "sft_epochs", "sft_lr", "sft_batch", "sft_weight_decay",
              "n_valid_cases", "stop_threshold", "decode", "beam_width", "beam_length_norm",
              "policy", "token_logprob", "decoding", "n_codebooks", "codebook_size", "codes_seed", "sem_d_model",
              "sem_enc_layers", "sem_dec_layers", "sem_d_ff", "sem_heads", "sem_activation")
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
    # -- protocol switches (each a place where the official ProRL code differs; docs/rl.md) -----
    decode: str = opt("threshold", "how generate() makes candidate 1 and validation paths: 'threshold' "
                      "(our own rule: likeliest item until prod(1 - pi(STOP)) drops below stop_threshold), "
                      "'greedy' (the official @1: argmax over items and STOP at every step; STOP can win) "
                      "or 'beam' (beam search over items and STOP; the K candidates are the K best beams)")
    beam_width: int = opt(10, "beams kept by decode = 'beam' (the official SFT selection uses 10; "
                          "at least K are kept)")
    beam_length_norm: float = opt(0.0, "decode = 'beam' ranks beams by sum(log pi) / n_actions ** this "
                                  "(0: plain sum, which favours short paths; 1: mean log-probability)")
    stop_threshold: float = opt(0.5, "decode = 'threshold': stop once prod(1 - pi(STOP)) along the path "
                                "drops below this (0.5: the policy's median length)")
    sample_temperature: float = opt(1.0, "temperature of sampled paths (RL rollouts and candidates 2..K "
                                    "of generate()); the loss uses the untempered policy")
    sample_top_k: int = opt(0, "sample only among the k likeliest actions (RL rollouts and sampled "
                            "candidates); 0: the whole catalog (the official code uses 50)")
    kl: str = opt("k1", "form of the KL term to the SFT policy: 'k1' (official: sum of log pi - log pi_ref "
                  "on the sampled actions; its expected gradient is zero), 'k3' (pi_ref/pi - 1 - "
                  "log(pi_ref/pi), unbiased and never negative) or 'exact' (the full per-step KL over "
                  "all actions)")
    warmup_frac: float = opt(0.0, "share of RL steps over which the learning rate rises linearly from 0, "
                             "then stays constant (official: 0.05)")
    empty_paths: str = opt("train", "sampled paths with 0 items: 'train' (their STOP at position 0 is a "
                           "trained action) or 'skip' (official: left out of the loss, the baselines "
                           "and the normaliser)")
    centering: str = opt("global", "reward statistics of the normaliser: 'global' (paper and official: one "
                         "mean and std per component), 'position' (one per component and path position, "
                         "so a step's centred reward averages 0 at every position) or 'batch' (the "
                         "statistics of each batch, never frozen)")
    reward_state: str = opt("causal", "simulator state the RL rewards read: 'causal' (correct: one causal "
                            "pass over H + path) or 'official-leftpad' (what the official trainer feeds "
                            "its SASRec: left-padded windows read at index len - 1, a padding slot; "
                            "sasrec simulator only, one pass per prefix)")
    # -- the policy's action space (docs/rl.md, "Semantic-ID policy") ---------------------------
    policy: str = opt("item", "'item' (a decoder choosing among catalog items and STOP), 'semantic-id' "
                      "(the official ProRL architecture: an encoder-decoder emitting each item's semantic-ID "
                      "code, then EOS) or 'auto' (semantic-id where the dataset ships codes, else item)")
    token_logprob: str = opt("mean", "semantic-id: an item's log-probability is the 'mean' (official) or "
                             "the 'sum' (the exact likelihood) of its code tokens' log-probabilities")
    decoding: str = opt("constrained", "semantic-id: 'constrained' (a prefix trie over the catalog's codes; "
                        "items in H, in the path and the target are masked) or 'free' (official: any code, "
                        "invalid ones are penalised in RL and counted by the Invalid metric)")
    n_codebooks: int = opt(3, "semantic-id codes built by RQ-KMeans (datasets without codes): levels")
    codebook_size: int = opt(256, "semantic-id RQ-KMeans centroids per level (capped for small catalogs)")
    codes_seed: int = opt(0, "seed of the RQ-KMeans codes")
    sem_d_model: int = opt(128, "semantic-id transformer width (official 128)")
    sem_enc_layers: int = opt(3, "semantic-id encoder layers (official 3)")
    sem_dec_layers: int = opt(3, "semantic-id decoder layers (official 3)")
    sem_d_ff: int = opt(512, "semantic-id feed-forward width (official 512)")
    sem_heads: int = opt(4, "semantic-id attention heads (official 4)")
    sem_activation: str = opt("relu", "semantic-id feed-forward activation: 'relu' (official) or 'gelu'")
    per_dataset: dict[str, dict[str, Any]] = opt({}, "keys that differ for one dataset, e.g. "
                                                  "{steam = {lr = 1e-5, w_ctr = 0.1}}")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"samples_per_case": 8, "batch_cases": 32, "epochs": 10, "max_train_cases": 512,
                  "sft_epochs": 8, "n_valid_cases": 256, "lr": 5e-4, "grad_var_every": 4},
        "paper": {"samples_per_case": 16, "batch_cases": 128, "epochs": 10, "sft_epochs": 30,
                  "beta": 0.01, "lr": 1e-4, "grad_clip": 1.0, "n_valid_cases": 2048},
        # The released code and scripts: 512 cases x 16 samples per step (4 GPUs x 128), sized for
        # GPUs (hours on a CPU). Learning rates and reward weights per dataset from scripts/RL.
        "official": {"samples_per_case": 16, "batch_cases": 512, "epochs": 50, "sft_epochs": 30,
                     "lr": 1e-4, "warmup_frac": 0.05, "weight_decay": 0.05, "beta": 0.01, "gamma": 1.0,
                     "grad_clip": 1.0, "n_valid_cases": 2048, "kl": "k1", "decode": "greedy",
                     "sample_top_k": 50, "empty_paths": "skip", "centering": "global",
                     "reward_state": "causal", "policy": "auto", "token_logprob": "mean", "decoding": "free",
                     "per_dataset": {"steam": {"lr": 1e-5, "w_ctr": 0.1}, "books": {"lr": 5e-4}}},
    }
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "select": ("valid_ioi", "last"), "decode": ("threshold", "greedy", "beam"),
        "kl": ("k1", "k3", "exact"), "empty_paths": ("train", "skip"),
        "centering": ("global", "position", "batch"), "reward_state": ("causal", "official-leftpad"),
        "policy": ("item", "semantic-id", "auto"), "token_logprob": ("mean", "sum"),
        "decoding": ("constrained", "free"), "sem_activation": ("relu", "gelu"),
    }

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        for key, allowed in self.CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(repr(a) for a in allowed)}, "
                                  f"got {getattr(self, key)!r}")
        if self.beam_width < 1 or self.sample_top_k < 0 or self.sample_temperature <= 0:
            raise ConfigError("beam_width must be >= 1, sample_top_k >= 0 and sample_temperature > 0")
        if not 0.0 <= self.warmup_frac < 1.0:
            raise ConfigError(f"warmup_frac must be in [0, 1), got {self.warmup_frac}")
        names = {f.name for f in dataclasses.fields(self)} - {"per_dataset"}
        for ds, keys in self.per_dataset.items():
            if not isinstance(keys, dict) or set(keys) - names:
                bad = sorted(set(keys) - names) if isinstance(keys, dict) else keys
                raise ConfigError(f"per_dataset.{ds}: expected a table of RL keys, got {bad!r}")
        if self.samples_per_case < 1 or self.batch_cases < 1 or self.normalizer_epochs < 1:
            raise ConfigError("samples_per_case, batch_cases and normalizer_epochs must be >= 1")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model {self.d_model} must be divisible by n_heads {self.n_heads}")
        if self.sem_d_model % self.sem_heads or min(self.n_codebooks, self.codebook_size, self.sem_enc_layers,
                                                    self.sem_dec_layers, self.sem_d_ff) < 1:
            raise ConfigError(f"sem_d_model {self.sem_d_model} must be divisible by sem_heads {self.sem_heads}; "
                              "n_codebooks, codebook_size, sem_*_layers and sem_d_ff must be >= 1")
        if self.max_path_len < 0 or self.max_train_cases < 0:
            raise ConfigError("max_path_len and max_train_cases must be >= 0 (0: the default)")

    def for_dataset(self, name: str) -> "RLConfig":
        """This config with the ``per_dataset`` keys of dataset ``name`` applied. A key matches the
        name case-insensitively, whole or as a '-'-separated start or end ('steam' matches 'steam',
        'steam-merged' and 'prorl-Steam')."""
        keys: dict[str, Any] = {}
        low = name.lower()
        for ds, over in self.per_dataset.items():
            d = ds.lower()
            if low == d or low.startswith(d + "-") or low.endswith("-" + d):
                keys.update(over)
        return dataclasses.replace(self, **keys) if keys else self
