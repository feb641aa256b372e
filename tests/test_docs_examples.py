"""Every code example in docs/ is executed (or, for shell commands, parsed by the real parser).

* ``python`` blocks that define hooks are written to a ``--plugins-dir`` and loaded: they must
  load without a failure; every method they register is run on the tiny fake dataset and
  simulator of ``tests/runner_support.py`` (k candidates, at most ``max_path_len`` items, ok
  cells), every metric is computed in that run and reported with its own display name, every
  executor runs the grid. RL estimators (which need the RL trainer) are checked to register a
  method of the same name; ``tests/rl/test_custom_estimator.py`` trains docs/rl.md's example.
* other ``python`` blocks are executed with ``run_dir`` bound to a finished fake run folder;
* ``bash`` lines that start with ``prorlbench`` are parsed by the CLI's own parser (every flag
  must exist); ``toml`` blocks are parsed as run configs. Other blocks (LaTeX output, benchmark
  commands that take minutes) are not executed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from prorlbench.cli import build_parser
from prorlbench.plugins import load_registry
from prorlbench.settings.runconfig import apply_overrides, parse_config_text, read_config_file
from prorlbench.engine.runner import run

from runner_support import BUILTINS_FOR_FAKES, write_fakes

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(lang: str) -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for i, m in enumerate(FENCE.finditer(doc.read_text())):
            if m.group(1) == lang:
                out.append((f"{doc.name}#{i}", m.group(2)))
    return out


def test_the_docs_have_examples():
    assert len(blocks("python")) >= 4 and blocks("bash")


def _fake_run(tmp_path: Path, plugins_dirs: list[Path], **over):
    plug, cfg_path = write_fakes(tmp_path)
    base = read_config_file(cfg_path)
    cfg = apply_overrides(base, {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache"),
                                 "progress": False, "device": "cpu",
                                 "plugins_dirs": [str(plug), *map(str, plugins_dirs)], **over})
    return cfg


@pytest.mark.parametrize("where,source", [b for b in blocks("python") if "@hookimpl" in b[1]],
                         ids=lambda v: v if isinstance(v, str) and "#" in v else "")
def test_plugin_example_loads_and_runs(where, source, tmp_path, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES + ",rl_family")
    mine = tmp_path / "doc_plugins"
    mine.mkdir()
    (mine / "doc_example.py").write_text(source)
    reg = load_registry([mine])
    assert not [f for f in reg.failures if "doc_example" in f.plugin], reg.failures
    provided = {kind: [n for n in reg.names(kind) if "doc_example" in reg.providers[(kind, n)]]
                for kind in reg.specs}
    assert any(provided.values()), f"{where}: registers nothing"
    for est in provided["estimators"]:
        assert reg.method(est).family == "rl"
    methods = [m for m in provided["methods"] if reg.method(m).family != "rl"] or ["pop"]
    if not provided["methods"] and not provided["metrics"] and not provided["executors"]:
        return  # an estimator only: trained by tests/rl/test_custom_estimator.py
    over = {"methods": methods, "seeds": [0, 1]}
    if provided["executors"]:
        over["executor"] = provided["executors"][0]
    cfg = _fake_run(tmp_path, [mine], **over)
    result = run(cfg, load_registry(cfg.plugins_dirs))
    assert result.cells and all(c.ok for c in result.cells), [c.error for c in result.cells]
    cases = pd.read_csv(Path(cfg.out) / "cases.csv.gz")
    for m in methods:
        assert (cases["method"] == m).any()
    for metric in provided["metrics"]:
        assert (cases["metric"] == metric).any()
        display = reg.metric(metric).display or metric
        assert f"| {display}" in result.summary  # a plugin metric shows with its own name


def test_doc_method_returns_k_candidates_within_max_path_len(tmp_path, monkeypatch):
    """docs/plugins.md's first example: k candidates per case, each at most max_path_len items."""
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES)
    source = blocks("python")[[w for w, _ in blocks("python")].index(
        next(w for w, s in blocks("python") if w.startswith("plugins.md") and "register_methods" in s))][1]
    mine = tmp_path / "doc_plugins"
    mine.mkdir()
    (mine / "my_method.py").write_text(source)
    cfg = _fake_run(tmp_path, [mine], methods=["my-method"], seeds=[0], ks=[1, 3])
    run(cfg, load_registry(cfg.plugins_dirs), report=False)
    cases = pd.read_csv(Path(cfg.out) / "cases.csv.gz")
    lens = cases[(cases.metric == "len")]
    assert set(lens["k"]) == {1, 3} and lens["value"].max() <= 4  # max_path_len of the fake config
    src = (mine / "my_method.py").read_text()
    assert "ctx.max_path_len" in src and "-> list[list[tuple[int, ...]]]" in src


def test_library_examples_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES)
    cfg = _fake_run(tmp_path, [], methods=["random", "pop"], seeds=[0])
    run(cfg, load_registry(cfg.plugins_dirs))
    for where, source in blocks("python"):
        if "@hookimpl" in source or "prorlbench.run(" in source:  # notebook examples: tests/test_api.py
            continue
        namespace = {"run_dir": Path(cfg.out)}
        exec(compile(source, where, "exec"), namespace)  # noqa: S102 - our own docs


@pytest.mark.parametrize("where,line", [(w, ln.strip()) for w, src in blocks("bash")
                                        for ln in src.replace("\\\n", " ").splitlines()
                                        if ln.strip().startswith("prorlbench ")])
def test_shell_commands_parse(where, line):
    argv = shlex.split(line.split("#", 1)[0])[1:]
    args = build_parser().parse_args(argv)
    assert args.command in ("run", "report", "list", "rescore", "paths", "fetch", "study"), f"{where}: {line}"


@pytest.mark.parametrize("where,text", blocks("toml"))
def test_toml_examples_are_valid_run_configs(where, text):
    parse_config_text(text, where)
