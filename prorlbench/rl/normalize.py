"""The reward normalisers of ``RLConfig.centering``: global (SRC), per position, per batch.

All three have the interface of :class:`~prorlbench.rl.estimators.RewardNormalizer`:
``update(raw, valid)`` folds in the valid steps of a batch (``raw[c]`` is ``[N, P]``),
``freeze()`` stops updating, ``normalize(raw, centered)`` returns ``(x - mu) / sigma`` (or
``x / sigma``), ``state()`` gives the values to log.

* ``global`` (paper, official): one ``mu`` and ``sigma`` per component.
* ``position``: ``mu_t`` and ``sigma_t`` per component and path position ``t``, so that on the
  normaliser's data the centred step reward averages 0 at *every* position (step rewards depend
  strongly on position: the first IoR step is much larger than later ones, and a global mean then
  pays every later step). A position with fewer than 2 valid steps uses the global statistics.
* ``batch``: the statistics of the current batch only (never frozen).
"""

from __future__ import annotations

from typing import Any

import torch

from ..seq import rowshare
from .estimators import COMPONENTS, RewardNormalizer


class PositionNormalizer:
    """Welford statistics per component and position (population std, floored at ``eps``)."""

    def __init__(self, n_positions: int, components: tuple[str, ...] = COMPONENTS, eps: float = 1e-6):
        self.components, self.eps, self.n_positions = components, eps, n_positions
        self.overall = RewardNormalizer(components, eps)
        z = torch.zeros(n_positions, dtype=torch.float64)
        self.count = z.clone()
        self._mean = {c: z.clone() for c in components}
        self._m2 = {c: z.clone() for c in components}
        self.frozen = False

    def update(self, raw: dict[str, torch.Tensor], valid: torch.Tensor) -> None:
        if self.frozen:
            return
        self.overall.update(raw, valid)
        dev = valid.device
        if self.count.device != dev:  # the statistics live where the rewards are (no host read)
            self._to(dev)
        m = valid.double()
        n_b = m.sum(0)
        if rowshare.host_reads_cheap(dev) and not bool((n_b > 0).any()):
            return  # (a shortcut only: the updates below leave positions without steps as they are)
        n, tot = self.count, self.count + n_b
        safe_b, safe_t = n_b.clamp(min=1), tot.clamp(min=1)
        for c in self.components:
            x = raw[c].double() * m
            mean_b = x.sum(0) / safe_b
            m2_b = (((raw[c].double() - mean_b) ** 2) * m).sum(0)
            delta = mean_b - self._mean[c]
            self._mean[c] = torch.where(n_b > 0, self._mean[c] + delta * n_b / safe_t, self._mean[c])
            self._m2[c] = torch.where(n_b > 0, self._m2[c] + m2_b + delta * delta * n * n_b / safe_t, self._m2[c])
        self.count = tot

    def _to(self, dev: torch.device) -> None:
        self.count = self.count.to(dev)
        self._mean = {c: v.to(dev) for c, v in self._mean.items()}
        self._m2 = {c: v.to(dev) for c, v in self._m2.items()}

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue exactly (RL checkpoints)."""
        return {"overall": self.overall.state_dict(), "count": self.count, "mean": dict(self._mean),
                "m2": dict(self._m2), "frozen": self.frozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.overall.load_state_dict(state["overall"])
        self.count, self.frozen = state["count"], bool(state["frozen"])
        self._mean, self._m2 = dict(state["mean"]), dict(state["m2"])

    def freeze(self) -> None:
        self.frozen = True
        self.overall.freeze()

    def stats(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(mu, sigma)`` per component, each ``[P]`` (global values where a position has < 2 steps)."""
        mu_g, sd_g = self.overall.mu, self.overall.sigma
        few = self.count < 2
        mu, sd = {}, {}
        for c in self.components:
            s = (self._m2[c] / self.count.clamp(min=1)).sqrt().clamp(min=self.eps)
            mu[c] = torch.where(few, mu_g[c], self._mean[c])
            sd[c] = torch.where(few, sd_g[c], s)
        return mu, sd

    def normalize(self, raw: dict[str, torch.Tensor], centered: bool) -> dict[str, torch.Tensor]:
        mu, sd = self.stats()
        out = {}
        for c in self.components:
            x = raw[c]
            p = x.shape[-1]
            m, s = mu[c][:p].to(x), sd[c][:p].to(x)
            out[c] = (x - m) / s if centered else x / s
        return out

    def state(self) -> dict[str, float]:
        mu, sd = self.stats()
        d: dict[str, float] = {}
        for c in self.components:
            for t in range(self.n_positions):
                d[f"mu_{c}_t{t}"] = float(mu[c][t])
                d[f"sigma_{c}_t{t}"] = float(sd[c][t])
        return d


class BatchNormalizer(RewardNormalizer):
    """The statistics of the latest batch only; ``freeze`` is ignored (re-centred every batch)."""

    def update(self, raw: dict[str, torch.Tensor], valid: torch.Tensor) -> None:
        self.count = 0
        self._mean = {c: 0.0 for c in self.components}
        self._m2 = {c: 0.0 for c in self.components}
        super().update(raw, valid)

    def freeze(self) -> None:
        pass


def make_normalizer(centering: str, n_positions: int) -> RewardNormalizer | PositionNormalizer:
    """The normaliser of ``RLConfig.centering``."""
    if centering == "global":
        return RewardNormalizer(COMPONENTS)
    if centering == "position":
        return PositionNormalizer(n_positions, COMPONENTS)
    if centering == "batch":
        return BatchNormalizer(COMPONENTS)
    raise ValueError(f"unknown centering {centering!r}")
