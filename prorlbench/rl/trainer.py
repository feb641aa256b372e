"""Stage 2 of the RL family: one trainer for every estimator (SPEC section 5).

Per step, for a batch of ``B`` training cases:

1. sample ``G`` paths per case from ``pi`` (all ``B * G`` rows at once; ``sample_temperature``,
   ``sample_top_k``);
2. raw step rewards from the *training* simulator, one forward pass per path
   (:func:`prorlbench.rl.rewards.path_rewards`; ``reward_state``; a ``free``-decoding semantic-ID
   policy's invalid codes get the official penalties, :mod:`prorlbench.rl.semantic_rewards`);
3. normalise them (``centering``, :mod:`prorlbench.rl.normalize`: Welford statistics over valid
   steps of the first ``normalizer_epochs`` epochs, frozen afterwards), centred or scaled-only as
   the estimator's spec says, and sum into the step reward ``r_k``;
4. **the estimator** turns ``r`` into a weight ``A_t`` per position (the only difference
   between methods); with ``empty_paths = 'skip'`` 0-item paths take no part;
5. loss ``-sum_t log pi(a_t) A_t + beta * KL`` over active positions, divided by the number of
   paths that take part (``kl``: k1, k3 or exact); AdamW, linear warm-up over ``warmup_frac`` of
   the steps, gradient clip.

The policy is used only through ``sample``, ``action_log_probs`` and ``beam_search`` (see
:mod:`prorlbench.rl.policy`), so any policy with those methods trains with every estimator and
switch.

Diagnostics logged each step (``ctx.logger.log``): ``path_len`` (mean items of the sampled
paths), ``stop_rate`` (share of paths that chose STOP before ``max_path_len``), ``reward_ctr``
(mean raw accept over sampled items), ``reward_ioi`` / ``reward_ior`` (mean raw path IoI / IoR,
i.e. summed over the path's valid steps), ``return`` (mean normalised path return R), ``loss``,
``pg_loss``, ``kl`` (mean per path of the ``kl`` form summed over its actions), ``adv_abs``,
``empty_rate`` (share of 0-item paths), ``lr`` (after warm-up).

After each epoch: ``valid_ioi`` / ``valid_len`` (the ``decode`` candidate 1 on validation) and
the training objective of *sampled* validation paths (``vs_*``,
:func:`prorlbench.rl.diagnostics.sampled_validation`); after the first and the last epoch the
mean raw reward components by position (``pos1_*``, ``posN_*``). ``grad_var`` / ``grad_var_rel``
(every ``grad_var_every`` steps) is an in-training diagnostic only: each estimator is measured
along its own trajectory (:mod:`prorlbench.rl.diagnostics`).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..api import Case, EstimatorSpec, FitContext, SequenceModel
from ..scoring import score_paths
from .config import RLConfig
from .decode import candidates
from .diagnostics import PositionProfile, gradient_variance, gradient_variance_terms, sampled_validation
from .estimators import AdvantageBatch, RewardNormalizer, step_rewards
from .normalize import make_normalizer
from .policy import CaseTensors, PathPolicy
from .rewards import check_leftpad
from .semantic_rewards import drop_unknown, rollout_rewards

__all__ = ["rl_step", "rollout", "advantages", "pg_loss", "train_rl", "validation_ioi", "gradient_variance",
           "gradient_variance_terms", "kl_term"]

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
                   cfg: RLConfig | float = 0.5, batch: int = 512) -> tuple[float, float]:
    """Mean IoI@1 and mean length of candidate 1 (``cfg.decode``; a float: the ``threshold``
    rule with that ``stop_threshold``) of ``ct`` under ``simulator``."""
    if len(ct) == 0:
        return float("nan"), float("nan")
    if not isinstance(cfg, RLConfig):
        cfg = RLConfig(stop_threshold=float(cfg))
    was = policy.training
    policy.eval()
    iois, lens = [], []
    for s in range(0, len(ct), batch):
        part = ct.index(torch.arange(s, min(s + batch, len(ct)), device=ct.target.device))
        paths, lengths = drop_unknown(*candidates(policy, part.hist_left, part.target, 1, cfg), simulator.n_items)
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

    @property
    def active(self) -> torch.Tensor:
        """``[B * G, P]`` bool: positions with an action that takes part in the loss."""
        return self.batch.active.reshape(self.paths.shape)

    @property
    def n_paths(self) -> torch.Tensor:
        """Paths that take part (all, or the non-empty ones with ``empty_paths = 'skip'``), >= 1."""
        s = self.batch.samples
        return torch.tensor(float(self.paths.shape[0])) if s is None else s.sum().clamp(min=1).float()


def rollout(policy: PathPolicy, simulator: SequenceModel, cases: CaseTensors, cfg: RLConfig,
            estimator: EstimatorSpec, normalizer: RewardNormalizer, max_path_len: int,
            generator: torch.Generator, noise_generator: torch.Generator | None = None) -> Rollout:
    g = cfg.samples_per_case
    rows = cases.repeat(g)
    policy.eval()
    paths, lengths, stopped = policy.sample(cases.hist_left, cases.target, generator, max_len=max_path_len,
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
        n_paths = (torch.tensor(float(idx.shape[0])) if s is None
                   else s.reshape(-1)[idx].sum().clamp(min=1).float())
    out = policy.action_log_probs(cases.hist_left, cases.target, paths, lengths, stopped, repeat=g, full=full)
    logp, logp_all = out if full else (out, None)
    logp = torch.where(active, logp, torch.zeros((), device=logp.device))
    loss = -(logp * adv).sum() / n_paths.to(logp.device)
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


# --------------------------------------------------------------------------------------------
# One training step
# --------------------------------------------------------------------------------------------

STEP_KEYS = ("path_len", "stop_rate", "reward_ctr", "reward_ioi", "reward_ior", "reward_return", "loss",
             "pg_loss", "kl", "adv_abs", "empty_rate")
"""The values every step logs, in the order of the one tensor that carries them to the host."""


def rl_step(policy: PathPolicy, ref: PathPolicy, opt: torch.optim.Optimizer, simulator: SequenceModel,
            cases: CaseTensors, cfg: RLConfig, estimator: EstimatorSpec, normalizer: RewardNormalizer,
            max_path_len: int, generator: torch.Generator, grad_var: bool = False,
            noise_generator: torch.Generator | None = None, profile: PositionProfile | None = None
            ) -> dict[str, float]:
    """One RL update on the ``B`` cases ``cases``: sample ``G`` paths per case, reward them with
    ``simulator``, normalise, estimate the advantages, and take one optimizer step on the loss.

    Returns the step's logged values (:data:`STEP_KEYS`, plus ``grad_var`` / ``grad_var_rel``
    when ``grad_var`` and they are finite). All of them reach the host in ONE transfer at the
    end of the step, so on an accelerator the step queues its work without waiting for it.
    """
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
    kl = kl / ro.n_paths.to(kl.device)
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
    if cfg.reward_state == "official-leftpad":
        check_leftpad(ctx.simulator)
    train = CaseTensors.from_cases(train_cases, policy.n_items, dev)
    valid = CaseTensors.from_cases(valid_cases, policy.n_items, dev)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device=dev)
    gen.manual_seed(ctx.seed * 1_000_003 + 17)
    noise_gen = torch.Generator(device=dev)
    noise_gen.manual_seed(ctx.seed * 1_000_037 + 29)
    valid_gen = torch.Generator(device=dev)
    order_gen = torch.Generator().manual_seed(ctx.seed * 7919 + 3)
    norm = make_normalizer(cfg.centering, max_path_len)
    n_epoch_cases = min(cfg.max_train_cases, len(train)) if cfg.max_train_cases > 0 else len(train)
    steps_per_epoch = math.ceil(n_epoch_cases / cfg.batch_cases) if n_epoch_cases else 0
    warm = int(cfg.warmup_frac * cfg.epochs * steps_per_epoch)
    # constant after a linear warm-up from 0 (as transformers' constant_with_warmup schedule)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, i / warm) if warm > 0 else 1.0)
    best = (-math.inf, -1, None)
    step = step_offset
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc=f"rl {estimator.name}", disable=not ctx.progress, leave=False)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(train), generator=order_gen)[:n_epoch_cases].to(dev)
        profile = PositionProfile(max_path_len, dev) if epoch in (0, cfg.epochs - 1) else None
        for s in range(0, n_epoch_cases, cfg.batch_cases):
            cases = train.index(perm[s : s + cfg.batch_cases])
            lr = float(sched.get_last_lr()[0])
            values = rl_step(policy, ref, opt, ctx.simulator, cases, cfg, estimator, norm, max_path_len, gen,
                             grad_var=bool(cfg.grad_var_every) and (step - step_offset) % cfg.grad_var_every == 0,
                             noise_generator=noise_gen, profile=profile)
            values["lr"] = lr
            sched.step()
            ctx.logger.log(step, **values)
            step += 1
            bar.update(1)
            bar.set_postfix(len=f"{values['path_len']:.2f}", kl=f"{values['kl']:.3f}")
        if profile is not None:
            log_finite(ctx, step, **profile.values("pos1" if epoch == 0 else "posN"))
        if epoch + 1 == cfg.normalizer_epochs:
            norm.freeze()
            ctx.logger.log(step, **{f"norm_{k}": v for k, v in norm.state().items()})
        v_ioi, v_len = validation_ioi(policy, ctx.simulator, valid, cfg)
        valid_gen.manual_seed(ctx.seed * 1_000_081 + 7)  # the same draws every epoch
        vs = sampled_validation(policy, ctx.simulator, valid, cfg, norm, estimator.centered, max_path_len, valid_gen)
        log_finite(ctx, step, valid_ioi=v_ioi, valid_len=v_len, epoch=float(epoch + 1), **vs)
        if cfg.select == "last" or not (v_ioi <= best[0]):  # NaN-safe: keep the newest on NaN
            best = (v_ioi, epoch + 1, copy.deepcopy(policy.state_dict()))
    bar.close()
    if best[2] is not None:
        policy.load_state_dict(best[2])
        log_finite(ctx, step, selected_epoch=float(best[1]), selected_valid_ioi=float(best[0]))
    # the training objective of the selected policy on validation, G samples per case
    valid_gen.manual_seed(ctx.seed * 1_000_081 + 11)
    final = sampled_validation(policy, ctx.simulator, valid, cfg, norm, estimator.centered, max_path_len,
                               valid_gen, samples=cfg.samples_per_case)
    final.update({f"norm_{k}": v for k, v in norm.state().items()} if cfg.centering != "position" else {})
    log_finite(ctx, step, **{f"final_{k}": v for k, v in final.items()})
    log.info("%s: selected RL epoch %d (valid IoI@1 %.4f)", estimator.name, best[1], best[0])
    return {"selected_epoch": float(best[1]), "valid_ioi": float(best[0]), "steps": float(step - step_offset)}
