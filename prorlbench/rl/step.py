"""One RL training step, with no host read inside it, and the values it logs.

:func:`rl_step_stats` queues one update on the device and returns its logged values as a device
tensor (:class:`StepStats`): nothing in it calls ``.item()``, ``.cpu()``, ``.tolist()``, ``int`` /
``float`` / ``bool`` of a tensor, or branches on a tensor's value, so on an accelerator the host
never waits for the device during a step (the CPU keeps a few shortcuts that read values,
behind :func:`prorlbench.seq.rowshare.host_reads_cheap`; ``tests/rl/test_no_sync.py`` checks both).
:class:`PendingLog` keeps the steps' values on the device and reads them all in one transfer per
logging interval; the rows it logs are the ones a per-step read would log, in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..api import EstimatorSpec, SequenceModel, TrainLogger
from .config import RLConfig
from .diagnostics import PositionProfile, gradient_variance_terms
from .estimators import RewardNormalizer
from .policy import CaseTensors, PathPolicy
from .precision import autocast
from .rollout import kl_term, pg_loss, rollout

STEP_KEYS = ("path_len", "stop_rate", "reward_ctr", "reward_ioi", "reward_ior", "reward_return", "loss",
             "pg_loss", "kl", "adv_abs", "empty_rate")
"""The values every step logs, in the order of the one tensor that carries them to the host."""


@dataclass
class StepStats:
    """One step's logged values, still on the device: :data:`STEP_KEYS`, then (``grad_var``) the
    gradient variance and the mean squared gradient coordinate."""

    values: torch.Tensor
    grad_var: bool


def rl_step_stats(policy: PathPolicy, ref: PathPolicy, opt: torch.optim.Optimizer, simulator: SequenceModel,
                  cases: CaseTensors, cfg: RLConfig, estimator: EstimatorSpec, normalizer: RewardNormalizer,
                  max_path_len: int, generator: torch.Generator, grad_var: bool = False,
                  noise_generator: torch.Generator | None = None, profile: PositionProfile | None = None
                  ) -> StepStats:
    """One RL update on the ``B`` cases ``cases``: sample ``G`` paths per case, reward them with
    ``simulator``, normalise, estimate the advantages, and take one optimizer step on the loss.
    Returns the step's logged values on the device (read them with :func:`read_steps`)."""
    with autocast(cfg, cases.target.device):  # off unless cfg.autocast (prorlbench.rl.precision)
        ro = rollout(policy, simulator, cases, cfg, estimator, normalizer, max_path_len, generator, noise_generator)
        if profile is not None:
            profile.add(ro.raw, ro.valid)
        gv_terms = gradient_variance_terms(policy, ro, cfg.grad_var_splits) if grad_var else None
        exact = cfg.kl == "exact"
        pg, logp, *rest = pg_loss(policy, ro, full=exact)
        with torch.no_grad():
            ref_out = ref.action_log_probs(cases.hist_left, cases.target, ro.paths, ro.lengths, ro.stopped,
                                           repeat=cfg.samples_per_case, full=exact)
        ref_logp, ref_all = ref_out if exact else (ref_out, None)
        kl = kl_term(cfg.kl, logp, ref_logp, ro.active, rest[0] if exact else None, ref_all).sum()
        kl = kl / ro.n_paths
        loss = pg + cfg.beta * kl
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
    opt.step()
    with torch.no_grad():
        n_item = ro.lengths.sum().clamp(min=1)
        stats = [
            ro.lengths.float().mean(), ro.stopped.float().mean(), ro.raw["ctr"].sum() / n_item,
            ro.raw["ioi"].sum(1).mean(), ro.raw["ior"].sum(1).mean(), ro.batch.path_return.mean(),
            loss.detach(), pg.detach(), kl.detach(),
            ro.advantages.abs().sum() / ro.batch.active.sum().clamp(min=1),
            (ro.lengths == 0).float().mean(),
        ]
        if gv_terms is not None:
            stats += [gv_terms[0], gv_terms[1]]
        values = torch.stack([x.float().reshape(()) for x in stats])
    return StepStats(values, gv_terms is not None)


def step_values(host: list[float], grad_var: bool) -> dict[str, float]:
    """A step's logged values from its host copy: ``grad_var`` / ``grad_var_rel`` first (when
    measured and finite), then :data:`STEP_KEYS`."""
    values: dict[str, float] = {}
    if grad_var:
        var, mean_sq = host[len(STEP_KEYS):]
        gv_rel = var / mean_sq if mean_sq > 0 else float("nan")
        values.update({k: v for k, v in (("grad_var", var), ("grad_var_rel", gv_rel)) if math.isfinite(v)})
    values.update(zip(STEP_KEYS, host[: len(STEP_KEYS)]))
    return values


def read_steps(stats: list[StepStats]) -> list[dict[str, float]]:
    """The logged values of several steps, read in ONE device-to-host transfer."""
    if not stats:
        return []
    host = torch.cat([s.values for s in stats]).tolist()
    out, i = [], 0
    for s in stats:
        n = s.values.shape[0]
        out.append(step_values(host[i : i + n], s.grad_var))
        i += n
    return out


def rl_step(*args, **kwargs) -> dict[str, float]:
    """:func:`rl_step_stats` with its values read at once (one transfer; benchmarks and tests)."""
    return read_steps([rl_step_stats(*args, **kwargs)])[0]


@dataclass
class PendingLog:
    """Steps whose values are still on the device; :meth:`flush` reads them in one transfer and
    logs each step's row (its values, then ``lr``), in step order."""

    items: list[tuple[int, StepStats, float]] = field(default_factory=list)

    def add(self, step: int, stats: StepStats, lr: float) -> None:
        self.items.append((step, stats, lr))

    def flush(self, logger: TrainLogger) -> dict[str, float] | None:
        """Log every pending step; returns the last one's values (None when nothing was pending)."""
        values = read_steps([s for _, s, _ in self.items])
        last = None
        for (step, _, lr), v in zip(self.items, values):
            v["lr"] = lr
            logger.log(step, **v)
            last = v
        self.items = []
        return last
