"""Red team, issue 25 item 6: config values are range-checked when read, ``--dry-run`` checks the
data paths and simulator/dataset compatibility, a diverged SFT stage is never cached, and every
cell and ``config.toml`` record the code that made them.

Each attack asserts the exact behaviour: the one-line error (file, table, key, range and value),
the exit code, and that nothing was computed or written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from prorlbench import __version__
from prorlbench.cli import main
from prorlbench.config import build_config, check_bounds
from prorlbench.errors import ConfigError
from prorlbench.plugins import KINDS, load_registry
from prorlbench.folder.results import RunFolder

from runner_support import BUILTINS_FOR_FAKES, REPO, fake_env

ALL_BUILTINS = BUILTINS_FOR_FAKES + ",rl_family,irn,sasrec,gru4rec,oracle,csv,movielens,synthetic"


@pytest.fixture
def env(tmp_path, monkeypatch):
    return fake_env(tmp_path, monkeypatch, ALL_BUILTINS)


def run_args(env, *extra: str, methods: str = "random") -> list[str]:
    root, plug, cfg = env
    return ["run", "--config", str(cfg), "--plugins-dir", str(plug), "--quiet", "--no-progress",
            "--device", "cpu", "--out", str(root / "out"), "--methods", methods, *extra]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("prorlbench: error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def with_table(env, table: str) -> Path:
    cfg = env[2]
    cfg.write_text(cfg.read_text() + "\n" + table + "\n")
    return cfg


# --------------------------------------------------------------------------------------------
# Ranges
# --------------------------------------------------------------------------------------------

RANGE_ATTACKS = [
    ("prorl", "[methods.prorl]\nlr = -1", "[methods.prorl] key 'lr': must be > 0, got -1.0"),
    ("prorl", "[methods.prorl]\nbeta = -5", "[methods.prorl] key 'beta': must be >= 0, got -5.0"),
    ("prorl", "[methods.prorl]\ngrad_clip = -1", "[methods.prorl] key 'grad_clip': must be >= 0, got -1.0"),
    ("prorl", "[methods.prorl]\nstop_threshold = 7",
     "[methods.prorl] key 'stop_threshold': must be in [0, 1], got 7.0"),
    ("sft", "[methods.sft]\nsft_lr = 0", "[methods.sft] key 'sft_lr': must be > 0, got 0.0"),
    ("prorl", "[methods.prorl]\ngamma = 1.5", "[methods.prorl] key 'gamma': must be in [0, 1], got 1.5"),
    ("prorl", "[methods.prorl]\nwarmup_frac = 1", "[methods.prorl] key 'warmup_frac': must be in [0, 1), got 1.0"),
    ("prorl", "[methods.prorl]\nsft_epochs = 0", "[methods.prorl] key 'sft_epochs': must be >= 1, got 0"),
    ("prorl", "[methods.prorl]\nsamples_per_case = 0",
     "[methods.prorl] key 'samples_per_case': must be >= 1, got 0"),
    ("prorl", "[methods.prorl]\nw_ctr = -0.5", "[methods.prorl] key 'w_ctr': must be >= 0, got -0.5"),
    ("prorl", "[methods.prorl]\ndropout = 1", "[methods.prorl] key 'dropout': must be in [0, 1), got 1.0"),
    ("prorl", "[methods.prorl]\nper_dataset = {tinyfake = {lr = -1e-4}}",
     "[methods.prorl]: per_dataset.tinyfake key 'lr': must be > 0, got -0.0001"),
    ("irn", "[methods.irn]\nlr = 0", "[methods.irn] key 'lr': must be > 0, got 0.0"),
    ("irn", "[methods.irn]\nweight_decay = -0.1", "[methods.irn] key 'weight_decay': must be >= 0, got -0.1"),
    ("random", "[datasets.synthetic]\nsplit = [1.5, -0.25, -0.25]",
     "[datasets.synthetic] key 'split': must be >= 0, got -0.25"),
    ("random", "[datasets.movielens]\nsplit = [0.8, -0.1, 0.3]",
     "[datasets.movielens] key 'split': must be >= 0, got -0.1"),
    ("random", "[simulators.sasrec]\nlr = -1", "[simulators.sasrec]: lr must be > 0, got -1.0"),
    ("random", "[simulators.gru4rec]\nlr = 0", "[simulators.gru4rec]: lr must be > 0, got 0.0"),
]


@pytest.mark.parametrize("method,table,expect", RANGE_ATTACKS, ids=[a[1].split("\n")[1] for a in RANGE_ATTACKS])
def test_an_out_of_range_value_is_one_line_naming_file_table_and_key(env, capsys, method, table, expect):
    cfg = with_table(env, table)
    assert main(run_args(env, methods=method)) == 2
    assert one_line_error(capsys) == f"prorlbench: error: {cfg} {expect}"
    assert not (env[0] / "out").exists() and not (env[0] / "cache").exists()  # nothing computed


@pytest.mark.parametrize("table", ["grad_clip = 0", "stop_threshold = 0", "stop_threshold = 1", "beta = 0",
                                   "w_ctr = 0", "gamma = 1", "max_path_len = 0"])
def test_the_documented_edge_values_are_accepted(table):
    from prorlbench.rl.config import RLConfig

    key, value = (s.strip() for s in table.split("="))
    cfg = build_config(RLConfig, {key: float(value) if "." in value or key != "max_path_len" else int(value)})
    assert getattr(cfg, key) == float(value)


def test_a_command_line_profile_value_is_checked_like_the_file(monkeypatch):
    from prorlbench.rl.config import RLConfig

    monkeypatch.setitem(RLConfig.PROFILES, "quick", {**RLConfig.PROFILES["quick"], "lr": -5e-4})
    with pytest.raises(ConfigError, match=r"^x key 'lr': must be > 0, got -0.0005$"):
        build_config(RLConfig, {}, where="x", profile="quick")


def test_every_declared_default_and_profile_value_is_in_its_range(monkeypatch):
    """A range that the shipped defaults or profiles break would refuse every run."""
    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    reg = load_registry(())
    from prorlbench.seq.cases import CaseConfig

    classes = {CaseConfig} | {reg.get(k, n).config_cls for k in KINDS for n in reg.names(k)
                              if dataclasses.is_dataclass(getattr(reg.get(k, n), "config_cls", None))}
    checked = 0
    for cls in classes:
        for f in dataclasses.fields(cls):
            bounds = f.metadata.get("bounds")
            if not bounds:
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            check_bounds(default, bounds, f"{cls.__name__}.{f.name} default")
            for name, prof in (getattr(cls, "PROFILES", None) or {}).items():
                if f.name in prof:
                    check_bounds(prof[f.name], bounds, f"{cls.__name__}.{f.name} profile {name}")
            checked += 1
        for name in getattr(cls, "PROFILES", None) or {}:
            build_config(cls, {}, profile=name)
    assert checked >= 40  # the RL family alone declares most of them


def test_list_details_shows_each_range(capsys, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PLUGINS", "rl_family,metrics")
    assert main(["list", "methods", "prorl", "--details"]) == 0
    out = capsys.readouterr().out
    assert "RL learning rate (AdamW) [> 0]" in out
    assert "gradient-norm clip (0: no clipping) [>= 0]" in out
    assert "[in [0, 1]]" in out


# --------------------------------------------------------------------------------------------
# sft_lr = 1e30: never trained into the cache, never loaded
# --------------------------------------------------------------------------------------------

SFT_TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "samples_per_case": 4, "batch_cases": 8, "epochs": 1,
            "sft_epochs": 2, "sft_batch": 16, "grad_var_every": 0, "n_valid_cases": 16, "max_history": 6}


def test_diverged_sft_fails_naming_sft_lr_and_caches_nothing(tmp_path):
    from rl.fakes import make_ctx

    from prorlbench.rl.config import RLConfig
    from prorlbench.rl.method import RLMethod
    from prorlbench.rl.sft import SFTDiverged

    ctx = make_ctx(tmp_path, n_train=16)
    cfg = build_config(RLConfig, {**SFT_TINY, "sft_lr": 1e30})
    with pytest.raises(SFTDiverged, match=r"^SFT on dataset 'fake': non-finite (loss|weights) in epoch \d "
                                          r"\(sft_lr 1e\+30\); lower sft_lr; nothing was cached$"):
        RLMethod(cfg, None).fit(ctx)
    assert not list(Path(ctx.cache_dir).rglob("*.pt"))


def test_a_cached_sft_policy_with_non_finite_weights_is_rebuilt_not_loaded(tmp_path, caplog):
    from rl.fakes import make_ctx

    from prorlbench.rl.config import RLConfig
    from prorlbench.rl.method import RLMethod
    from prorlbench.rl.sft import sft_cache_path

    ctx = make_ctx(tmp_path, n_train=16)
    cfg = build_config(RLConfig, {**SFT_TINY, "sft_epochs": 1})
    first = RLMethod(cfg, None)
    first.fit(ctx)
    path = sft_cache_path(ctx, cfg, 4)
    state = torch.load(path, weights_only=True)
    poisoned = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state["policy"].items()}
    torch.save({"policy": poisoned, "info": state["info"]}, path)
    again = RLMethod(cfg, None)
    again.fit(ctx)
    assert again.info["cached"] == 0.0  # retrained, not loaded
    assert "unreadable (non-finite weights); retraining" in caplog.text
    assert all(bool(torch.isfinite(v).all()) for v in torch.load(path, weights_only=True)["policy"].values()
               if v.is_floating_point())
    assert again.generate(ctx.cases.test, 2) == first.generate(ctx.cases.test, 2)


def test_sft_lr_1e30_fails_its_cell_with_one_line_naming_sft_lr(env, capsys):
    with_table(env, "[methods.sft]\nsft_lr = 1e30\nsft_epochs = 2\nd_model = 16\nn_layers = 1\n"
                    "n_valid_cases = 8\nmax_history = 5")
    assert main(run_args(env, methods="sft")) == 1
    folder = RunFolder(env[0] / "out")
    st = folder.read_status("sft__tinyfake__s0")
    assert st.status == "failed" and "\n" not in st.error
    assert st.error.startswith("SFTDiverged: SFT on dataset 'tinyfake': non-finite ")
    assert st.error.endswith("(sft_lr 1e+30); lower sft_lr; nothing was cached")
    assert not list((env[0] / "cache").rglob("sft-*.pt"))


# --------------------------------------------------------------------------------------------
# --dry-run checks data paths and simulator/dataset compatibility
# --------------------------------------------------------------------------------------------


def test_dry_run_lists_and_checks_data(env, capsys):
    assert main(run_args(env, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "data paths (checked):\n  tinyfake: no data files (generated)\n" in out
    assert "  tinyfake: loads: 30 items; users train 10, valid 10, test 10\n" in out
    assert not (env[0] / "out").exists()


@pytest.mark.parametrize("setup,expect", [
    ("dev-zero", "[datasets.csv] path /dev/zero: is a character device, expected a regular file"),
    ("fifo", "[datasets.csv] path {root}/pipe.csv: is a FIFO, expected a regular file"),
    ("missing-file", "[datasets.csv] path {root}/nope.csv: not found; the run would fail loading it"),
    ("folder-as-file", "[datasets.csv] path {root}/d: is a folder, expected a regular file"),
    ("file-as-folder", "[datasets.movielens] data_dir {root}/f.txt: is a regular file, expected a folder"),
    ("no-data-dir", "dataset 'movielens' needs a data folder: pass --data-dir or set [datasets.movielens] data_dir"),
    ("data-dir-missing", "--data-dir {root}/gone: not found; the run would fail loading it"),
    ("wrong-folder", "{root}/d: no MovieLens file found: expected u.data (ML-100K) or ratings.dat (ML-1M)"),
    ("oracle", "simulator 'oracle' cannot run on dataset 'tinyfake': the oracle simulator needs the synthetic "
               "dataset (dataset 'tinyfake' has no ground-truth world); use a learned simulator such as sasrec "
               "or gru4rec"),
])
def test_dry_run_refuses_bad_data_paths_and_incompatible_simulators(env, capsys, setup, expect):
    root = env[0]
    (root / "d").mkdir()
    (root / "f.txt").write_text("x")
    if setup == "fifo":
        os.mkfifo(root / "pipe.csv")  # reading it would block forever: it must never be opened
    table = {"dev-zero": 'path = "/dev/zero"', "fifo": 'path = "pipe.csv"', "missing-file": 'path = "nope.csv"',
             "folder-as-file": 'path = "d"'}.get(setup)
    if table:  # relative paths resolve from the config file's folder
        with_table(env, "[datasets.csv]\n" + table)
    if setup == "file-as-folder":
        with_table(env, '[datasets.movielens]\ndata_dir = "f.txt"')
    dataset = {"dev-zero": "csv", "fifo": "csv", "missing-file": "csv", "folder-as-file": "csv",
               "oracle": "tinyfake"}.get(setup, "movielens")
    extra = {"data-dir-missing": ["--data-dir", str(root / "gone")], "wrong-folder": ["--data-dir", str(root / "d")],
             "oracle": ["--eval-simulator", "oracle"]}.get(setup, [])
    args = run_args(env, "--dry-run", "--datasets", dataset, *extra)
    assert main(args) == 2
    assert one_line_error(capsys) == "prorlbench: error: " + expect.format(root=root)
    assert not (root / "out").exists()


# --------------------------------------------------------------------------------------------
# Provenance: version, git commit and dirty flag in every cell and in config.toml
# --------------------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def test_cells_and_config_record_version_commit_and_dirty_flag(env, capsys, monkeypatch):
    from prorlbench.engine import runner

    calls = []
    real = runner.code_identity
    monkeypatch.setattr(runner, "code_identity", lambda: calls.append(1) or real())
    assert main(run_args(env, "--seeds", "0,1", methods="random,pop")) == 0
    assert len(calls) == 1  # once per run, not per cell
    head = _git("rev-parse", "HEAD")
    top = _git("rev-parse", "--show-toplevel")
    own_repo = head is not None and top is not None and Path(top).resolve() == REPO.resolve()
    folder = RunFolder(env[0] / "out")
    for cell in ("random__tinyfake__s0", "random__tinyfake__s1", "pop__tinyfake__s0", "pop__tinyfake__s1"):
        code = json.loads(folder.cell_status(cell).read_text())["code"]
        assert code["version"] == __version__
        if own_repo:
            assert code["commit"] == head and code["dirty"] is (_git("status", "--porcelain") != "")
        else:
            assert code["commit"] is None and code["dirty"] is None
    first = folder.config.read_text().splitlines()[0]
    expect = f"# written by prorlbench {__version__}"
    if own_repo:
        expect += f", git commit {head}" + (" (dirty)" if code["dirty"] else "")
    assert first == expect
    assert main(["report", str(env[0] / "out")]) == 0  # the comment does not disturb readers


def test_provenance_never_fails_without_git(monkeypatch):
    from prorlbench.engine import devices

    def no_git(*a, **kw):
        raise FileNotFoundError(2, "No such file or directory", "git")

    monkeypatch.setattr(devices.subprocess, "run", no_git)
    assert devices.code_identity() == {"version": __version__, "commit": None, "dirty": None}
    assert devices.code_line(devices.code_identity()) == f"prorlbench {__version__}"


def test_provenance_ignores_a_repository_that_is_not_prorlbench(monkeypatch, tmp_path):
    from prorlbench.engine import devices

    real = subprocess.run

    def elsewhere(cmd, *a, **kw):
        if cmd[-2:] == ["rev-parse", "--show-toplevel"]:
            return subprocess.CompletedProcess(cmd, 0, stdout=str(tmp_path) + "\n", stderr="")
        return real(cmd, *a, **kw)

    monkeypatch.setattr(devices.subprocess, "run", elsewhere)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "not-a-repo"))  # ignored: never answers for prorlbench
    assert devices.code_identity() == {"version": __version__, "commit": None, "dirty": None}


def test_a_status_written_before_provenance_still_loads(env, capsys):
    assert main(run_args(env)) == 0
    folder = RunFolder(env[0] / "out")
    p = folder.cell_status("random__tinyfake__s0")
    doc = json.loads(p.read_text())
    del doc["code"]
    p.write_text(json.dumps(doc))
    st = folder.read_status("random__tinyfake__s0")
    assert st is not None and st.ok and st.code == {}
    capsys.readouterr()
    assert main(run_args(env)) == 0  # the old cell is still done: not recomputed
    assert "already done" in (env[0] / "out" / "run.log").read_text()


def test_a_dataset_data_dir_key_that_overrides_the_flag_is_named_in_a_warning(tmp_path, monkeypatch, capsys):
    """`--data-dir HIDDEN` with a config whose [datasets.movielens] data_dir names another folder
    used to read that folder without a word (the README says flags win)."""
    monkeypatch.setenv("PRORLBENCH_PLUGINS", ALL_BUILTINS)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ml").mkdir()
    (tmp_path / "hidden").mkdir()
    (tmp_path / "grid.toml").write_text('[run]\ndatasets = ["movielens"]\n[datasets.movielens]\ndata_dir = "ml"\n')
    code = main(["run", "--config", "grid.toml", "--methods", "random", "--data-dir", str(tmp_path / "hidden"),
                 "--dry-run"])
    err = capsys.readouterr().err
    assert ("warning: dataset 'movielens' reads ml ([datasets.movielens] data_dir), not "
            f"--data-dir {tmp_path / 'hidden'}; drop that key to use the flag's folder") in err
    assert code == 2 and "prorlbench: error: ml: no MovieLens file found" in err  # the folder it reads
