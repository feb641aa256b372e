"""``autocast = "bf16"`` (issue 26 item 3): the RL step's forward passes in bfloat16, off by default.

CPU autocast to bfloat16 exists, so both halves are checked here: an RL step runs under it for
both policies (and really computes in bf16: its numbers move), and on a fixed set of paths the
simulator's metrics under bf16 are compared with float32 at the precision the report prints.
They do not all agree there (ranks move, and with them IoR and which candidate wins @K), which is why the
switch is off by default (docs/performance.md, "bf16 autocast").
"""

from __future__ import annotations

import copy

import pytest
import torch

from prorlbench.seq.evaluate import evaluate_paths
from prorlbench.plugins import load_registry
from prorlbench.rl.config import RLConfig
from prorlbench.rl.step import read_steps

from .fakes import DriftModel, make_cases
from .test_no_sync import CASES, setup_step

PRINTED = {"ioi": 3, "ior": 1, "ctr": 3, "sr10": 3, "len": 2}  # the metric specs' decimals


def fixed_paths(n_items: int = 300, n_cases: int = 200):
    sim = DriftModel(n_items=n_items, dim=16).eval()
    cases = make_cases(sim, n_cases, 1)
    g = torch.Generator().manual_seed(0)
    cands = []
    for c in cases:
        pool = [i for i in range(n_items) if i not in c.history and i != c.target]
        lens = torch.randint(1, 6, (3,), generator=g).tolist()
        cands.append([tuple(pool[j] for j in torch.randperm(len(pool), generator=g)[:m].tolist()) for m in lens])
    return sim, cases, cands


def test_bf16_metrics_on_fixed_paths_and_why_the_default_is_off():
    reg = load_registry()
    metrics = [reg.metric(n) for n in PRINTED]
    assert {m.name: m.decimals for m in metrics} == PRINTED
    sim, cases, cands = fixed_paths()
    fp32 = evaluate_paths(sim, cases, cands, metrics, ks=(1, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = evaluate_paths(sim, cases, cands, metrics, ks=(1, 3))
    assert not fp32.value.equals(bf16.value)  # bf16 really computed
    a, b = (t.groupby(["metric", "k"]).value.mean() for t in (fp32, bf16))
    assert (a - b).abs()[["ioi", "ctr"]].max() < 1e-2  # close ...
    printed = {key: (f"{a[key]:.{PRINTED[key[0]]}f}", f"{b[key]:.{PRINTED[key[0]]}f}") for key in a.index}
    changed = {k: v for k, v in printed.items() if v[0] != v[1]}
    if changed:  # ... but not equal at the printed precision: the switch stays off
        assert RLConfig().autocast == "off", changed
    # on this world: IoR@3 87.7 -> 87.8 and Len@3 3.12 -> 3.14 (another candidate wins @3 by IoI);
    # if bf16 ever agrees everywhere, reconsider the default (docs/performance.md)
    assert changed


@pytest.mark.parametrize("case", ["prorl", "semantic", "semantic-free"])
def test_an_rl_step_runs_in_bf16_and_trains_float32_weights(tmp_path, case):
    est, over = CASES[case]
    losses = []
    for mode in ("off", "bf16"):
        step = setup_step(tmp_path / mode, est, {**over, "autocast": mode})
        step()
        losses.append(read_steps([step()])[0])
    assert all(v == v and abs(v) != float("inf") for d in losses for v in d.values())
    assert losses[0]["loss"] != losses[1]["loss"]  # bf16 forward passes: other numbers
    assert losses[0]["path_len"] >= 0


def test_autocast_is_a_checked_choice():
    from prorlbench.config import build_config
    from prorlbench.errors import ConfigError

    with pytest.raises(ConfigError, match="autocast must be one of 'off', 'bf16'"):
        build_config(RLConfig, {"autocast": "fp16"})
    assert copy.copy(RLConfig()).autocast == "off"
