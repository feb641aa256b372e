"""The RL family as methods: ``sft`` and one method per registered advantage estimator.

``RLMethod(config, estimator)`` runs stage 1 (SFT, cached and shared by the methods of a run) and,
when an estimator is given, stage 2 (RL fine-tuning with that estimator). Everything else
(policy, rollout, rewards, loss, selection, generation) is the same for every method.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import torch

from ..api import Case, EstimatorSpec, FitContext, MethodSpec
from ..errors import UserError
from .checkpoint import recording
from .config import RLConfig
from .decode import candidates
from .policy import CaseTensors, PathPolicy
from .policies import build_policy
from .sft import train_sft
from .trainer import train_rl

log = logging.getLogger("prorlbench")


class RLMethod:
    """A policy trained by SFT, then (if ``estimator`` is set) by RL with that estimator."""

    def __init__(self, config: RLConfig, estimator: EstimatorSpec | None = None):
        self.config = config
        self.estimator = estimator
        self.policy: PathPolicy | None = None
        self.device = torch.device("cpu")
        self.seed = 0
        self.info: dict[str, float] = {}

    def fit(self, ctx: FitContext) -> None:
        cfg = self.config = self.config.for_dataset(ctx.data.name)
        max_len = cfg.max_path_len or ctx.max_path_len
        self.device, self.seed = torch.device(ctx.device), ctx.seed
        if self.estimator is not None:  # an RL checkpoint keeps the cell's rows, the SFT stage's too
            ctx = dataclasses.replace(ctx, logger=recording(ctx.logger))
        ref, info = train_sft(ctx, cfg, max_len)
        self.info = dict(info)
        if self.estimator is None:
            self.policy = ref
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            policy = build_policy(cfg, ctx.data.n_items, max_len, getattr(ref, "sem", None)).to(ctx.device)
        policy.load_state_dict(ref.state_dict())
        self.info.update(train_rl(policy, ref, ctx, cfg, self.estimator, ctx.cases.train,
                                  ctx.cases.valid[: cfg.n_valid_cases], max_len))
        self.policy = policy.eval()

    @torch.no_grad()
    def generate(self, cases: Sequence[Case], k: int, batch: int = 256) -> list[list[tuple[int, ...]]]:
        """The ``k`` candidates of ``decode`` (:func:`prorlbench.rl.decode.candidates`; seeded)."""
        if self.policy is None:
            raise UserError("generate() called before fit()")
        if k <= 0 or not cases:
            return [[] for _ in cases]
        pol = self.policy.eval()
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.seed * 1_000_033 + 101)
        out: list[list[tuple[int, ...]]] = []
        for s in range(0, len(cases), batch):
            part = list(cases[s : s + batch])
            ct = CaseTensors.from_cases(part, pol.n_items, self.device)
            paths, lengths = candidates(pol, ct.hist_left, ct.target, k, self.config, gen)
            # a code of no item (free semantic-ID decoding, ``-1 - key`` inside the policy) is shown
            # as the unknown item -1 (prorlbench.engine.pathrules.UNKNOWN_ITEM): dropped and counted invalid
            paths, lengths = paths.clamp(min=-1).cpu().tolist(), lengths.cpu().tolist()
            for c in range(len(part)):
                out.append([tuple(paths[c * k + j][: lengths[c * k + j]]) for j in range(k)])
        return out


def method_from_estimator(est: EstimatorSpec) -> MethodSpec:
    """The method of the same name as an estimator: SFT, then RL with that estimator."""

    def factory(config: RLConfig) -> RLMethod:
        return RLMethod(config, est)

    return MethodSpec(name=est.name, summary=est.summary, factory=factory, config_cls=RLConfig, family="rl")


def sft_method_spec() -> MethodSpec:
    """``sft``: the stage-1 policy alone (what every RL method starts from)."""
    return MethodSpec(name="sft", summary="Supervised policy on reference paths (RL stage 1 alone)",
                      factory=lambda config: RLMethod(config, None), config_cls=RLConfig, family="rl")
