"""Stage 1 of the RL family: supervised pre-training (SFT) on reference paths (SPEC section 5).

Each training case with a reference P* = (p_1 .. p_m, T) teaches the policy the actions
``p_1 .. p_m`` then STOP (items beyond ``max_path_len`` are cut, and then no STOP is taught).
Teacher-forced cross-entropy under the same validity mask as sampling; a label the mask forbids
(a reference item that is in H or repeated) contributes no loss. After every epoch the greedy
paths (``decode``) of the first ``n_valid_cases`` validation cases are scored with the training simulator and
the epoch with the best mean IoI@1 is kept.

The checkpoint is cached under ``ctx.cache_dir / "rl_sft"`` keyed by everything that changes it
(dataset fingerprint, the SFT-relevant config fields, seed, simulator name and a fingerprint of
the simulator's weights, since it selects the epoch), so the RL methods of
one run (and ``sft`` itself) share one SFT stage. Saved with ``torch.save(state_dict)``, loaded
with ``weights_only=True``; an unreadable file, or one holding non-finite weights, is rebuilt.

Divergence is never hidden: a label the validity mask forbids has ``log pi = -inf`` and gives no
loss, but a NaN log-probability of the item policy stays in the loss (the semantic-ID policy's
fully masked code rows are NaN by construction, so there the weight check below catches it). A
non-finite loss, or non-finite weights after an epoch, stop training with :class:`SFTDiverged`
(one line naming ``sft_lr``; the cell fails), and nothing is cached, so no RL method can load a
broken policy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Callable, Sequence

import torch
from ..console.progress import tqdm

from ..api import Case, FitContext
from ..folder.files import OutputError, atomic_write, entry_lock, safe_name
from ..folder.fingerprint import state_fingerprint
from .config import SFT_FIELDS, RLConfig
from .policies import build_policy, codes_digest, policy_codes
from .policy import CaseTensors, PathPolicy
from .trainer import log_finite, validation_ioi

log = logging.getLogger("prorlbench")

CACHE_VERSION = 3


class SFTDiverged(FloatingPointError):
    """SFT produced a non-finite loss or non-finite weights (``sft_lr`` too large)."""


def _finite_weights(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if torch.is_tensor(v) and v.is_floating_point())


def cases_fingerprint(n_items: int, *splits: Sequence[Case]) -> str:
    """A stable hash of the cases (histories, targets, references) and catalog size."""
    h = hashlib.sha256(f"n_items={n_items}".encode())
    for split in splits:
        h.update(b"|split|")
        for c in split:
            h.update(repr((c.history, c.target, c.reference)).encode())
    return h.hexdigest()[:20]


def sft_cache_path(ctx: FitContext, cfg: RLConfig, max_path_len: int, codes_key: str = "") -> Path:
    fields = {f: getattr(cfg, f) for f in SFT_FIELDS}
    fields["max_path_len"] = max_path_len
    key = {
        "v": CACHE_VERSION, "data": cases_fingerprint(ctx.data.n_items, ctx.cases.train, ctx.cases.valid),
        "dataset": ctx.data.name, "cfg": fields, "seed": ctx.seed, "simulator": ctx.simulator_name,
        "simulator_state": state_fingerprint(ctx.simulator),
    }
    if codes_key:  # the semantic-ID policy: its codes are part of the checkpoint
        key["codes"] = codes_key
    key = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    name = safe_name(ctx.data.name, limit=40, default="data")  # a plugin's data name is never a path
    return Path(ctx.cache_dir) / "rl_sft" / f"sft-{name}-s{ctx.seed}-{digest}.pt"


def reference_targets(cases: Sequence[Case], max_path_len: int, stop_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forcing rows: ``(actions [N, P] padded with -1, paths [N, P] padded with stop_id)``.

    Cases without a reference are skipped by the caller."""
    n = len(cases)
    actions = torch.full((n, max_path_len), -1, dtype=torch.long)
    paths = torch.full((n, max_path_len), stop_id, dtype=torch.long)
    for r, c in enumerate(cases):
        items = list(c.reference[:-1])[:max_path_len]
        if items:
            actions[r, : len(items)] = torch.tensor(items)
            paths[r, : len(items)] = torch.tensor(items)
        if len(items) < max_path_len:
            actions[r, len(items)] = stop_id
    return actions, paths


def train_sft(ctx: FitContext, cfg: RLConfig, max_path_len: int) -> tuple[PathPolicy, dict[str, float]]:
    """Train (or load from the cache) the SFT policy; returns it in eval mode. One process builds
    a cache entry while others that want it wait, then load it (``<entry>.lock``)."""
    codes = policy_codes(cfg, ctx.data, ctx.cache_dir)
    path = sft_cache_path(ctx, cfg, max_path_len, codes_digest(codes))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only or full cache: the run stops with one line, exit 2
        raise OutputError(f"{path.parent}: cannot create the SFT cache folder ({exc.strerror or exc})") from None
    with entry_lock(path.with_suffix(".lock")):
        return _train_or_load_sft(ctx, cfg, max_path_len, path, codes)


def _train_or_load_sft(ctx: FitContext, cfg: RLConfig, max_path_len: int, path: Path, codes=None
                       ) -> tuple[PathPolicy, dict[str, float]]:
    n_items = ctx.data.n_items
    policy = build_policy(cfg, n_items, max_path_len, codes).to(ctx.device)
    if path.exists():
        try:
            state = torch.load(path, map_location=ctx.device, weights_only=True)
            if not _finite_weights(state["policy"]):
                raise ValueError("non-finite weights")
            policy.load_state_dict(state["policy"])
            info = {k: float(v) for k, v in state["info"].items()}
            log.info("SFT policy loaded from %s", path)
            return policy.eval(), {**info, "cached": 1.0}
        except Exception as exc:  # corrupt or stale: rebuild
            log.warning("SFT cache %s unreadable (%s); retraining", path, exc)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        policy = build_policy(cfg, n_items, max_path_len, codes).to(ctx.device)
        info = _fit(policy, ctx, cfg, max_path_len)
    if not _finite_weights(policy.state_dict()):  # never cache what an RL method would load
        raise SFTDiverged(f"SFT on dataset '{ctx.data.name}': non-finite weights (sft_lr {cfg.sft_lr:g}); "
                          "lower sft_lr; nothing was cached")
    atomic_write(path, lambda f: torch.save({"policy": policy.state_dict(), "info": info}, f))
    return policy.eval(), {**info, "cached": 0.0}


def _fit(policy: PathPolicy, ctx: FitContext, cfg: RLConfig, max_path_len: int,
         on_epoch: Callable[[int, float, PathPolicy], None] | None = None) -> dict[str, float]:
    """Train ``policy`` in place; keep the epoch of best validation IoI@1. ``on_epoch(epoch,
    valid_ioi, policy)`` is called after each epoch's validation (diagnostics such as
    ``benchmarks.test_selection``; it must not change the policy)."""
    dev = ctx.device
    train_cases = [c for c in ctx.cases.train if c.reference]
    valid = CaseTensors.from_cases(ctx.cases.valid[: cfg.n_valid_cases], policy.n_items, dev)
    if not train_cases:
        log.warning("SFT: no training case has a reference path; the policy stays at its initialisation")
        v_ioi, _ = validation_ioi(policy, ctx.simulator, valid, cfg)
        return {"sft_epoch": 0.0, "sft_valid_ioi": v_ioi}
    ct = CaseTensors.from_cases(train_cases, policy.n_items, dev)
    actions, paths = reference_targets(train_cases, max_path_len, policy.stop_id)
    actions, paths = actions.to(dev), paths.to(dev)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.sft_lr, weight_decay=cfg.sft_weight_decay)
    order_gen = torch.Generator().manual_seed(ctx.seed * 31 + 5)
    best: tuple[float, int, dict | None] = (-math.inf, 0, None)  # the initialisation is never selected
    n = len(train_cases)
    step = 0
    for epoch in tqdm(range(cfg.sft_epochs), desc="sft", disable=not ctx.progress, leave=False):
        policy.train()
        perm = torch.randperm(n, generator=order_gen).to(dev)
        total, count = 0.0, 0
        for s in range(0, n, cfg.sft_batch):
            idx = perm[s : s + cfg.sft_batch]
            rows = ct.index(idx)
            if hasattr(policy, "sft_nll"):  # semantic-id: token cross-entropy on the codes, then EOS
                nll, n_ok = policy.sft_nll(rows.hist_left, rows.target, paths[idx], actions[idx])
            else:
                act = actions[idx]
                has = act >= 0
                # = masked_log_probs(...).gather(act), bit for bit, in cache-sized chunks
                taken = policy.taken_log_probs(rows.hist_left, rows.target, paths[idx], act.clamp(min=0))
                ok = has & ~torch.isneginf(taken)  # labels the mask forbids (-inf) give no loss; NaN stays
                n_ok = ok.sum()
                nll = -torch.where(ok, taken, torch.zeros((), device=dev)).sum() / n_ok.clamp(min=1)
            opt.zero_grad(set_to_none=True)
            nll.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()
            loss = float(nll.detach())
            if not math.isfinite(loss):
                raise SFTDiverged(f"SFT on dataset '{ctx.data.name}': non-finite loss in epoch {epoch + 1} "
                                  f"(sft_lr {cfg.sft_lr:g}); lower sft_lr; nothing was cached")
            total += loss * int(n_ok)
            count += int(n_ok)
            step += 1
        if not _finite_weights(policy.state_dict()):
            raise SFTDiverged(f"SFT on dataset '{ctx.data.name}': non-finite weights in epoch {epoch + 1} "
                              f"(sft_lr {cfg.sft_lr:g}); lower sft_lr; nothing was cached")
        v_ioi, v_len = validation_ioi(policy, ctx.simulator, valid, cfg)
        ctx.logger.log(epoch + 1, sft_loss=total / max(count, 1))
        log_finite(ctx, epoch + 1, sft_valid_ioi=v_ioi, sft_valid_len=v_len)
        if on_epoch is not None:
            on_epoch(epoch + 1, v_ioi, policy)
        if not (v_ioi <= best[0]):  # NaN (no validation cases): keep the newest
            best = (v_ioi, epoch + 1, copy.deepcopy(policy.state_dict()))
    if best[2] is not None:
        policy.load_state_dict(best[2])
        log_finite(ctx, cfg.sft_epochs, sft_selected_epoch=float(best[1]), sft_selected_valid_ioi=float(best[0]))
    log.info("SFT: selected epoch %d (valid IoI@1 %.4f)", best[1], best[0])
    return {"sft_epoch": float(best[1]), "sft_valid_ioi": float(best[0])}
