"""``oracle``: the ground-truth user of the synthetic world as a simulator (SPEC sections 2 and 7).

It only exists for data whose loader sets ``Interactions.world`` to a
:class:`prorlbench_plugins.datasets.synthetic.SyntheticWorld`. Nothing is trained.

Conventions (documented deviations from the generating process):

* **Unknown starting preference.** A case gives only the last ``n_history`` items, not the user's
  initial preference, so the oracle starts every sequence from the population mean preference,
  the zero vector, and applies the true drift for every item of the sequence:
  ``pref_0 = 0``, ``pref_t = gamma * pref_{t-1} + (1 - gamma) * e_{s_t}``. With ``gamma = 0.8`` the
  forgotten start weighs ``gamma ** 10 ~ 0.11`` after a 10-item history.
* **State.** ``u(S) = beta * pref(S)`` (``d = dim``).
* **Logits.** ``score(S) = u(S) @ E.T + pop``: exactly the generating logits, except that the true
  process also excludes items the user has already consumed (the oracle scores every item, so its
  probabilities are the true ones renormalised over the whole catalog).
* **Acceptance.** ``accept_logit(S, i) = u(S) . e_i + pop_i``: the true utility of item ``i``
  (the generating logit), so ``accept = sigmoid(beta * pref . e_i + pop_i)``. It includes the
  popularity term, unlike the learned simulators' ``u . e_i``, because popularity is part of
  the ground-truth appeal of an item.
* ``item_embeddings()`` returns the unit item vectors ``E`` (logits are ``s @ E.T`` plus the
  per-item bias ``pop``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prorlbench import hookimpl
from prorlbench.api import Interactions, SimulatorInfo, SimulatorSpec
from prorlbench.toolkit import ConfigError, UserError, opt


@dataclass(frozen=True)
class OracleConfig:
    """The oracle has no training; only how long a sequence it accepts."""

    max_seq_len: int = opt(64, "longest sequence encode() accepts (history plus path)")

    def __post_init__(self) -> None:
        if self.max_seq_len < 2:
            raise ConfigError(f"simulators.oracle: max_seq_len must be >= 2, got {self.max_seq_len}")


class OracleModel(nn.Module):
    """The synthetic world's true user dynamics, implementing the ``SequenceModel`` protocol."""

    def __init__(self, item_vectors: torch.Tensor, popularity: torch.Tensor, beta: float, gamma: float,
                 max_seq_len: int = 64):
        super().__init__()
        self.n_items = int(item_vectors.shape[0])
        self.max_seq_len = int(max_seq_len)
        self.beta = float(beta)
        self.gamma = float(gamma)
        # Frozen parameters (not buffers) so that ``next(model.parameters()).device`` finds the device.
        self.E = nn.Parameter(item_vectors.detach().clone().float(), requires_grad=False)
        self.pop = nn.Parameter(popularity.detach().clone().float(), requires_grad=False)

    def encode(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``beta * pref`` after each prefix, starting from ``pref = 0``: ``[B, T] -> [B, T, dim]``."""
        B, T = seqs.shape
        valid = (seqs >= 0) & (seqs < self.n_items)
        emb = self.E[seqs.clamp(0, self.n_items - 1)] * valid[..., None].to(self.E.dtype)  # [B, T, d]
        t = torch.arange(T, device=seqs.device)
        diff = (t[:, None] - t[None, :]).to(self.E.dtype)  # [T, T], t - k
        w = (1.0 - self.gamma) * torch.pow(torch.tensor(self.gamma, dtype=self.E.dtype, device=seqs.device),
                                           diff.clamp(min=0))
        w = torch.where(diff >= 0, w, torch.zeros((), dtype=self.E.dtype, device=seqs.device))
        pref = torch.einsum("tk,bkd->btd", w, emb)
        return self.beta * pref

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        return states @ self.E.T + self.pop

    def accept_logit(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        items = items.clamp(0, self.n_items - 1)
        return (states * self.E[items]).sum(-1) + self.pop[items]

    def item_embeddings(self) -> torch.Tensor:
        return self.E


def build(cfg: OracleConfig, data: Interactions, *, device: Any = None, seed: int = 0,
          cache_dir: Path | None = None, progress: bool = False) -> tuple[OracleModel, SimulatorInfo]:
    """The oracle for ``data.world`` (``seed`` and ``cache_dir`` are unused: nothing is trained)."""
    world = data.world
    if world is None or not all(hasattr(world, a) for a in ("item_vectors", "popularity", "beta", "gamma")):
        raise UserError(f"the oracle simulator needs the synthetic dataset (dataset '{data.name}' has no "
                        "ground-truth world); use a learned simulator such as sasrec or gru4rec")
    if int(world.item_vectors.shape[0]) != data.n_items:
        raise UserError(f"the oracle world has {world.item_vectors.shape[0]} items but dataset "
                        f"'{data.name}' has {data.n_items}")
    model = OracleModel(world.item_vectors, world.popularity, world.beta, world.gamma, cfg.max_seq_len)
    model = model.to(device if device is not None else "cpu").eval()
    return model, SimulatorInfo(name="oracle", trained=False)


@hookimpl
def register_simulators(register):
    register(SimulatorSpec(
        name="oracle",
        summary="Ground-truth user of the synthetic world (preference drift replayed from a zero start)",
        build=build,
        config_cls=OracleConfig,
        learned=False,
    ))
