"""Red team, issue 25 items 7 and 8: the remaining tracebacks become one-line errors with the
right exit code, nothing waits forever, TensorBoard scalars survive a resume, and the suite does
not depend on the caller's ``PRORLBENCH_CACHE_DIR``.

Each attack asserts the exact behaviour: the one-line error (or the failed cells and their
reason), the exit code, and that what was already on disk is unchanged.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from prorlbench.cli import main
from prorlbench.folder.results import RunFolder

from runner_support import BUILTINS_FOR_FAKES, REPO, fake_env


@pytest.fixture
def env(tmp_path, monkeypatch):
    tmp_path, plug, cfg = fake_env(tmp_path, monkeypatch)
    (plug / "executors.py").write_text(EXECUTORS)
    (plug / "logging_method.py").write_text(LOGGING_METHOD)
    return tmp_path, plug, cfg


def run_args(env, *extra: str, methods: str = "random,pop", out: str | None = None) -> list[str]:
    root, plug, cfg = env
    return ["run", "--config", str(cfg), "--plugins-dir", str(plug), "--quiet", "--no-progress",
            "--device", "cpu", "--out", out or str(root / "out"), "--methods", methods, *extra]


def error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [ln for ln in err.splitlines() if ln.startswith("prorlbench: error: ")]


def one_line_error(capsys) -> str:
    errors = error_lines(capsys)
    assert len(errors) == 1, errors
    return errors[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------
# Executor plugins that misbehave
# --------------------------------------------------------------------------------------------

EXECUTORS = textwrap.dedent('''
    """Executors that break the contract in each way a plugin can."""
    from prorlbench import hookimpl
    from prorlbench.api import ExecutorSpec


    class Bad:
        def __init__(self, name):
            self.name = name

        def run(self, jobs, work, where):
            if self.name == "ex-raises-first":
                raise RuntimeError("cluster on fire")
            first = work(jobs[0])
            yield first
            if self.name == "ex-raises":
                raise RuntimeError("cluster on fire")
            if self.name == "ex-garbage":
                yield "oops"
            if self.name == "ex-twice":
                yield first
            # ex-short: returns without the other cells


    def broken_factory():
        raise RuntimeError("no cluster configured")


    @hookimpl
    def register_executors(register):
        for name in ("ex-raises-first", "ex-raises", "ex-garbage", "ex-twice", "ex-short"):
            register(ExecutorSpec(name=name, summary="misbehaves", factory=lambda n=name: Bad(n)))
        register(ExecutorSpec(name="ex-factory", summary="cannot be built", factory=broken_factory))
''')


@pytest.mark.parametrize("executor,reason,first_ok", [
    ("ex-raises-first", "raised RuntimeError: cluster on fire", False),
    ("ex-raises", "raised RuntimeError: cluster on fire", True),
    ("ex-garbage", "yielded 'oops' (str), not a CellStatus", True),
    ("ex-twice", "reported cell random__tinyfake__s0, which it was not given or had reported already", True),
    ("ex-short", "finished without reporting every cell", True),
])
def test_an_executor_that_raises_or_yields_garbage_fails_the_cells_it_did_not_report(env, capsys, executor,
                                                                                     reason, first_ok):
    rc = main(run_args(env, "--executor", executor, "--seeds", "0,1"))
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    cells = pd.read_csv(env[0] / "out" / "cells.csv").set_index(["method", "seed"])  # the summary is written
    assert len(cells) == 4
    expect = f"executor '{executor}' {reason}"
    unreported = cells.index[1:] if first_ok else cells.index
    for key in unreported:
        assert cells.loc[key, "status"] == "failed" and cells.loc[key, "error"] == expect
    if first_ok:
        assert cells.loc[("random", 0), "status"] == "ok"
    summary = [ln for ln in err.splitlines() if ln.startswith("prorlbench: ")]
    assert len(summary) == 1 and summary[0].startswith(f"prorlbench: {len(unreported)} of 4 cells failed: ")
    assert summary[0].endswith(f"(first: {expect}); see {env[0] / 'out' / 'cells.csv'} and run.log")
    folder = RunFolder(env[0] / "out")
    assert folder.read_status("pop__tinyfake__s1").error == expect  # a status file, like any failure


def test_an_executor_factory_that_raises_is_one_line_exit_2(env, capsys):
    assert main(run_args(env, "--executor", "ex-factory")) == 2
    assert one_line_error(capsys) == ("prorlbench: error: executor 'ex-factory': its factory failed "
                                      "(RuntimeError: no cluster configured)")
    assert not (env[0] / "out").exists()


# --------------------------------------------------------------------------------------------
# Cell status files that are folders or absurd JSON
# --------------------------------------------------------------------------------------------


def test_a_status_file_that_is_a_folder_is_one_line_exit_2_and_touches_nothing(env, capsys):
    assert main(run_args(env)) == 0
    out = env[0] / "out"
    status = out / "cells" / "random__tinyfake__s0.json"
    status.unlink()
    status.mkdir()
    (status / "keep.txt").write_text("mine")
    before = snapshot(out / "cells")
    capsys.readouterr()
    assert main(run_args(env)) == 2
    assert one_line_error(capsys) == (f"prorlbench: error: {status}: cannot replace it (Is a directory; "
                                      "prorlbench keeps a cell file there); move it away and re-run")
    assert snapshot(out / "cells") == before  # the folder and the other cells are untouched


def test_a_deeply_nested_status_is_malformed_and_the_cell_recomputed(env, capsys):
    assert main(run_args(env)) == 0
    out = env[0] / "out"
    status = out / "cells" / "random__tinyfake__s0.json"
    pop_before = (out / "cells" / "pop__tinyfake__s0.json").read_bytes()
    status.write_text("[" * 100_000 + "]" * 100_000)
    capsys.readouterr()
    assert main(run_args(env)) == 0
    log = (out / "run.log").read_text()
    assert f"{status}: malformed status file (maximum recursion depth exceeded" in log
    assert RunFolder(out).read_status("random__tinyfake__s0").ok  # recomputed
    assert (out / "cells" / "pop__tinyfake__s0.json").read_bytes() == pop_before  # skipped, untouched
    status.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["report", str(out), "--all-cells"]) == 0  # merged without it, warned
    assert "merged 1 finished cell(s)" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Paths the file system refuses
# --------------------------------------------------------------------------------------------


def _refuse_writes_under(monkeypatch, folder: Path, err: int = errno.EROFS) -> None:
    """What a read-only folder does, also for root: opening a file below ``folder`` for writing
    fails (``open``, ``io.open``, ``os.open``: ``tempfile`` and the atomic writer use the latter)."""
    import builtins
    import io

    root = str(folder.resolve())

    def below(path) -> bool:
        try:
            return os.path.abspath(os.fspath(path)).startswith(root + os.sep)
        except TypeError:
            return False

    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *a, **kw):
        if below(file) and any(c in mode for c in "wax+"):
            raise OSError(err, os.strerror(err), os.fspath(file))
        return real_open(file, mode, *a, **kw)

    def guarded_os_open(path, flags, *a, **kw):
        if below(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(err, os.strerror(err), os.fspath(path))
        return real_os_open(path, flags, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)


def test_report_into_a_read_only_folder_is_one_line_exit_2(env, capsys, monkeypatch):
    assert main(run_args(env)) == 0
    out = env[0] / "out"
    before = snapshot(out)
    capsys.readouterr()
    _refuse_writes_under(monkeypatch, out)
    assert main(["report", str(out)]) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"prorlbench: error: {out}/") and "Read-only file system" in err, err
    monkeypatch.undo()
    assert snapshot(out) == before


def test_paths_case_with_5000_digits_is_one_line_exit_2(env, capsys):
    assert main(run_args(env, methods="pop")) == 0
    capsys.readouterr()
    assert main(["paths", str(env[0] / "out"), "--method", "pop", "--case", "9" * 5000]) == 2
    assert one_line_error(capsys) == ("prorlbench: error: --case " + "9" * 39 + "…: neither an index 0..11 nor a "
                                      "case id of cell pop__tinyfake__s0 (e.g. test0, test1, test2)")
    assert main(["paths", str(env[0] / "out"), "--method", "pop", "--case", "²"]) == 2  # isdigit(), not int()
    assert "--case ²: neither an index" in one_line_error(capsys)
    assert main(["paths", str(env[0] / "out"), "--method", "pop", "--case", "3"]) == 0
    assert "case 3 of 12" in capsys.readouterr().out


def test_names_longer_than_the_file_system_allows_are_one_line_exit_2(env, capsys):
    root = env[0]
    long = "x" * 300
    assert main(run_args(env, out=long)) == 2
    assert one_line_error(capsys) == f"prorlbench: error: cannot create output folder {long}: File name too long"
    assert sorted(p.name for p in root.iterdir()) == ["fake.toml", "fakeplugins"]  # nothing made
    assert main(run_args(env, "--cache-dir", long)) == 2
    assert one_line_error(capsys).endswith("…: File name too long")
    assert main(["report", long]) == 2
    assert one_line_error(capsys).endswith("…: File name too long")
    assert main(["paths", long, "--method", "pop"]) == 2
    assert "File name too long" in one_line_error(capsys)


# --------------------------------------------------------------------------------------------
# Ray: a closed port is an error, not a wait without end
# --------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_ray_address_naming_a_closed_port_fails_fast(env, capsys):
    pytest.importorskip("ray")
    port = _closed_port()
    t0 = time.monotonic()
    assert main(run_args(env, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")) == 2
    assert time.monotonic() - t0 < 60
    assert one_line_error(capsys) == (f"prorlbench: error: --ray-address 127.0.0.1:{port}: cannot connect to a "
                                      f"Ray cluster (Connection refused at 127.0.0.1:{port} within 10 s); is its "
                                      "head running (`ray start --head`)?")


def test_ray_address_parsing_probes_only_host_port():
    from prorlbench.executors.ray import host_port

    assert host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert host_port("ray://head:10001") == ("head", 10001)
    assert host_port("[::1]:6379") == ("::1", 6379)
    assert host_port("auto") is None and host_port("head:port") is None and host_port(":1") is None


# --------------------------------------------------------------------------------------------
# A full disk while writing policy.pt, a full cold cache
# --------------------------------------------------------------------------------------------


class _FillsUp:
    """A file that takes ``room`` bytes, then fails as a full disk does (a partial write first)."""

    def __init__(self, fh, room: int):
        self._fh, self.room = fh, room

    def write(self, data):
        data = bytes(data) if not isinstance(data, str) else data
        if len(data) > self.room:
            if self.room:
                self._fh.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def _disk_full_for(monkeypatch, marker: str, room: int = 200) -> None:
    """Atomic writes whose file name contains ``marker`` hit a full disk after ``room`` bytes."""
    real_mkstemp, real_fdopen = tempfile.mkstemp, os.fdopen
    names: dict[int, str] = {}

    def mkstemp(*a, **kw):
        fd, name = real_mkstemp(*a, **kw)
        names[fd] = name
        return fd, name

    def fdopen(fd, *a, **kw):
        fh = real_fdopen(fd, *a, **kw)
        return _FillsUp(fh, room) if marker in names.get(fd, "") else fh

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "fdopen", fdopen)


@pytest.mark.parametrize("method,marker", [("logging-method", ".policy.pt."), ("sft", "sft-tinyfake")])
def test_a_full_disk_while_writing_weights_is_one_line_exit_2_and_a_rerun_resumes(env, capsys, monkeypatch,
                                                                                  method, marker):
    env[2].write_text(env[2].read_text() + "\n[methods.sft]\nsft_epochs = 1\nd_model = 16\nn_layers = 1\n"
                      "n_valid_cases = 8\nmax_history = 5\n")
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES + ",rl_family")
    _disk_full_for(monkeypatch, marker)
    assert main(run_args(env, methods=f"pop,{method}")) == 2
    err = one_line_error(capsys)
    assert err.startswith("prorlbench: error: ") and marker.strip(".") in err, err
    assert err.endswith(": cannot write (No space left on device); what was finished is kept, re-run the same "
                        "command to resume"), err
    folder = RunFolder(env[0] / "out")
    assert folder.read_status("pop__tinyfake__s0").ok  # finished work stays
    monkeypatch.undo()
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES + ",rl_family")
    monkeypatch.setenv("PRORLBENCH_CACHE_DIR", str(env[0] / "cache"))
    monkeypatch.chdir(env[0])
    assert main(run_args(env, methods=f"pop,{method}")) == 0
    assert folder.read_status(f"{method}__tinyfake__s0").ok


def test_a_read_only_cold_cache_is_one_line_exit_2(env, capsys, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PLUGINS", BUILTINS_FOR_FAKES + ",rl_family")
    env[2].write_text(env[2].read_text() + "\n[methods.sft]\nsft_epochs = 1\nd_model = 16\nn_layers = 1\n"
                      "n_valid_cases = 8\nmax_history = 5\n")
    cache = env[0] / "cache"
    cache.mkdir()
    _refuse_writes_under(monkeypatch, cache)
    assert main(run_args(env, methods="sft")) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"prorlbench: error: {cache}/") and "Read-only file system" in err, err
    monkeypatch.undo()
    assert not any(p.is_file() for p in cache.rglob("*"))


# --------------------------------------------------------------------------------------------
# TensorBoard: a killed and resumed run shows the clean run's scalars
# --------------------------------------------------------------------------------------------

LOGGING_METHOD = textwrap.dedent('''
    """Logs 4 steps of 2 scalars (8 in all) and keeps a policy (so policy.pt is written)."""
    from dataclasses import dataclass

    from torch import nn

    from prorlbench import hookimpl
    from prorlbench.api import MethodSpec
    from prorlbench.config import opt


    @dataclass
    class Cfg:
        steps: int = opt(4, "steps logged")


    class Logging:
        def __init__(self, cfg):
            self.cfg = cfg

        def fit(self, ctx):
            self.n = ctx.data.n_items
            self.policy = nn.Linear(64, 64)
            for s in range(self.cfg.steps):
                ctx.logger.log(s, loss=1.0 / (s + 1), length=2.0)

        def generate(self, cases, k):
            return [[tuple(i for i in range(self.n) if i not in c.history and i != c.target)[:2]] * k
                    for c in cases]


    @hookimpl
    def register_methods(register):
        register(MethodSpec(name="logging-method", summary="logs 8 scalars", factory=Logging, config_cls=Cfg))
''')


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {t: [(e.step, round(e.value, 6)) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_tensorboard_scalars_survive_a_resume(env, capsys):
    pytest.importorskip("tensorboard", reason="TensorBoard is an optional extra: pip install 'prorlbench[tensorboard]'")
    from torch.utils.tensorboard import SummaryWriter

    root = env[0]
    assert main(run_args(env, "--tensorboard", str(root / "tb-clean"), methods="logging-method",
                         out=str(root / "clean"))) == 0
    clean = _scalars(root / "tb-clean" / "logging-method__tinyfake__s0")
    assert sum(len(v) for v in clean.values()) == 8
    # What a killed run leaves: the cell's first steps in an event file, and no finished cell.
    killed = root / "tb" / "logging-method__tinyfake__s0"
    w = SummaryWriter(log_dir=str(killed))
    for s in range(3):
        w.add_scalar("loss", 1.0 / (s + 1), s)
        w.add_scalar("length", 2.0, s)
    w.close()
    (killed / "notes.txt").write_text("not an event file: kept")
    assert main(run_args(env, "--tensorboard", str(root / "tb"), methods="logging-method")) == 0
    assert _scalars(killed) == clean
    assert (killed / "notes.txt").read_text() == "not an event file: kept"
    assert main(run_args(env, "--tensorboard", str(root / "tb"), "--force", methods="logging-method")) == 0
    assert _scalars(killed) == clean  # a forced recomputation replaces the run too


# --------------------------------------------------------------------------------------------
# PRORLBENCH_CACHE_DIR set by the caller
# --------------------------------------------------------------------------------------------


def test_the_ray_executor_tests_pass_with_prorlbench_cache_dir_set(tmp_path):
    pytest.importorskip("ray")
    env = dict(os.environ, PRORLBENCH_CACHE_DIR=str(tmp_path / "user-cache"), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                           str(REPO / "tests" / "test_ray_executor.py")], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
    assert not (tmp_path / "user-cache").exists()  # the tests use their own caches


def test_ray_tasks_get_the_callers_prorlbench_variables(monkeypatch):
    """What the plumbing test now checks hermetically: every PRORLBENCH_* variable travels."""
    from test_ray_executor import _StubWork, _fake_ray

    from prorlbench.executors import CellJob
    from prorlbench.executors.ray import RayExecutor

    ray, calls = _fake_ray(initialized=False)
    monkeypatch.setitem(sys.modules, "ray", ray)
    for key in [k for k in os.environ if k.startswith("PRORLBENCH_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PRORLBENCH_CACHE_DIR", "/somewhere/cache")
    work = _StubWork("cpu", "")
    list(RayExecutor(num_cpus=1).run([CellJob("m", "d", 0)], work, work.where()))
    assert calls["options"][0]["runtime_env"] == {"env_vars": {"PRORLBENCH_CACHE_DIR": "/somewhere/cache"}}
