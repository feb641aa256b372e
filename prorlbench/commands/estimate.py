"""The cost estimate of ``prorlbench run --dry-run``: seconds per cell and in total, before anything runs.

A rough, order-of-magnitude figure (expect a factor of 2-3 either way), from three things:

* **a measured rate**: :func:`measure_rate` times a forward and backward pass of a policy-sized
  transformer (the method's ``d_model``/``n_layers`` where it has them, else 64/2) with a head
  over the dataset's catalog, on the run's device, over a batch of sequences of history +
  ``max_path_len`` items: *path passes per second* on this machine, now (about a second);
* **the data size**: training, validation and test cases per split (a dataset's own cases, or at
  most ``max_cases_per_user`` per user of the split, capped by ``max_cases_per_split``);
* **the profile**: the method config the run would use. Keys of the RL family are read where a
  config has them (``sft_epochs``, ``epochs``, ``samples_per_case``, ``max_train_cases``,
  ``n_valid_cases``; the RL stage only for a method made from a registered estimator, so
  ``sft`` counts its SFT stage alone); every method generates ``max(ks)`` paths per test case, scored by each
  evaluating simulator.

Path passes per cell = SFT (``sft_epochs`` x training cases x :data:`SFT_PASSES`, plus a
validation decode per epoch) + RL (``epochs`` x cases per epoch x ``samples_per_case`` x
:data:`RL_PASSES`, plus a validation decode per epoch) + generation and scoring (test cases x
``max(ks)`` x (1 + evaluating simulators) x :data:`EVAL_PASSES`). The constants were calibrated
on quick-profile ``sft``, ``prorl`` and ``pop`` cells on the synthetic data (docs/api.md, "What
a run costs"). The SFT stage is counted in every RL cell, though cells with the same SFT config
share one cached stage, so a grid's total is an upper bound there. What a method does in its own
``fit`` outside these keys (a baseline's backbone, a graph search), simulator training (once per
dataset, cached) and waiting for other processes are not counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

RL_PASSES = 1.0
"""Path passes per sampled RL path (sampling with a KV cache, the loss, the KL reference, the
simulator's reward pass, all batched)."""
SFT_PASSES = 0.7
"""Path passes per training case and SFT epoch (teacher-forced)."""
EVAL_PASSES = 0.1
"""Path passes per generated and scored test path (forward only, large batches)."""
VALID_PASSES = 0.3
"""Path passes per validation case decoded once for checkpoint selection."""


@dataclass(frozen=True)
class CellCost:
    name: str
    seconds: float
    parts: str


def measure_rate(device: Any, n_items: int, seq_len: int, d_model: int = 64, n_layers: int = 2,
                 batch: int = 256, reps: int = 3) -> float:
    """Path passes per second: forward and backward of a ``d_model`` x ``n_layers`` transformer
    with a head over ``n_items``, on ``batch`` sequences of ``seq_len`` (median of ``reps``).
    The global random state is left as it was."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        heads = 2 if d_model % 2 == 0 else 1
        emb = nn.Embedding(n_items + 1, d_model).to(device)
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0,
                                                               batch_first=True), n_layers,
                                    enable_nested_tensor=False).to(device)
        head = nn.Linear(d_model, n_items).to(device)
        x = torch.randint(1, n_items + 1, (batch, seq_len), device=device)
        times = []
        for i in range(reps + 1):
            t0 = time.perf_counter()
            loss = head(enc(emb(x))).logsumexp(-1).mean()
            loss.backward()
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first is a warm-up
                times.append(time.perf_counter() - t0)
    return batch / sorted(times)[len(times) // 2]


def split_sizes(data: Any, cases_cfg: Any) -> dict[str, int]:
    """Cases per split: the dataset's own, else at most ``max_cases_per_user`` per user (capped)."""
    out = {}
    for split in ("train", "valid", "test"):
        own = (data.cases or {}).get(split) if getattr(data, "cases", None) else None
        if own is not None:
            out[split] = len(own)
            continue
        per_user = cases_cfg.max_cases_per_user or 1
        n = len(data.sequences.get(split, ())) * per_user
        out[split] = min(n, cases_cfg.max_cases_per_split) if cases_cfg.max_cases_per_split else n
    return out


def cell_passes(cfg: Any, n: dict[str, int], k_max: int, n_eval: int, rl: bool = True) -> tuple[float, str]:
    """Path passes of one cell with method config ``cfg`` and ``n`` cases per split; ``rl``: the
    method trains an RL stage (it is made from a registered estimator), not only the SFT stage."""
    g = lambda key: getattr(cfg, key, None)  # noqa: E731
    total, parts = 0.0, []
    valid = min(n["valid"], g("n_valid_cases") or n["valid"])
    if g("sft_epochs"):
        total += g("sft_epochs") * (SFT_PASSES * n["train"] + VALID_PASSES * valid)
        parts.append(f"SFT {g('sft_epochs')} epochs x {n['train']} cases")
    if rl and g("samples_per_case") and g("epochs"):
        per_epoch = min(n["train"], g("max_train_cases") or n["train"])
        total += g("epochs") * (per_epoch * g("samples_per_case") * RL_PASSES + VALID_PASSES * valid)
        parts.append(f"RL {g('epochs')} epochs x {per_epoch} cases x {g('samples_per_case')} samples")
    total += n["test"] * k_max * (1 + n_eval) * EVAL_PASSES
    parts.append(f"{n['test']} test cases x {k_max} paths, {n_eval} scorer(s)")
    return total, "; ".join(parts)


def estimate(res: Any, jobs: Any, datasets: dict[str, Any]) -> tuple[list[CellCost], list[str]]:
    """Per cell cost (``datasets``: the loaded data of each dataset) and the lines that explain it."""
    seq = int(res.cases_cfg.n_history) + int(res.cases_cfg.max_path_len)
    rates: dict[tuple[int, int, int], float] = {}
    costs = []
    for job in jobs:
        data = datasets[job.dataset]
        mcfg = res.method_cfgs[job.method]
        shape = (data.n_items, int(getattr(mcfg, "d_model", 64) or 64), int(getattr(mcfg, "n_layers", 2) or 2))
        if shape not in rates:
            rates[shape] = measure_rate(res.device, shape[0], seq, shape[1], shape[2])
        base = res.cfg.variants.get(job.method, {}).get("method", job.method)
        rl = base in res.registry.specs["estimators"]  # RL methods are made from estimators
        passes, parts = cell_passes(mcfg, split_sizes(data, res.cases_cfg), res.k_max, len(res.eval_simulators), rl)
        costs.append(CellCost(job.name, passes / rates[shape], parts))
    notes = [f"measured on {res.device}: " + ", ".join(f"{r:,.0f} path passes/s ({s[0]} items, d {s[1]}, "
                                                       f"{s[2]} layers)" for s, r in rates.items())]
    return costs, notes


def duration(seconds: float) -> str:
    """``"42 s"``, ``"3.5 min"``, ``"2.1 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
