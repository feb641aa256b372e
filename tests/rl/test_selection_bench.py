"""benchmarks.test_selection: the per-epoch observer of SFT and RL training changes nothing, the
two selection rules read the right epochs, and the policy head of the RL step is bit-identical."""

from __future__ import annotations

import torch

from benchmarks.test_selection import selections
from prorlbench.config import build_config
from prorlbench.rl.config import RLConfig
from prorlbench.rl.policy import CaseTensors, PathPolicy
from prorlbench.rl.sft import _fit
from prorlbench.rl.trainer import train_rl, validation_ioi
from prorlbench_plugins.methods.rl_family import ESTIMATORS

from .fakes import make_ctx
from .test_policy_trainer import TINY

PRORL = next(s for s in ESTIMATORS if s.name == "prorl")


def _train(ctx, cfg, observe: bool):
    test = CaseTensors.from_cases(ctx.cases.test, ctx.data.n_items)
    seen: list[tuple[str, int, float, float]] = []

    def obs(stage):
        return lambda epoch, v, pol: seen.append((stage, epoch, v, validation_ioi(pol, ctx.simulator, test, cfg)[0]))

    torch.manual_seed(0)
    ref = PathPolicy(ctx.data.n_items, 4, max_history=6, d_model=16, n_layers=1, n_heads=2, dropout=0.0)
    _fit(ref, ctx, cfg, 4, on_epoch=obs("sft") if observe else None)
    ref.eval()
    policy = PathPolicy(ctx.data.n_items, 4, max_history=6, d_model=16, n_layers=1, n_heads=2, dropout=0.0)
    policy.load_state_dict(ref.state_dict())
    train_rl(policy, ref, ctx, cfg, PRORL, ctx.cases.train, ctx.cases.valid, 4,
             on_epoch=obs("rl") if observe else None)
    return policy.state_dict(), list(ctx.logger.rows), seen


def test_the_epoch_observer_leaves_training_unchanged(tmp_path):
    cfg = build_config(RLConfig, {**TINY, "sft_epochs": 2, "epochs": 2})
    plain_state, plain_log, none = _train(make_ctx(tmp_path / "a"), cfg, observe=False)
    state, log, seen = _train(make_ctx(tmp_path / "b"), cfg, observe=True)
    assert none == [] and [(s, e) for s, e, _, _ in seen] == [("sft", 1), ("sft", 2), ("rl", 1), ("rl", 2)]
    assert all(torch.equal(plain_state[k], state[k]) for k in state)
    assert log == plain_log
    logged = [v["valid_ioi"] for _, v in log if "valid_ioi" in v]
    assert [v for s, _, v, _ in seen if s == "rl"] == logged  # the observer sees the selection's numbers


def test_selection_rules_pick_the_best_validation_and_the_best_test_epoch():
    trace = [(1, 0.1, 0.5), (2, 0.3, 0.2), (3, 0.3, 0.9), (4, 0.2, 0.4)]
    assert selections(trace) == (2, 0.2, 3, 0.9)  # ties keep the first epoch, as the trainers do


def test_policy_head_with_the_bias_in_the_matmul_equals_the_plain_formula():
    """``_head`` (addmm) gives the values and gradients of ``out @ E.T + b`` concatenated with STOP."""
    torch.manual_seed(0)
    pol = PathPolicy(300, 4, max_history=6, d_model=16, n_layers=1, n_heads=2, dropout=0.0)
    out = torch.randn(64, 5, 16)
    got = pol._head(out)
    want = torch.cat([out @ pol.item_emb.weight[:300].T + pol.item_bias, pol.stop_head(out)], -1)
    assert torch.equal(got, want)
    g1 = torch.autograd.grad(got.logsumexp(-1).sum(), [pol.item_emb.weight, pol.item_bias])
    g2 = torch.autograd.grad(want.logsumexp(-1).sum(), [pol.item_emb.weight, pol.item_bias])
    assert all(torch.equal(a, b) for a, b in zip(g1, g2))
