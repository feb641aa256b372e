"""Issue 12 item 2: the SFT cache is keyed by the simulator's weights, not only by its name."""

from __future__ import annotations

import dataclasses

from prorlbench.config import build_config
from prorlbench.rl.config import RLConfig
from prorlbench.rl.sft import train_sft

from .fakes import DriftModel, make_ctx

TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "sft_epochs": 2, "sft_batch": 16, "n_valid_cases": 16,
        "max_history": 6}


def test_sft_checkpoint_chosen_under_another_simulator_is_not_reused(tmp_path):
    cfg = build_config(RLConfig, TINY)
    ctx = make_ctx(tmp_path)
    _, info = train_sft(ctx, cfg, 4)
    assert info["cached"] == 0.0
    _, info = train_sft(ctx, cfg, 4)
    assert info["cached"] == 1.0  # same simulator: the cache is shared
    # Same name, same cases, other weights (as `[simulators.sasrec] epochs = 4` vs 1): SFT selects
    # its epoch with the simulator, so the checkpoint must be rebuilt.
    other = dataclasses.replace(ctx, simulator=DriftModel(n_items=ctx.data.n_items, seed=5).eval())
    assert other.simulator_name == ctx.simulator_name
    _, info = train_sft(other, cfg, 4)
    assert info["cached"] == 0.0


def test_one_sft_entry_is_built_once_by_concurrent_builders(tmp_path, monkeypatch):
    """Item 9 (cache side): one builder per SFT cache entry; the other waits and loads it."""
    import threading
    import time

    from prorlbench.rl import sft

    calls = []
    real = sft._fit

    def slow_fit(*a, **kw):
        calls.append(1)
        time.sleep(0.5)
        return real(*a, **kw)

    monkeypatch.setattr(sft, "_fit", slow_fit)
    cfg = build_config(RLConfig, TINY)
    infos = []
    threads = [threading.Thread(target=lambda: infos.append(train_sft(make_ctx(tmp_path), cfg, 4)[1]))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(i["cached"] for i in infos) == [0.0, 1.0]
