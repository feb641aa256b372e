"""Fake methods for the issue-12 tests (not a test module): a fit counter, simulator mutators,
a method that exits, one that raises KeyboardInterrupt, one that hangs, and one with a policy."""

from __future__ import annotations

import textwrap
from pathlib import Path

from prorlbench.plugins import load_registry
from prorlbench.settings.runconfig import apply_overrides, read_config_file

from runner_support import BUILTINS_FOR_FAKES, write_fakes

TRUST_PLUGIN = textwrap.dedent('''
    import os
    import signal
    import sys
    import time
    from dataclasses import dataclass

    import torch
    from torch import nn

    from prorlbench import hookimpl
    from prorlbench.api import MethodSpec
    from prorlbench.config import opt


    @dataclass
    class Cfg:
        mode: str = opt("", "what to do in fit")


    class Behaving:
        """Counts its fits in $TRUST_FIT_LOG; paths: the first free items, different per seed."""

        def __init__(self, cfg):
            self.cfg = cfg
            self.policy = None

        def fit(self, ctx):
            with open(os.environ["TRUST_FIT_LOG"], "a") as f:
                f.write(f"{ctx.seed}\\n")
            self.n_items, self.seed = ctx.data.n_items, ctx.seed
            mode = self.cfg.mode
            if mode == "train":
                ctx.simulator.train()
            elif mode == "edit":
                with torch.no_grad():
                    for p in ctx.simulator.parameters():
                        p.add_(1.0)
            elif mode == "exit":
                sys.exit(3)
            elif mode == "keyboard":
                raise KeyboardInterrupt
            elif mode == "ctrl-c":
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            elif mode == "hang":
                while True:
                    time.sleep(0.05)
            self.policy = nn.Linear(3, 2)
            ctx.logger.log(0, loss=1.0)

        def generate(self, cases, k):
            out = []
            for c in cases:
                free = [i for i in range(self.n_items) if i not in c.history and i != c.target]
                out.append([tuple(free[(self.seed + j) % 5 : (self.seed + j) % 5 + 1 + j % 3]) for j in range(k)])
            return out


    @hookimpl
    def register_methods(register):
        for name in ("behaving", "mutator", "quitter"):
            register(MethodSpec(name=name, summary="test method", factory=Behaving, config_cls=Cfg))
''')


def setup(tmp_path: Path, monkeypatch, **overrides):
    """(registry, config) for the fake plugins plus the methods above; fits are counted in
    ``tmp_path / 'fits.log'`` (see :func:`fits`)."""
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES)
    monkeypatch.setenv("TRUST_FIT_LOG", str(tmp_path / "fits.log"))
    plug, cfg_path = write_fakes(tmp_path)
    (plug / "trust.py").write_text(TRUST_PLUGIN)
    registry = load_registry([plug])
    base = read_config_file(cfg_path)
    kw = {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache"), "progress": False, "device": "cpu",
          "plugins_dirs": [str(plug)]}
    kw.update(overrides)
    return registry, apply_overrides(base, kw)


def fits(tmp_path: Path) -> int:
    p = tmp_path / "fits.log"
    return len(p.read_text().splitlines()) if p.exists() else 0


def with_method_mode(cfg, method: str, mode: str):
    cfg.plugin_tables["methods"][method] = {"mode": mode}
    return cfg
