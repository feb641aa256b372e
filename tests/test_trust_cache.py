"""Issue 12, items 3, 5 and 9 (cache side), and the umask: the simulator cache can be trusted."""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest
import torch

from prorlbench.seq import seqtrain
from prorlbench.api import Interactions
from prorlbench.config import build_config
from prorlbench.errors import UserError
from prorlbench.seq.seqtrain import _sha256_file, train_or_load
from prorlbench_plugins.simulators.sasrec import SASRec, SASRecConfig


def _data() -> Interactions:
    rng = random.Random(0)
    seqs = {s: [tuple(rng.sample(range(40), 12)) for _ in range(30)] for s in ("train", "valid", "test")}
    return Interactions(name="tiny", n_items=40, sequences=seqs)


def _cfg(**kw) -> SASRecConfig:
    return build_config(SASRecConfig, {"hidden": 8, "n_layers": 1, "inner": 16, "epochs": 2, **kw})


def _build(cfg, data, cache):
    return train_or_load("sasrec", lambda c, n: SASRec(c, n), cfg, data, seed=0, cache_dir=cache)


def _entry(cache):
    (pt,) = sorted(cache.glob("*.pt"))
    return pt, pt.with_suffix(".json")


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_failed_strict_load_retrains_from_a_fresh_initialisation(tmp_path):
    """Item 3: an entry with an extra key (and a matching sha) fails its strict load; the rebuilt
    simulator equals a clean build, not a retraining of the half-loaded module."""
    data, cfg = _data(), _cfg()
    _build(cfg, data, tmp_path / "a")
    pt, meta = _entry(tmp_path / "a")
    state = torch.load(pt, weights_only=True)
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, pt)
    m = json.loads(meta.read_text())
    m["sha256"] = _sha256_file(pt)
    meta.write_text(json.dumps(m))
    rebuilt, info = _build(cfg, data, tmp_path / "a")
    assert info.trained
    clean, _ = _build(cfg, data, tmp_path / "b")
    assert _same(rebuilt, clean)
    # and the rebuilt entry is loadable again (no extra key stored)
    again, info2 = _build(cfg, data, tmp_path / "a")
    assert not info2.trained and _same(again, clean)


def test_diverging_training_fails_clearly_and_is_not_cached(tmp_path):
    """Item 5: lr 1e6 makes SASRec's loss NaN; that is an error naming lr, and nothing is stored."""
    with pytest.raises(UserError, match="diverged.*lr") as err:
        _build(_cfg(lr=1e6), _data(), tmp_path)
    assert type(err.value).__name__ == "SimulatorDiverged"
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.json"))


def test_non_finite_cached_weights_are_never_loaded(tmp_path):
    """Item 5: a cache entry holding NaN weights (with a consistent sha) is rebuilt."""
    data, cfg = _data(), _cfg()
    clean, _ = _build(cfg, data, tmp_path)
    pt, meta = _entry(tmp_path)
    state = torch.load(pt, weights_only=True)
    state["item_emb.weight"][0, 0] = float("nan")
    torch.save(state, pt)
    m = json.loads(meta.read_text())
    m["sha256"] = _sha256_file(pt)
    meta.write_text(json.dumps(m))
    model, info = _build(cfg, data, tmp_path)
    assert info.trained
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert _same(model, clean)


def test_one_cache_entry_is_built_once_by_concurrent_builders(tmp_path, monkeypatch):
    """Item 9: two builders of one entry at once: one trains, the other waits and loads."""
    calls = []
    real = seqtrain.train_model

    def slow_train(*a, **kw):
        calls.append(threading.get_ident())
        time.sleep(0.5)  # wide window: without a lock the second builder trains too
        return real(*a, **kw)

    monkeypatch.setattr(seqtrain, "train_model", slow_train)
    data, cfg = _data(), _cfg()
    out: list = [None, None]

    def go(i):
        out[i] = _build(cfg, data, tmp_path)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(info.trained for _, info in out) == [False, True]
    assert _same(out[0][0], out[1][0])


def test_cache_dir_that_is_a_file_and_pt_path_that_is_a_folder_are_user_errors(tmp_path):
    data, cfg = _data(), _cfg(epochs=1)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        _build(cfg, data, f)
    cache = tmp_path / "c"
    _build(cfg, data, cache)
    pt, meta = _entry(cache)
    pt.unlink()
    pt.mkdir()
    with pytest.raises(UserError, match=str(pt.name)):
        _build(cfg, data, cache)


def test_cache_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _build(_cfg(epochs=1), _data(), tmp_path)
    finally:
        os.umask(old)
    pt, meta = _entry(tmp_path)
    assert oct(pt.stat().st_mode & 0o777) == oct(0o644)
    assert oct(meta.stat().st_mode & 0o777) == oct(0o644)
