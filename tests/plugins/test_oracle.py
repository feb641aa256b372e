"""The oracle simulator replays the synthetic world's drift (SPEC sections 2 and 7)."""

from __future__ import annotations

import pytest
import torch

from prorlbench.api import Case, Interactions, SequenceModel
from prorlbench.seq.cases import CaseConfig, build_cases
from prorlbench.errors import ConfigError, UserError
from prorlbench.plugins import load_registry
from prorlbench.seq.scoring import score_paths
from prorlbench_plugins.datasets.synthetic import SyntheticConfig, load
from prorlbench_plugins.simulators.oracle import OracleConfig, build

SMALL = SyntheticConfig(n_items=60, n_users=80, n_genres=4, dim=6, seq_len=20, seed=1)


@pytest.fixture(scope="module")
def data():
    return load(SMALL)


@pytest.fixture(scope="module")
def oracle(data):
    model, info = build(OracleConfig(), data, device="cpu", seed=0, cache_dir=None, progress=False)
    assert info.name == "oracle" and not info.trained
    return model


def test_registered_as_ground_truth():
    reg = load_registry(use_entry_points=False, extra_plugins=[("oracle", __import__(
        "prorlbench_plugins.simulators.oracle", fromlist=["x"]))])
    spec = reg.simulator("oracle")
    assert spec.learned is False and spec.config_cls is OracleConfig


def test_protocol_and_frozen(oracle):
    assert isinstance(oracle, SequenceModel)
    assert not oracle.training
    assert all(not p.requires_grad for p in oracle.parameters())
    assert oracle.item_embeddings().shape == (SMALL.n_items, SMALL.dim)


def test_encode_replays_the_drift_from_zero(data, oracle):
    w = data.world
    seqs = torch.tensor([list(data.sequences["train"][0][:7]), list(data.sequences["train"][1][:5]) + [60, 60]])
    lens = torch.tensor([7, 5])
    states = oracle.encode(seqs, lens)
    for b in range(2):
        pref = torch.zeros(SMALL.dim)
        for t in range(int(lens[b])):
            pref = w.gamma * pref + (1 - w.gamma) * w.item_vectors[seqs[b, t]]
            assert torch.allclose(states[b, t], w.beta * pref, atol=1e-5)
    # logits are the generating logits at that preference; accept is sigmoid of the item's logit
    s = states[0, 6]
    expected = w.beta * (states[0, 6] / w.beta) @ w.item_vectors.T + w.popularity
    assert torch.allclose(oracle.logits(s), expected, atol=1e-5)
    items = torch.tensor([3, 9])
    assert torch.allclose(oracle.accept_logit(s.expand(2, -1), items), expected[items], atol=1e-5)


def test_oracle_scores_paths_and_builds_cases(data, oracle):
    cases = build_cases(data, oracle, CaseConfig(n_history=8, max_path_len=6, min_target_rank=10))
    assert cases.test
    sc = score_paths(oracle, cases.test, [c.reference[:-1] for c in cases.test])
    assert bool((sc.rank[:, 0] > 10).all())
    # Showing items close to the target (its nearest items by the true vectors) raises its probability.
    E = data.world.item_vectors
    paths = []
    for c in cases.test:
        sim = E @ E[c.target]
        sim[list(c.history) + [c.target]] = -9
        paths.append(tuple(int(i) for i in sim.topk(6).indices))
    good = score_paths(oracle, cases.test, paths)
    ioi = good.final(good.log_p) - good.log_p[:, 0]
    assert float(ioi.mean()) > 1.0


def test_needs_the_synthetic_world():
    plain = Interactions(name="movielens", n_items=5, sequences={"train": [(0, 1, 2)], "valid": [], "test": []})
    with pytest.raises(UserError, match="needs the synthetic dataset"):
        build(OracleConfig(), plain, device="cpu", seed=0, cache_dir=None, progress=False)
    with pytest.raises(ConfigError):
        OracleConfig(max_seq_len=1)
