"""An RL training step never waits for the device (issue 26): no host read inside it.

On the CPU, every tensor method that reads a value on the host (``.item()``, ``.tolist()``,
``.cpu()``, ``.numpy()``, ``bool`` / ``int`` / ``float`` / ``index`` of a tensor) is wrapped
for one step and every call made from prorlbench's own code (or its plugins') is counted, with the
CPU-only shortcuts (:func:`prorlbench.seq.rowshare.host_reads_cheap`) switched off, so the step takes
the path it takes on an accelerator; torch's internals (AdamW's step counter on the host) are
not counted. On CUDA, ``torch.cuda.set_sync_debug_mode("error")`` makes any synchronising call
inside a step raise.
"""

from __future__ import annotations

import copy
import dataclasses
import sys

import pytest
import torch

from prorlbench.seq import rowshare
from prorlbench.config import build_config
from prorlbench.rl.config import RLConfig
from prorlbench.rl.normalize import make_normalizer
from prorlbench.rl.policies import build_policy, policy_codes
from prorlbench.rl.policy import CaseTensors
from prorlbench.rl.step import read_steps, rl_step_stats
from prorlbench_plugins.methods.rl_family import ESTIMATORS

from .fakes import make_ctx

HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__", "__format__")
BY_NAME = {s.name: s for s in ESTIMATORS}
BASE = {"d_model": 16, "n_layers": 1, "samples_per_case": 4, "batch_cases": 6, "grad_var_every": 1,
        "sem_d_model": 16, "sem_enc_layers": 1, "sem_dec_layers": 1, "sem_d_ff": 32, "sem_heads": 2,
        "n_codebooks": 2, "codebook_size": 4, "max_history": 6}
CASES = {
    "prorl": ("prorl", {}),
    "position+exact": ("prorl", {"centering": "position", "kl": "exact"}),
    "batch+skip+topk": ("grpo", {"centering": "batch", "empty_paths": "skip", "sample_top_k": 5,
                                 "sample_temperature": 1.3}),
    "noise+k3": ("noise-pg", {"kl": "k3"}),
    "semantic": ("prorl", {"policy": "semantic-id"}),
    "semantic-free": ("rloo", {"policy": "semantic-id", "decoding": "free", "kl": "exact"}),
}


def setup_step(tmp_path, est: str, over: dict, device: str = "cpu"):
    ctx = make_ctx(tmp_path, n_train=12, n_valid=4, n_test=2)
    seqs = [c.history + c.reference for c in ctx.cases.train]  # RQ-KMeans codes need sequences
    ctx.data = dataclasses.replace(ctx.data, sequences={"train": seqs, "valid": [], "test": []})
    cfg = build_config(RLConfig, {**BASE, **over})
    torch.manual_seed(0)
    policy = build_policy(cfg, 40, 4, policy_codes(cfg, ctx.data, tmp_path)).to(device)
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    cases = CaseTensors.from_cases(ctx.cases.train[:6], 40, device)
    sim = ctx.simulator.to(device)
    gen = torch.Generator(device=device).manual_seed(1)
    noise = torch.Generator(device=device).manual_seed(2)
    norm = make_normalizer(cfg.centering, 4)

    def step():
        return rl_step_stats(policy, ref, opt, sim, cases, cfg, BY_NAME[est], norm, 4, gen, grad_var=True,
                             noise_generator=noise)

    return step


class HostReads:
    """Counts the host reads made from prorlbench's code while active."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in HOST_READS:
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, getattr(torch.Tensor, name)))

    def _wrap(self, name, orig):
        calls = self.calls

        def counted(t, *args, **kwargs):
            frame = sys._getframe(1)
            mod = frame.f_globals.get("__name__", "")
            if mod.startswith(("prorlbench", "prorlbench_plugins")):
                calls.append(f"{name} at {mod}:{frame.f_lineno}")
            return orig(t, *args, **kwargs)

        return counted


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_step_reads_nothing_on_the_host(tmp_path, monkeypatch, case):
    est, over = CASES[case]
    step = setup_step(tmp_path, est, over)
    step()  # the normaliser's statistics exist (a second step normalises with them)
    monkeypatch.setattr(rowshare, "host_reads_cheap", lambda device: False)  # the accelerator path
    reads = HostReads(monkeypatch)
    stats = step()
    assert reads.calls == []
    monkeypatch.undo()
    values = read_steps([stats])[0]  # read after the step, once
    assert {"path_len", "loss", "kl", "grad_var"} <= set(values)


def test_the_counter_sees_host_reads(tmp_path, monkeypatch):
    """The guard is live: the CPU shortcuts (left on) read the device, and are counted."""
    step = setup_step(tmp_path, "prorl", {})
    step()
    reads = HostReads(monkeypatch)
    step()
    assert reads.calls and any("rowshare" in c or "decode" in c or "estimators" in c for c in reads.calls)


def test_the_device_normaliser_matches_the_host_one():
    """The normalisers' sync-free path (accelerators) gives the host path's statistics."""
    g = torch.Generator().manual_seed(0)
    for centering in ("global", "position", "batch"):
        host, dev = make_normalizer(centering, 4), make_normalizer(centering, 4)
        for b in range(4):
            raw = {c: torch.randn(16, 4, generator=g) for c in ("ctr", "ioi", "ior")}
            valid = torch.rand(16, 4, generator=g) < (0.0 if b == 1 else 0.6)  # one batch without a valid step
            host.update(raw, valid)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(rowshare, "host_reads_cheap", lambda device: False)
                dev.update(raw, valid)
            a, b_ = host.normalize(raw, centered=True), dev.normalize(raw, centered=True)
            for c in a:
                torch.testing.assert_close(a[c], b_[c], rtol=1e-6, atol=1e-6)
        assert host.state().keys() == dev.state().keys()
        for k, v in host.state().items():
            assert dev.state()[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (centering, k)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.set_sync_debug_mode)")
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_cuda_step_does_not_synchronise(tmp_path, case):
    est, over = CASES[case]
    step = setup_step(tmp_path, est, over, device="cuda")
    step()
    step()  # warm: allocator, cuBLAS handles, AdamW state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        stats = step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert read_steps([stats])[0]["path_len"] >= 0
