"""One rollout of the RL family: sample, reward, normalise, estimate; the PG loss and the KL term.

Used by :mod:`prorlbench.rl.trainer` (every step) and by ``benchmarks.grad_variance`` (which
re-estimates one rollout with every estimator through :func:`advantages`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..api import EstimatorSpec, SequenceModel
from .config import RLConfig
from .estimators import AdvantageBatch, RewardNormalizer, step_rewards
from .policy import CaseTensors, PathPolicy
from .semantic_rewards import rollout_rewards


# --------------------------------------------------------------------------------------------
# One rollout: sample, reward, normalise, estimate
# --------------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """``B * G`` sampled paths with everything the loss needs."""

    cases: CaseTensors
    """The ``B`` cases; row ``b * G + j`` below is sample ``j`` of case ``b``."""
    rows: CaseTensors
    paths: torch.Tensor
    lengths: torch.Tensor
    stopped: torch.Tensor
    batch: AdvantageBatch
    advantages: torch.Tensor
    """``[B * G, P]`` estimator weights (detached)."""
    raw: dict[str, torch.Tensor]
    valid: torch.Tensor

    @property
    def active(self) -> torch.Tensor:
        """``[B * G, P]`` bool: positions with an action that takes part in the loss."""
        return self.batch.active.reshape(self.paths.shape)

    @property
    def n_paths(self) -> torch.Tensor:
        """Paths that take part (all, or the non-empty ones with ``empty_paths = 'skip'``), >= 1."""
        s = self.batch.samples
        return paths_count(self.paths.shape[0], s, self.paths.device)


def paths_count(n: int, samples: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """The number of paths that take part, a float tensor on ``device`` (made there: no copy
    from the host inside a step): ``n``, or the ``samples`` that take part (at least 1)."""
    if samples is None:
        return torch.full((), float(n), device=device)
    return samples.sum().clamp(min=1).float()


def rollout(policy: PathPolicy, simulator: SequenceModel, cases: CaseTensors, cfg: RLConfig,
            estimator: EstimatorSpec, normalizer: RewardNormalizer, max_path_len: int,
            generator: torch.Generator, noise_generator: torch.Generator | None = None) -> Rollout:
    g = cfg.samples_per_case
    rows = cases.repeat(g)
    policy.eval()
    sample = policy.sample
    if cfg.compile_sampling:  # the same draws through torch.compile'd steps (prorlbench.rl.compiled)
        from .compiled import sample as compiled_sample

        sample = functools.partial(compiled_sample, policy)
    paths, lengths, stopped = sample(cases.hist_left, cases.target, generator, max_len=max_path_len,
                                     repeat=g, temperature=cfg.sample_temperature, top_k=cfg.sample_top_k)
    raw, valid, credit = rollout_rewards(policy, simulator, rows.hist, rows.hist_len, rows.target, paths, lengths,
                                         state=cfg.reward_state)  # free decoding: the official penalties
    normalizer.update(raw, valid)  # 0-item paths have no valid step: never in the statistics
    return advantages(cases, rows, paths, lengths, stopped, raw, valid, cfg, estimator, normalizer,
                      max_path_len, noise_generator, credit=credit)


def advantages(cases: CaseTensors, rows: CaseTensors, paths: torch.Tensor, lengths: torch.Tensor,
               stopped: torch.Tensor, raw: dict[str, torch.Tensor], valid: torch.Tensor, cfg: RLConfig,
               estimator: EstimatorSpec, normalizer: RewardNormalizer, max_path_len: int,
               noise_generator: torch.Generator | None = None, credit: torch.Tensor | None = None) -> Rollout:
    """Normalise raw step rewards, build the :class:`AdvantageBatch` and run ``estimator`` on it
    (``benchmarks.grad_variance`` calls this once per estimator on the same sampled paths).
    ``credit``: the steps whose ioi / ior count (default ``valid``; free decoding: every item)."""
    g = cfg.samples_per_case
    credit = valid if credit is None else credit
    item_mask = torch.arange(max_path_len, device=paths.device)[None] < lengths[:, None]
    normed = normalizer.normalize(raw, centered=estimator.centered)
    weights = {"ctr": cfg.w_ctr, "ioi": cfg.w_ioi, "ior": cfg.w_ior}
    r, comps = step_rewards(normed, item_mask, credit, weights, max_path_len)
    b = len(cases)
    shape = (b, g, max_path_len)
    batch = AdvantageBatch(
        rewards=r.view(shape).float(), n_items=lengths.view(b, g), stopped=stopped.view(b, g),
        gamma=cfg.gamma, components={c: v.view(shape).float() for c, v in comps.items()},
        samples=(lengths > 0).view(b, g) if cfg.empty_paths == "skip" else None,
        generator=noise_generator,
    )
    adv = estimator.estimate(batch)
    if tuple(adv.shape) != shape:
        raise ValueError(f"estimator '{estimator.name}' returned shape {tuple(adv.shape)}, expected {shape}")
    adv = batch.masked(adv.float()).reshape(b * g, max_path_len).detach()
    return Rollout(cases, rows, paths, lengths, stopped, batch, adv, raw, valid)


def pg_loss(policy: PathPolicy, ro: Rollout, case_idx: torch.Tensor | None = None, full: bool = False
            ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(sum_t -log pi(a_t) A_t / n_paths, log pi [n, P])`` on the paths of cases ``case_idx``
    (all when None); ``n_paths`` counts the paths that take part. With ``full``, also the whole
    per-step ``log pi`` ``[n, P, A]`` (for the exact KL)."""
    g = ro.paths.shape[0] // len(ro.cases)
    cases, paths, lengths, stopped, adv = ro.cases, ro.paths, ro.lengths, ro.stopped, ro.advantages
    active = ro.active
    n_paths = ro.n_paths
    if case_idx is not None:
        idx = (case_idx[:, None] * g + torch.arange(g, device=case_idx.device)[None]).reshape(-1)
        cases, paths, lengths, stopped, adv = cases.index(case_idx), paths[idx], lengths[idx], stopped[idx], adv[idx]
        active = active[idx]
        s = ro.batch.samples
        n_paths = paths_count(idx.shape[0], None if s is None else s.reshape(-1)[idx], idx.device)
    out = policy.action_log_probs(cases.hist_left, cases.target, paths, lengths, stopped, repeat=g, full=full)
    logp, logp_all = out if full else (out, None)
    logp = torch.where(active, logp, torch.zeros((), device=logp.device))
    loss = -(logp * adv).sum() / n_paths
    return (loss, logp, logp_all) if full else (loss, logp)


def kl_term(form: str, logp: torch.Tensor, ref_logp: torch.Tensor, active: torch.Tensor,
            logp_all: torch.Tensor | None = None, ref_all: torch.Tensor | None = None) -> torch.Tensor:
    """Per-path KL penalty ``[n]`` summed over active positions (``RLConfig.kl``).

    * ``k1``: ``log pi(a_t) - log pi_ref(a_t)`` on the sampled actions (official; its expected
      value is KL(pi || pi_ref) but its expected gradient is zero);
    * ``k3``: ``rho - 1 - log rho`` with ``rho = pi_ref(a_t) / pi(a_t)`` (same expected value,
      never negative; its expected gradient is the gradient of KL(pi_ref || pi));
    * ``exact``: ``sum_a pi(a) (log pi(a) - log pi_ref(a))`` over all actions of each step.
    """
    zero = torch.zeros((), device=logp.device)
    if form == "k1":
        per = logp - ref_logp
    elif form == "k3":
        d = ref_logp - logp
        per = torch.exp(d) - 1.0 - d
    elif form == "exact":
        assert logp_all is not None and ref_all is not None
        ok = torch.isfinite(logp_all) & torch.isfinite(ref_all)  # masked actions: pi = 0 (no NaN gradient)
        lp, lr = torch.where(ok, logp_all, zero), torch.where(ok, ref_all, zero)
        per = (lp.exp() * (lp - lr) * ok).sum(-1)
    else:
        raise ValueError(f"unknown kl form {form!r}")
    return torch.where(active, per, zero).sum(-1)
