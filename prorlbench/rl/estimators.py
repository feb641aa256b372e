"""Advantage estimation for the RL family (SPEC section 5): the ONE place where methods differ.

Every RL method samples ``G`` paths per case from the same policy, scores them with the same
simulator and trains with the same loss; the only thing that changes is the per-position weight
``A_t`` an *estimator* forms from the step rewards. An estimator is a function

    estimate(batch: AdvantageBatch) -> Tensor[B, G, P]

where ``P == max_path_len`` positions ``t = 0 .. P-1`` hold, for each sampled path, first its
items (``t < n_items``) and then its STOP action (``t == n_items`` when ``stopped``); every other
position is inactive and must get weight 0 (:meth:`AdvantageBatch.masked` does that). A path of
``max_path_len`` items ends without a STOP action (nothing is left to decide).

The rewards inside the batch are already normalised by :class:`RewardNormalizer`: *centred*
(``(x - mu) / sigma``, SRC) when the estimator's spec says ``centered=True``, *scaled only*
(``x / sigma``) otherwise. Helpers below (:func:`positional_baseline`, :func:`group_mean`,
:func:`on_every_step`) make the built-in estimators in ``plugins/methods/rl_family.py`` one-liners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..seq import rowshare

COMPONENTS = ("ctr", "ioi", "ior")
"""The reward components, in the order used everywhere."""


# --------------------------------------------------------------------------------------------
# The batch an estimator receives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvantageBatch:
    """``B`` cases x ``G`` sampled paths x ``P`` positions (``P = max_path_len``)."""

    rewards: torch.Tensor
    """``[B, G, P]`` float: normalised step reward ``r_t`` of item position ``t``; 0 elsewhere
    (the STOP action earns no reward: ``G_m = 0``)."""
    n_items: torch.Tensor
    """``[B, G]`` long: number of items in each sampled path (``0 .. P``)."""
    stopped: torch.Tensor
    """``[B, G]`` bool: the path ended with a STOP action (always ``False`` when ``n_items == P``)."""
    gamma: float = 1.0
    """Discount of the returns-to-go."""
    components: dict[str, torch.Tensor] = field(default_factory=dict)
    """Normalised reward components ``[B, G, P]`` by name (``ctr`` already divided by ``P``),
    for estimators that want to weigh them differently; ``rewards`` is their weighted sum."""
    samples: torch.Tensor | None = None
    """``[B, G]`` bool: the samples that take part (None: all). With ``empty_paths = 'skip'``,
    0-item paths are left out: they have no active position, and the group helpers below
    (baselines, group mean/std) ignore them when given ``batch.samples``."""
    generator: torch.Generator | None = None
    """A seeded generator for estimators that draw random numbers (``noise-pg``)."""

    @property
    def n_positions(self) -> int:
        return self.rewards.shape[-1]

    @property
    def item_mask(self) -> torch.Tensor:
        """``[B, G, P]`` bool: position ``t`` holds an item."""
        t = torch.arange(self.n_positions, device=self.rewards.device)
        return t < self.n_items[..., None]

    @property
    def stop_mask(self) -> torch.Tensor:
        """``[B, G, P]`` bool: position ``t`` is the STOP action."""
        t = torch.arange(self.n_positions, device=self.rewards.device)
        return (t == self.n_items[..., None]) & self.stopped[..., None]

    @property
    def active(self) -> torch.Tensor:
        """``[B, G, P]`` bool: the path takes an action at ``t`` (an item or STOP) and takes part."""
        act = self.item_mask | self.stop_mask
        return act if self.samples is None else act & self.samples[..., None]

    @property
    def returns_to_go(self) -> torch.Tensor:
        """``[B, G, P]``: ``G_t = sum_{k >= t} gamma^(k-t) r_k`` (0 at STOP and after)."""
        r = self.rewards * self.item_mask
        out = torch.zeros_like(r)
        running = torch.zeros_like(r[..., 0])
        for t in range(self.n_positions - 1, -1, -1):
            running = r[..., t] + self.gamma * running
            out[..., t] = running
        return out * self.active

    @property
    def path_return(self) -> torch.Tensor:
        """``[B, G]``: ``R = sum_k r_k`` (undiscounted, the path-level reward)."""
        return (self.rewards * self.item_mask).sum(-1)

    def masked(self, weights: torch.Tensor) -> torch.Tensor:
        """Zero the weights of inactive positions."""
        return torch.where(self.active, weights, torch.zeros((), device=weights.device, dtype=weights.dtype))


# --------------------------------------------------------------------------------------------
# Building blocks for estimators
# --------------------------------------------------------------------------------------------


def positional_baseline(batch: AdvantageBatch, values: torch.Tensor) -> torch.Tensor:
    """PSAE baseline: ``b_t`` = mean of ``values[..., t]`` over the group's samples active at ``t``.

    ``values [B, G, P]`` -> ``[B, 1, P]`` (0 where no sample is active).
    """
    act = batch.active.to(values.dtype)
    total = (values * act).sum(1, keepdim=True)
    count = act.sum(1, keepdim=True)
    return total / count.clamp(min=1.0)


def group_mean(x: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the ``G`` samples of each case (those in ``samples`` when given): ``[B, G] -> [B, 1]``."""
    if samples is None:
        return x.mean(1, keepdim=True)
    m = samples.to(x.dtype)
    return (x * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)


def group_std(x: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
    """Unbiased std over the ``G`` samples of each case (those in ``samples`` when given; 0 with
    fewer than 2): ``[B, G] -> [B, 1]``."""
    if samples is None:
        if x.shape[1] < 2:
            return torch.zeros_like(x[:, :1])
        return x.std(1, keepdim=True, unbiased=True)
    m = samples.to(x.dtype)
    n = m.sum(1, keepdim=True)
    dev = (x - group_mean(x, samples)) * m
    return ((dev * dev).sum(1, keepdim=True) / (n - 1).clamp(min=1.0)).sqrt() * (n > 1)


def leave_one_out_mean(x: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
    """For each sample, the mean of ``x`` over the other samples of its case (those in ``samples``
    when given; 0 when there are none)."""
    if samples is None:
        g = x.shape[1]
        if g < 2:
            return torch.zeros_like(x)
        return (x.sum(1, keepdim=True) - x) / (g - 1)
    m = samples.to(x.dtype)
    others = m.sum(1, keepdim=True) - m
    return ((x * m).sum(1, keepdim=True) - x * m) / others.clamp(min=1.0)


def on_every_step(batch: AdvantageBatch, path_weight: torch.Tensor) -> torch.Tensor:
    """Broadcast a path-level weight ``[B, G]`` to every active position of the path."""
    return batch.masked(path_weight[..., None].expand_as(batch.rewards))


# --------------------------------------------------------------------------------------------
# Reward normalisation (SRC)
# --------------------------------------------------------------------------------------------


class RewardNormalizer:
    """Running mean/std per reward component (Welford over *valid* steps), frozen on request.

    ``normalize(raw, valid, centered)`` maps each component ``x`` to ``(x - mu) / sigma``
    (``centered``) or ``x / sigma`` (scaled only). Before any update ``mu = 0`` and
    ``sigma = 1``. ``sigma`` is the population std, floored at ``eps``.

    On the CPU the statistics are Python floats (each batch's mean read on the host). On an
    accelerator they are 0-d float64 tensors on the device, updated with masked sums, so an RL
    step never waits for the device (:func:`prorlbench.seq.rowshare.host_reads_cheap`); ``mu``,
    ``sigma`` and ``state`` then hold or read those tensors.
    """

    def __init__(self, components: tuple[str, ...] = COMPONENTS, eps: float = 1e-6):
        self.components = components
        self.eps = eps
        self.count: float | torch.Tensor = 0
        self._mean: dict[str, float | torch.Tensor] = {c: 0.0 for c in components}
        self._m2: dict[str, float | torch.Tensor] = {c: 0.0 for c in components}
        self.frozen = False

    def update(self, raw: dict[str, torch.Tensor], valid: torch.Tensor) -> None:
        """Fold the valid steps of a batch in (batched Welford / Chan et al. merge). No-op once frozen."""
        if self.frozen:
            return
        if not rowshare.host_reads_cheap(valid.device) or torch.is_tensor(self.count):
            self._update_on_device(raw, valid)
            return
        n_b = int(valid.sum())
        if n_b == 0:
            return
        n = self.count
        for c in self.components:
            x = raw[c][valid].double()
            mean_b = float(x.mean())
            m2_b = float(((x - mean_b) ** 2).sum())
            delta = mean_b - self._mean[c]
            tot = n + n_b
            self._mean[c] += delta * n_b / tot
            self._m2[c] += m2_b + delta * delta * n * n_b / tot
        self.count = n + n_b

    def _update_on_device(self, raw: dict[str, torch.Tensor], valid: torch.Tensor) -> None:
        """The same merge with masked sums on the device (no host read; a batch without valid
        steps leaves the statistics as they are)."""
        dev = valid.device
        as_t = lambda v: torch.as_tensor(v, dtype=torch.float64, device=dev)  # noqa: E731
        n, n_b = as_t(self.count), valid.sum().double()
        tot = n + n_b
        some, safe_b, safe_t = n_b > 0, n_b.clamp(min=1), tot.clamp(min=1)
        zero = torch.zeros((), dtype=torch.float64, device=dev)
        for c in self.components:
            x = raw[c].double()
            mean_b = torch.where(valid, x, zero).sum() / safe_b
            m2_b = torch.where(valid, (x - mean_b) ** 2, zero).sum()
            mean, m2 = as_t(self._mean[c]), as_t(self._m2[c])
            delta = mean_b - mean
            self._mean[c] = torch.where(some, mean + delta * n_b / safe_t, mean)
            self._m2[c] = torch.where(some, m2 + m2_b + delta * delta * n * n_b / safe_t, m2)
        self.count = tot

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue exactly (RL checkpoints)."""
        return {"count": self.count, "mean": dict(self._mean), "m2": dict(self._m2), "frozen": self.frozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count, self.frozen = state["count"], bool(state["frozen"])
        self._mean, self._m2 = dict(state["mean"]), dict(state["m2"])

    def freeze(self) -> None:
        self.frozen = True

    @property
    def mu(self) -> dict[str, float | torch.Tensor]:
        return dict(self._mean)

    @property
    def sigma(self) -> dict[str, float | torch.Tensor]:
        if torch.is_tensor(self.count):  # device statistics: no host read
            n = self.count
            return {c: torch.where(n > 0, (self._m2[c] / n.clamp(min=1)).sqrt().clamp(min=self.eps), 1.0)
                    for c in self.components}
        if self.count == 0:
            return {c: 1.0 for c in self.components}
        return {c: max((self._m2[c] / self.count) ** 0.5, self.eps) for c in self.components}

    def normalize(self, raw: dict[str, torch.Tensor], centered: bool) -> dict[str, torch.Tensor]:
        """Each component ``[..]`` normalised with the current statistics (masking is done by
        :func:`step_rewards`)."""
        mu, sigma = self.mu, self.sigma
        out = {}
        for c in self.components:
            x = raw[c]
            z = (x - mu[c]) / sigma[c] if centered else x / sigma[c]
            out[c] = z
        return out

    def state(self) -> dict[str, float]:
        """For logging: ``mu_ctr, sigma_ctr, ...`` (host floats)."""
        d = {f"mu_{c}": float(v) for c, v in self.mu.items()}
        d.update({f"sigma_{c}": float(v) for c, v in self.sigma.items()})
        return d

    @classmethod
    def fixed(cls, mu: dict[str, float], sigma: dict[str, float]) -> "RewardNormalizer":
        """A frozen normaliser with given statistics (tests, reference vectors)."""
        norm = cls(tuple(mu))
        norm.count = 1
        norm._mean = dict(mu)
        norm._m2 = {c: sigma[c] ** 2 for c in mu}
        norm.frozen = True
        return norm


def step_rewards(
    normalized: dict[str, torch.Tensor], item_mask: torch.Tensor, valid: torch.Tensor,
    weights: dict[str, float], max_path_len: int,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``r_k = w_ctr * ctr_k / max_path_len + w_ioi * ioi_k + w_ior * ior_k`` on item positions.

    Invalid steps (``item_mask & ~valid``) keep the ctr term (their raw ctr is 0, a penalty once
    centred) and get no ioi/ior credit. Returns ``(rewards [.., P], weighted components)``.
    """
    zero = torch.zeros((), device=item_mask.device)
    comps = {}
    for c, z in normalized.items():
        keep = item_mask if c == "ctr" else (item_mask & valid)
        term = weights.get(c, 1.0) * (z / max_path_len if c == "ctr" else z)
        comps[c] = torch.where(keep, term, zero)
    return sum(comps.values()), comps
