"""Red team, issue 25 scope 1 and 2: a method cannot cheat, read the future, corrupt another
cell, or kill the grid. Each case asserts the exact failure and that the other cells are
unchanged (their per-case values equal those of a run without the attacker)."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest
import torch

from prorlbench.executors import local
from prorlbench.engine.runner import run

from trust_support import setup

ATTACKS = textwrap.dedent('''
    import os
    import signal
    import time
    from dataclasses import dataclass

    import torch

    from prorlbench import hookimpl
    from prorlbench.api import MethodSpec
    from prorlbench.config import opt


    @dataclass
    class Cfg:
        mode: str = opt("", "the attack")


    class Attacker:
        def __init__(self, cfg):
            self.mode = cfg.mode

        def fit(self, ctx):
            self.n_items = ctx.data.n_items
            mode = self.mode
            if mode == "peek":
                seen = {"test_refs": [list(c.reference) for c in ctx.cases.test],
                        "train_refs": sum(bool(c.reference) for c in ctx.cases.train)}
                with open(os.environ["RT_PEEK"], "w") as f:
                    import json
                    json.dump(seen, f)
            elif mode == "mutate":
                for c in list(ctx.cases.test) + list(ctx.cases.train):
                    object.__setattr__(c, "target", 0)
                    object.__setattr__(c, "history", ())
                try:
                    ctx.data.sequences["train"] = ()
                except TypeError:
                    pass
                try:
                    ctx.cases.test[0] = None
                except TypeError:
                    pass
            elif mode == "write-data":
                ctx.data.sequences["train"] = ()
            elif mode == "os-exit":
                os._exit(0)
            elif mode == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif mode == "swallow-timeout":
                while True:
                    try:
                        time.sleep(0.05)
                    except BaseException:
                        pass
            elif mode == "dtype":
                torch.set_default_dtype(torch.float64)

        def generate(self, cases, k):
            mode, out = self.mode, []
            for c in cases:
                free = [i for i in range(self.n_items) if i not in c.history and i != c.target][:3]
                if mode == "target":
                    out.append([(c.target,)] * k)
                elif mode == "append-target":
                    out.append([tuple(free) + (c.target,)])
                elif mode == "out-of-range":
                    out.append([(self.n_items,)])
                elif mode == "negative":
                    out.append([(-2,)])
                elif mode == "unknown":
                    out.append([(-1,) + tuple(free), tuple(free)])
                elif mode == "float":
                    out.append([(float(free[0]),)])
                elif mode == "string":
                    out.append([(str(free[0]),)])
                elif mode == "mutate":
                    out.append([()])
                elif mode == "tensor":
                    out.append([torch.tensor(free)])
                else:
                    out.append([tuple(free)])
            return out


    @hookimpl
    def register_methods(register):
        register(MethodSpec(name="attacker", summary="red team", factory=Attacker, config_cls=Cfg))
''')


def _setup(tmp_path, monkeypatch, mode, **overrides):
    reg, cfg = setup(tmp_path, monkeypatch, **{"methods": ["attacker", "pop"], **overrides})
    (tmp_path / "fakeplugins" / "attacks.py").write_text(ATTACKS)
    from prorlbench.plugins import load_registry

    reg = load_registry([tmp_path / "fakeplugins"])
    cfg.plugin_tables["methods"]["attacker"] = {"mode": mode}
    return reg, cfg


def _pop_cases(out):
    df = pd.read_csv(out / "cells" / "pop__tinyfake__s0.cases.csv.gz")
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.fixture
def clean_pop(tmp_path_factory, monkeypatch):
    """pop's per-case table from a run with no attacker."""
    tmp = tmp_path_factory.mktemp("clean")
    reg, cfg = setup(tmp, monkeypatch, methods=["pop"])
    assert not run(cfg, reg, report=False).failed
    return _pop_cases(tmp / "out")


CHEATS = {
    "target": "candidate 0, position 0: item {t} is the case's target",
    "append-target": "candidate 0, position 3: item {t} is the case's target",
    "out-of-range": "candidate 0, position 0: item id 30 is outside 0..29",
    "negative": "candidate 0, position 0: item id -2 is outside 0..29 (and not -1, the unknown item)",
    "float": "candidate 0: item {f}.0 is not an integer item id",
    "string": "candidate 0: item '{f}' is not an integer item id",
}


@pytest.mark.parametrize("mode", sorted(CHEATS))
def test_a_path_breaking_the_rules_fails_the_cell_naming_the_first_bad_case(tmp_path, monkeypatch, clean_pop, mode):
    reg, cfg = _setup(tmp_path, monkeypatch, mode)
    res = run(cfg, reg, report=True)
    assert [c.method for c in res.failed] == ["attacker"]
    first = json.loads((tmp_path / "out" / "cells" / "pop__tinyfake__s0.json").read_text())
    assert first["status"] == "ok"
    from prorlbench.engine.runner import resolve, prepare_dataset

    test = prepare_dataset(resolve(cfg, reg), "tinyfake", False).cases.test
    free = [i for i in range(30) if i not in test[0].history and i != test[0].target]
    expected = (f"method 'attacker' broke the path rules: case {test[0].case_id} (test case #0), "
                + CHEATS[mode].format(t=test[0].target, f=free[0]))
    assert res.failed[0].error.startswith(expected), res.failed[0].error
    assert not (tmp_path / "out" / "cells" / "attacker__tinyfake__s0.cases.csv.gz").exists()
    pd.testing.assert_frame_equal(_pop_cases(tmp_path / "out"), clean_pop)
    assert (tmp_path / "out" / "summary.md").exists()


def test_the_unknown_item_is_allowed_dropped_and_counted_invalid(tmp_path, monkeypatch):
    """-1 is the one id outside the catalog a path may hold (free semantic-ID decoding returns a
    code of no item as -1): scoring drops it, ``invalid`` counts it, and it earns nothing."""
    reg, cfg = _setup(tmp_path, monkeypatch, "unknown")
    cfg.ks = [1, 2]
    assert not run(cfg, reg, report=False).failed
    df = pd.read_csv(tmp_path / "out" / "cells" / "attacker__tinyfake__s0.cases.csv.gz")
    at = lambda metric, k: df[(df["metric"] == metric) & (df["k"] == k)].set_index("case")["value"]
    assert (at("invalid", 1) == 0.25).all()  # 1 of the 4 shown items is unknown
    assert (at("len", 1) == 3).all()  # dropped from the path
    # candidate 2 is candidate 1 without its unknown item: the two score alike, so @2 equals @1
    pd.testing.assert_series_equal(at("ioi", 1), at("ioi", 2))


def test_integer_tensors_are_item_ids(tmp_path, monkeypatch):
    reg, cfg = _setup(tmp_path, monkeypatch, "tensor")
    assert not run(cfg, reg, report=False).failed


def test_test_cases_reach_the_method_without_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("RT_PEEK", str(tmp_path / "peek.json"))
    reg, cfg = _setup(tmp_path, monkeypatch, "peek")
    assert not run(cfg, reg, report=False).failed
    seen = json.loads((tmp_path / "peek.json").read_text())
    assert seen["test_refs"] and all(r == [] for r in seen["test_refs"])
    assert seen["train_refs"] > 0  # train cases keep the reference: SFT learns from it


def test_mutating_cases_and_data_changes_no_other_cell_and_not_its_own_scoring(tmp_path, monkeypatch, clean_pop):
    reg, cfg = _setup(tmp_path, monkeypatch, "mutate", methods=["attacker", "pop"], workers=0)
    res = run(cfg, reg, report=False)
    assert not res.failed
    pd.testing.assert_frame_equal(_pop_cases(tmp_path / "out"), clean_pop)
    from prorlbench.folder.store import read_paths

    stored, _ = read_paths(tmp_path / "out" / "cells" / "attacker__tinyfake__s0.paths.json.gz")
    assert all(c.history for c in stored)  # scored on the harness's cases, not the mutated copies


def test_the_data_a_method_gets_is_read_only(tmp_path, monkeypatch):
    reg, cfg = _setup(tmp_path, monkeypatch, "write-data")
    res = run(cfg, reg, report=False)
    assert [c.method for c in res.failed] == ["attacker"]
    assert res.failed[0].error == "TypeError: 'mappingproxy' object does not support item assignment"


@pytest.mark.parametrize("mode, error", [
    ("os-exit", "the cell's worker process exited with code 0 before the cell finished (os._exit, a crash or "
                "an abort inside the method)"),
    ("sigkill", "the cell's worker process was killed by SIGKILL before the cell finished"),
])
def test_a_worker_that_dies_fails_only_its_cell_and_the_summary_is_written(tmp_path, monkeypatch, clean_pop,
                                                                           mode, error):
    reg, cfg = _setup(tmp_path, monkeypatch, mode, seeds=[0, 1])
    res = run(cfg, reg, report=True)
    assert sorted((c.method, c.seed) for c in res.failed) == [("attacker", 0), ("attacker", 1)]
    assert {c.error for c in res.failed} == {error}
    status = json.loads((tmp_path / "out" / "cells" / "attacker__tinyfake__s1.json").read_text())
    assert status["status"] == "failed" and status["error"] == error
    pd.testing.assert_frame_equal(_pop_cases(tmp_path / "out"), clean_pop)
    assert "pop" in (tmp_path / "out" / "summary.md").read_text()


def test_a_method_that_swallows_the_timeout_is_killed_from_outside(tmp_path, monkeypatch, clean_pop):
    monkeypatch.setattr(local, "KILL_GRACE", 1.0)
    reg, cfg = _setup(tmp_path, monkeypatch, "swallow-timeout", cell_timeout=1.0)
    res = run(cfg, reg, report=True)
    assert [c.method for c in res.failed] == ["attacker"]
    assert res.failed[0].error == ("timed out: the cell ran past cell_timeout = 1 s and did not stop; its worker "
                                   "process was killed after 2 s; the grid goes on")
    pd.testing.assert_frame_equal(_pop_cases(tmp_path / "out"), clean_pop)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_global_change_fails_its_own_cell(tmp_path, monkeypatch, clean_pop, workers):
    reg, cfg = _setup(tmp_path, monkeypatch, "dtype", workers=workers)
    try:
        res = run(cfg, reg, report=False)
    finally:
        torch.set_default_dtype(torch.float32)
    assert [c.method for c in res.failed] == ["attacker"]
    assert res.failed[0].error == ("the method changed global state (torch default dtype: "
                                   "torch.float32 -> torch.float64) and did not restore it")
    pd.testing.assert_frame_equal(_pop_cases(tmp_path / "out"), clean_pop)


def test_forged_stored_paths_are_refused_when_rescored(tmp_path, monkeypatch):
    """Stored paths rewritten to [target], with the checksum in the status updated to match."""
    import gzip

    from prorlbench.folder.results import RunFolder

    reg, cfg = _setup(tmp_path, monkeypatch, "", methods=["pop"])
    assert not run(cfg, reg, report=False).failed
    folder = RunFolder(tmp_path / "out")
    name = "pop__tinyfake__s0"
    p = folder.cell_paths(name)
    doc = json.loads(gzip.decompress(p.read_bytes()))
    doc["paths"] = [[[c["target"]]] * len(ps) for c, ps in zip(doc["cases"], doc["paths"])]
    p.write_bytes(gzip.compress(json.dumps(doc).encode(), mtime=0))
    st = folder.read_status(name)
    st.files = folder.checksums(name)
    folder.write_status(name, st)
    res = run(cfg, reg, report=False, rescore_only=True)
    assert len(res.failed) == 1
    assert res.failed[0].error.startswith(
        f"re-scoring stored paths failed: method 'pop' broke the path rules: case {doc['cases'][0]['id']} "
        f"(test case #0), candidate 0, position 0: item {doc['cases'][0]['target']} is the case's target")


@pytest.mark.slow
def test_workers_give_the_same_per_case_values_as_the_runner(tmp_path, monkeypatch):
    """Determinism: the cells of a grid computed in this process, in one worker and in two
    workers at once give identical per-case tables."""
    tables = []
    for workers in (0, 1, 2):
        tmp = tmp_path / f"w{workers}"
        reg, cfg = setup(tmp, monkeypatch, methods=["behaving", "pop", "random"], seeds=[0, 1], workers=workers)
        res = run(cfg, reg, report=False)
        assert not res.failed
        df = pd.read_csv(tmp / "out" / "cases.csv.gz")
        tables.append(df.sort_values(list(df.columns)).reset_index(drop=True))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    pd.testing.assert_frame_equal(tables[0], tables[2])


@pytest.mark.slow
def test_spawn_workers_the_cuda_path_give_the_same_values(tmp_path, monkeypatch, clean_pop):
    """On CUDA a worker is a spawned interpreter that gets the work shipped (a CUDA context does
    not survive fork); on CPU the same path must give the same per-case values."""
    pytest.importorskip("ray")  # cloudpickle ships the --plugins-dir classes by value
    from types import MappingProxyType

    import prorlbench.executors as executors

    monkeypatch.setattr(executors, "EXECUTORS", MappingProxyType(
        {**executors.EXECUTORS, "local": lambda: local.LocalExecutor(start_method="spawn")}))
    reg, cfg = _setup(tmp_path, monkeypatch, "os-exit")
    res = run(cfg, reg, report=False)
    assert [c.method for c in res.failed] == ["attacker"]
    assert res.failed[0].error.startswith("the cell's worker process exited with code 0")
    pd.testing.assert_frame_equal(_pop_cases(tmp_path / "out"), clean_pop)


def test_a_fork_whose_openmp_pool_cannot_be_paused_computes_with_one_thread(tmp_path, monkeypatch, clean_pop, caplog):
    """Without omp_pause_resource_all a forked child's parallel region would wait forever on the
    runner's threads: the worker then sets one thread, and says so."""
    monkeypatch.setattr(local, "_pause_openmp", lambda: False)
    reg, cfg = _setup(tmp_path, monkeypatch, "", methods=["pop"], threads=2)
    assert not run(cfg, reg, report=False).failed
    assert "cannot pause torch's OpenMP threads before fork; the worker runs with 1 thread" in caplog.text
    pd.testing.assert_frame_equal(_pop_cases(tmp_path / "out"), clean_pop)
