"""Every RL protocol switch on a toy case that shows the effect it is meant to have."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats

from prorlbench.config import build_config
from prorlbench.errors import ConfigError
from prorlbench.rl.config import RLConfig
from prorlbench.rl.decode import draw
from prorlbench.rl.estimators import COMPONENTS, AdvantageBatch, step_rewards
from prorlbench.rl.method import RLMethod
from prorlbench.rl.normalize import BatchNormalizer, PositionNormalizer, make_normalizer
from prorlbench.rl.policy import PathPolicy
from prorlbench.rl.trainer import kl_term
from prorlbench_plugins.methods.rl_family import ESTIMATORS

from .fakes import make_ctx

SPECS = {s.name: s for s in ESTIMATORS}
TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "samples_per_case": 4, "batch_cases": 8, "epochs": 2,
        "sft_epochs": 2, "sft_batch": 16, "grad_var_every": 0, "n_valid_cases": 16, "max_history": 6}


# -- kl ------------------------------------------------------------------------------------------


def _categorical(v=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(v, generator=g, dtype=torch.float64).requires_grad_(True)
    ref = torch.randn(v, generator=g, dtype=torch.float64)
    return theta, torch.log_softmax(ref, -1)


def _per_action(form, theta, ref_lp):
    """kl_term for each of the V actions taken once (rows), with the full distributions."""
    lp = torch.log_softmax(theta, -1)
    v = lp.shape[0]
    taken, ref_taken = lp[:, None], ref_lp[:, None]  # [V, 1]: row a took action a
    full, ref_full = lp.expand(v, v)[:, None], ref_lp.expand(v, v)[:, None]
    active = torch.ones(v, 1, dtype=torch.bool)
    return kl_term(form, taken, ref_taken, active, full, ref_full), lp


def test_k1_k3_exact_values_and_gradients_against_autograd_of_the_exact_kl():
    theta, ref_lp = _categorical()
    lp = torch.log_softmax(theta, -1)
    kl_fwd = (lp.exp() * (lp - ref_lp)).sum()  # KL(pi || pi_ref)
    kl_rev = (ref_lp.exp() * (ref_lp - lp)).sum()  # KL(pi_ref || pi)
    g_fwd, = torch.autograd.grad(kl_fwd, theta, retain_graph=True)
    g_rev, = torch.autograd.grad(kl_rev, theta)
    pi = lp.exp().detach()
    for form in ("k1", "k3", "exact"):
        per, _ = _per_action(form, theta, ref_lp)
        expected_value = (pi * per).sum()  # E_{a ~ pi} of the per-action term (exact enumeration)
        expected_grad, = torch.autograd.grad(expected_value, theta)
        torch.testing.assert_close(expected_value, kl_fwd.detach(), msg=form)  # all three: unbiased values
        if form == "k1":
            torch.testing.assert_close(expected_grad, torch.zeros_like(theta), atol=1e-12, rtol=0)
        elif form == "k3":  # the gradient of the reverse KL, never negative per action
            torch.testing.assert_close(expected_grad, g_rev)
            assert bool((per >= 0).all())
        else:  # exact: the same value on every row, and the gradient of KL(pi || pi_ref)
            torch.testing.assert_close(per, kl_fwd.detach().expand_as(per))
            torch.testing.assert_close(expected_grad, g_fwd)


def test_exact_kl_ignores_masked_actions_without_nan_gradients():
    theta = torch.tensor([0.3, -1.0, float("-inf"), 0.5], requires_grad=True)
    lp = torch.log_softmax(theta, -1)
    ref = torch.log_softmax(torch.tensor([0.0, 0.2, float("-inf"), -0.1]), -1)
    per = kl_term("exact", lp[None, :1], ref[None, :1], torch.ones(1, 1, dtype=torch.bool), lp[None, None], ref[None, None])
    per.sum().backward()
    assert torch.isfinite(per).all() and torch.isfinite(theta.grad[[0, 1, 3]]).all()


# -- decode ---------------------------------------------------------------------------------------


def _brute_force(pol, hist, target, k, length_norm):
    v, p = pol.n_items, pol.max_path_len
    banned = set(hist.tolist()) | {int(target)}
    ok = [i for i in range(v) if i not in banned]
    paths = [()] + [(i,) for i in ok] + [(i, j) for i, j in itertools.permutations(ok, 2)]
    rows = torch.full((len(paths), p), v)
    for r, path in enumerate(paths):
        rows[r, : len(path)] = torch.tensor(path, dtype=torch.long) if path else rows[r, :0]
    lengths = torch.tensor([len(x) for x in paths])
    stopped = lengths < p
    n = len(paths)
    lp = pol.action_log_probs(hist[None].expand(n, -1), target.expand(n), rows, lengths, stopped).sum(1)
    n_act = (lengths + stopped.long()).double()
    key = lp.double() / n_act.pow(length_norm)
    order = key.argsort(descending=True)[:k]
    return [paths[i] for i in order.tolist()], key[order]


@pytest.mark.parametrize("length_norm", [0.0, 1.0])
def test_beam_search_equals_brute_force_on_a_5_item_catalog(length_norm):
    torch.manual_seed(3)
    pol = PathPolicy(5, 2, max_history=3, d_model=8, n_layers=1, n_heads=2, dropout=0.0).eval()
    with torch.no_grad():
        pol.stop_head.bias.fill_(1.0)  # STOP competes with items
    hist = torch.tensor([[5, 0, 1]])  # left-padded: item 0 and 1 in H
    for target in (2, 4):
        t = torch.tensor([target])
        want, want_key = _brute_force(pol, hist[0], t, 5, length_norm)
        paths, lengths, stopped, key = pol.beam_search(hist, t, 5, width=40, length_norm=length_norm)
        got = [tuple(paths[i, : lengths[i]].tolist()) for i in range(5)]
        assert got == want
        torch.testing.assert_close(key[0].double(), want_key, atol=1e-5, rtol=1e-5)
        assert stopped.tolist() == [len(x) < 2 for x in got]


def test_greedy_decode_lets_stop_win_and_threshold_does_not():
    torch.manual_seed(0)
    pol = PathPolicy(20, 4, max_history=6, d_model=16, n_layers=1, n_heads=2, dropout=0.0).eval()
    with torch.no_grad():
        pol.stop_head.bias.fill_(3.0)  # STOP is the single likeliest action, but p(STOP) < 0.5
    hist, target = torch.full((3, 6), 20), torch.tensor([1, 2, 3])
    with torch.no_grad():
        p_stop = torch.softmax(pol(hist, target, torch.zeros(3, 0, dtype=torch.long))[:, 0], -1)[:, 20]
    assert bool((p_stop < 0.5).all())
    _, greedy_len, _ = pol.sample(hist, target, None, greedy=True, rule="greedy")
    _, thr_len, _ = pol.sample(hist, target, None, greedy=True, rule="threshold")
    assert greedy_len.tolist() == [0, 0, 0] and bool((thr_len > 0).all())


def _first_action_freqs(pol, n, temperature, top_k, seed):
    hist, target = torch.full((1, 6), 20), torch.tensor([0])
    paths, lengths, _ = pol.sample(hist, target, torch.Generator().manual_seed(seed), repeat=n,
                                   temperature=temperature, top_k=top_k, max_len=1)
    first = torch.where(lengths > 0, paths[:, 0], 20)
    return torch.bincount(first, minlength=21).double()


@pytest.mark.parametrize("temperature,top_k", [(1.0, 0), (0.6, 0), (1.5, 5)])
def test_sampler_draws_the_policy_distribution_chi_square(temperature, top_k):
    torch.manual_seed(1)
    pol = PathPolicy(20, 4, max_history=6, d_model=16, n_layers=1, n_heads=2, dropout=0.0).eval()
    with torch.no_grad():
        pol.item_bias.copy_(torch.linspace(-1.5, 1.5, 20))
    with torch.no_grad():
        logits = pol(torch.full((1, 6), 20), torch.tensor([0]), torch.zeros(1, 0, dtype=torch.long))[0, 0]
    logits[0] = float("-inf")  # the target is masked
    logits = logits / temperature
    if top_k:
        keep = logits.topk(top_k).indices
        logits = torch.full_like(logits, float("-inf")).scatter(0, keep, logits[keep])
    probs = torch.softmax(logits, -1).double()
    n = 20000
    counts = _first_action_freqs(pol, n, temperature, top_k, seed=7)
    assert counts[probs == 0].sum() == 0  # never an impossible action
    support = probs > 0
    expect = probs[support] / probs[support].sum() * counts.sum()
    chi = stats.chisquare(counts[support].numpy(), expect.numpy())
    assert chi.pvalue > 1e-3, chi
    # and the test has power: a wrong temperature is rejected
    wrong = torch.softmax(logits * 1.3, -1).double()
    assert stats.chisquare(counts[support].numpy(), (wrong[support] / wrong[support].sum() * n).numpy()).pvalue < 1e-6


def test_draw_uses_one_uniform_per_row_and_is_seeded():
    logits = torch.randn(64, 300)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = draw(logits, g1), draw(logits, g2)
    assert torch.equal(a, b)
    assert g1.get_state().equal(g2.get_state())
    g3 = torch.Generator().manual_seed(5)
    torch.rand(64, 1, generator=g3)  # one number per row: the generator advanced by exactly that
    assert torch.equal(g1.get_state(), g3.get_state())


# -- empty_paths, centering -----------------------------------------------------------------------


def test_skip_empty_paths_gives_the_official_zero_advantage_when_one_sample_is_non_empty():
    r = torch.tensor([[[0.0, 0.0], [1.5, -0.4], [0.0, 0.0]]])
    n = torch.tensor([[0, 2, 0]])
    stopped = torch.tensor([[True, False, True]])
    skip = AdvantageBatch(rewards=r, n_items=n, stopped=stopped, samples=n > 0)
    train = AdvantageBatch(rewards=r, n_items=n, stopped=stopped)
    for name in ("prorl", "prorl-no-positional-baseline", "grpo"):  # rloo: no other sample, baseline 0
        a = SPECS[name].estimate(skip)
        assert torch.equal(a, torch.zeros_like(a)), name
        assert bool(SPECS[name].estimate(train).abs().sum() > 0), name
    assert not bool(skip.active[0, 0].any()) and bool(train.active[0, 0, 0])


def _position_data(seed=0, n=400, p=5):
    g = torch.Generator().manual_seed(seed)
    raw = {c: torch.randn(n, p, generator=g) * (1 + torch.arange(p)) - 3 * torch.arange(p) ** 2 * (i + 1)
           for i, c in enumerate(COMPONENTS)}
    lengths = torch.randint(0, p + 1, (n,), generator=g)
    valid = torch.arange(p)[None] < lengths[:, None]
    return raw, valid


def test_position_centering_gives_zero_mean_step_reward_at_every_position():
    raw, valid = _position_data()
    norm = PositionNormalizer(5)
    for s in range(0, 400, 100):  # several batches, as during the normaliser epochs
        norm.update({c: x[s : s + 100] for c, x in raw.items()}, valid[s : s + 100])
    r, _ = step_rewards(norm.normalize(raw, centered=True), valid, valid, {c: 1.0 for c in COMPONENTS}, 5)
    per_pos = (r * valid).sum(0) / valid.sum(0)
    torch.testing.assert_close(per_pos, torch.zeros(5), atol=1e-5, rtol=0)
    glob = make_normalizer("global", 5)
    glob.update(raw, valid)
    rg, _ = step_rewards(glob.normalize(raw, centered=True), valid, valid, {c: 1.0 for c in COMPONENTS}, 5)
    assert float(((rg * valid).sum(0) / valid.sum(0)).abs().max()) > 0.5  # global: not zero per position


def test_batch_centering_uses_each_batch_alone():
    raw, valid = _position_data()
    norm = BatchNormalizer()
    norm.update({c: x[:100] for c, x in raw.items()}, valid[:100])
    norm.freeze()  # ignored
    second = {c: x[100:] + 50.0 for c, x in raw.items()}
    norm.update(second, valid[100:])
    for c in COMPONENTS:
        assert norm.mu[c] == pytest.approx(float(second[c][valid[100:]].double().mean()), rel=1e-9)


# -- noise-pg, warm-up, per-dataset keys, profiles -----------------------------------------------


def test_noise_pg_is_seeded_masked_and_ignores_rewards():
    b = dict(n_items=torch.tensor([[2, 0, 3]] * 4), stopped=torch.tensor([[True, True, False]] * 4))
    a1 = SPECS["noise-pg"].estimate(AdvantageBatch(rewards=torch.zeros(4, 3, 3), generator=torch.Generator().manual_seed(1), **b))
    a2 = SPECS["noise-pg"].estimate(AdvantageBatch(rewards=torch.randn(4, 3, 3), generator=torch.Generator().manual_seed(1), **b))
    act = AdvantageBatch(rewards=torch.zeros(4, 3, 3), **b).active
    assert torch.equal(a1, a2) and bool((a1[~act] == 0).all()) and bool((a1[act] != 0).all())
    big = SPECS["noise-pg"].estimate(AdvantageBatch(rewards=torch.zeros(200, 16, 10), n_items=torch.full((200, 16), 10),
                                                    stopped=torch.zeros(200, 16, dtype=torch.bool)))
    assert abs(float(big.mean())) < 0.02 and abs(float(big.std()) - 1) < 0.02


def test_warmup_rises_linearly_then_stays_constant_and_switches_train(tmp_path):
    ctx = make_ctx(tmp_path)
    cfg = build_config(RLConfig, {**TINY, "epochs": 4, "warmup_frac": 0.5, "lr": 1e-3, "kl": "exact",
                                  "empty_paths": "skip", "centering": "position"})
    m = RLMethod(cfg, SPECS["prorl"])
    m.fit(ctx)
    lrs = ctx.logger.series("lr")  # 4 epochs x 6 steps, warm-up over 12
    assert len(lrs) == 24
    torch.testing.assert_close(torch.tensor(lrs[:13]), torch.arange(13) / 12 * 1e-3, atol=1e-9, rtol=1e-6)
    assert lrs[12:] == [pytest.approx(1e-3)] * 12
    for key in ("pos1_ioi_t0", "posN_ior_t0", "vs_objective", "final_vs_ioi", "final_vs_len", "empty_rate"):
        assert ctx.logger.series(key), key
    assert all(torch.isfinite(torch.tensor(ctx.logger.series("kl"))))
    assert len(m.generate(ctx.cases.test, 3)[0]) == 3


@pytest.mark.parametrize("decode", ["greedy", "beam"])
def test_generate_with_each_decode(tmp_path, decode):
    ctx = make_ctx(tmp_path)
    m = RLMethod(build_config(RLConfig, {**TINY, "decode": decode, "beam_width": 4, "sample_top_k": 5}), SPECS["prorl"])
    m.fit(ctx)
    out = m.generate(ctx.cases.test, 3)
    assert [len(c) for c in out] == [3] * len(ctx.cases.test)
    if decode == "beam":  # distinct beams
        assert all(len(set(c)) == 3 for c in out)


def test_official_leftpad_needs_a_simulator_that_supports_it(tmp_path):
    ctx = make_ctx(tmp_path)
    m = RLMethod(build_config(RLConfig, {**TINY, "reward_state": "official-leftpad"}), SPECS["prorl"])
    with pytest.raises(ConfigError, match="official-leftpad"):
        m.fit(ctx)


def test_official_profile_and_per_dataset_keys():
    off = build_config(RLConfig, {}, profile="official")
    assert (off.samples_per_case, off.batch_cases, off.epochs, off.lr, off.warmup_frac, off.weight_decay) == \
        (16, 512, 50, 1e-4, 0.05, 0.05)
    assert (off.kl, off.decode, off.sample_top_k, off.empty_paths, off.centering) == ("k1", "greedy", 50, "skip", "global")
    steam = off.for_dataset("prorl-Steam")
    assert (steam.lr, steam.w_ctr) == (1e-5, 0.1) and off.for_dataset("prorl-Books").lr == 5e-4
    assert off.for_dataset("movielens").lr == 1e-4
    with pytest.raises(ConfigError, match="per_dataset.steam"):
        build_config(RLConfig, {"per_dataset": {"steam": {"lrr": 1.0}}})
    with pytest.raises(ConfigError, match="centering"):
        build_config(RLConfig, {"centering": "local"})


def test_every_rl_key_has_plain_help_without_private_references():
    import dataclasses

    for f in dataclasses.fields(RLConfig):
        text = f.metadata.get("help", "")
        assert text, f.name
        assert "SPEC" not in text and "§" not in text and "issue" not in text.lower(), f.name
