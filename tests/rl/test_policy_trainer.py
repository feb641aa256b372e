"""Policy, trainer and SFT on a tiny fake world (a few seconds in all)."""

from __future__ import annotations

import torch

from prorlbench.api import EstimatorSpec
from prorlbench.config import build_config
from prorlbench.rl.config import RLConfig
from prorlbench.rl.method import RLMethod
from prorlbench.rl.policy import CaseTensors, PathPolicy
from prorlbench.rl.sft import sft_cache_path
from prorlbench_plugins.methods.rl_family import ESTIMATORS

from .fakes import make_ctx

TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "samples_per_case": 4, "batch_cases": 8, "epochs": 2,
        "sft_epochs": 2, "sft_batch": 16, "grad_var_every": 2, "n_valid_cases": 16, "max_history": 6}
PRORL = next(s for s in ESTIMATORS if s.name == "prorl")


def tiny_policy(n_items=20, p=4, **kw) -> PathPolicy:
    torch.manual_seed(0)
    return PathPolicy(n_items, p, max_history=6, d_model=16, n_layers=2, n_heads=2, dropout=0.0, **kw).eval()


def tiny_rows(n=5, n_items=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    hist = torch.stack([torch.randperm(n_items, generator=g)[:6] for _ in range(n)])
    hist[0, :2] = n_items  # a shorter (left-padded) history
    target = torch.randint(n_items, (n,), generator=g)
    return hist, target


def test_cached_decoding_matches_full_forward_and_repeat():
    pol = tiny_policy()
    hist, target = tiny_rows()
    gen = torch.randint(20, (5, 3))
    full = pol(hist, target, gen)  # [5, 4, 21]
    for t in range(4):
        torch.testing.assert_close(pol(hist, target, gen[:, :t])[:, -1], full[:, t], atol=1e-5, rtol=1e-5)
    rep = pol(hist, target, gen.repeat_interleave(3, 0), repeat=3)
    torch.testing.assert_close(rep, full.repeat_interleave(3, 0), atol=1e-5, rtol=1e-5)


def test_sampled_paths_are_valid_and_greedy_is_consistent():
    pol = tiny_policy()
    hist, target = tiny_rows()
    g = torch.Generator().manual_seed(3)
    paths, lengths, stopped = pol.sample(hist, target, g, repeat=8)
    assert paths.shape == (40, 4)
    assert bool((stopped == (lengths < 4)).all())
    for r in range(40):
        items = paths[r, : lengths[r]].tolist()
        assert bool((paths[r, lengths[r]:] == 20).all())
        case = r // 8
        assert len(set(items)) == len(items)
        assert not set(items) & set(hist[case].tolist())
        assert int(target[case]) not in items
    again = pol.sample(hist, target, torch.Generator().manual_seed(3), repeat=8)
    assert all(torch.equal(a, b) for a, b in zip((paths, lengths, stopped), again))
    # greedy: every item is the arg-max item of the masked distribution
    gp, gl, gs = pol.sample(hist, target, None, greedy=True)
    logp = pol.masked_log_probs(hist, target, gp, 4)
    for r in range(5):
        for t in range(int(gl[r])):
            assert int(logp[r, t, :20].argmax()) == int(gp[r, t])


def test_action_log_probs_follow_the_masked_distribution():
    pol = tiny_policy()
    hist, target = tiny_rows(n=2)
    paths = torch.tensor([[1, 2, 20, 20], [3, 4, 5, 6]])
    for r, n in enumerate((2, 4)):  # valid items only (an invalid one would have log-prob -inf)
        paths[r, :n] = torch.tensor([i for i in range(20) if i not in hist[r].tolist() and i != int(target[r])][:n])
    lengths, stopped = torch.tensor([2, 4]), torch.tensor([True, False])
    lp = pol.action_log_probs(hist, target, paths, lengths, stopped)
    logits = pol(hist, target, paths[:, :3])
    # row 0, step 1: banned = history, target and the first path item
    row = logits[0, 1].clone()
    banned = set(hist[0].tolist()) | {int(target[0]), int(paths[0, 0])}
    banned.discard(20)
    row[list(banned)] = float("-inf")
    torch.testing.assert_close(lp[0, 1], torch.log_softmax(row, -1)[paths[0, 1]])
    # row 0, step 2 is its STOP action; step 3 is inactive
    row = logits[0, 2].clone()
    row[list(banned | {int(paths[0, 1])})] = float("-inf")
    torch.testing.assert_close(lp[0, 2], torch.log_softmax(row, -1)[20])
    assert lp[0, 3] == 0
    assert bool(torch.isfinite(lp).all())


def test_sft_then_prorl_fit_and_generate(tmp_path):
    ctx = make_ctx(tmp_path)
    cfg = build_config(RLConfig, TINY)
    sft = RLMethod(cfg, None)
    sft.fit(ctx)
    assert sft.info["cached"] == 0.0
    assert sft_cache_path(ctx, cfg, 4).exists()
    losses = ctx.logger.series("sft_loss")
    assert len(losses) == 2 and losses[1] < losses[0]
    assert ctx.logger.series("sft_selected_epoch")

    m = RLMethod(cfg, PRORL)
    ctx.logger.rows.clear()
    m.fit(ctx)
    assert m.info["cached"] == 1.0  # the SFT stage is shared through the cache
    steps = [s for s, v in ctx.logger.rows if "loss" in v]
    assert steps == list(range(len(steps))) and len(steps) == 2 * 6  # 48 cases / 8 per step, 2 epochs
    keys = {"path_len", "stop_rate", "reward_ctr", "reward_ioi", "reward_ior", "loss", "kl"}
    assert all(keys <= set(v) for _, v in ctx.logger.rows if "loss" in v)
    gv = ctx.logger.series("grad_var")
    assert len(gv) == 6 and all(x > 0 for x in gv)
    assert ctx.logger.series("selected_epoch")
    assert all(0 <= x <= 4 for x in ctx.logger.series("path_len"))

    cases = ctx.cases.test
    out = m.generate(cases, 5)
    assert len(out) == len(cases) and all(len(c) == 5 for c in out)
    assert out == m.generate(cases, 5)  # deterministic
    for case, cands in zip(cases, out):
        for p in cands:
            assert len(p) <= 4 and len(set(p)) == len(p) and not set(p) & set(case.history)
    # candidate 1 is the greedy path, whatever k is
    assert [c[0] for c in m.generate(cases, 1)] == [c[0] for c in out]


def test_sft_cache_is_rebuilt_when_corrupt(tmp_path):
    ctx = make_ctx(tmp_path, n_train=16)
    cfg = build_config(RLConfig, {**TINY, "sft_epochs": 1})
    first = RLMethod(cfg, None)
    first.fit(ctx)
    path = sft_cache_path(ctx, cfg, 4)
    path.write_bytes(b"not a checkpoint")
    again = RLMethod(cfg, None)
    again.fit(ctx)
    assert again.info["cached"] == 0.0
    assert again.generate(ctx.cases.test, 3) == first.generate(ctx.cases.test, 3)
    third = RLMethod(cfg, None)
    third.fit(ctx)
    assert third.info["cached"] == 1.0
    # another seed or policy size gets its own checkpoint
    ctx.seed = 1
    assert sft_cache_path(ctx, cfg, 4) != path
    ctx.seed = 0
    assert sft_cache_path(ctx, build_config(RLConfig, {**TINY, "d_model": 32}), 4) != path


def test_training_follows_the_estimator_weights(tmp_path):
    """An estimator that rewards only STOP-at-once makes the policy stop at once more often."""

    def stop_now(b):
        return b.masked(b.stop_mask.float() * (torch.arange(b.n_positions) == 0).float() * 5.0)

    ctx = make_ctx(tmp_path, n_train=32)
    cfg = build_config(RLConfig, {**TINY, "lr": 1e-2, "epochs": 2, "beta": 0.0, "grad_var_every": 0,
                                  "select": "last"})
    m = RLMethod(cfg, EstimatorSpec("stop-now", "test", stop_now, centered=True))
    m.fit(ctx)
    stop = ctx.logger.series("stop_rate")
    assert sum(stop[-3:]) / 3 > sum(stop[:3]) / 3

    def p_stop_first(policy):
        ct = CaseTensors.from_cases(ctx.cases.valid, 40)
        with torch.no_grad():
            return float(torch.softmax(policy(ct.hist_left, ct.target, ct.target[:, None][:, :0])[:, 0], -1)[:, 40].mean())

    sft = RLMethod(cfg, None)
    sft.fit(ctx)
    assert p_stop_first(m.policy) > p_stop_first(sft.policy) + 0.1


def test_long_histories_the_policy_reads_the_most_recent_items_and_masks_all():
    torch.manual_seed(0)
    pol = PathPolicy(20, 4, max_history=3, d_model=16, n_layers=1, n_heads=2, dropout=0.0).eval()
    hist, target = tiny_rows(n=4)  # 6 history items per row (row 0: 4)
    gen = torch.zeros(4, 0, dtype=torch.long)
    torch.testing.assert_close(pol(hist, target, gen), pol(hist[:, -3:], target, gen))
    paths, lengths, _ = pol.sample(hist, target, torch.Generator().manual_seed(0), repeat=16)
    for r in range(64):
        assert not set(paths[r, : lengths[r]].tolist()) & set(hist[r // 16].tolist())
