"""The optional Ray executor: same numbers as the local executor, crashes contained, and a clear
message when the extra is not installed."""

from __future__ import annotations

import dataclasses

import json
import os
import sys
import textwrap
from types import SimpleNamespace

import pandas as pd
import pytest

from prorlbench.cli import main

from runner_support import BUILTINS_FOR_FAKES, TINY_REAL_CONFIG, write_fakes


def test_missing_extra_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES)
    plug, cfg = write_fakes(tmp_path)
    rc = main(["run", "--methods", "pop", "--config", str(cfg), "--plugins-dir", str(plug),
               "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu", "--executor", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == ["prorlbench: error: the ray executor needs the optional extra: "
                   "pip install 'prorlbench[ray]'"]
    assert not (tmp_path / "out" / "cells").exists() or not any((tmp_path / "out" / "cells").iterdir())


@pytest.mark.slow
def test_ray_gives_the_same_results_as_local(tmp_path, monkeypatch):
    """Tiny synthetic world + SASRec, random and pop x seeds 0, 1: once in this process, once as
    Ray tasks on a local instance (started and shut down by the executor)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("prorlbench_plugins.datasets.synthetic")
    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_REAL_CONFIG)
    common = ["run", "--methods", "random,pop", "--seeds", "0,1", "--config", str(cfg), "--no-progress",
              "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    assert main(common + ["--out", str(tmp_path / "local")]) == 0
    assert main(common + ["--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert not ray.is_initialized(), "the local instance the executor started is shut down"

    local, remote = tmp_path / "local", tmp_path / "ray"
    assert (remote / "summary.csv").read_bytes() == (local / "summary.csv").read_bytes()
    a, b = pd.read_csv(local / "cases.csv.gz"), pd.read_csv(remote / "cases.csv.gz")
    pd.testing.assert_frame_equal(a, b)
    assert set(b["method"]) == {"random", "pop"} and set(b["seed"]) == {0, 1}
    cells = pd.read_csv(remote / "cells.csv")
    assert list(cells["status"]) == ["ok"] * 4
    assert "executor ray" in (remote / "run.log").read_text()
    # Worker-side records reach the run's log.
    assert (remote / "run.log").read_text().count("cell random__synthetic__s1 ok") == 1


CRASHY = textwrap.dedent('''
    """A method whose worker process dies on one seed (only ever run under the ray executor)."""
    import os
    from dataclasses import dataclass

    from prorlbench import hookimpl
    from prorlbench.api import MethodSpec
    from prorlbench.config import opt


    @dataclass
    class CrashyConfig:
        crash_seed: int = opt(1, "seed whose fit kills the process")


    class Crashy:
        def __init__(self, cfg):
            self.cfg = cfg

        def fit(self, ctx):
            self.n_items = ctx.data.n_items
            if ctx.seed == self.cfg.crash_seed:
                os._exit(3)

        def generate(self, cases, k):
            out = []
            for c in cases:
                free = [i for i in range(self.n_items) if i not in c.history and i != c.target]
                out.append([tuple(free[j : j + 2]) for j in range(k)])
            return out


    @hookimpl
    def register_methods(register):
        register(MethodSpec(name="crashy", summary="kills its process on one seed", factory=Crashy,
                            config_cls=CrashyConfig))
''')


@pytest.mark.slow
def test_a_crashed_worker_fails_only_its_cell(tmp_path, monkeypatch, capsys):
    """Also ships a plugin simulator and methods from a --plugins-dir folder to the workers."""
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES)  # passed on to the tasks
    plug, cfg = write_fakes(tmp_path)
    (plug / "crashy.py").write_text(CRASHY)
    out = tmp_path / "out"
    rc = main(["run", "--methods", "pop,crashy,flaky", "--seeds", "0,1", "--config", str(cfg),
               "--plugins-dir", str(plug), "--out", str(out), "--no-progress", "--device", "cpu",
               "--executor", "ray", "--cache-dir", str(tmp_path / "cache")])
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("prorlbench:")]
    assert rc == 1
    assert not ray.is_initialized()
    cells = pd.read_csv(out / "cells.csv").set_index(["method", "seed"])
    assert cells.loc[("pop", 0), "status"] == cells.loc[("pop", 1), "status"] == "ok"
    assert cells.loc[("crashy", 0), "status"] == "ok" and cells.loc[("flaky", 0), "status"] == "ok"
    assert cells.loc[("crashy", 1), "status"] == "failed"
    assert cells.loc[("crashy", 1), "error"].startswith("ray task died: ")
    assert "\n" not in cells.loc[("crashy", 1), "error"]
    assert "boom on seed 1" in cells.loc[("flaky", 1), "error"]  # an exception stays the method's
    status = json.loads((out / "cells" / "crashy__tinyfake__s1.json").read_text())
    assert status["status"] == "failed" and status["fingerprint"]
    assert len(err) == 1 and "2 of 6 cells failed" in err[0]
    cases = pd.read_csv(out / "cases.csv.gz")
    assert set(zip(cases["method"], cases["seed"])) == {("pop", 0), ("pop", 1), ("crashy", 0), ("flaky", 0)}


# --------------------------------------------------------------------------------------------
# The executor's plumbing against a stand-in `ray` module (no cluster, so GPU requests and
# cluster addresses can be checked on a CPU-only machine)
# --------------------------------------------------------------------------------------------


class _StubRes:
    def __init__(self, device: str, address: str):
        import torch

        self.device = torch.device(device)
        self.cfg = SimpleNamespace(ray_address=address, simulator="sim")
        self.eval_simulators = ["sim"]

    def fingerprint(self, job):
        return f"fp-{job.method}-{job.seed}"


class _StubWork:
    """Picklable work: ok for every cell (the stand-in ray loses the task of seed 1)."""

    def __init__(self, device: str, address: str):
        self.res = _StubRes(device, address)

    def __call__(self, job):
        from prorlbench.folder.results import CellStatus

        return CellStatus(method=job.method, dataset=job.dataset, seed=job.seed, simulator="sim",
                          eval_simulator="sim", status="ok", n_cases=3,
                          fingerprint=self.res.fingerprint(job))

    def on_device(self, device):
        import torch

        self.res.device = torch.device(device)
        return self

    def failed(self, job, message):
        from prorlbench.folder.results import CellStatus

        return CellStatus(method=job.method, dataset=job.dataset, seed=job.seed, simulator="sim",
                          eval_simulator="sim", status="failed", error=message,
                          fingerprint=self.res.fingerprint(job))

    def where(self):
        from prorlbench.executors import ExecutorContext

        return ExecutorContext(device=str(self.res.device), address=self.res.cfg.ray_address)


def _fake_ray(initialized: bool):
    import pickle
    import types

    calls = {"init": [], "options": [], "shutdown": 0, "devices": []}

    class RayError(Exception):
        pass

    class WorkerCrashedError(RayError):
        pass

    class Ref:
        def __init__(self, value=None, error=None):
            self.value, self.error = value, error

    class Remote:
        def __init__(self, fn):
            self.fn = fn

        def options(self, **kw):
            calls["options"].append(kw)
            return self

        def remote(self, blob, job, driver_device, log_path=None, threads=0):
            from prorlbench.executors.ray import load_work

            calls["devices"].append(driver_device)
            calls.setdefault("threads", []).append(threads)
            if job.seed == 1:
                return Ref(error=WorkerCrashedError("The worker died unexpectedly\nwhile executing"))
            return Ref(load_work(blob.value, "cpu")(job))

    state = {"up": initialized}
    ray = types.ModuleType("ray")
    ray.cloudpickle = pickle
    ray.exceptions = SimpleNamespace(RayError=RayError)
    ray.is_initialized = lambda: state["up"]

    def init(**kw):
        calls["init"].append(kw)
        state["up"] = True

    def shutdown():
        calls["shutdown"] += 1
        state["up"] = False

    def get(ref):
        if ref.error is not None:
            raise ref.error
        return ref.value

    ray.init, ray.shutdown, ray.get = init, shutdown, get
    cpus = lambda: (calls["init"][-1].get("num_cpus") if calls["init"] else None) or 2  # noqa: E731
    ray.cluster_resources = lambda: {"CPU": float(cpus())}
    ray.nodes = lambda: [{"Alive": True, "Resources": {"CPU": float(cpus())}}]
    ray.remote = Remote
    ray.put = lambda value: Ref(value)
    ray.wait = lambda refs, num_returns=1: (refs[:num_returns], refs[num_returns:])
    ray.cancel = lambda ref, force=False: None
    return ray, calls


@pytest.mark.parametrize("device,address,gpus", [("cpu", "", 0), ("cuda:0", "auto", 0.5)])
def test_executor_plumbing(monkeypatch, device, address, gpus):
    from prorlbench.executors import CellJob
    from prorlbench.executors.ray import RayExecutor

    ray, calls = _fake_ray(initialized=False)
    monkeypatch.setitem(sys.modules, "ray", ray)
    for key in [k for k in os.environ if k.startswith("PRORLBENCH_")]:  # e.g. a user's PRORLBENCH_CACHE_DIR
        monkeypatch.delenv(key)
    monkeypatch.setenv("PRORLBENCH_PLUGINS", "x,y")
    ex = RayExecutor(num_gpus_per_cell=0.5, num_cpus=2)
    jobs = [CellJob("m", "d", s) for s in (0, 1, 2)]
    work = _StubWork(device, address)
    statuses = list(ex.run(jobs, work, work.where()))

    assert [(s.seed, s.status) for s in statuses] == [(0, "ok"), (1, "failed"), (2, "ok")]
    assert statuses[1].error == "ray task died: WorkerCrashedError: The worker died unexpectedly while executing"
    assert statuses[1].fingerprint == "fp-m-1" and statuses[1].simulator == "sim"
    (init,) = calls["init"]
    if address:
        assert init["address"] == "auto" and "num_cpus" not in init
    else:
        assert "address" not in init and init["num_cpus"] == 2 and init["include_dashboard"] is False
    assert calls["shutdown"] == 1  # started here, so stopped here
    (opts,) = calls["options"]
    assert opts["num_gpus"] == gpus and opts["num_cpus"] == 1 and opts["max_retries"] == 0
    assert opts["runtime_env"] == {"env_vars": {"PRORLBENCH_PLUGINS": "x,y"}}
    assert calls["devices"] == [device] * 3


def test_an_existing_ray_instance_is_used_and_left_running(monkeypatch):
    from prorlbench.executors import CellJob
    from prorlbench.executors.ray import RayExecutor

    ray, calls = _fake_ray(initialized=True)
    monkeypatch.setitem(sys.modules, "ray", ray)
    work = _StubWork("cpu", "")
    statuses = list(RayExecutor(address="ray://elsewhere:10001").run([CellJob("m", "d", 0)], work,
                                                                     work.where()))
    assert [s.status for s in statuses] == ["ok"]
    assert calls["init"] == [] and calls["shutdown"] == 0 and ray.is_initialized()


def test_ray_address_comes_from_the_config_and_is_not_written(tmp_path):
    from prorlbench.settings.runconfig import NOT_WRITTEN, apply_overrides, parse_config_text

    cfg = parse_config_text('[run]\nexecutor = "ray"\nray_address = "auto"\n', "run.toml")
    assert cfg.executor == "ray" and cfg.ray_address == "auto"
    assert apply_overrides(cfg, {"ray_address": "ray://head:10001"}).ray_address == "ray://head:10001"
    assert "ray_address" in NOT_WRITTEN  # where a run ran is not part of the experiment


def test_worker_threads_divide_the_cluster_among_concurrent_tasks():
    from prorlbench.executors.ray import worker_threads

    def cluster(nodes):
        return SimpleNamespace(cluster_resources=lambda: {"CPU": float(sum(nodes))},
                               nodes=lambda: [{"Alive": True, "Resources": {"CPU": float(c)}} for c in nodes])

    assert worker_threads(cluster([16]), 4) == 4  # 4 cells at once on 16 cores
    assert worker_threads(cluster([16]), 40) == 1  # more cells than cores: one thread each
    assert worker_threads(cluster([2]), 1) == 2  # a lone cell gets both cores
    assert worker_threads(cluster([8, 8]), 1) == 8  # never more than one node holds


def test_threads_option_reaches_ray_tasks(monkeypatch):
    from prorlbench.executors import CellJob
    from prorlbench.executors.ray import RayExecutor

    ray, calls = _fake_ray(initialized=False)
    monkeypatch.setitem(sys.modules, "ray", ray)
    work = _StubWork("cpu", "")
    where = dataclasses.replace(work.where(), threads=3)
    list(RayExecutor(num_cpus=8).run([CellJob("m", "d", 0), CellJob("m", "d", 2)], work, where))
    (opts,) = calls["options"]
    assert opts["num_cpus"] == 3 and calls["threads"] == [3, 3]
    ray, calls = _fake_ray(initialized=False)
    monkeypatch.setitem(sys.modules, "ray", ray)
    list(RayExecutor(num_cpus=8).run([CellJob("m", "d", 0), CellJob("m", "d", 2)], work, work.where()))
    assert calls["options"][0]["num_cpus"] == 4 and calls["threads"] == [4, 4]  # 8 cores, 2 cells
