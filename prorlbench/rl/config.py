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
    d_model: int = opt(64, "policy transformer width", ge=1)
    n_layers: int = opt(2, "policy transformer blocks", ge=1)
    n_heads: int = opt(2, "policy attention heads", ge=1)
    dropout: float = opt(0.1, "policy dropout (SFT only; RL runs the policy in eval mode)", ge=0, lt=1)
    max_history: int = opt(10, "history items the policy sees (most recent)", ge=1)
    mask_invalid: bool = opt(True, "never sample items in H or already in the path")
    mask_target: bool = opt(True, "never sample the target itself inside the path")
    max_path_len: int = opt(0, "maximum path length; 0: the run's max_path_len", ge=0)
    # -- stage 1: SFT ---------------------------------------------------------------------------
    sft_epochs: int = opt(30, "supervised epochs on reference paths (best epoch on valid IoI@1 kept)", ge=1)
    sft_lr: float = opt(1e-3, "SFT learning rate (AdamW)", gt=0)
    sft_batch: int = opt(128, "SFT cases per batch", ge=1)
    sft_weight_decay: float = opt(0.01, "SFT AdamW weight decay", ge=0)
    n_valid_cases: int = opt(512, "validation cases used for checkpoint selection (first N)", ge=1)
    # -- stage 2: RL ----------------------------------------------------------------------------
    samples_per_case: int = opt(16, "G: paths sampled per case", ge=1)
    batch_cases: int = opt(32, "cases per RL step (B); a step trains on B * G paths", ge=1)
    epochs: int = opt(10, "RL epochs over the training cases", ge=1)
    normalizer_epochs: int = opt(1, "epochs during which the reward normaliser's Welford statistics are "
                                 "updated before they are frozen (default 1: the first epoch; >= epochs: never frozen)", ge=1)
    max_train_cases: int = opt(0, "cases per RL epoch (a seeded random subset); 0: all training cases", ge=0)
    lr: float = opt(1e-4, "RL learning rate (AdamW)", gt=0)
    weight_decay: float = opt(0.0, "RL AdamW weight decay", ge=0)
    grad_clip: float = opt(1.0, "gradient-norm clip (0: no clipping)", ge=0)
    beta: float = opt(0.01, "weight of the KL term to the frozen SFT policy", ge=0)
    gamma: float = opt(1.0, "discount of the returns-to-go", ge=0, le=1)
    w_ctr: float = opt(1.0, "weight of the (normalised) CTR reward, divided by max_path_len (0: off)", ge=0)
    w_ioi: float = opt(1.0, "weight of the (normalised) IoI step reward", ge=0)
    w_ior: float = opt(1.0, "weight of the (normalised) IoR step reward", ge=0)
    select: str = opt("valid_ioi", "RL checkpoint: 'valid_ioi' (best epoch on valid IoI@1) or 'last'")
    grad_var_every: int = opt(5, "estimate gradient variance every N steps (0: never)", ge=0)
    grad_var_splits: int = opt(4, "M: minibatches of cases whose PG gradients give the variance", ge=2)
    # -- protocol switches (each a place where the official ProRL code differs; docs/rl.md) -----
    decode: str = opt("threshold", "how generate() makes candidate 1 and validation paths: 'threshold' "
                      "(our own rule: likeliest item until prod(1 - pi(STOP)) drops below stop_threshold), "
                      "'greedy' (the official @1: argmax over items and STOP at every step; STOP can win) "
                      "or 'beam' (beam search over items and STOP; the K candidates are the K best beams)")
    beam_width: int = opt(10, "beams kept by decode = 'beam' (the official SFT selection uses 10; "
                          "at least K are kept)", ge=1)
    beam_length_norm: float = opt(0.0, "decode = 'beam' ranks beams by sum(log pi) / n_actions ** this "
                                  "(0: plain sum, which favours short paths; 1: mean log-probability)", ge=0)
    stop_threshold: float = opt(0.5, "decode = 'threshold': stop once prod(1 - pi(STOP)) along the path "
                                "drops below this (0.5: the policy's median length)", ge=0, le=1)
    sample_temperature: float = opt(1.0, "temperature of sampled paths (RL rollouts and candidates 2..K "
                                    "of generate()); the loss uses the untempered policy", gt=0)
    sample_top_k: int = opt(0, "sample only among the k likeliest actions (RL rollouts and sampled "
                            "candidates); 0: the whole catalog (the official code uses 50)", ge=0)
    kl: str = opt("k1", "form of the KL term to the SFT policy: 'k1' (official: sum of log pi - log pi_ref "
                  "on the sampled actions; its expected gradient is zero), 'k3' (pi_ref/pi - 1 - "
                  "log(pi_ref/pi), unbiased and never negative) or 'exact' (the full per-step KL over "
                  "all actions)")
    warmup_frac: float = opt(0.0, "share of RL steps over which the learning rate rises linearly from 0, "
                             "then stays constant (official: 0.05)", ge=0, lt=1)
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
    n_codebooks: int = opt(3, "semantic-id codes built by RQ-KMeans (datasets without codes): levels", ge=1)
    codebook_size: int = opt(256, "semantic-id RQ-KMeans centroids per level (capped for small catalogs)", ge=1)
    codes_seed: int = opt(0, "seed of the RQ-KMeans codes")
    sem_d_model: int = opt(128, "semantic-id transformer width (official 128)", ge=1)
    sem_enc_layers: int = opt(3, "semantic-id encoder layers (official 3)", ge=1)
    sem_dec_layers: int = opt(3, "semantic-id decoder layers (official 3)", ge=1)
    sem_d_ff: int = opt(512, "semantic-id feed-forward width (official 512)", ge=1)
    sem_heads: int = opt(4, "semantic-id attention heads (official 4)", ge=1)
    sem_activation: str = opt("relu", "semantic-id feed-forward activation: 'relu' (official) or 'gelu'")
    # -- speed and resumption (docs/performance.md; none changes a CPU run's numbers) ------------
    # (omit_default: at their defaults they are not in a cell's fingerprint, so cells stored before
    # these keys existed stay valid)
    checkpoint_every: int = opt(0, "RL checkpoint every N steps in the cell's folder (policy, optimiser, normaliser, "
                                "RNG states, step), so a killed or interrupted cell resumes there; 0: about every "
                                "3 minutes of training; -1: never", ge=-1, omit_default=True)
    compile_sampling: bool = opt(False, "torch.compile the per-token steps of RL sampling (CUDA: mode "
                                 "'reduce-overhead', i.e. CUDA graphs; the same distribution, other draws); off: eager",
                                 omit_default=True)
    autocast: str = opt("off", "'bf16': autocast the RL step's policy and simulator forward passes to bfloat16 "
                        "(changes the numbers, docs/performance.md); 'off': float32", omit_default=True)
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
                     "select": "last", "sft_weight_decay": 0.05,
                     "sample_top_k": 50, "empty_paths": "skip", "centering": "global",
                     "reward_state": "causal", "policy": "auto", "token_logprob": "mean", "decoding": "free",
                     "per_dataset": {"steam": {"lr": 1e-5, "w_ctr": 0.1}, "books": {"lr": 5e-4}}},
    }
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "select": ("valid_ioi", "last"), "decode": ("threshold", "greedy", "beam"),
        "kl": ("k1", "k3", "exact"), "empty_paths": ("train", "skip"),
        "centering": ("global", "position", "batch"), "reward_state": ("causal", "official-leftpad"),
        "policy": ("item", "semantic-id", "auto"), "token_logprob": ("mean", "sum"),
        "decoding": ("constrained", "free"), "sem_activation": ("relu", "gelu"), "autocast": ("off", "bf16"),
    }

    def __post_init__(self) -> None:
        """Rules between keys and the choices; each key's own range is declared with its field
        (``opt(..., gt=0)``) and checked by :func:`~prorlbench.config.build_config`."""
        from ..config import build_config, to_dict
        from ..errors import ConfigError

        for key, allowed in self.CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(repr(a) for a in allowed)}, "
                                  f"got {getattr(self, key)!r}")
        names = {f.name for f in dataclasses.fields(self)} - {"per_dataset"}
        for ds, keys in self.per_dataset.items():
            if not isinstance(keys, dict) or set(keys) - names:
                bad = sorted(set(keys) - names) if isinstance(keys, dict) else keys
                raise ConfigError(f"per_dataset.{ds}: expected a table of RL keys, got {bad!r}")
            # The keys a dataset overrides are typed and range-checked like the others.
            build_config(type(self), {**to_dict(self), "per_dataset": {}, **keys}, where=f"per_dataset.{ds}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model {self.d_model} must be divisible by n_heads {self.n_heads}")
        if self.sem_d_model % self.sem_heads:
            raise ConfigError(f"sem_d_model {self.sem_d_model} must be divisible by sem_heads {self.sem_heads}")

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
