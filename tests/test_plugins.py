"""Plugin loading as a user meets it: duplicates, broken plugins, the allow-list, --plugins-dir."""

from __future__ import annotations

import textwrap

import pytest

from prorlbench.cli import main
from prorlbench.plugins import ALLOW_ENV, DuplicateNameError, load_registry

from runner_support import BUILTINS_FOR_FAKES, write_fakes

METHOD_FILE = textwrap.dedent('''
    from dataclasses import dataclass
    from prorlbench import hookimpl
    from prorlbench.api import MethodSpec
    from prorlbench.config import opt


    @dataclass
    class Cfg:
        length: int = opt(2, "path length")


    class FirstFree:
        def __init__(self, cfg):
            self.cfg = cfg

        def fit(self, ctx):
            self.n = ctx.data.n_items

        def generate(self, cases, k):
            return [[tuple(i for i in range(self.n) if i not in c.history and i != c.target)[: self.cfg.length]]
                    for c in cases]


    @hookimpl
    def register_methods(register):
        register(MethodSpec(name="{name}", summary="first free items", factory=FirstFree, config_cls=Cfg))
''')


def test_duplicate_name_names_both_providers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, "")
    d = tmp_path / "plug"
    d.mkdir()
    (d / "a_first.py").write_text(METHOD_FILE.replace("{name}", "same-name"))
    (d / "b_second.py").write_text(METHOD_FILE.replace("{name}", "same-name"))
    with pytest.raises(DuplicateNameError) as e:
        load_registry([d])
    msg = str(e.value)
    assert "method 'same-name' is registered twice" in msg
    assert "a_first.py" in msg and "b_second.py" in msg
    # Through the CLI: one line, exit 2.
    assert main(["list", "--plugins-dir", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prorlbench: error:") and "a_first.py" in err and "b_second.py" in err
    assert "\n" not in err


def test_duplicate_of_a_builtin_names_the_entry_point(tmp_path, monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, "simple_baselines")
    d = tmp_path / "plug"
    d.mkdir()
    (d / "mine.py").write_text(METHOD_FILE.replace("{name}", "pop"))
    with pytest.raises(DuplicateNameError) as e:
        load_registry([d])
    assert "'simple_baselines'" in str(e.value) and "mine.py" in str(e.value)


def test_failing_plugin_is_listed_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, "simple_baselines")
    d = tmp_path / "plug"
    d.mkdir()
    (d / "broken.py").write_text("raise RuntimeError('cannot start')\n")
    (d / "good.py").write_text(METHOD_FILE.replace("{name}", "first-free"))
    (d / "hook_raises.py").write_text(textwrap.dedent('''
        from prorlbench import hookimpl

        @hookimpl
        def register_methods(register):
            raise ValueError("hook exploded")
    '''))
    reg = load_registry([d])
    assert {"first-free", "pop", "random"} <= set(reg.names("methods"))
    errors = {f.plugin.rsplit("/", 1)[-1]: f.error for f in reg.failures}
    assert "cannot start" in errors["broken.py"]
    assert "hook exploded" in errors["hook_raises.py"]


def test_allow_list_env_var(monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, "simple_baselines")
    reg = load_registry()
    assert reg.names("methods") == ["pop", "random"]
    assert reg.names("datasets") == [] and reg.names("simulators") == []
    monkeypatch.setenv(ALLOW_ENV, "")
    reg = load_registry()
    assert all(reg.names(k) == [] for k in ("datasets", "simulators", "methods", "metrics"))
    monkeypatch.delenv(ALLOW_ENV)
    assert {"pop", "random"} <= set(load_registry().names("methods"))


def test_method_from_plugins_dir_runs_by_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, BUILTINS_FOR_FAKES)
    plug, cfg = write_fakes(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my_method.py").write_text(METHOD_FILE.replace("{name}", "first-free"))
    rc = main(["run", "--methods", "first-free,pop", "--config", str(cfg), "--plugins-dir", str(plug),
               "--plugins-dir", str(mine), "--no-progress", "--out", str(tmp_path / "out"),
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err
    assert "| first-free" in capsys.readouterr().out
    assert (tmp_path / "out" / "cells" / "first-free__tinyfake__s0.json").exists()
    written = (tmp_path / "out" / "config.toml").read_text()
    assert "[methods.first-free]" in written and str(mine.resolve()) in written
