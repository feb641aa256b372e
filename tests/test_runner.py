"""The runner: grid, run folder layout, containment, resume, determinism, backbones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from prorlbench.errors import UserError
from prorlbench.executors import CellJob
from prorlbench.plugins import load_registry
from prorlbench.folder.results import CASE_COLUMNS, CELL_COLUMNS, TRAIN_LOG_COLUMNS, RunFolder, cell_name
from prorlbench.settings.runconfig import apply_overrides, parse_config_text, read_config_file, write_toml
from prorlbench.engine.runner import BACKBONE_SEED_OFFSET, expand_grid, resolve, run

from runner_support import BUILTINS_FOR_FAKES, FAKE_CONFIG, TINY_REAL_CONFIG, cli_env, write_fakes


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """(registry, base config) for the fake plugins; entry points restricted by the allow-list."""
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES)
    plug, cfg_path = write_fakes(tmp_path)
    registry = load_registry([plug])
    base = read_config_file(cfg_path)
    base = apply_overrides(base, {"out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache"),
                                  "progress": False, "device": "cpu"})
    return registry, base


def cfg_with(base, **kw):
    return apply_overrides(base, kw)


# --------------------------------------------------------------------------------------------
# grid and config
# --------------------------------------------------------------------------------------------


def test_expand_grid_is_dataset_major_and_complete():
    jobs = expand_grid(["a", "b"], ["d1", "d2"], [0, 1])
    assert len(jobs) == 8 and len(set(jobs)) == 8
    assert jobs[:4] == [CellJob("a", "d1", 0), CellJob("a", "d1", 1), CellJob("b", "d1", 0), CellJob("b", "d1", 1)]
    assert {j.dataset for j in jobs[4:]} == {"d2"}
    assert jobs[0].name == cell_name("a", "d1", 0) == "a__d1__s0"


def test_written_config_recreates_the_run(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["random", "pop"], seeds=[0, 3])
    cfg.plugin_tables["methods"]["pop"] = {"length": 3}
    res = resolve(cfg, registry)
    text = write_toml(res.config_document())
    again = resolve(apply_overrides(parse_config_text(text, "config.toml"), {"out": cfg.out}), registry)
    assert again.method_cfgs == res.method_cfgs and again.method_cfgs["pop"].length == 3
    assert again.dataset_cfgs == res.dataset_cfgs
    assert again.simulator_cfgs == res.simulator_cfgs
    assert again.cases_cfg == res.cases_cfg
    assert again.cfg.seeds == [0, 3] and again.cfg.methods == ["random", "pop"]
    assert [m.name for m in again.metrics] == [m.name for m in res.metrics]
    for job in expand_grid(cfg.methods, cfg.datasets, cfg.seeds):
        assert again.fingerprint(job) == res.fingerprint(job)


# --------------------------------------------------------------------------------------------
# layout, containment
# --------------------------------------------------------------------------------------------


def test_grid_layout_and_containment(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["pop", "flaky"], seeds=[0, 1])
    result = run(cfg, registry)
    out = Path(cfg.out)
    folder = RunFolder(out)

    # Exactly the layout the report relies on.
    for name in ("config.toml", "cases.csv.gz", "cells.csv", "train_log.csv", "run.log", "summary.csv"):
        assert (out / name).exists(), name
    status = json.loads(folder.cell_status("flaky__tinyfake__s1").read_text())
    assert {"method", "dataset", "seed", "simulator", "eval_simulator", "status", "error", "seconds",
            "n_cases"} <= set(status)
    assert status["status"] == "failed" and "boom on seed 1" in status["error"]
    assert "\n" not in status["error"]

    # The failing cell did not stop the others.
    by_cell = {(c.method, c.seed): c for c in result.cells}
    assert [c for c in result.cells if not c.ok] == [by_cell[("flaky", 1)]]
    for key in [("pop", 0), ("pop", 1), ("flaky", 0)]:
        assert by_cell[key].ok and by_cell[key].n_cases == 12
        assert folder.cell_cases(cell_name(key[0], "tinyfake", key[1])).exists()
    assert not folder.cell_cases("flaky__tinyfake__s1").exists()

    cells = pd.read_csv(out / "cells.csv")
    assert list(cells.columns) == CELL_COLUMNS
    assert cells.set_index(["method", "seed"]).loc[("flaky", 1), "status"] == "failed"
    assert set(cells["status"]) == {"ok", "failed"}

    cases = pd.read_csv(out / "cases.csv.gz")
    assert list(cases.columns) == CASE_COLUMNS
    assert set(zip(cases["method"], cases["seed"])) == {("pop", 0), ("pop", 1), ("flaky", 0)}
    assert set(cases["simulator"]) == {"fakesim"} and set(cases["k"]) == {1, 2}
    assert cases.groupby(["method", "seed", "metric", "k"]).size().eq(12).all()

    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == TRAIN_LOG_COLUMNS
    # Both flaky cells logged 3 steps x 2 values, the failed one included (for diagnosis).
    assert log.groupby("seed").size().to_dict() == {0: 6, 1: 6}

    text = (out / "run.log").read_text()
    assert "boom on seed 1" in text and "Traceback" in text and "HR@10" in text
    assert "tiny fake data" in text


def test_nan_training_value_fails_the_cell(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["flaky"], seeds=[0, 2])
    cfg.plugin_tables["methods"]["flaky"] = {"fail_seed": -1, "nan_seed": 2}
    result = run(cfg, registry, report=False)
    st = {c.seed: c for c in result.cells}
    assert st[0].ok
    assert not st[2].ok and "non-finite" in st[2].error and "loss=nan" in st[2].error


def test_nan_metric_fails_the_cell(fakes, monkeypatch):
    import prorlbench.seq.evaluate as ev

    real = ev.evaluate_paths

    def poisoned(model, cases, candidates, metrics, **kw):
        df = real(model, cases, candidates, metrics, **kw)
        if len(candidates[0][0]) == 2:  # flaky's paths have 2 items, pop's have 4
            df.loc[df.index[3], "value"] = float("nan")
        return df

    monkeypatch.setattr(ev, "evaluate_paths", poisoned)
    registry, base = fakes
    cfg = cfg_with(base, methods=["pop", "flaky"], seeds=[0])
    cfg.plugin_tables["methods"]["flaky"] = {"fail_seed": -1}
    result = run(cfg, registry, report=False)
    st = {c.method: c for c in result.cells}
    assert st["pop"].ok
    assert not st["flaky"].ok and "1 non-finite metric value(s)" in st["flaky"].error
    assert not RunFolder(cfg.out).cell_cases("flaky__tinyfake__s0").exists()


def test_broken_generate_contract_fails_the_cell(fakes):
    registry, base = fakes
    result = run(cfg_with(base, methods=["wrong-count", "pop"]), registry, report=False)
    st = {c.method: c for c in result.cells}
    assert st["pop"].ok and not st["wrong-count"].ok
    assert "candidate lists for 12 cases" in st["wrong-count"].error
    cfg = cfg_with(base, methods=["wrong-count"], out=str(Path(base.out) / "long"))
    cfg.plugin_tables["methods"]["wrong-count"] = {"too_long": True}
    (bad,) = run(cfg, registry, report=False).cells
    assert not bad.ok and "path of 20 items; max_path_len is 4" in bad.error


def test_make_backbone_has_its_own_seed(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["uses-backbone"], seeds=[0, 4])
    result = run(cfg, registry, report=False)
    assert all(c.ok for c in result.cells), [c.error for c in result.cells]
    log = pd.read_csv(Path(cfg.out) / "train_log.csv")
    got = dict(zip(log["seed"], log["value"]))
    assert got == {0: BACKBONE_SEED_OFFSET + 0, 4: BACKBONE_SEED_OFFSET + 4}


def test_user_error_in_data_aborts_but_keeps_finished_work(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["pop"], datasets=["tinyfake", "tinybroken"], seeds=[0])
    with pytest.raises(UserError, match=r"broken.csv:3: bad line"):
        run(cfg, registry)
    folder = RunFolder(cfg.out)
    assert folder.read_status("pop__tinyfake__s0").ok
    assert folder.read_status("pop__tinybroken__s0") is None


def test_bad_plugin_config_is_a_user_error_before_any_work(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["pop"])
    cfg.plugin_tables["methods"]["pop"] = {"lenght": 3}
    with pytest.raises(UserError, match=r"\[methods.pop\].*unknown key 'lenght'.*did you mean 'length'"):
        run(cfg, registry)
    assert not Path(cfg.out).exists()


def test_dataset_preparation_crash_fails_that_datasets_cells(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["pop"], seeds=[0, 1])
    cfg.plugin_tables["datasets"]["tinyfake"] = {"n_items": 3}  # rng.choice(3, 12) raises ValueError
    result = run(cfg, registry, report=False)
    assert len(result.cells) == 2 and not any(c.ok for c in result.cells)
    assert all("preparing dataset 'tinyfake' failed" in c.error for c in result.cells)


# --------------------------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------------------------


def test_resume_skips_done_cells_and_force_recomputes(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["pop", "flaky"], seeds=[0, 1])
    first = run(cfg, registry)
    folder = RunFolder(cfg.out)
    ok_status = folder.cell_status("pop__tinyfake__s0")
    stamp = ok_status.stat().st_mtime_ns
    summary = (Path(cfg.out) / "summary.csv").read_bytes()

    second = run(cfg, registry)
    assert {c.method for c in second.skipped} == {"pop", "flaky"}
    assert [(c.method, c.seed) for c in second.computed] == [("flaky", 1)]  # failed cells are retried
    assert ok_status.stat().st_mtime_ns == stamp
    assert (Path(cfg.out) / "summary.csv").read_bytes() == summary
    assert "already done; skipped" in (Path(cfg.out) / "run.log").read_text()
    assert [c.status for c in second.cells] == [c.status for c in first.cells]

    forced = run(cfg_with(cfg, force=True), registry, report=False)
    assert not forced.skipped and ok_status.stat().st_mtime_ns != stamp


def test_changed_method_config_recomputes_only_that_method(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["pop", "random"], seeds=[0])
    run(cfg, registry, report=False)
    cfg.plugin_tables["methods"]["pop"] = {"length": 2}
    again = run(cfg, registry, report=False)
    assert [c.method for c in again.computed] == ["pop"]
    cases = pd.read_csv(Path(cfg.out) / "cases.csv.gz")
    lens = cases[(cases.method == "pop") & (cases.metric == "len")]["value"]
    assert set(lens) == {2.0}


# --------------------------------------------------------------------------------------------
# determinism and resume on the real pipeline (synthetic data + SASRec)
# --------------------------------------------------------------------------------------------


def _real_cfg(tmp_path: Path, name: str) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(TINY_REAL_CONFIG)
    return p


def test_same_command_and_seed_give_identical_per_case_values_fake(fakes):
    registry, base = fakes
    tables = []
    for i in range(2):
        cfg = cfg_with(base, methods=["random", "pop"], seeds=[0, 1], out=str(Path(base.out) / f"r{i}"))
        run(cfg, registry, report=False)
        tables.append(pd.read_csv(Path(cfg.out) / "cases.csv.gz"))
    pd.testing.assert_frame_equal(tables[0], tables[1])


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    """Real pipeline (tiny synthetic world + SASRec). The uninterrupted reference and the killed
    run train their simulators in separate caches, so equality also shows that the same command
    and seed give identical per-case values (simulator training included)."""
    pytest.importorskip("prorlbench_plugins.datasets.synthetic")
    from prorlbench.cli import main

    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    cfg = _real_cfg(tmp_path, "tiny")
    common = ["run", "--methods", "random,pop", "--config", str(cfg), "--no-progress", "--device", "cpu"]

    assert main(common + ["--out", str(tmp_path / "ref"), "--cache-dir", str(tmp_path / "cache_ref")]) == 0

    out = tmp_path / "killed"
    args = common + ["--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.Popen([sys.executable, "-m", "prorlbench.cli", *args], env=cli_env(allow=None),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / "cells" / "random__synthetic__s0.json"
    deadline = time.time() + 240
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the first cell never finished"
    done = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert 1 <= len(done) < 4, f"kill came too late: {sorted(done)}"
    assert not (out / "cases.csv.gz").exists()

    assert main(args) == 0
    for name, stamp in done.items():  # finished cells were not recomputed
        assert (out / "cells" / name).stat().st_mtime_ns == stamp
    assert (out / "run.log").read_text().count("already done; skipped") == len(done)
    assert (out / "summary.csv").read_bytes() == (tmp_path / "ref" / "summary.csv").read_bytes()
    a = pd.read_csv(out / "cases.csv.gz")
    pd.testing.assert_frame_equal(a, pd.read_csv(tmp_path / "ref" / "cases.csv.gz"))

    assert set(a["method"]) == {"random", "pop"} and set(a["seed"]) == {0, 1}
    # Seeds vary the method, not the cases: random differs across seeds, pop does not.
    def by_seed(method):
        x = a[(a.method == method) & (a.metric == "ioi") & (a.k == 1)]
        return x.pivot(index="case", columns="seed", values="value")
    assert not by_seed("random")[0].equals(by_seed("random")[1])
    assert by_seed("pop")[0].equals(by_seed("pop")[1])


def test_cell_work_survives_pickling_for_remote_executors(fakes):
    """A remote executor (e.g. Ray) ships the CellWork object to a worker and calls it there."""
    import pickle

    from prorlbench.engine.runner import CellWork, prepare_dataset

    registry, base = fakes
    cfg = cfg_with(base, methods=["pop"], seeds=[0])
    res = resolve(cfg, registry)
    folder = RunFolder(res.out)
    folder.make()
    work = CellWork(res, prepare_dataset(res, "tinyfake", progress=False), folder, progress=False)
    clone = pickle.loads(pickle.dumps(work))
    assert clone.res.registry is not registry and "pop" in clone.res.registry.names("methods")
    status = clone(CellJob("pop", "tinyfake", 0))
    assert status.ok and status.n_cases == 12
    assert status.fingerprint == res.fingerprint(CellJob("pop", "tinyfake", 0))


def test_every_eval_simulator_scores_every_cell(fakes):
    registry, base = fakes
    cfg = cfg_with(base, methods=["random", "pop"], seeds=[0], eval_simulators=["fakesim", "fakesim2"])
    result = run(cfg, registry)
    assert all(c.ok and c.eval_simulator == "fakesim,fakesim2" and c.simulator == "fakesim" for c in result.cells)
    cases = pd.read_csv(Path(cfg.out) / "cases.csv.gz")
    counts = cases.groupby(["method", "simulator"]).size()
    assert set(counts.index) == {(m, s) for m in ("random", "pop") for s in ("fakesim", "fakesim2")}
    assert counts.nunique() == 1
    ioi = cases[(cases.metric == "ioi") & (cases.k == 1)].pivot_table(index=["method", "case"], columns="simulator",
                                                                       values="value")
    assert not ioi["fakesim"].equals(ioi["fakesim2"])  # really scored by two different models
    summary = pd.read_csv(Path(cfg.out) / "summary.csv")
    assert set(summary["simulator"]) == {"fakesim", "fakesim2"}


def test_ground_truth_eval_simulator_is_skipped_where_it_does_not_exist(tmp_path, monkeypatch):
    """`oracle` exists only for the synthetic world: on another dataset it is skipped, not fatal."""
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES + ",oracle")
    plug, cfg_path = write_fakes(tmp_path)
    registry = load_registry([plug])
    cfg = apply_overrides(read_config_file(cfg_path), {
        "out": str(tmp_path / "out"), "cache_dir": str(tmp_path / "cache"), "progress": False,
        "device": "cpu", "methods": ["pop"], "eval_simulators": ["fakesim", "oracle"]})
    run(cfg, registry, report=False)
    cases = pd.read_csv(Path(cfg.out) / "cases.csv.gz")
    assert len(cases) > 0
    assert set(cases["simulator"]) == {"fakesim"}


def test_threads_option_applies_during_the_run_and_is_restored(fakes, monkeypatch):
    import torch

    import prorlbench.engine.runner as runner_mod

    registry, base = fakes
    seen = []
    original = runner_mod.prepare_dataset

    def spy(*a, **kw):
        seen.append(torch.get_num_threads())
        return original(*a, **kw)

    monkeypatch.setattr(runner_mod, "prepare_dataset", spy)
    before = torch.get_num_threads()
    want = 2 if before != 2 else 3
    run(cfg_with(base, methods=["pop"], threads=want), registry)
    assert seen == [want] and torch.get_num_threads() == before
    with pytest.raises(UserError, match="threads"):
        cfg_with(base, threads=-1)


def test_threads_is_a_run_flag():
    from prorlbench.cli import build_parser

    args = build_parser().parse_args(["run", "--methods", "pop", "--threads", "1"])
    assert args.threads == 1
