"""The RL family of SPEC section 5: ProRL, its two ablations, naive-pg, grpo, rloo, and sft.

Each RL method is ONE small function: the per-position weight ``A_t`` it forms from the step
rewards of ``G`` sampled paths per case. Policy, rollout, rewards, loss, SFT stage and selection
are shared (:mod:`prorlbench.rl`, the library this plugin uses); every estimator registered here
(or by a third-party plugin) becomes a method of the same name: ``register_methods`` below
receives them all and turns each into one. Read this file as the table of SPEC section 5:

==============================  ==============  =============================================
method                          rewards         weight of every step t of a path
==============================  ==============  =============================================
prorl                           centred (SRC)   G_t - b_t (PSAE)
prorl-no-centering              scaled only     G_t - b_t
prorl-no-positional-baseline    centred         R - mean_group(R)
naive-pg (REINFORCE)            scaled only     R
grpo                            scaled only     (R - mean_group(R)) / (std_group(R) + 1e-6)
rloo                            scaled only     R - mean of R over the other G - 1 samples
noise-pg (placebo)              none            i.i.d. N(0, 1) per active action, no reward
==============================  ==============  =============================================

``noise-pg`` is the placebo control: it trains with the same loss, KL and schedule but with
advantages that carry no reward signal. Whatever an estimator gains over it on its own objective
is what the reward signal bought; what ``noise-pg`` also does (for example, longer paths) comes
from the protocol, not from the estimator.

Source: Hou et al., "ProRL" (the paper's SRC and PSAE); GRPO (Shao et al., 2024), RLOO (Ahmadian
et al., 2024) as peers. Deviation: the paper's policy is a T5 over semantic ids; ours is a small
transformer over item ids (see :mod:`prorlbench.rl.policy`). Hyper-parameters: ``RLConfig``.
"""

from __future__ import annotations

import torch

from prorlbench import hookimpl
from prorlbench.api import EstimatorSpec
from prorlbench.rl.config import RLConfig  # noqa: F401  (the config of every method below)
from prorlbench.rl.estimators import (
    AdvantageBatch,
    group_mean,
    group_std,
    leave_one_out_mean,
    on_every_step,
    positional_baseline,
)
from prorlbench.rl.method import method_from_estimator, sft_method_spec


def psae(b: AdvantageBatch) -> torch.Tensor:
    """Position-specific advantage: ``G_t`` minus the mean ``G_t`` of the group's samples active at t."""
    g = b.returns_to_go
    return b.masked(g - positional_baseline(b, g))


def path_baseline(b: AdvantageBatch) -> torch.Tensor:
    """One path-level baseline: ``R - mean_group(R)`` on every step."""
    r = b.path_return
    return on_every_step(b, r - group_mean(r, b.samples))


def reinforce(b: AdvantageBatch) -> torch.Tensor:
    """No baseline: the path return ``R`` on every step."""
    return on_every_step(b, b.path_return)


def grpo(b: AdvantageBatch) -> torch.Tensor:
    """Group-normalised return: ``(R - mean) / (unbiased std + 1e-6)`` on every step."""
    r = b.path_return
    return on_every_step(b, (r - group_mean(r, b.samples)) / (group_std(r, b.samples) + 1e-6))


def rloo(b: AdvantageBatch) -> torch.Tensor:
    """Leave-one-out baseline: ``R`` minus the mean ``R`` of the other G - 1 samples."""
    r = b.path_return
    return on_every_step(b, r - leave_one_out_mean(r, b.samples))


def noise(b: AdvantageBatch) -> torch.Tensor:
    """Placebo: i.i.d. standard normal weights on every active action (seeded), no reward."""
    z = torch.randn(b.rewards.shape, generator=b.generator, device=b.rewards.device, dtype=b.rewards.dtype)
    return b.masked(z)


ESTIMATORS = (
    EstimatorSpec("prorl", "ProRL: centred step rewards (SRC) + position-specific baseline (PSAE)", psae, centered=True),
    EstimatorSpec("prorl-no-centering", "ProRL ablation: PSAE on scaled, un-centred rewards", psae, centered=False),
    EstimatorSpec("prorl-no-positional-baseline", "ProRL ablation: SRC with one path-level baseline",
                  path_baseline, centered=True),
    EstimatorSpec("naive-pg", "REINFORCE: path return on every step, no baseline", reinforce, centered=False),
    EstimatorSpec("grpo", "GRPO: group-normalised path return", grpo, centered=False),
    EstimatorSpec("rloo", "RLOO: leave-one-out baseline on the path return", rloo, centered=False),
    EstimatorSpec("noise-pg", "Placebo: i.i.d. N(0, 1) advantages, no reward signal (the control)", noise,
                  centered=False),
)


@hookimpl
def register_estimators(register):
    for spec in ESTIMATORS:
        register(spec)


@hookimpl
def register_methods(register, estimators):
    """``sft``, and one method per registered estimator (this plugin's and any other plugin's)."""
    register(sft_method_spec())
    for spec in estimators.values():
        register(method_from_estimator(spec))
