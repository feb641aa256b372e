"""Diagnostics of RL training that do not change it: gradient variance, validation objective,
reward components by position.

``grad_var`` (in-training, every ``grad_var_every`` steps): at the step's parameters and with the
step's advantages, the ``B`` cases are split into ``M = grad_var_splits`` minibatches and the mean
per-coordinate variance of their policy-gradient gradients is logged. Each estimator is measured
along its *own* trajectory (other parameters, other rollouts), so this diagnostic cannot compare
estimators; ``python -m benchmarks.grad_variance`` does that on identical rollouts at fixed
parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..api import SequenceModel
from .estimators import COMPONENTS
from .policy import CaseTensors, PathPolicy
from .semantic_rewards import rollout_rewards

from .rollout import Rollout, pg_loss

if TYPE_CHECKING:  # pragma: no cover
    from .config import RLConfig


def flat_grad(policy: PathPolicy, loss: torch.Tensor) -> torch.Tensor:
    """The gradient of ``loss`` w.r.t. every trainable parameter, flattened."""
    params = [p for p in policy.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def gradient_variance_terms(policy: PathPolicy, ro: Rollout, splits: int) -> torch.Tensor | None:
    """``[var, mean_sq]`` as one device tensor (no host sync): the mean per-coordinate variance
    across ``M`` minibatch PG gradients and the mean squared coordinate of their mean; None when
    there are fewer than 2 cases."""
    n_cases = len(ro.cases)
    if n_cases < 2:
        return None
    m = max(2, min(splits, n_cases))
    grads = []
    for cg in torch.arange(n_cases, device=ro.paths.device).chunk(m):
        loss, _ = pg_loss(policy, ro, cg)
        grads.append(flat_grad(policy, loss))
    stack = torch.stack(grads)
    return torch.stack([stack.var(0, unbiased=True).mean(), stack.mean(0).pow(2).mean()])


def gradient_variance(policy: PathPolicy, ro: Rollout, splits: int) -> tuple[float, float]:
    """``(mean per-coordinate variance across M minibatch PG gradients, relative variance)``."""
    terms = gradient_variance_terms(policy, ro, splits)
    if terms is None:
        return float("nan"), float("nan")
    var, mean_sq = terms.tolist()
    return var, var / mean_sq if mean_sq > 0 else float("nan")


class PositionProfile:
    """Sums of the raw reward components of sampled paths by position (device tensors, no sync)."""

    def __init__(self, n_positions: int, device: torch.device | str):
        self.sums = torch.zeros(len(COMPONENTS), n_positions, device=device)
        self.counts = torch.zeros(n_positions, device=device)

    def add(self, raw: dict[str, torch.Tensor], valid: torch.Tensor) -> None:
        v = valid.float()
        self.sums += torch.stack([(raw[c] * v).sum(0) for c in COMPONENTS])
        self.counts += v.sum(0)

    def values(self, prefix: str) -> dict[str, float]:
        """``{prefix}_ioi_t0 ...``: mean raw component of valid steps at each position."""
        mean = (self.sums / self.counts.clamp(min=1)).tolist()
        counts = self.counts.tolist()
        return {f"{prefix}_{c}_t{t}": mean[i][t] for i, c in enumerate(COMPONENTS)
                for t in range(len(counts)) if counts[t] > 0}


@torch.no_grad()
def sampled_validation(policy: PathPolicy, simulator: SequenceModel, ct: CaseTensors, cfg: "RLConfig",
                       normalizer, centered: bool, max_path_len: int, generator: torch.Generator,
                       samples: int = 1, batch: int = 256) -> dict[str, float]:
    """The training objective on validation: ``samples`` paths per case drawn as in training,
    scored with the training simulator and the run's normaliser.

    Returns ``vs_len`` (mean items), ``vs_ioi`` / ``vs_ior`` / ``vs_ctr`` (mean raw sums per path:
    path IoI, path IoR, accepted items), ``vs_valid_steps`` and ``vs_objective`` (mean normalised
    return ``R`` with the run's statistics, centred as the estimator's rewards are).
    """
    from .estimators import step_rewards

    if len(ct) == 0:
        return {}
    was = policy.training
    policy.eval()
    tot = torch.zeros(6, dtype=torch.float64)
    n = 0
    for s in range(0, len(ct), batch):
        part = ct.index(torch.arange(s, min(s + batch, len(ct)), device=ct.target.device))
        rows = part.repeat(samples)
        paths, lengths, _ = policy.sample(part.hist_left, part.target, generator, repeat=samples,
                                          max_len=max_path_len, temperature=cfg.sample_temperature,
                                          top_k=cfg.sample_top_k)
        raw, valid, credit = rollout_rewards(policy, simulator, rows.hist, rows.hist_len, rows.target, paths,
                                             lengths, state=cfg.reward_state)
        item_mask = torch.arange(max_path_len, device=paths.device)[None] < lengths[:, None]
        normed = normalizer.normalize(raw, centered=centered)
        r, _ = step_rewards(normed, item_mask, credit, {"ctr": cfg.w_ctr, "ioi": cfg.w_ioi, "ior": cfg.w_ior},
                            max_path_len)
        tot += torch.stack([lengths.double().sum(), raw["ioi"].double().sum(), raw["ior"].double().sum(),
                            raw["ctr"].double().sum(), valid.double().sum(), r.double().sum()]).cpu()
        n += paths.shape[0]
    policy.train(was)
    keys = ("vs_len", "vs_ioi", "vs_ior", "vs_ctr", "vs_valid_steps", "vs_objective")
    return dict(zip(keys, (tot / max(n, 1)).tolist()))
