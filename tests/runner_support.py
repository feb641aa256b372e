"""Shared helpers for the runner / CLI / plugin tests (not a test module).

``FAKE_PLUGIN`` is the source of a plugin file with a tiny dataset that ships its own cases
(``tinyfake``), a deterministic untrained simulator (``fakesim``, no training: built in
milliseconds) and a few misbehaving methods. Tests write it into a ``--plugins-dir`` and restrict
the entry points to the built-in ``simple_baselines`` and ``metrics`` plugins with the allow-list,
so these end-to-end tests exercise the runner and nothing slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FAKE_PLUGIN = textwrap.dedent('''
    """Fake dataset, simulator and methods for the runner tests."""
    from dataclasses import dataclass
    import math

    import numpy as np
    import torch
    from torch import nn

    from prorlbench import hookimpl
    from prorlbench.api import (Case, DatasetSpec, Interactions, MethodSpec, SimulatorInfo,
                                SimulatorSpec)
    from prorlbench.config import opt
    from prorlbench.errors import DataError


    @dataclass
    class TinyConfig:
        n_items: int = opt(30, "items")
        n_cases: int = opt(12, "cases per split")
        seed: int = opt(0, "seed")


    def load_tiny(cfg, data_dir):
        rng = np.random.default_rng(cfg.seed)
        seqs = {s: [tuple(int(x) for x in rng.choice(cfg.n_items, 12, replace=False)) for _ in range(10)]
                for s in ("train", "valid", "test")}
        cases = {}
        for s in ("train", "valid", "test"):
            out = []
            for c in range(cfg.n_cases):
                items = [int(x) for x in rng.choice(cfg.n_items, 8, replace=False)]
                out.append(Case(history=tuple(items[:5]), target=items[-1],
                                reference=tuple(items[5:]), user=str(c), case_id=f"{s}{c}"))
            cases[s] = out
        attrs = tuple(frozenset({i % 3}) for i in range(cfg.n_items))
        return Interactions(name="tinyfake", n_items=cfg.n_items, sequences=seqs, cases=cases,
                            item_attributes=attrs, notes=("tiny fake data",))


    class FakeSim(nn.Module):
        def __init__(self, n_items, d, seed):
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.n_items, self.max_seq_len, self.seed = n_items, 50, seed
            self.emb = nn.Parameter(torch.randn(n_items + 1, d, generator=g))
            self.out = nn.Parameter(torch.randn(n_items, d, generator=g))

        def encode(self, seqs, lengths):
            e = self.emb[seqs]
            steps = torch.arange(1, seqs.shape[1] + 1, device=seqs.device, dtype=e.dtype)
            return e.cumsum(1) / steps[None, :, None]

        def logits(self, states):
            return states @ self.out.T

        def accept_logit(self, states, items):
            return (states * self.out[items]).sum(-1)

        def item_embeddings(self):
            return self.out


    @dataclass
    class FakeSimConfig:
        dim: int = opt(8, "dimension")


    def build_fakesim(cfg, data, *, device, seed, cache_dir, progress):
        model = FakeSim(data.n_items, cfg.dim, seed).to(device).eval().requires_grad_(False)
        return model, SimulatorInfo(name="fakesim", hr10=0.5, ndcg10=0.25, trained=True)


    @dataclass
    class FlakyConfig:
        fail_seed: int = opt(1, "seed whose fit raises")
        nan_seed: int = opt(-1, "seed whose fit logs a NaN loss")


    class Flaky:
        """First items not in H; raises in fit for one seed, logs NaN for another."""

        def __init__(self, cfg):
            self.cfg = cfg

        def fit(self, ctx):
            self.n_items = ctx.data.n_items
            for step in range(3):
                loss = 1.0 / (step + 1)
                if ctx.seed == self.cfg.nan_seed and step == 2:
                    loss = math.nan
                ctx.logger.log(step, loss=loss, length=2.0)
            if ctx.seed == self.cfg.fail_seed:
                raise RuntimeError(f"boom on seed {ctx.seed}")

        def generate(self, cases, k):
            out = []
            for c in cases:
                free = [i for i in range(self.n_items) if i not in c.history and i != c.target]
                out.append([tuple(free[j : j + 2]) for j in range(k)])
            return out


    @dataclass
    class BackboneConfig:
        kind: str = opt("fakesim", "backbone kind")


    class UsesBackbone:
        """Greedy top items of its own backbone; records what it got."""

        def __init__(self, cfg):
            self.cfg = cfg

        def fit(self, ctx):
            self.bb = ctx.make_backbone(self.cfg.kind, ctx.seed)
            assert self.bb is not ctx.simulator, "backbone must not be the simulator object"
            assert self.bb.seed != ctx.simulator.seed, "backbone must have its own seed"
            assert ctx.make_backbone(self.cfg.kind, ctx.seed) is self.bb, "backbones are memoised"
            ctx.logger.log(0, backbone_seed=float(self.bb.seed))

        def generate(self, cases, k):
            scores = self.bb.item_embeddings().sum(1)
            order = [int(i) for i in torch.argsort(-scores)]
            out = []
            for c in cases:
                free = [i for i in order if i not in c.history and i != c.target]
                out.append([tuple(free[:3])] * 1)
            return out


    @dataclass
    class EmptyConfig:
        pass


    @dataclass
    class WrongConfig:
        too_long: bool = opt(False, "return over-long paths instead of too few lists")


    class WrongCount:
        """Breaks the generate contract (one list too few, or paths that are too long)."""

        def __init__(self, cfg):
            self.too_long = cfg.too_long

        def fit(self, ctx):
            pass

        def generate(self, cases, k):
            if self.too_long:
                return [[tuple(range(20))]] * len(cases)
            return [[(0,)]] * (len(cases) - 1)


    def load_broken(cfg, data_dir):
        raise DataError("broken.csv", "bad line", line=3)


    @hookimpl
    def register_datasets(register):
        register(DatasetSpec(name="tinyfake", summary="tiny fake data with ready-made cases",
                             load=load_tiny, config_cls=TinyConfig))
        register(DatasetSpec(name="tinybroken", summary="raises DataError", load=load_broken,
                             config_cls=TinyConfig))


    @hookimpl
    def register_simulators(register):
        register(SimulatorSpec(name="fakesim", summary="untrained deterministic simulator",
                               build=build_fakesim, config_cls=FakeSimConfig))
        register(SimulatorSpec(name="fakesim2", summary="another one (different weights)",
                               build=lambda cfg, data, *, seed, **kw: build_fakesim(cfg, data, seed=seed + 7, **kw),
                               config_cls=FakeSimConfig))


    @hookimpl
    def register_methods(register):
        register(MethodSpec(name="flaky", summary="fails on one seed", factory=Flaky,
                            config_cls=FlakyConfig))
        register(MethodSpec(name="uses-backbone", summary="uses make_backbone",
                            factory=UsesBackbone, config_cls=BackboneConfig))
        register(MethodSpec(name="wrong-count", summary="bad generate output",
                            factory=WrongCount, config_cls=WrongConfig))
''')

FAKE_CONFIG = textwrap.dedent('''
    [run]
    datasets = ["tinyfake"]
    simulator = "fakesim"
    ks = [1, 2]
    [cases]
    max_path_len = 4
''')

BUILTINS_FOR_FAKES = "simple_baselines,metrics"
"""Entry points the fake tests load (allow-list): the simple baselines and the core metrics."""

# A tiny synthetic world and a 3-epoch SASRec: the smallest real pipeline. The SASRec learns
# (lr 1e-2, 4 steps an epoch: valid HR@10 0.50, and 0.33 / 0.42 for the backbones of seeds 0 and
# 1, against popularity's 0.25), so no cell is refused as a weak simulator (prorlbench.seq.strength).
TINY_REAL_CONFIG = textwrap.dedent('''
    [run]
    seeds = [0, 1]
    ks = [1, 5]
    [datasets.synthetic]
    n_users = 120
    n_items = 60
    seq_len = 20
    [simulators.sasrec]
    epochs = 3
    lr = 1e-2
    min_epoch_steps = 4
    hidden = 16
    n_layers = 1
    inner = 32
    [cases]
    max_cases_per_split = 20
    max_path_len = 5
''')


def write_fakes(root: Path) -> tuple[Path, Path]:
    """``(plugins_dir, config_path)`` with the fake plugin and its run config."""
    plug = root / "fakeplugins"
    plug.mkdir(parents=True, exist_ok=True)
    (plug / "fakes.py").write_text(FAKE_PLUGIN)
    cfg = root / "fake.toml"
    cfg.write_text(FAKE_CONFIG)
    return plug, cfg


def fake_env(tmp_path: Path, monkeypatch, allow: str = BUILTINS_FOR_FAKES) -> tuple[Path, Path, Path]:
    """``(root, plugins_dir, config)``: fake plugins in a --plugins-dir, a private cache, entry
    points limited by the allow-list ``allow``, the working folder ``tmp_path``."""
    monkeypatch.setenv("PRORLBENCH_PLUGINS", allow)
    monkeypatch.setenv("PRORLBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    plug, cfg = write_fakes(tmp_path)
    return tmp_path, plug, cfg


def cli_env(allow: str | None = BUILTINS_FOR_FAKES, cache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PRORLBENCH_PLUGINS", None)
    if allow is not None:
        env["PRORLBENCH_PLUGINS"] = allow
    if cache is not None:
        env["PRORLBENCH_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m prorlbench.cli ARGS`` in a subprocess (captured text output)."""
    return subprocess.run([sys.executable, "-m", "prorlbench.cli", *args], env=env or cli_env(),
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)
