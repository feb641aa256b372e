"""The Python API (``prorlbench.run``, ``prorlbench.load``, ``Results``) and a lazy start-up (issue 28).

The notebook examples of README.md and docs/api.md are executed here, on the tiny fake data (the
example's keys are passed through unchanged; only the dataset and simulator come from the fake
config), and the API's summary is compared with the ``summary.csv`` the command writes for the
same keys.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import prorlbench
from prorlbench.cli import main
from prorlbench.errors import UserError
from prorlbench.pyapi import config_from
from prorlbench.settings.runconfig import RunConfig

from runner_support import REPO, fake_env

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
API_BLOCKS = [(f"{doc.name}#{i}", m.group(2)) for doc in (REPO / "README.md", REPO / "docs" / "api.md")
              for i, m in enumerate(FENCE.finditer(doc.read_text())) if m.group(1) == "python"
              and "prorlbench.run(" in m.group(2)]


@pytest.fixture
def env(tmp_path, monkeypatch):
    return fake_env(tmp_path, monkeypatch)


def test_the_docs_have_a_notebook_example():
    assert {w.split("#")[0] for w, _ in API_BLOCKS} == {"README.md", "api.md"}


@pytest.mark.parametrize("where,source", API_BLOCKS, ids=[w for w, _ in API_BLOCKS])
def test_notebook_examples_run_and_equal_the_command(where, source, env, monkeypatch, capsys):
    root, plug, cfg = env
    real_run = prorlbench.run
    monkeypatch.setattr(prorlbench, "run", functools.partial(real_run, str(cfg), plugins_dir=[str(plug)],
                                                             device="cpu", progress=False))
    namespace: dict = {}
    exec(compile(source, where, "exec"), namespace)  # noqa: S102 - our own docs
    res = namespace["res"]
    assert isinstance(res, prorlbench.Results) and not res.failed
    call = re.search(r"prorlbench\.run\((.*?)\)\n", source, re.S).group(1)
    keys = eval(f"dict({call})")  # noqa: S307 - the example's own keys
    argv = ["run", "--config", str(cfg), "--plugins-dir", str(plug), "--quiet", "--device", "cpu",
            "--out", str(root / "cli")]
    for key, value in keys.items():
        if key != "out":
            argv += [f"--{key.replace('_', '-')}", ",".join(value) if isinstance(value, list) else str(value)]
    assert main(argv) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(res.summary, pd.read_csv(root / "cli" / "summary.csv"))
    assert len(res.cases) == len(pd.read_csv(root / "cli" / "cases.csv.gz"))


def test_keys_lists_and_comma_strings(env):
    root, plug, cfg = env
    a = config_from(str(cfg), methods=["random", "pop"], seeds="0-2", eval_simulator="fakesim", plugins_dir=[str(plug)])
    b = config_from(str(cfg), methods="random,pop", seeds=[0, 1, 2], eval_simulators=["fakesim"], plugins_dirs=[str(plug)])
    assert a == b and a.methods == ["random", "pop"] and a.seeds == [0, 1, 2]
    assert config_from(set={"methods.prorl.lr": [1e-4, 5e-4], "methods.pop.length": 3}).sets == \
        ["methods.prorl.lr=0.0001,0.0005", "methods.pop.length=3"]
    doc = config_from({"run": {"methods": ["pop"]}, "methods": {"pop": {"length": 3}}})
    assert doc.methods == ["pop"] and doc.plugin_tables["methods"]["pop"] == {"length": 3}
    with pytest.raises(UserError, match="unknown key 'method' \\(did you mean 'methods'\\?\\)"):
        config_from(method="pop")
    with pytest.raises(UserError, match="unknown method 'rando'"):
        prorlbench.run(str(cfg), methods="rando", plugins_dir=[str(plug)], out=str(root / "x"))
    assert RunConfig(methods="random").methods == ["random"]


def test_a_sweep_from_python_and_results(env):
    root, plug, cfg = env
    res = prorlbench.run(str(cfg), plugins_dir=[str(plug)], device="cpu", progress=False, methods="pop,flaky",
                         seeds="0-1", set={"methods.pop.length": [2, 3]}, out=str(root / "out"))
    assert sorted(res.summary["method"].unique()) == ["flaky", "pop+length=2", "pop+length=3"]
    assert res.failed == ["flaky/tinyfake/s1"]  # flaky fails on seed 1: no exception, a failed cell
    assert "boom on seed 1" in res.cells.query("status != 'ok'")["error"].iloc[0]
    paths = res.paths(method="pop+length=3", seed=1)
    assert len(paths) == 12 * 2 and set(paths["seed"]) == {1} and paths["path"].map(len).max() == 3
    assert res.config.methods == ["pop+length=2", "pop+length=3", "flaky"]
    assert prorlbench.load(root / "out").summary.equals(res.summary)
    assert "| pop+length=2" in res.table()
    with pytest.raises(UserError, match="no config.toml here"):
        prorlbench.load(root)


def _python(code: str, env: dict) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                          cwd=REPO).stdout.strip()


def test_importing_prorlbench_and_its_parser_loads_no_torch_and_list_reads_the_catalogue(tmp_path):
    env = {**os.environ, "PRORLBENCH_CACHE_DIR": str(tmp_path / "cache"), "PRORLBENCH_PLUGINS": "simple_baselines"}
    code = ("import sys, prorlbench, prorlbench.cli; prorlbench.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'pandas', 'prorlbench_plugins') if m in sys.modules))")
    assert _python(code, env) == "[]"
    listing = ("import sys, io, contextlib; from prorlbench.cli import main; out = io.StringIO()\n"
               "with contextlib.redirect_stdout(out): main(['list', 'methods'])\n"
               "print('torch' in sys.modules, 'pop' in out.getvalue())")
    assert _python(listing, env) == "True True"    # the first list loads the plugins
    assert _python(listing, env) == "False True"   # the next reads the catalogue
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "mine.py").write_text(
        "from dataclasses import dataclass\nfrom prorlbench import hookimpl\nfrom prorlbench.api import MethodSpec\n"
        "@dataclass\nclass C:\n    pass\n"
        "@hookimpl\ndef register_methods(register):\n    register(MethodSpec('mine', 'my method', lambda c: None, C))\n")
    with_dir = listing.replace("['list', 'methods']", f"['list', 'methods', '--plugins-dir', {str(plug)!r}]") \
        .replace("'pop' in", "'mine' in")
    assert _python(with_dir, env) == "True True"   # another --plugins-dir: loaded, listed
    assert _python(with_dir, env) == "False True"
    (plug / "mine.py").write_text((plug / "mine.py").read_text().replace("my method", "my edited method"))
    assert _python(with_dir.replace("'mine' in", "'my edited method' in"), env) == "True True"  # an edit reloads
