"""The six built-in estimators against the reference vectors and a hand-computed batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from prorlbench.rl.estimators import COMPONENTS, AdvantageBatch, RewardNormalizer, step_rewards
from prorlbench_plugins.methods.rl_family import ESTIMATORS

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "advantages.json"
SPECS = {s.name: s for s in ESTIMATORS if s.name != "noise-pg"}
"""The reward-driven estimators (the placebo ``noise-pg`` has no reference values: it ignores rewards)."""


def batch_from_samples(samples, max_len, norm, weights, centered) -> AdvantageBatch:
    """One group (B = 1) of samples given as dicts with n_items, stopped, ctr, ioi, ior."""
    g = len(samples)
    raw = {c: torch.zeros(1, g, max_len, dtype=torch.float64) for c in COMPONENTS}
    for j, s in enumerate(samples):
        for c in COMPONENTS:
            raw[c][0, j, : s["n_items"]] = torch.tensor(s[c], dtype=torch.float64)
    n = torch.tensor([[s["n_items"] for s in samples]])
    stopped = torch.tensor([[bool(s["stopped"]) for s in samples]])
    item_mask = torch.arange(max_len)[None, None] < n[..., None]
    normed = norm.normalize(raw, centered=centered)
    r, comps = step_rewards(normed, item_mask, item_mask, weights, max_len)
    return AdvantageBatch(rewards=r, n_items=n, stopped=stopped, gamma=1.0, components=comps)


def load_vectors():
    if not VECTORS.exists():
        pytest.skip(f"reference vectors not found at {VECTORS}")
    return json.loads(VECTORS.read_text())


def test_every_registered_estimator_has_reference_values():
    ref = load_vectors()
    for group in ref["groups"]:
        assert set(group["expected"]) == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_estimators_match_reference_vectors(name):
    ref = load_vectors()
    spec = SPECS[name]
    norm = RewardNormalizer.fixed(ref["mu"], ref["sigma"])
    for gi, group in enumerate(ref["groups"]):
        b = batch_from_samples(group["samples"], ref["max_path_len"], norm, ref["weights"], spec.centered)
        got = spec.estimate(b)[0]
        want = torch.tensor(group["expected"][name], dtype=got.dtype)
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9, msg=f"group {gi}, {name}")


def test_centered_flags_follow_the_spec_table():
    assert {n for n, s in SPECS.items() if s.centered} == {"prorl", "prorl-no-positional-baseline"}


def hand_batch() -> AdvantageBatch:
    # max_path_len 3, one case, G = 3 samples with already-normalised step rewards:
    #   s0: items [1, 2] then STOP        -> r = [1, 2]
    #   s1: items [3, -1, 1] (full, no STOP) -> r = [3, -1, 1]
    #   s2: STOP at once                   -> r = []
    r = torch.tensor([[[1.0, 2.0, 0.0], [3.0, -1.0, 1.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    # garbage past each path's end must be ignored
    r_dirty = r.clone()
    r_dirty[0, 0, 2] = 100.0
    r_dirty[0, 2, :] = -50.0
    return AdvantageBatch(rewards=r_dirty, n_items=torch.tensor([[2, 3, 0]]),
                          stopped=torch.tensor([[True, False, True]]))


def test_hand_computed_batch():
    b = hand_batch()
    assert b.active.tolist() == [[[True, True, True], [True, True, True], [True, False, False]]]
    assert b.stop_mask.tolist() == [[[False, False, True], [False, False, False], [True, False, False]]]
    # returns-to-go: s0 [3, 2, STOP 0]; s1 [3, 0, 1]; s2 [STOP 0]
    torch.testing.assert_close(b.returns_to_go[0], torch.tensor(
        [[3.0, 2.0, 0.0], [3.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64))
    R = [3.0, 3.0, 0.0]
    torch.testing.assert_close(b.path_return[0], torch.tensor(R, dtype=torch.float64))
    # PSAE: b_0 = mean(3, 3, 0) = 2; b_1 = mean(2, 0) = 1; b_2 = mean(STOP 0, 1) = 0.5
    want_psae = [[1.0, 1.0, -0.5], [1.0, -1.0, 0.5], [-2.0, 0.0, 0.0]]
    got = SPECS["prorl"].estimate(b)[0]
    torch.testing.assert_close(got, torch.tensor(want_psae, dtype=torch.float64))
    assert SPECS["prorl-no-centering"].estimate(b)[0].tolist() == want_psae  # same weight, other rewards
    # path-level: mean R = 2
    assert SPECS["prorl-no-positional-baseline"].estimate(b)[0].tolist() == [[1, 1, 1], [1, 1, 1], [-2, 0, 0]]
    assert SPECS["naive-pg"].estimate(b)[0].tolist() == [[3, 3, 3], [3, 3, 3], [0, 0, 0]]
    # rloo: s0 3 - mean(3, 0) = 1.5, s1 1.5, s2 0 - 3 = -3
    assert SPECS["rloo"].estimate(b)[0].tolist() == [[1.5, 1.5, 1.5], [1.5, 1.5, 1.5], [-3, 0, 0]]
    std = torch.tensor(R).std(unbiased=True).item()  # sqrt(3)
    g = SPECS["grpo"].estimate(b)[0]
    torch.testing.assert_close(g[0, 0].item(), 1 / (std + 1e-6))
    torch.testing.assert_close(g[2].tolist(), [-2 / (std + 1e-6), 0.0, 0.0])


def test_inactive_positions_are_zero_for_every_estimator():
    torch.manual_seed(0)
    b = AdvantageBatch(rewards=torch.randn(4, 5, 6), n_items=torch.randint(0, 7, (4, 5)),
                       stopped=torch.rand(4, 5) > 0.3)
    b = AdvantageBatch(rewards=b.rewards, n_items=b.n_items, stopped=b.stopped & (b.n_items < 6))
    for spec in ESTIMATORS:
        a = spec.estimate(b)
        assert a.shape == (4, 5, 6)
        assert bool((a[~b.active] == 0).all()), spec.name


def test_gamma_discounts_returns_to_go():
    b = AdvantageBatch(rewards=torch.tensor([[[1.0, 1.0, 1.0]]]), n_items=torch.tensor([[3]]),
                       stopped=torch.tensor([[False]]), gamma=0.5)
    assert b.returns_to_go[0, 0].tolist() == [1.75, 1.5, 1.0]


def test_group_of_one_gives_finite_weights():
    b = AdvantageBatch(rewards=torch.tensor([[[1.0, 2.0]]]), n_items=torch.tensor([[1]]),
                       stopped=torch.tensor([[True]]))
    for spec in ESTIMATORS:
        assert bool(torch.isfinite(spec.estimate(b)).all()), spec.name


def test_welford_normaliser_matches_batch_statistics():
    torch.manual_seed(1)
    xs = {c: torch.randn(7, 5) * (i + 1) + i for i, c in enumerate(COMPONENTS)}
    valid = torch.rand(7, 5) > 0.3
    norm = RewardNormalizer()
    for chunk in range(0, 7, 3):  # several updates == one pass over all valid steps
        norm.update({c: x[chunk : chunk + 3] for c, x in xs.items()}, valid[chunk : chunk + 3])
    for c, x in xs.items():
        v = x[valid].double()
        assert norm.mu[c] == pytest.approx(float(v.mean()), rel=1e-9)
        assert norm.sigma[c] == pytest.approx(float(v.std(unbiased=False)), rel=1e-9)
    norm.freeze()
    before = norm.state()
    norm.update({c: x + 100 for c, x in xs.items()}, valid)
    assert norm.state() == before
    z = norm.normalize(xs, centered=True)["ioi"][valid]
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-6)
    s = norm.normalize(xs, centered=False)["ioi"]
    torch.testing.assert_close(s, xs["ioi"] / norm.sigma["ioi"])


def test_normaliser_defaults_are_identity():
    norm = RewardNormalizer()
    x = {c: torch.tensor([1.5, -2.0]) for c in COMPONENTS}
    assert norm.normalize(x, centered=True)["ctr"].tolist() == [1.5, -2.0]


def test_invalid_steps_keep_ctr_penalty_but_no_ioi_ior_credit():
    norm = RewardNormalizer.fixed({"ctr": 0.5, "ioi": 0.0, "ior": 0.0}, {"ctr": 0.25, "ioi": 1.0, "ior": 1.0})
    raw = {"ctr": torch.tensor([[0.75, 0.0]]), "ioi": torch.tensor([[1.0, 0.0]]), "ior": torch.tensor([[2.0, 0.0]])}
    item_mask = torch.tensor([[True, True]])
    valid = torch.tensor([[True, False]])
    r, comps = step_rewards(norm.normalize(raw, centered=True), item_mask, valid, {"ctr": 1, "ioi": 1, "ior": 1}, 2)
    # valid step: ctr (0.75-0.5)/0.25/2 = 0.5, + 1 + 2; invalid: ctr (0 - 0.5)/0.25/2 = -1 only
    assert r.tolist() == [[3.5, -1.0]]
    assert comps["ioi"][0, 1] == 0 and comps["ior"][0, 1] == 0


@st.composite
def batches(draw):
    b, g, p = draw(st.integers(1, 3)), draw(st.integers(2, 5)), draw(st.integers(1, 5))
    n_items = torch.tensor(draw(st.lists(st.integers(0, p), min_size=b * g, max_size=b * g))).view(b, g)
    stop_flags = torch.tensor(draw(st.lists(st.booleans(), min_size=b * g, max_size=b * g))).view(b, g)
    vals = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=b * g * p, max_size=b * g * p))
    return AdvantageBatch(rewards=torch.tensor(vals, dtype=torch.float64).view(b, g, p), n_items=n_items,
                          stopped=stop_flags | (n_items == 0))  # an empty path must have stopped


@settings(max_examples=60, deadline=None)
@given(batches())
def test_baselines_are_centred_within_each_group(b):
    """PSAE weights sum to 0 over the samples active at each position; the path-level baselines
    (mean, leave-one-out, GRPO) sum to 0 over the group; REINFORCE is R on every active step."""
    act = b.active
    psae = SPECS["prorl"].estimate(b)
    torch.testing.assert_close((psae * act).sum(1), torch.zeros_like(psae[:, 0]), atol=1e-9, rtol=0)
    for name in ("prorl-no-positional-baseline", "rloo", "grpo"):
        w = SPECS[name].estimate(b)
        first = w[..., 0]  # every path is active at t = 0 (an item or STOP)
        torch.testing.assert_close(first.sum(1), torch.zeros_like(first[:, 0]), atol=1e-6, rtol=0)
        assert bool((w[~act] == 0).all())
        same = torch.where(act, w, first[..., None])  # one weight on every active step
        torch.testing.assert_close(same, first[..., None].expand_as(w))
    rf = SPECS["naive-pg"].estimate(b)
    torch.testing.assert_close(rf, torch.where(act, b.path_return[..., None].expand_as(rf), torch.zeros_like(rf)))
