"""Issue 12, paths and files: config-file paths resolve from the file's folder and may not leave
it; command-line values are the user's own; results and caches follow the umask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prorlbench.errors import ConfigError
from prorlbench.settings.runconfig import apply_overrides, read_config_file
from prorlbench.engine.runner import run

from trust_support import setup


def _file(tmp_path, body: str) -> Path:
    d = tmp_path / "exp"
    d.mkdir(exist_ok=True)
    p = d / "run.toml"
    p.write_text(body)
    return p


def test_config_paths_resolve_from_the_files_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _file(tmp_path, '[run]\nout = "o"\ncache_dir = "c"\nplugins_dirs = ["pl"]\ndata_dir = "../data"\n'
                        '[datasets.csv]\npath = "x.csv"\n')
    cfg = read_config_file(p)
    assert Path(cfg.out).resolve() == (tmp_path / "exp" / "o").resolve()
    assert Path(cfg.cache_dir).resolve() == (tmp_path / "exp" / "c").resolve()
    assert [Path(x).resolve() for x in cfg.plugins_dirs] == [(tmp_path / "exp" / "pl").resolve()]
    assert Path(cfg.data_dir).resolve() == (tmp_path / "data").resolve()  # read-only: may leave
    assert Path(cfg.plugin_tables["datasets"]["csv"]["path"]).resolve() == (tmp_path / "exp" / "x.csv").resolve()


@pytest.mark.parametrize("line, needle", [
    ('out = "/tmp/elsewhere"', "absolute paths are not allowed"),
    ('cache_dir = "/root/.cache"', "absolute paths are not allowed"),
    ('plugins_dirs = ["/opt/evil"]', "absolute paths are not allowed"),
    ('out = "link/inside"', "leads outside"),
    ('name = "../../x"', "a run name, not a path"),
    ('name = "a/b"', "a run name, not a path"),
])
def test_config_file_cannot_write_or_load_code_outside_its_folder(tmp_path, line, needle):
    (tmp_path / "exp").mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "exp" / "link")
    with pytest.raises(ConfigError, match=needle):
        read_config_file(_file(tmp_path, f"[run]\n{line}\n"))


def test_the_same_values_on_the_command_line_are_allowed(tmp_path):
    cfg = apply_overrides(read_config_file(_file(tmp_path, "[run]\n")),
                          {"out": "/tmp/elsewhere", "cache_dir": "../c", "name": "x"})
    assert cfg.out == "/tmp/elsewhere" and cfg.cache_dir == "../c"


def test_run_folder_files_follow_the_umask(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    old = os.umask(0o027)
    try:
        run(cfg, reg)
    finally:
        os.umask(old)
    out = Path(cfg.out)
    files = [out / "config.toml", out / "cases.csv.gz", out / "cells.csv", out / "summary.csv",
             *out.glob("cells/*.json"), *out.glob("cells/*.gz")]
    assert files and {oct(f.stat().st_mode & 0o777) for f in files} == {oct(0o640)}
