"""Case building (SPEC section 4) with a tiny fake sequence model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from prorlbench.api import Case, Interactions, SequenceModel
from prorlbench.seq.cases import CaseConfig, build_cases, split_users
from prorlbench.config import build_config
from prorlbench.errors import ConfigError
from prorlbench.seq.scoring import score_paths


class MeanEmbeddingModel(nn.Module):
    """encode = cumulative mean of item embeddings; logits = state @ E.T + bias."""

    def __init__(self, n_items: int, dim: int = 8, seed: int = 0, max_seq_len: int = 50):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.n_items, self.max_seq_len = n_items, max_seq_len
        self.emb = nn.Parameter(torch.randn(n_items + 1, dim, generator=g), requires_grad=False)
        self.bias = nn.Parameter(torch.randn(n_items, generator=g), requires_grad=False)
        self.encode_calls = 0

    def encode(self, seqs, lengths):
        self.encode_calls += 1
        e = self.emb[seqs] * (seqs < self.n_items)[..., None]
        counts = torch.arange(1, seqs.shape[1] + 1, device=seqs.device)[None, :, None]
        return e.cumsum(1) / counts

    def logits(self, states):
        return states @ self.emb[: self.n_items].T + self.bias

    def accept_logit(self, states, items):
        return (states * self.emb[items]).sum(-1)

    def item_embeddings(self):
        return self.emb[: self.n_items]


def make_data(n_items=60, n_users=40, seq_len=25, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    parts = split_users(n_users, (0.6, 0.2, 0.2), seed)
    seqs = [tuple(int(x) for x in rng.permutation(n_items)[: seq_len - (u % 7)]) for u in range(n_users)]
    return Interactions(
        name="toy", n_items=n_items,
        sequences={s: [seqs[i] for i in idx] for s, idx in parts.items()},
        users={s: [f"x{i}" for i in idx] for s, idx in parts.items()},
    )


def test_fake_model_is_a_sequence_model():
    assert isinstance(MeanEmbeddingModel(5), SequenceModel)


# ----------------------------------------------------------------------------- split_users


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 101, 1000])
def test_split_users_partitions_and_is_seeded(n):
    a = split_users(n, (0.8, 0.1, 0.1), seed=3)
    b = split_users(n, (0.8, 0.1, 0.1), seed=3)
    assert a == b
    allu = a["train"] + a["valid"] + a["test"]
    assert sorted(allu) == list(range(n))  # disjoint and complete
    if n >= 3:
        assert all(len(a[s]) >= 1 for s in a)
    if n == 1000:
        assert (len(a["train"]), len(a["valid"]), len(a["test"])) == (800, 100, 100)
        assert split_users(n, seed=4) != a


def test_split_users_rejects_bad_ratios():
    with pytest.raises(ConfigError):
        split_users(10, (0.5, 0.5))
    with pytest.raises(ConfigError):
        split_users(10, (1.0, -0.1, 0.1))
    with pytest.raises(ConfigError):
        split_users(10, (0, 0, 0))


def test_split_users_zero_share_stays_empty():
    s = split_users(50, (1.0, 0.0, 0.0), seed=0)
    assert len(s["train"]) == 50 and s["valid"] == [] and s["test"] == []


# ----------------------------------------------------------------------------- CaseConfig


def test_case_config_validation_and_toml():
    cfg = build_config(CaseConfig, {"n_history": 5, "max_cases_per_split": 7})
    assert cfg.n_history == 5 and cfg.max_cases_per_split == 7 and cfg.min_target_rank == 50
    assert build_config(CaseConfig, {"max_cases_per_user": 0}).max_cases_per_user == 0  # TOML's "no cap"
    for bad in ({"n_history": 0}, {"max_path_len": 0}, {"target_choice": "far"}, {"max_cases_per_user": -1}):
        with pytest.raises(ConfigError):
            build_config(CaseConfig, bad)


# ----------------------------------------------------------------------------- build_cases


@pytest.mark.parametrize("choice", ["nearest", "random"])
def test_case_invariants(choice):
    data = make_data()
    model = MeanEmbeddingModel(data.n_items)
    cfg = CaseConfig(n_history=6, max_path_len=5, min_target_rank=20, max_cases_per_user=2, target_choice=choice)
    cs = build_cases(data, model, cfg)
    for split in ("train", "valid", "test"):
        cases = cs[split]
        assert cases, split
        users = data.users[split]
        seqs = dict(zip(users, data.sequences[split]))
        per_user: dict[str, int] = {}
        for c in cases:
            per_user[c.user] = per_user.get(c.user, 0) + 1
            assert len(c.history) == cfg.n_history
            assert c.target not in c.history
            assert c.reference[-1] == c.target
            assert 2 <= len(c.reference) <= cfg.max_path_len + 1
            assert c.target not in c.reference[:-1]
            # H then P* is a contiguous piece of the user's sequence at the position in case_id
            pos = int(c.case_id.rsplit(":", 1)[1])
            assert c.case_id == f"u{c.user}:{pos}"
            seq = seqs[c.user]
            assert seq[pos : pos + len(c.history) + len(c.reference)] == c.history + c.reference
        assert max(per_user.values()) <= cfg.max_cases_per_user
        assert len({c.case_id for c in cases}) == len(cases)
        # every case's target is hard under the model: same rank as scoring computes
        sc = score_paths(model, cases, [()] * len(cases))
        assert bool((sc.rank[:, 0] > cfg.min_target_rank).all())


def test_nearest_choice_picks_first_eligible_target():
    data = make_data(seed=1)
    model = MeanEmbeddingModel(data.n_items, seed=1)
    cfg = CaseConfig(n_history=5, max_path_len=6, min_target_rank=15, max_cases_per_user=None)
    cs = build_cases(data, model, cfg)
    cases = cs.train
    # For every case, no earlier candidate (distance 2 .. len(reference) - 1) was eligible.
    earlier = [(c, c.reference[k]) for c in cases for k in range(1, len(c.reference) - 1)]
    probe = [Case(history=c.history, target=t) for c, t in earlier
             if t not in c.history and t not in c.reference[:c.reference.index(t)]]
    if probe:
        sc = score_paths(model, probe, [()] * len(probe))
        assert bool((sc.rank[:, 0] <= cfg.min_target_rank).all())


def test_random_choice_gives_longer_paths_on_average():
    data = make_data(n_users=60, seed=2)
    model = MeanEmbeddingModel(data.n_items, seed=2)
    base = dict(n_history=5, max_path_len=8, min_target_rank=10, max_cases_per_user=None)
    near = build_cases(data, model, CaseConfig(**base, target_choice="nearest")).train
    rand = build_cases(data, model, CaseConfig(**base, target_choice="random")).train
    assert np.mean([len(c.reference) for c in rand]) > np.mean([len(c.reference) for c in near])


def test_build_cases_is_deterministic_and_seeded():
    data = make_data()
    model = MeanEmbeddingModel(data.n_items)
    cfg = CaseConfig(n_history=6, max_path_len=5, min_target_rank=20, max_cases_per_user=1, target_choice="random")
    a = build_cases(data, model, cfg)
    b = build_cases(data, model, cfg)
    assert a == b
    c = build_cases(data, model, CaseConfig(**{**cfg.__dict__, "seed": 1}))
    assert a.train != c.train


def test_user_cases_do_not_depend_on_other_users():
    data = make_data()
    model = MeanEmbeddingModel(data.n_items)
    cfg = CaseConfig(n_history=6, max_path_len=5, min_target_rank=20, max_cases_per_user=2)
    full = build_cases(data, model, cfg)
    # Drop the last training user: the other users' cases are unchanged.
    fewer = Interactions(name="toy", n_items=data.n_items,
                         sequences={**data.sequences, "train": data.sequences["train"][:-1]},
                         users={**data.users, "train": data.users["train"][:-1]})
    cut = build_cases(fewer, model, cfg)
    last = data.users["train"][-1]
    assert cut.train == [c for c in full.train if c.user != last]


def test_short_users_yield_no_cases_and_caps_apply():
    seqs = [tuple(range(i, i + 7)) for i in range(5)] + [tuple(range(30, 60))]  # H=6: 7 items are too short
    data = Interactions(name="t", n_items=80, sequences={"train": seqs, "valid": [], "test": []})
    model = MeanEmbeddingModel(80)
    cs = build_cases(data, model, CaseConfig(n_history=6, max_path_len=4, min_target_rank=0, max_cases_per_user=None))
    assert build_cases(data, model, CaseConfig(n_history=6, max_path_len=4, min_target_rank=0,
                                               max_cases_per_user=0, max_cases_per_split=0)) == cs
    assert {c.user for c in cs.train} == {"5"}  # users without raw ids are named by index
    assert len(cs.train) == 30 - 6 - 1  # one case per window start when every target qualifies
    capped = build_cases(data, model, CaseConfig(n_history=6, max_path_len=4, min_target_rank=0,
                                                 max_cases_per_user=None, max_cases_per_split=5))
    assert len(capped.train) == 5 and set(capped.train) <= set(cs.train)
    assert capped.valid == [] and capped.test == []


def test_min_target_rank_above_catalog_gives_no_cases():
    data = make_data(n_items=30)
    model = MeanEmbeddingModel(30)
    cs = build_cases(data, model, CaseConfig(n_history=5, min_target_rank=30))
    assert cs.train == [] and cs.valid == [] and cs.test == []


def test_ready_made_cases_are_returned():
    cases = {s: [Case(history=(1, 2), target=k, reference=(3, k), case_id=f"{s}:{k}") for k in range(4, 9)]
             for s in ("train", "valid", "test")}
    data = Interactions(name="r", n_items=10, sequences={s: [] for s in cases}, cases=cases)
    model = MeanEmbeddingModel(10)
    cs = build_cases(data, model, CaseConfig())
    assert cs.test == cases["test"] and cs.train == cases["train"]
    assert model.encode_calls == 0
    capped = build_cases(data, model, CaseConfig(max_cases_per_split=2))
    assert len(capped.test) == 2 and set(capped.test) <= set(cases["test"])


def test_ranks_are_batched_not_per_item():
    data = make_data(n_users=40)
    model = MeanEmbeddingModel(data.n_items)
    build_cases(data, model, CaseConfig(n_history=6, max_path_len=5, min_target_rank=20))
    n_windows = sum(max(0, len(s) - 7) for ss in data.sequences.values() for s in ss)
    assert model.encode_calls < n_windows / 10
