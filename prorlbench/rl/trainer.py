"""Stage 2 of the RL family: one trainer for every estimator (SPEC section 5).

Per step, for a batch of ``B`` training cases:

1. sample ``G`` paths per case from ``pi`` (all ``B * G`` rows at once);
2. raw step rewards from the *training* simulator, one forward pass per path
   (:func:`prorlbench.rl.rewards.path_rewards`);
3. normalise them (:class:`~prorlbench.rl.estimators.RewardNormalizer`: Welford statistics
   over valid steps of the first `normalizer_epochs` epochs (SPEC: 1), frozen afterwards), centred or scaled-only as the
   estimator's spec says, and sum into the step reward ``r_k``;
4. **the estimator** turns ``r`` into a weight ``A_t`` per position (the only difference
   between methods);
5. loss ``-sum_t log pi(a_t) A_t + beta * sum_t (log pi(a_t) - log pi_ref(a_t))`` over active
   positions, divided by the number of sampled paths; AdamW, gradient clip.

Diagnostics logged each step (``ctx.logger.log``): ``path_len`` (mean items of the sampled
paths), ``stop_rate`` (share of paths that chose STOP before ``max_path_len``), ``reward_ctr``
(mean raw accept over sampled items), ``reward_ioi`` / ``reward_ior`` (mean raw path IoI / IoR,
i.e. summed over the path's valid steps), ``return`` (mean normalised path return R), ``loss``,
``pg_loss``, ``kl`` (mean over paths of ``sum_t log pi - log pi_ref``), ``adv_abs``.

Gradient variance (``grad_var``, every ``grad_var_every`` steps, identical for every
estimator): at the step's parameters and with the step's advantages, split the ``B`` cases into
``M = grad_var_splits`` disjoint minibatches, compute the flattened gradient of the policy-
gradient loss of each (normalised per path like the training loss), and report the mean over
coordinates of the unbiased variance across the ``M`` gradients. ``grad_var_rel`` divides it by
the mean squared coordinate of the full-batch gradient (a scale-free signal-to-noise view, since
estimators put differently scaled weights on the log-probabilities).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from ..progress import tqdm

from ..api import Case, EstimatorSpec, FitContext, SequenceModel
from ..scoring import score_paths
from .config import RLConfig
from .estimators import COMPONENTS, AdvantageBatch, RewardNormalizer, step_rewards
from .policy import CaseTensors, PathPolicy
from .rewards import path_rewards

log = logging.getLogger("prorlbench")


def log_finite(ctx: FitContext, step: int, **values: float) -> None:
    """Log the optional diagnostics that are finite (e.g. no validation cases gives NaN IoI);
    core training values are logged as they are, so a diverging run is reported."""
    values = {k: float(v) for k, v in values.items() if math.isfinite(float(v))}
    if values:
        ctx.logger.log(step, **values)


# --------------------------------------------------------------------------------------------
# Validation (checkpoint selection, shared with SFT)
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def validation_ioi(policy: PathPolicy, simulator: SequenceModel, ct: CaseTensors,
                   stop_threshold: float = 0.5, batch: int = 512) -> tuple[float, float]:
    """Mean IoI@1 and mean length of the greedy paths of ``ct`` under ``simulator``."""
    if len(ct) == 0:
        return float("nan"), float("nan")
    was = policy.training
    policy.eval()
    iois, lens = [], []
    for s in range(0, len(ct), batch):
        part = ct.index(torch.arange(s, min(s + batch, len(ct)), device=ct.target.device))
        paths, lengths, _ = policy.sample(part.hist_left, part.target, None, greedy=True,
                                          stop_threshold=stop_threshold)
        sc = score_paths(simulator, hist=part.hist, hist_len=part.hist_len, targets=part.target,
                         path_tensor=paths, path_len=lengths)
        iois.append((sc.final(sc.log_p) - sc.log_p[:, 0]).float().cpu())
        lens.append(lengths.float().cpu())
    policy.train(was)
    return float(torch.cat(iois).mean()), float(torch.cat(lens).mean())


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


def rollout(policy: PathPolicy, simulator: SequenceModel, cases: CaseTensors, cfg: RLConfig,
            estimator: EstimatorSpec, normalizer: RewardNormalizer, max_path_len: int,
            generator: torch.Generator) -> Rollout:
    g = cfg.samples_per_case
    rows = cases.repeat(g)
    policy.eval()
    paths, lengths, stopped = policy.sample(cases.hist_left, cases.target, generator, max_len=max_path_len, repeat=g)
    raw, valid, _ = path_rewards(simulator, rows.hist, rows.hist_len, rows.target, paths, lengths)
    normalizer.update(raw, valid)
    item_mask = torch.arange(max_path_len, device=paths.device)[None] < lengths[:, None]
    normed = normalizer.normalize(raw, centered=estimator.centered)
    weights = {"ctr": cfg.w_ctr, "ioi": cfg.w_ioi, "ior": cfg.w_ior}
    r, comps = step_rewards(normed, item_mask, valid, weights, max_path_len)
    b = len(cases)
    shape = (b, g, max_path_len)
    batch = AdvantageBatch(
        rewards=r.view(shape).float(), n_items=lengths.view(b, g), stopped=stopped.view(b, g),
        gamma=cfg.gamma, components={c: v.view(shape).float() for c, v in comps.items()},
    )
    adv = estimator.estimate(batch)
    if tuple(adv.shape) != shape:
        raise ValueError(f"estimator '{estimator.name}' returned shape {tuple(adv.shape)}, expected {shape}")
    adv = batch.masked(adv.float()).reshape(b * g, max_path_len).detach()
    return Rollout(cases, rows, paths, lengths, stopped, batch, adv, raw, valid)


def pg_loss(policy: PathPolicy, ro: Rollout, case_idx: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum_t -log pi(a_t) A_t / n_paths, log pi [n, P])`` on the paths of cases ``case_idx``
    (all when None)."""
    g = ro.paths.shape[0] // len(ro.cases)
    cases, paths, lengths, stopped, adv = ro.cases, ro.paths, ro.lengths, ro.stopped, ro.advantages
    if case_idx is not None:
        idx = (case_idx[:, None] * g + torch.arange(g, device=case_idx.device)[None]).reshape(-1)
        cases, paths, lengths, stopped, adv = cases.index(case_idx), paths[idx], lengths[idx], stopped[idx], adv[idx]
    logp = policy.action_log_probs(cases.hist_left, cases.target, paths, lengths, stopped, repeat=g)
    return -(logp * adv).sum() / paths.shape[0], logp


def _flat_grad(policy: PathPolicy, loss: torch.Tensor) -> torch.Tensor:
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
        grads.append(_flat_grad(policy, loss))
    stack = torch.stack(grads)
    return torch.stack([stack.var(0, unbiased=True).mean(), stack.mean(0).pow(2).mean()])


def gradient_variance(policy: PathPolicy, ro: Rollout, splits: int) -> tuple[float, float]:
    """``(mean per-coordinate variance across M minibatch PG gradients, relative variance)``."""
    terms = gradient_variance_terms(policy, ro, splits)
    if terms is None:
        return float("nan"), float("nan")
    var, mean_sq = terms.tolist()
    return var, var / mean_sq if mean_sq > 0 else float("nan")


# --------------------------------------------------------------------------------------------
# One training step
# --------------------------------------------------------------------------------------------

STEP_KEYS = ("path_len", "stop_rate", "reward_ctr", "reward_ioi", "reward_ior", "reward_return", "loss",
             "pg_loss", "kl", "adv_abs")
"""The values every step logs, in the order of the one tensor that carries them to the host."""


def rl_step(policy: PathPolicy, ref: PathPolicy, opt: torch.optim.Optimizer, simulator: SequenceModel,
            cases: CaseTensors, cfg: RLConfig, estimator: EstimatorSpec, normalizer: RewardNormalizer,
            max_path_len: int, generator: torch.Generator, grad_var: bool = False) -> dict[str, float]:
    """One RL update on the ``B`` cases ``cases``: sample ``G`` paths per case, reward them with
    ``simulator``, normalise, estimate the advantages, and take one optimizer step on the loss.

    Returns the step's logged values (:data:`STEP_KEYS`, plus ``grad_var`` / ``grad_var_rel``
    when ``grad_var`` and they are finite). All of them reach the host in ONE transfer at the
    end of the step, so on an accelerator the step queues its work without waiting for it.
    """
    ro = rollout(policy, simulator, cases, cfg, estimator, normalizer, max_path_len, generator)
    gv_terms = gradient_variance_terms(policy, ro, cfg.grad_var_splits) if grad_var else None
    pg, logp = pg_loss(policy, ro)
    with torch.no_grad():
        ref_logp = ref.action_log_probs(cases.hist_left, cases.target, ro.paths, ro.lengths, ro.stopped,
                                        repeat=cfg.samples_per_case)
    kl = (logp - ref_logp).sum() / ro.paths.shape[0]
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
        ]
        if gv_terms is not None:
            stats += [gv_terms[0], gv_terms[1]]
        host = torch.stack([x.float().reshape(()) for x in stats]).tolist()  # the one sync
    values: dict[str, float] = {}
    if gv_terms is not None:
        var, mean_sq = host[len(STEP_KEYS):]
        gv_rel = var / mean_sq if mean_sq > 0 else float("nan")
        values.update({k: v for k, v in (("grad_var", var), ("grad_var_rel", gv_rel)) if math.isfinite(v)})
    values.update(zip(STEP_KEYS, host[: len(STEP_KEYS)]))
    return values


# --------------------------------------------------------------------------------------------
# The training loop

# --------------------------------------------------------------------------------------------


def train_rl(policy: PathPolicy, ref: PathPolicy, ctx: FitContext, cfg: RLConfig,
             estimator: EstimatorSpec, train_cases: Sequence[Case], valid_cases: Sequence[Case],
             max_path_len: int, step_offset: int = 0) -> dict[str, float]:
    """Fine-tune ``policy`` in place from ``ref`` (frozen) with ``estimator``; returns a summary."""
    dev = ctx.device
    train = CaseTensors.from_cases(train_cases, policy.n_items, dev)
    valid = CaseTensors.from_cases(valid_cases, policy.n_items, dev)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device=dev)
    gen.manual_seed(ctx.seed * 1_000_003 + 17)
    order_gen = torch.Generator().manual_seed(ctx.seed * 7919 + 3)
    norm = RewardNormalizer(COMPONENTS)
    n_epoch_cases = min(cfg.max_train_cases, len(train)) if cfg.max_train_cases > 0 else len(train)
    steps_per_epoch = math.ceil(n_epoch_cases / cfg.batch_cases) if n_epoch_cases else 0
    best = (-math.inf, -1, None)
    step = step_offset
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc=f"rl {estimator.name}", disable=not ctx.progress, leave=False)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(train), generator=order_gen)[:n_epoch_cases].to(dev)
        for s in range(0, n_epoch_cases, cfg.batch_cases):
            cases = train.index(perm[s : s + cfg.batch_cases])
            values = rl_step(policy, ref, opt, ctx.simulator, cases, cfg, estimator, norm, max_path_len, gen,
                             grad_var=bool(cfg.grad_var_every) and (step - step_offset) % cfg.grad_var_every == 0)
            ctx.logger.log(step, **values)
            step += 1
            bar.update(1)
            bar.set_postfix(len=f"{values['path_len']:.2f}", kl=f"{values['kl']:.3f}")
        if epoch + 1 == cfg.normalizer_epochs:
            norm.freeze()
            ctx.logger.log(step, **{f"norm_{k}": v for k, v in norm.state().items()})
        v_ioi, v_len = validation_ioi(policy, ctx.simulator, valid, cfg.stop_threshold)
        log_finite(ctx, step, valid_ioi=v_ioi, valid_len=v_len, epoch=float(epoch + 1))
        if cfg.select == "last" or not (v_ioi <= best[0]):  # NaN-safe: keep the newest on NaN
            best = (v_ioi, epoch + 1, copy.deepcopy(policy.state_dict()))
    bar.close()
    if best[2] is not None:
        policy.load_state_dict(best[2])
        log_finite(ctx, step, selected_epoch=float(best[1]), selected_valid_ioi=float(best[0]))
    log.info("%s: selected RL epoch %d (valid IoI@1 %.4f)", estimator.name, best[1], best[0])
    return {"selected_epoch": float(best[1]), "valid_ioi": float(best[0]), "steps": float(step - step_offset)}
