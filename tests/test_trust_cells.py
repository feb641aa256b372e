"""Issue 12 items 4, 6, 8, 9, 10: isolated simulator, contained exits, checked cell files,
the run lock and the cell timeout."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from prorlbench.errors import UserError
from prorlbench.folder.results import RunFolder
from prorlbench.settings.runconfig import apply_overrides
from prorlbench.engine.runner import run

from trust_support import fits, setup, with_method_mode


def _cases(out) -> pd.DataFrame:
    df = pd.read_csv(Path(out) / "cases.csv.gz", dtype={"case": str})
    return df.sort_values(["method", "seed", "simulator", "case", "metric", "k"]).reset_index(drop=True)


@pytest.mark.parametrize("mode", ["train", "edit"])
def test_a_method_cannot_change_the_shared_simulator(tmp_path, monkeypatch, mode):
    """Item 4: `ctx.simulator.train()` or an in-place weight edit fails the offending cell only;
    the other cells' numbers equal those of a run without it, whatever the grid order."""
    reg, cfg = setup(tmp_path, monkeypatch, methods=["mutator", "pop", "random"], seeds=[0, 1])
    cfg = with_method_mode(cfg, "mutator", mode)
    res = run(cfg, reg, report=False)
    bad = {c.method: c for c in res.cells if not c.ok}
    assert set(bad) == {"mutator"}
    assert all("changed the simulator" in c.error for c in res.failed)
    clean = run(apply_overrides(cfg, {"out": str(tmp_path / "clean"), "methods": ["pop", "random"]}), reg,
                report=False)
    assert not clean.failed
    pd.testing.assert_frame_equal(_cases(cfg.out), _cases(tmp_path / "clean"))


def test_sys_exit_in_a_method_fails_only_its_cell(tmp_path, monkeypatch):
    """Item 6: SystemExit used to end the whole grid with exit 0 and no summary."""
    reg, cfg = setup(tmp_path, monkeypatch, methods=["quitter", "pop"])
    cfg = with_method_mode(cfg, "quitter", "exit")
    res = run(cfg, reg, report=True)
    assert [c.method for c in res.failed] == ["quitter"]
    assert "SystemExit(3)" in res.failed[0].error
    assert res.summary and (Path(cfg.out) / "summary.csv").exists()


def test_keyboard_interrupt_raised_by_a_method_fails_its_cell(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["quitter", "pop"])
    cfg = with_method_mode(cfg, "quitter", "keyboard")
    res = run(cfg, reg, report=False)
    assert [c.method for c in res.failed] == ["quitter"]
    assert "KeyboardInterrupt raised by the method" in res.failed[0].error


def test_a_real_ctrl_c_still_stops_the_grid(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop", "quitter", "random"])
    cfg = with_method_mode(cfg, "quitter", "ctrl-c")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, reg, report=False)
    folder = RunFolder(cfg.out)
    assert folder.read_status("pop__tinyfake__s0").ok  # finished work stays
    assert folder.read_status("random__tinyfake__s0") is None


def test_cli_real_ctrl_c_gives_the_resume_hint(tmp_path, monkeypatch, capsys):
    from prorlbench.cli import main

    from runner_support import write_fakes

    reg, cfg = setup(tmp_path, monkeypatch)
    plug = tmp_path / "fakeplugins"
    toml = tmp_path / "fake.toml"
    toml.write_text(toml.read_text() + '\n[methods.quitter]\nmode = "ctrl-c"\n')
    code = main(["run", "--config", str(toml), "--methods", "pop,quitter", "--plugins-dir", str(plug),
                 "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "--no-progress",
                 "--device", "cpu"])
    assert code == 130
    assert "Re-run the same command" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_damaged_cell_file_is_recomputed_not_a_crash(tmp_path, monkeypatch, damage):
    """Item 8: an ok status whose data file is empty, truncated or corrupt made every later run
    crash in the merge; now the checksum in the status catches it and the cell is recomputed."""
    reg, cfg = setup(tmp_path, monkeypatch, methods=["behaving", "pop"])
    run(cfg, reg, report=False)
    expected = _cases(cfg.out)
    folder = RunFolder(cfg.out)
    p = folder.cell_cases("pop__tinyfake__s0")
    raw = p.read_bytes()
    p.write_bytes({"empty": b"", "truncated": raw[: len(raw) // 2], "garbage": b"\x00not gzip"}[damage])
    n = fits(tmp_path)
    res = run(cfg, reg, report=False)
    assert [c.method for c in res.computed] == ["pop"]
    assert fits(tmp_path) == n  # `behaving` was not refitted
    pd.testing.assert_frame_equal(_cases(cfg.out), expected)
    status = json.loads(folder.cell_status("pop__tinyfake__s0").read_text())
    assert set(status["files"]) >= {"cases", "paths"}


def test_stale_tmp_files_are_removed(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    run(cfg, reg, report=False)
    stale = [Path(cfg.out) / ".cases.csv.gz.abc.tmp", Path(cfg.out) / "cells" / ".x.json.def.tmp"]
    for s in stale:
        s.write_text("half")
    run(cfg, reg, report=False)
    assert not any(s.exists() for s in stale)


def test_malformed_status_json_is_recomputed(tmp_path, monkeypatch):
    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    run(cfg, reg, report=False)
    st = RunFolder(cfg.out).cell_status("pop__tinyfake__s0")
    for bad in ("[1, 2]", "{not json", '{"method": 1, "dataset": [], "seed": "x", "status": "ok"}'):
        st.write_text(bad)
        res = run(cfg, reg, report=False)
        assert not res.failed and len(res.computed) == 1


def test_second_run_on_one_out_folder_exits_or_waits(tmp_path, monkeypatch):
    """Item 9: a lock per run folder."""
    from prorlbench.engine.guards import run_lock

    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop"])
    Path(cfg.out).mkdir(parents=True)
    with run_lock(Path(cfg.out)):
        with pytest.raises(UserError, match="another prorlbench run .* --wait"):
            run(cfg, reg, report=False)
    assert not (Path(cfg.out) / "cells" / "pop__tinyfake__s0.json").exists()
    release = threading.Event()

    def hold():
        with run_lock(Path(cfg.out)):
            release.set()
            time.sleep(1.0)

    t = threading.Thread(target=hold)
    t.start()
    release.wait()
    t0 = time.perf_counter()
    res = run(apply_overrides(cfg, {"wait": True}), reg, report=False)
    t.join()
    assert time.perf_counter() - t0 > 0.5 and not res.failed


def test_cell_timeout_fails_a_hanging_cell_and_the_grid_goes_on(tmp_path, monkeypatch):
    """Item 10: a method that hangs used to block the grid forever."""
    reg, cfg = setup(tmp_path, monkeypatch, methods=["quitter", "pop"], cell_timeout=1.0)
    cfg = with_method_mode(cfg, "quitter", "hang")
    t0 = time.perf_counter()
    res = run(cfg, reg, report=False)
    assert time.perf_counter() - t0 < 30
    assert [c.method for c in res.failed] == ["quitter"]
    assert "timed out" in res.failed[0].error and "cell_timeout" in res.failed[0].error
    assert [c.method for c in res.cells if c.ok] == ["pop"]


def test_each_cell_records_its_platform_and_a_resume_warns_about_another(tmp_path, monkeypatch, caplog):
    """Seeded RL cells reproduce on one platform but not across them (docs/reliability.md): each
    cell stores where it ran, and resuming a folder whose finished cells came from elsewhere says so."""
    import logging

    from prorlbench.engine.devices import platform_identity

    reg, cfg = setup(tmp_path, monkeypatch, methods=["pop", "random"])
    run(cfg, reg, report=False)
    folder = RunFolder(cfg.out)
    here = platform_identity("cpu")
    st = json.loads(folder.cell_status("pop__tinyfake__s0").read_text())
    assert st["platform"] == here and here["torch"] and here["cpu"] and here["cpu_capability"]
    with caplog.at_level(logging.WARNING, logger="prorlbench"):
        assert not run(cfg, reg, report=False).computed  # same platform: silent resume
    assert "another platform" not in caplog.text
    st["platform"] = {**here, "cpu_capability": "SOMEWHERE_ELSE"}
    folder.cell_status("pop__tinyfake__s0").write_text(json.dumps(st))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prorlbench"):
        res = run(cfg, reg, report=False)
    assert not res.computed  # the cell is kept (a warning, not a recompute)
    assert (f"1 finished cell(s) were computed on another platform (cpu_capability: SOMEWHERE_ELSE -> "
            f"{here['cpu_capability']}, e.g. pop)") in caplog.text
    st.pop("platform")  # a cell from before platforms were recorded: nothing to compare
    folder.cell_status("pop__tinyfake__s0").write_text(json.dumps(st))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prorlbench"):
        run(cfg, reg, report=False)
    assert "another platform" not in caplog.text
