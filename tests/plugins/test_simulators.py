"""SASRec and GRU4Rec simulators: protocol, training, caching (SPEC section 2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from prorlbench.seq import seqtrain
from prorlbench.api import Interactions, SequenceModel
from prorlbench.config import build_config
from prorlbench.plugins import load_registry
from prorlbench_plugins.simulators import gru4rec, sasrec


def tiny_data(n_items=30, n_users=60, seed=0) -> Interactions:
    """Users walk a ring of items (next item = current + 1 or + 2): easy to learn."""
    g = torch.Generator().manual_seed(seed)
    seqs = []
    for _ in range(n_users):
        cur = int(torch.randint(0, n_items, (1,), generator=g))
        s = [cur]
        for _ in range(int(torch.randint(8, 16, (1,), generator=g))):
            cur = (cur + 1 + int(torch.randint(0, 2, (1,), generator=g))) % n_items
            s.append(cur)
        seqs.append(tuple(s))
    return Interactions(name="ring", n_items=n_items,
                        sequences={"train": seqs[:40], "valid": seqs[40:50], "test": seqs[50:]})


TINY = {"sasrec": dict(hidden=16, inner=32, max_seq_len=20, epochs=15, patience=15, batch_size=16, lr=0.01),
        "gru4rec": dict(embedding=16, hidden=16, max_seq_len=20, epochs=15, patience=15, batch_size=16, lr=0.01)}
MODULES = {"sasrec": sasrec, "gru4rec": gru4rec}


def _cfg(kind, **over):
    mod = MODULES[kind]
    cls = mod.SASRecConfig if kind == "sasrec" else mod.GRU4RecConfig
    return build_config(cls, {**TINY[kind], **over}, profile="quick")


def test_registered():
    reg = load_registry(use_entry_points=False, extra_plugins=[("sasrec", sasrec), ("gru4rec", gru4rec)])
    assert reg.names("simulators") == ["gru4rec", "sasrec"]
    for name in ("sasrec", "gru4rec"):
        spec = reg.simulator(name)
        assert spec.learned and spec.config_cls is not None
        for profile in ("quick", "paper"):
            build_config(spec.config_cls, {}, profile=profile)


def test_sasrec_defaults_follow_recbole():
    cfg = sasrec.SASRecConfig()
    assert (cfg.hidden, cfg.n_layers, cfg.n_heads, cfg.inner, cfg.dropout, cfg.max_seq_len, cfg.lr) == \
        (64, 2, 2, 256, 0.5, 50, 1e-3)
    assert cfg.layer_norm_eps == 1e-12
    g = gru4rec.GRU4RecConfig()
    assert (g.embedding, g.hidden, g.n_layers, g.dropout) == (64, 64, 1, 0.3)


@pytest.mark.parametrize("kind", ["sasrec", "gru4rec"])
def test_train_cache_and_rebuild(kind, tmp_path, caplog, monkeypatch):
    data = tiny_data()
    build = MODULES[kind].build
    caplog.set_level(logging.INFO, logger="prorlbench")
    model, info = build(_cfg(kind), data, device="cpu", seed=1, cache_dir=tmp_path, progress=False)
    assert isinstance(model, SequenceModel)
    assert info.trained and info.name == kind and info.cache_path
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert "HR@10" in caplog.text and "popularity" in caplog.text
    pop = seqtrain.popularity_hr(data, data.sequences["valid"])
    assert info.hr10 > pop["hr10"]  # the ring is learnable, popularity is flat
    # the model's own evaluation reproduces the stored metrics
    again = seqtrain.evaluate_next_item(model, data.sequences["valid"])
    assert again["hr10"] == pytest.approx(info.hr10) and again["ndcg10"] == pytest.approx(info.ndcg10)

    # second build: from the cache, no training
    def no_training(*a, **k):
        raise AssertionError("trained although cached")

    monkeypatch.setattr(seqtrain, "train_model", no_training)
    cached, info2 = build(_cfg(kind), data, device="cpu", seed=1, cache_dir=tmp_path)
    assert not info2.trained and info2.hr10 == pytest.approx(info.hr10)
    for a, b in zip(model.state_dict().values(), cached.state_dict().values()):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in cached.parameters()) and not cached.training
    monkeypatch.undo()

    # a different seed or config is a different cache entry
    _, info3 = build(_cfg(kind, epochs=1), data, device="cpu", seed=1, cache_dir=tmp_path)
    assert info3.trained and info3.cache_path != info.cache_path

    # a corrupt weights file is detected, logged and rebuilt
    pt = Path(info.cache_path)
    pt.write_bytes(b"not a checkpoint")
    caplog.clear()
    rebuilt, info4 = build(_cfg(kind), data, device="cpu", seed=1, cache_dir=tmp_path)
    assert info4.trained and "unreadable" in caplog.text
    for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values()):
        assert torch.equal(a, b)  # same seed, same weights
    # corrupt metadata too
    meta = pt.with_suffix(".json")
    meta.write_text("{broken")
    _, info5 = build(_cfg(kind), data, device="cpu", seed=1, cache_dir=tmp_path)
    assert info5.trained
    assert json.loads(meta.read_text())["hr10"] == pytest.approx(info.hr10)


def test_training_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sasrec.build(_cfg("sasrec", epochs=1), tiny_data(), device="cpu", seed=0, cache_dir=None)
    assert torch.equal(torch.rand(3), expected)


def test_training_windows_cover_every_transition():
    w = seqtrain.training_windows([tuple(range(12)), (5,), (1, 2)], max_seq_len=4)
    assert all(2 <= len(x) <= 5 for x in w)
    transitions = {(x[i], x[i + 1]) for x in w for i in range(len(x) - 1)}
    assert transitions == {(i, i + 1) for i in range(11)} | {(1, 2)}
    assert sum(len(x) - 1 for x in w) == 11 + 1
    assert w[0] == (7, 8, 9, 10, 11)  # most recent items first


def test_popularity_hr_counts_strictly_more_popular():
    data = Interactions(name="p", n_items=4, sequences={"train": [(0, 0, 0, 1, 1, 2)], "valid": [], "test": []})
    # counts 3, 2, 1, 0 -> ranks 1, 2, 3, 4: target 1 is a hit at k=3, target 3 is not
    out = seqtrain.popularity_hr(data, [(0, 1), (0, 3)], k=3)
    assert out["hr3"] == 0.5


@pytest.mark.slow
@pytest.mark.shared_data
def test_sasrec_beats_popularity_on_ml100k(shared_data, tmp_path):
    from prorlbench_plugins.datasets import movielens

    data = movielens.load(movielens.MovieLensConfig(), shared_data / "ml-100k")
    cfg = build_config(sasrec.SASRecConfig, {}, profile="quick")
    model, info = sasrec.build(cfg, data, device="cpu", seed=0, cache_dir=tmp_path)
    pop = seqtrain.popularity_hr(data, data.sequences["valid"])
    assert info.trained
    assert info.hr10 > pop["hr10"] + 0.02, (info, pop)
    # cached: loads, no training
    _, info2 = sasrec.build(cfg, data, device="cpu", seed=0, cache_dir=tmp_path)
    assert not info2.trained and info2.hr10 == pytest.approx(info.hr10)
