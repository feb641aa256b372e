"""Core metrics (SPEC section 3) on hand-made PathScores."""

from __future__ import annotations

import math

import pytest
import torch

from prorlbench.plugins import load_registry
from prorlbench.seq.scoring import PathScores, attribute_matrix
from prorlbench_plugins.metrics import core

PAD = 6  # n_items = 6


def make_scores(**over) -> PathScores:
    # path 0: items (1, 2, 3), full length; path 1: (4,), length 1; path 2: empty; path 3: (1, 1, 0)
    paths = torch.tensor([[1, 2, 3], [4, PAD, PAD], [PAD, PAD, PAD], [1, 1, 0]])
    lengths = torch.tensor([3, 1, 0, 3])
    log_p = torch.tensor([[-5.0, -4.0, -3.5, -2.0],
                          [-6.0, -6.5, -6.5, -6.5],
                          [-3.0, -3.0, -3.0, -3.0],
                          [-8.0, -7.0, -7.0, -7.5]])
    rank = torch.tensor([[40.0, 30.0, 12.0, 3.0],
                         [100.0, 150.0, 150.0, 150.0],
                         [9.0, 9.0, 9.0, 9.0],
                         [300.0, 200.0, 200.0, 250.0]])
    accept = torch.tensor([[0.5, 0.7, 0.9], [0.2, 0.0, 0.0], [0.0, 0.0, 0.0], [0.6, 0.4, 0.2]])
    valid = torch.tensor([[True, True, True], [False, False, False], [False, False, False], [True, False, True]])
    s = dict(log_p=log_p, rank=rank, accept=accept, lengths=lengths, valid=valid,
             n_unknown=torch.tensor([0, 1, 2, 0]), paths=paths, targets=torch.tensor([5, 5, 5, 2]),
             item_attributes=(frozenset({0}), frozenset({0, 1}), frozenset({1}), frozenset({2}),
                              frozenset(), frozenset({2})))
    s.update(over)
    return PathScores(**s)


def test_ioi_ior_sr_len():
    s = make_scores()
    assert core.ioi(s).tolist() == [3.0, -0.5, 0.0, 0.5]
    assert core.ior(s).tolist() == [37.0, -50.0, 0.0, 50.0]
    assert core.sr10(s).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert core.length(s).tolist() == [3.0, 1.0, 0.0, 3.0]


def test_ctr_plain_mean_and_empty_path_zero():
    c = core.ctr(make_scores())
    assert c.tolist() == pytest.approx([0.7, 0.2, 0.0, 0.4])


def test_invalid_counts_unknown_repeats_and_history():
    # path 1: item 4 flagged invalid (in H) + 1 unknown dropped -> 2/2; path 2: 2 unknown, nothing kept -> 2/2
    # path 3: one repeat -> 1/3
    v = core.invalid(make_scores())
    assert v.tolist() == pytest.approx([0.0, 1.0, 1.0, 1 / 3])
    empty = make_scores(n_unknown=torch.tensor([0, 0, 0, 0]))
    assert core.invalid(empty)[2] == 0.0


def test_coherence_pairs_include_target():
    # path 0: (1,2) share 1; (2,3) none; (3,T=5) share 2 -> 2/3
    # path 1: (4,T=5): item 4 has no attribute -> 0;  path 2: empty -> 0
    # path 3: (1,1) share; (1,0) share 0; (0,T=2) none -> 2/3
    c = core.coherence(make_scores())
    assert c.tolist() == pytest.approx([2 / 3, 0.0, 0.0, 2 / 3])
    # a precomputed attribute matrix gives the same values
    s = make_scores()
    m = attribute_matrix(s.item_attributes)
    assert m.shape == (6, 3) and m.dtype == torch.bool
    assert core.coherence(make_scores(item_attributes=m)).tolist() == c.tolist()


def test_coherence_without_attributes_is_an_error():
    with pytest.raises(ValueError, match="attributes"):
        core.coherence(make_scores(item_attributes=None))


def test_registered_with_directions():
    reg = load_registry(use_entry_points=False, extra_plugins=[("metrics", core)])
    assert reg.names("metrics") == sorted(["ioi", "ior", "ctr", "coherence", "sr10", "len", "invalid"])
    assert reg.metric("invalid").higher_is_better is False
    assert reg.metric("len").higher_is_better is None
    assert reg.metric("coherence").needs_attributes
    for name in ("ioi", "ior", "ctr", "coherence", "sr10"):
        assert reg.metric(name).higher_is_better is True
        assert name == name.lower()
    assert "rank(T|S_m) <= 10" in reg.metric("sr10").summary
    assert not math.isnan(float(reg.metric("ctr").compute(make_scores()).sum()))
