"""Issue 12, clean errors for the output side: a read-only --out, a full disk, a non-UTF-8 training
log, and `--eval-simulator oracle` where no ground truth exists (refused before training)."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import pytest

from prorlbench.engine import runner
from prorlbench.cli import main
from prorlbench.errors import UserError
from prorlbench.folder.results import RunFolder
from prorlbench.settings.runconfig import apply_overrides
from prorlbench.engine.runner import run

from trust_support import fits, setup


def _cli(cfg, *extra):
    return main(["run", "--config", str(Path(cfg.out).parent / "fake.toml"), "--methods", ",".join(cfg.methods),
                 "--plugins-dir", str(Path(cfg.out).parent / "fakeplugins"), "--out", cfg.out,
                 "--cache-dir", cfg.cache_dir, "--no-progress", "--quiet", "--device", "cpu", *extra])


def _one_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("prorlbench: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_read_only_out_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    _, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    Path(cfg.out).mkdir()

    def denied(*a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # what a read-only folder does (even for root)
    assert _cli(cfg) == 2
    _one_line(capsys, "config.toml", "cannot write", "Permission denied")


def test_full_disk_keeps_finished_cells_and_a_rerun_resumes(tmp_path, monkeypatch, capsys):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["behaving", "pop", "random"])
    real = tempfile.mkstemp
    calls = {"n": 0}

    def fills_up(*a, **kw):
        if "pop__" in kw.get("prefix", ""):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", fills_up)
    assert _cli(cfg) == 2
    _one_line(capsys, "pop__tinyfake__s0", "No space left on device", "re-run")
    folder = RunFolder(cfg.out)
    assert folder.read_status("behaving__tinyfake__s0").ok  # finished work stays on disk
    assert folder.read_status("pop__tinyfake__s0") is None
    monkeypatch.setattr(tempfile, "mkstemp", real)
    n = fits(tmp_path)
    res = run(cfg, reg, report=False)
    assert not res.failed and [c.method for c in res.skipped] == ["behaving"]
    assert fits(tmp_path) == n


def test_non_utf8_training_log_is_recomputed(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["behaving"])
    run(cfg, reg, report=False)
    p = RunFolder(cfg.out).cell_train_log("behaving__tinyfake__s0")
    p.write_bytes(p.read_bytes() + b"\xff\xfe broken\n")
    res = run(cfg, reg)
    assert not res.failed and len(res.computed) == 1 and res.report_error is None


def test_unreadable_cell_log_in_a_merge_is_a_user_error(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["behaving"])
    res = run(cfg, reg, report=False)
    folder = RunFolder(cfg.out)
    folder.cell_train_log("behaving__tinyfake__s0").write_bytes(b"a,b\n\xff\xfe\n")
    with pytest.raises(UserError, match="train_log.csv: not UTF-8"):
        folder.merge(res.cells)


def test_oracle_without_a_ground_truth_world_is_refused_before_training(tmp_path, monkeypatch):
    from prorlbench.plugins import load_registry

    _, cfg = setup(tmp_path, monkeypatch, methods=["pop"], eval_simulators=["oracle"])
    monkeypatch.setenv("PRORLBENCH_PLUGINS", "simple_baselines,metrics,oracle")
    reg = load_registry(cfg.plugins_dirs)
    import importlib.util

    mod = importlib.import_module("prorlbench.engine.prepare") if importlib.util.find_spec("prorlbench.engine.prepare") \
        else runner  # where prepare_dataset lives
    built = []
    real = mod._build_simulator

    def spy(res, name, *a, **kw):
        built.append(name)
        return real(res, name, *a, **kw)

    monkeypatch.setattr(mod, "_build_simulator", spy)
    with pytest.raises(UserError, match="oracle.*ground-truth world.*nothing was trained"):
        run(cfg, reg, report=False)
    assert built == ["oracle"]
