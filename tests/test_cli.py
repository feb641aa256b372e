"""The ``prorlbench`` command line: exit codes, one-line errors, help, list, report, config files."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prorlbench.cli import main
from prorlbench.errors import UserError
from prorlbench.plugins import load_registry
from prorlbench.settings.runconfig import parse_config_text, read_config_file
from prorlbench.engine.runner import resolve

from runner_support import BUILTINS_FOR_FAKES, FAKE_CONFIG, fake_env, write_fakes


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Fake plugins in a --plugins-dir; a private cache; entry points limited by the allow-list."""
    return fake_env(tmp_path, monkeypatch)


def fake_run(env, *extra: str) -> list[str]:
    root, plug, cfg = env
    return ["run", "--config", str(cfg), "--plugins-dir", str(plug), "--quiet", "--device", "cpu",
            "--out", str(root / "out"), *extra]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("prorlbench: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------


def test_run_prints_table_and_folder(env, capsys):
    assert main(fake_run(env, "--methods", "random,pop", "--seeds", "0,1")) == 0
    out = capsys.readouterr().out
    assert "| random" in out and "| pop" in out
    assert "4 cells (4 computed, 0 already done, 0 failed)" in out
    assert str(env[0] / "out") in out
    # The same command again resumes: nothing is recomputed.
    assert main(fake_run(env, "--methods", "random,pop", "--seeds", "0,1")) == 0
    assert "4 cells (0 computed, 4 already done, 0 failed)" in capsys.readouterr().out


def test_failed_cell_exits_1_with_one_line_summary(env, capsys):
    rc = main(fake_run(env, "--methods", "pop,flaky", "--seeds", "0,1"))
    cap = capsys.readouterr()
    assert rc == 1
    lines = [l for l in cap.err.splitlines() if l.startswith("prorlbench:")]
    assert len(lines) == 1 and "1 of 4 cells failed: flaky/tinyfake/s1" in lines[0]
    assert "boom on seed 1" in lines[0]
    assert "Traceback" not in cap.err
    md = (env[0] / "out" / "summary.md").read_text()
    assert "flaky" in md and "fail" in md.lower()  # the table marks the failed cell


def test_unknown_method_is_one_line_listing_valid_names(env, capsys):
    assert main(fake_run(env, "--methods", "popp")) == 2
    err = one_line_error(capsys)
    assert "unknown method 'popp'" in err and "did you mean 'pop'" in err
    assert "random" in err and "flaky" in err


@pytest.mark.parametrize("flag,value,expect", [
    ("--datasets", "synthetik", "unknown dataset 'synthetik'"),
    ("--eval-simulator", "fakesim,nosuch", "unknown simulator 'nosuch'"),
    ("--metrics", "ioi,nosuch", "unknown metric 'nosuch'"),
    ("--executor", "dask", "unknown executor 'dask'"),
])
def test_other_unknown_names_exit_2(env, capsys, flag, value, expect):
    assert main(fake_run(env, "--methods", "pop", flag, value)) == 2
    assert expect in one_line_error(capsys)


def test_no_methods_is_a_clear_error(env, capsys):
    assert main(fake_run(env)) == 2
    assert "no methods given" in one_line_error(capsys)


def _write(tmp: Path, text: str) -> Path:
    p = tmp / "bad.toml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("text,expect", [
    ("[run]\nseed = [0]\n", r"bad.toml [run]: unknown key 'seed' (did you mean 'seeds'?)"),
    ("[methods.pop]\nlenght = 3\n", r"bad.toml [methods.pop]: unknown key 'lenght' (did you mean 'length'?)"),
    ("[method.pop]\nlength = 3\n", r"unknown table [method] (did you mean 'methods'?)"),
    ("[methods.popp]\nlength = 3\n", r"bad.toml [methods.popp]: unknown method 'popp' (did you mean 'pop'?)"),
    ("[cases]\nmax_path_lenght = 3\n", r"bad.toml [cases]: unknown key 'max_path_lenght' (did you mean 'max_path_len'?)"),
    ("[run]\nseeds = 'a,b'\n", r"expected integers"),
    ("[run]\nks = [0]\n", r"K >= 1"),
    ("[methods.pop]\nlength = 'five'\n", r"[methods.pop] key 'length': expected an integer"),
    ("[run\n", r"invalid TOML"),
])
def test_bad_config_files_are_one_line_errors(env, capsys, text, expect):
    root, plug, _ = env
    p = _write(root, text)
    rc = main(["run", "--methods", "pop", "--config", str(p), "--plugins-dir", str(plug), "--no-progress",
               "--datasets", "tinyfake", "--simulator", "fakesim", "--out", str(root / "o")])
    assert rc == 2
    err = one_line_error(capsys)
    assert expect in err and "bad.toml" in err


@pytest.mark.parametrize("key,value", [
    ("out", "'../escape'"), ("out", "'results/../../x'"), ("cache_dir", "'c/../../../tmp'"),
    ("plugins_dirs", "['plugins/../../elsewhere']"),
])
def test_paths_from_config_files_cannot_escape(env, capsys, key, value):
    root, plug, _ = env
    p = _write(root, f"[run]\n{key} = {value}\n")
    assert main(["run", "--methods", "pop", "--config", str(p), "--no-progress"]) == 2
    err = one_line_error(capsys)
    assert f"key '{key}'" in err and "'..' is not allowed" in err


def test_command_line_overrides_config_file(env, capsys):
    root, plug, cfg = env
    p = root / "more.toml"
    p.write_text(FAKE_CONFIG.replace("[run]", "[run]\nmethods = ['random']\nseeds = [5]\n"))
    assert main(["run", "--config", str(p), "--plugins-dir", str(plug), "--no-progress", "--seeds", "2",
                 "--out", str(root / "o2")]) == 0
    cells = (root / "o2" / "cells.csv").read_text()
    assert "random,tinyfake,2," in cells and ",5," not in cells


def test_default_out_folder_is_named_after_the_grid(env, capsys):
    root, plug, cfg = env
    assert main(["run", "--config", str(cfg), "--plugins-dir", str(plug), "--no-progress",
                 "--methods", "pop"]) == 0
    assert (root / "results" / "pop_tinyfake" / "cells.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_a_clear_error(env, capsys):
    assert main(fake_run(env, "--methods", "pop", "--device", "cuda")) == 2
    assert "CUDA is not available" in one_line_error(capsys)


def test_keyboard_interrupt_exits_130_and_keeps_finished_cells(env, capsys, monkeypatch):
    import prorlbench.engine.cell as runner  # CellWork calls cell.run_cell

    real = runner.run_cell
    calls = env[0] / "calls.log"  # a file: each cell runs in a worker process of its own

    def interrupt_second(res, dctx, job, folder, **kw):
        with calls.open("a") as fh:
            fh.write(job.name + "\n")
        if len(calls.read_text().splitlines()) == 2:
            raise KeyboardInterrupt
        return real(res, dctx, job, folder, **kw)

    monkeypatch.setattr(runner, "run_cell", interrupt_second)
    assert main(fake_run(env, "--methods", "pop", "--seeds", "0,1")) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume" in err
    assert (env[0] / "out" / "cells" / "pop__tinyfake__s0.json").exists()
    monkeypatch.setattr(runner, "run_cell", real)
    assert main(fake_run(env, "--methods", "pop", "--seeds", "0,1")) == 0
    assert "(1 computed, 1 already done" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# report, list, help
# --------------------------------------------------------------------------------------------


def test_report_reproduces_summary(env, capsys):
    root = env[0]
    assert main(fake_run(env, "--methods", "random,pop", "--seeds", "0,1")) == 0
    out = root / "out"
    before = (out / "summary.csv").read_bytes()
    copy = root / "copy"
    copy.mkdir()
    for name in ("config.toml", "cases.csv.gz", "cells.csv", "train_log.csv"):
        shutil.copy(out / name, copy / name)
    capsys.readouterr()
    assert main(["report", str(copy)]) == 0
    assert "| pop" in capsys.readouterr().out
    assert (copy / "summary.csv").read_bytes() == before
    assert main(["report", str(out), "--style", "paper", "--metrics", "ioi", "--ks", "1"]) == 0
    assert (out / "summary.csv").read_bytes() == before


def test_report_all_cells_merges_grids_run_in_several_commands(env, capsys):
    root = env[0]
    out = root / "out"
    assert main(fake_run(env, "--methods", "random,pop", "--seeds", "0")) == 0
    assert main(fake_run(env, "--methods", "random", "--seeds", "1")) == 0  # the merged tables: this grid only
    import pandas as pd

    assert set(pd.read_csv(out / "cases.csv.gz")["seed"]) == {1}
    capsys.readouterr()
    assert main(["report", str(out), "--all-cells"]) == 0
    assert "merged 3 finished cell(s)" in capsys.readouterr().out
    cases = pd.read_csv(out / "cases.csv.gz")
    assert set(zip(cases["method"], cases["seed"])) == {("random", 0), ("pop", 0), ("random", 1)}
    summary = pd.read_csv(out / "summary.csv")
    assert summary[summary["method"] == "random"]["n_seeds"].max() == 2
    # a folder put together from the cells of several runs has cells/ only: --all-cells makes its tables
    for name in ("cases.csv.gz", "summary.csv", "paper.csv"):
        (out / name).unlink(missing_ok=True)
    assert main(["report", str(out), "--all-cells"]) == 0
    assert len(pd.read_csv(out / "cases.csv.gz")) == len(cases) and (out / "summary.csv").exists()


def test_report_on_a_non_run_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no cases.csv.gz" in one_line_error(capsys)
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a folder" in one_line_error(capsys)


def test_list_shows_plugins_and_broken_ones(env, capsys):
    root, plug, _ = env
    (plug / "broken.py").write_text("import not_a_module_anywhere\n")
    assert main(["list", "--plugins-dir", str(plug)]) == 0
    out = capsys.readouterr().out
    assert "tinyfake" in out and "fakesim" in out and "flaky" in out and "pop" in out
    assert "failed to load" in out and "broken.py" in out and "not_a_module_anywhere" in out
    assert main(["list", "methods", "--details", "--plugins-dir", str(plug)]) == 0
    out = capsys.readouterr().out
    assert "fail_seed" in out and "tinyfake" not in out
    assert main(["list", "method"]) == 0  # singular works too
    assert main(["list", "metods"]) == 2
    assert "did you mean 'methods'" in one_line_error(capsys)


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["report", "--help"], ["list", "--help"]])
def test_help_at_every_level(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: prorlbench" in out
    if argv != ["--help"]:
        assert "examples:" in out


# --------------------------------------------------------------------------------------------
# the config reader never crashes
# --------------------------------------------------------------------------------------------

_KEYS = ["methods", "datasets", "seeds", "ks", "out", "cache_dir", "profile", "device", "length", "shift",
         "n_items", "fail_seed", "max_path_len", "metrics", "eval_simulators", "simulator", "nope", "seed"]
_TABLES = ["run", "cases", "methods.pop", "methods.flaky", "methods.zzz", "datasets.tinyfake",
           "simulators.fakesim", "method", "run.x", "datasets"]
_scalars = st.one_of(st.integers(-3, 5), st.floats(allow_nan=True), st.booleans(),
                     st.sampled_from(["pop", "../x", "a,b", "", "quick", "cpu", "1,2", "tinyfake"]),
                     st.text(max_size=6))
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3))


def _toml_value(v) -> str:
    from prorlbench.settings.runconfig import _value

    return _value(v)


@st.composite
def _documents(draw):
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        lines.append(f"[{draw(st.sampled_from(_TABLES))}]")
        for _ in range(draw(st.integers(0, 3))):
            lines.append(f"{draw(st.sampled_from(_KEYS))} = {_toml_value(draw(_values))}")
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):  # mutate: delete or insert a character somewhere
        i = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:i] + text[i + 1:]
        else:
            text = text[:i] + draw(st.sampled_from(list("[]=\"'.,\n#{}x0"))) + text[i:]
    return text


@pytest.fixture(scope="module")
def fake_registry(tmp_path_factory):
    import os

    plug, _ = write_fakes(tmp_path_factory.mktemp("fz"))
    old = os.environ.get("PRORLBENCH_PLUGINS")
    os.environ["PRORLBENCH_PLUGINS"] = BUILTINS_FOR_FAKES
    try:
        return load_registry([plug])
    finally:
        if old is None:
            os.environ.pop("PRORLBENCH_PLUGINS")
        else:
            os.environ["PRORLBENCH_PLUGINS"] = old


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_documents())
def test_config_reader_only_raises_user_errors(fake_registry, text):
    try:
        cfg = parse_config_text(text, "fuzz.toml")
        if not cfg.methods:
            cfg.methods = ["pop"]
        resolve(cfg, fake_registry)
    except UserError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg.strip() or "invalid TOML" in msg


def test_config_file_read_errors(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        read_config_file(tmp_path / "missing.toml")
    with pytest.raises(UserError, match="is a directory"):
        read_config_file(tmp_path)
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe[run]")
    with pytest.raises(UserError, match="not UTF-8"):
        read_config_file(bad)
