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
import dataclasses
import logging
import math
from typing import Callable, Sequence

import torch
from ..console.progress import tqdm

from ..api import Case, EstimatorSpec, FitContext, SequenceModel
from ..seq.scoring import score_paths
from .checkpoint import Checkpointer, global_rng_state, recording, set_global_rng_state, to_device
from .config import RLConfig
from .decode import candidates
from .diagnostics import PositionProfile, gradient_variance, gradient_variance_terms, sampled_validation
from .normalize import make_normalizer
from .policy import CaseTensors, PathPolicy
from .rewards import check_leftpad
from .rollout import Rollout, advantages, kl_term, pg_loss, rollout
from .semantic_rewards import drop_unknown
from .step import STEP_KEYS, PendingLog, rl_step, rl_step_stats

__all__ = ["rl_step", "rl_step_stats", "STEP_KEYS", "rollout", "advantages", "pg_loss", "Rollout", "train_rl",
           "validation_ioi", "gradient_variance", "gradient_variance_terms", "kl_term"]

READ_EVERY = 16
"""Steps whose logged values wait on the device before one transfer reads them all (and at the
end of every epoch and before every checkpoint); the train log is the same as with a read per step."""

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
# The training loop
# --------------------------------------------------------------------------------------------


def train_rl(policy: PathPolicy, ref: PathPolicy, ctx: FitContext, cfg: RLConfig,
             estimator: EstimatorSpec, train_cases: Sequence[Case], valid_cases: Sequence[Case],
             max_path_len: int, step_offset: int = 0,
             on_epoch: Callable[[int, float, PathPolicy], None] | None = None) -> dict[str, float]:
    """Fine-tune ``policy`` in place from ``ref`` (frozen) with ``estimator``; returns a summary.
    ``on_epoch(epoch, valid_ioi, policy)`` is called after each epoch's validation (diagnostics;
    it must not change the policy). With ``ctx.checkpoint`` set, training resumes from a
    matching checkpoint there and keeps one (:mod:`prorlbench.rl.checkpoint`)."""
    dev = ctx.device
    if cfg.reward_state == "official-leftpad":
        check_leftpad(ctx.simulator)
    ctx = dataclasses.replace(ctx, logger=recording(ctx.logger))
    train = CaseTensors.from_cases(train_cases, policy.n_items, dev)
    valid = CaseTensors.from_cases(valid_cases, policy.n_items, dev)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gens = {"sample": torch.Generator(device=dev), "noise": torch.Generator(device=dev),
            "order": torch.Generator()}
    gens["sample"].manual_seed(ctx.seed * 1_000_003 + 17)
    gens["noise"].manual_seed(ctx.seed * 1_000_037 + 29)
    gens["order"].manual_seed(ctx.seed * 7919 + 3)
    valid_gen = torch.Generator(device=dev)
    norm = make_normalizer(cfg.centering, max_path_len)
    n_epoch_cases = min(cfg.max_train_cases, len(train)) if cfg.max_train_cases > 0 else len(train)
    steps_per_epoch = math.ceil(n_epoch_cases / cfg.batch_cases) if n_epoch_cases else 0
    warm = int(cfg.warmup_frac * cfg.epochs * steps_per_epoch)
    # constant after a linear warm-up from 0 (as transformers' constant_with_warmup schedule)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, i / warm) if warm > 0 else 1.0)
    best: tuple[float, int, dict | None] = (-math.inf, -1, None)
    step, epoch0, batch0, perm, prof = step_offset, 0, 0, None, None
    ck = Checkpointer.for_training(ctx, cfg, estimator, max_path_len, step_offset)

    def snapshot(epoch: int, batch: int, profile: PositionProfile | None) -> dict:
        return {"step": step, "epoch": epoch, "batch": batch, "perm": perm, "policy": policy.state_dict(),
                "opt": opt.state_dict(), "sched": sched.state_dict(), "norm": norm.state_dict(),
                "gens": {k: g.get_state() for k, g in gens.items()}, "rng": global_rng_state(torch.device(dev)),
                "profile": None if profile is None else (profile.sums, profile.counts),
                "best": best, "rows": ctx.logger.rows}

    state = ck.load()
    if state is not None:
        step, epoch0, batch0, perm, prof = (state[k] for k in ("step", "epoch", "batch", "perm", "profile"))
        perm, prof = to_device(perm, dev), to_device(prof, dev)
        policy.load_state_dict(state["policy"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        norm.load_state_dict(to_device(state["norm"], dev))
        for k, g in gens.items():
            g.set_state(state["gens"][k])
        set_global_rng_state(state["rng"])
        best = to_device(tuple(state["best"]), dev)
        ctx.logger.replay(state["rows"])
        log.info("%s: RL resumed at step %d of %d from %s", estimator.name, step - step_offset,
                 cfg.epochs * steps_per_epoch, ck.path)
    else:  # the rows logged so far (the SFT stage's) are kept even if the first step dies
        ck.save(snapshot(0, 0, None))
    pending = PendingLog()
    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=step - step_offset, desc=f"rl {estimator.name}",
               disable=not ctx.progress, leave=False)

    def read() -> None:  # the one host read of the pending steps' values
        last = pending.flush(ctx.logger)
        if last is not None:
            bar.set_postfix(len=f"{last['path_len']:.2f}", kl=f"{last['kl']:.3f}")

    for epoch in range(epoch0, cfg.epochs):
        if epoch != epoch0 or perm is None:
            perm = torch.randperm(len(train), generator=gens["order"])[:n_epoch_cases].to(dev)
        profile = PositionProfile(max_path_len, dev) if epoch in (0, cfg.epochs - 1) else None
        if profile is not None and epoch == epoch0 and prof is not None:
            profile.sums, profile.counts = prof
        for j in range(batch0 if epoch == epoch0 else 0, steps_per_epoch):
            cases = train.index(perm[j * cfg.batch_cases : (j + 1) * cfg.batch_cases])
            lr = float(sched.get_last_lr()[0])
            stats = rl_step_stats(policy, ref, opt, ctx.simulator, cases, cfg, estimator, norm, max_path_len,
                                  gens["sample"], noise_generator=gens["noise"], profile=profile,
                                  grad_var=bool(cfg.grad_var_every) and (step - step_offset) % cfg.grad_var_every == 0)
            sched.step()
            pending.add(step, stats, lr)
            step += 1
            bar.update(1)
            if len(pending.items) >= READ_EVERY:
                read()
            if ck.due(step - step_offset):
                read()
                ck.save(snapshot(epoch, j + 1, profile))
        read()
        if profile is not None:
            log_finite(ctx, step, **profile.values("pos1" if epoch == 0 else "posN"))
        if epoch + 1 == cfg.normalizer_epochs:
            norm.freeze()
            ctx.logger.log(step, **{f"norm_{k}": v for k, v in norm.state().items()})
        v_ioi, v_len = validation_ioi(policy, ctx.simulator, valid, cfg)
        valid_gen.manual_seed(ctx.seed * 1_000_081 + 7)  # the same draws every epoch
        vs = sampled_validation(policy, ctx.simulator, valid, cfg, norm, estimator.centered, max_path_len, valid_gen)
        log_finite(ctx, step, valid_ioi=v_ioi, valid_len=v_len, epoch=float(epoch + 1), **vs)
        if on_epoch is not None:
            on_epoch(epoch + 1, v_ioi, policy)
        if cfg.select == "last" or not (v_ioi <= best[0]):  # NaN-safe: keep the newest on NaN
            best = (v_ioi, epoch + 1, copy.deepcopy(policy.state_dict()))
    bar.close()
    if epoch0 < cfg.epochs or batch0:  # training ran in this process: keep its end (not the selection)
        ck.save(snapshot(cfg.epochs, 0, None))
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
