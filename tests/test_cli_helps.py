"""The CLI helps people who make mistakes (issue 16): --version, one-line errors with "did you
mean", no abbreviations, --dry-run, list NAME --details with the profile's values, the profile in
the summary header, no half-made folder, collision-free run names, self-contained help, quiet and
log levels, plain progress lines, TensorBoard events, [display], dataset variants, broken plugin
files warned during run, the weak-simulator warning."""

from __future__ import annotations

import dataclasses
import logging
import textwrap

import pytest

from prorlbench import __version__
from prorlbench.cli import build_parser, main
from prorlbench.config import field_help
from prorlbench.plugins import KINDS, load_registry
from prorlbench.console.progress import PlainProgress
from prorlbench.settings.runconfig import RunConfig, default_run_name
from prorlbench.seq.seqtrain import warn_if_weak

from test_cli import env, fake_run, one_line_error  # noqa: F401  (fixture)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"prorlbench {__version__}"


@pytest.mark.parametrize("argv,expect", [
    (["run", "--devcie", "cpu"], "unrecognized argument --devcie (did you mean '--device'?)"),
    (["run", "--dev", "cpu"], "unrecognized argument --dev (did you mean '--device'?)"),  # no abbreviations
    (["run", "--seeds", "a"], "argument --seeds: expected comma-separated integers or ranges (0-2), got 'a'"),
    (["run", "--profile", "quik"], "argument --profile: invalid choice: 'quik'"),
    (["report", "x", "--stlye", "paper"], "did you mean '--style'?"),
    (["list", "--detials"], "did you mean '--details'?"),
])
def test_bad_flags_and_values_are_one_line_exit_2(argv, expect, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = one_line_error(capsys)
    assert expect in err


def test_dry_run_prints_grid_and_configs_and_writes_nothing(env, capsys):
    root = env[0]
    assert main(fake_run(env, "--methods", "random,pop", "--seeds", "0,1", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing is computed" in out
    assert "grid: 4 cells = 2 method(s) x 1 dataset(s) x 2 seed(s)" in out
    assert "random/tinyfake/s1" in out.replace("_", "/") or "random" in out
    assert "[datasets.tinyfake]" in out and "[cases]" in out and "max_path_len = 4" in out
    assert "profile: quick (a small budget" in out
    assert not (root / "out").exists()


def test_dry_run_estimates_each_cell_and_warns_about_official_on_cpu(env, capsys):
    assert main(fake_run(env, "--methods", "random,pop", "--seeds", "0-1", "--dry-run")) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("estimated cost"))
    assert "path passes/s (30 items" in lines[at]  # the rate measured on the fake data's catalog
    cells = lines[at + 1: at + 5]
    assert [ln.split()[0] for ln in cells] == ["random__tinyfake__s0", "random__tinyfake__s1",
                                               "pop__tinyfake__s0", "pop__tinyfake__s1"]
    assert all("12 test cases x 2 paths, 1 scorer(s)" in ln and "~" in ln for ln in cells)
    assert lines[at + 5].startswith("  total: ~") and "for 4 cell(s)" in lines[at + 5]
    assert "official" not in cap.err
    assert main(fake_run(env, "--methods", "pop", "--profile", "official", "--dry-run")) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "official" in ln]
    assert len(err) == 1 and "sized for GPUs and would run on the CPU here" in err[0]


def test_the_estimate_counts_sft_and_rl_stages_from_the_profile():
    from prorlbench.config import build_config
    from prorlbench.commands.estimate import RL_PASSES, SFT_PASSES, cell_passes
    from prorlbench.rl.config import RLConfig

    n = {"train": 1000, "valid": 100, "test": 50}
    quick = build_config(RLConfig, {}, profile="quick")
    rl, text = cell_passes(quick, n, k_max=10, n_eval=1, rl=True)
    sft, _ = cell_passes(quick, n, k_max=10, n_eval=1, rl=False)
    assert "RL 10 epochs x 512 cases x 8 samples" in text and "SFT 8 epochs x 1000 cases" in text
    assert rl - sft == pytest.approx(10 * (512 * 8 * RL_PASSES + 0.3 * 100))
    assert sft > 8 * 1000 * SFT_PASSES
    official = build_config(RLConfig, {}, profile="official")
    assert cell_passes(official, n, 10, 1, rl=True)[0] > 10 * rl  # sized for GPUs
    plain, text = cell_passes(object(), n, 10, 2)
    assert text == "50 test cases x 10 paths, 2 scorer(s)" and plain > 0


def test_list_one_method_with_the_profiles_values(capsys, monkeypatch):
    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    assert main(["list", "methods", "prorl", "--details"]) == 0
    out = capsys.readouterr().out
    assert "naive-pg" not in out and "[methods.sft]" not in out   # only the one method
    row = next(ln.split() for ln in out.splitlines() if ln.strip().startswith("sft_epochs"))
    assert row[1:3] == ["8", "30"]        # the quick value, then the default it differs from
    assert main(["list", "methods", "prorl", "--details", "--profile", "paper"]) == 0
    row = next(ln.split() for ln in capsys.readouterr().out.splitlines()
               if ln.strip().startswith("sft_epochs"))
    assert row[1] == "30"
    assert main(["list", "methods", "prorll"]) == 2
    assert "did you mean 'prorl'" in one_line_error(capsys)


def test_summary_header_names_the_profile(env, capsys):
    assert main(fake_run(env, "--methods", "random,pop")) == 0
    out = capsys.readouterr().out
    assert "Profile: quick (a small budget for a first look," in out
    assert "not for paper numbers" in (env[0] / "out" / "summary.md").read_text()


def test_bad_input_leaves_no_half_made_folder(env, capsys):
    root = env[0]
    assert main(fake_run(env, "--methods", "random", "--datasets", "tinybroken")) == 2
    assert "broken.csv" in one_line_error(capsys)
    assert not (root / "out").exists()
    # an existing run folder keeps its cells and gets the error in run.log
    assert main(fake_run(env, "--methods", "random")) == 0
    capsys.readouterr()
    assert main(fake_run(env, "--methods", "random", "--datasets", "tinyfake,tinybroken")) == 2
    capsys.readouterr()
    log = (root / "out" / "run.log").read_text()
    assert "run stopped" in log and "broken.csv" in log
    assert (root / "out" / "cells").is_dir()


def test_default_run_names_never_collide():
    methods = [f"method-number-{i}" for i in range(12)]
    a = default_run_name(RunConfig(methods=methods, datasets=["synthetic", "movielens"]))
    b = default_run_name(RunConfig(methods=methods, datasets=["synthetic", "csv"]))
    assert a != b and len(a) <= 100 and len(b) <= 100
    assert default_run_name(RunConfig(methods=["random", "pop"])) == "random+pop_synthetic"


def test_help_texts_are_self_contained(capsys, monkeypatch):
    monkeypatch.delenv("PRORLBENCH_PLUGINS", raising=False)
    reg = load_registry(())
    from prorlbench.seq.cases import CaseConfig

    classes = {CaseConfig, RunConfig}
    classes |= {reg.get(k, n).config_cls for k in KINDS for n in reg.names(k)
                if getattr(reg.get(k, n), "config_cls", None) is not None}
    for cls in classes:
        if dataclasses.is_dataclass(cls):
            for name, text in field_help(cls).items():
                assert "SPEC" not in text, (cls.__name__, name, text)
    for cmd in ("run", "report", "list"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([cmd, "--help"])
        assert "SPEC" not in capsys.readouterr().out


def test_quiet_and_log_level(env, capsys):
    assert main(fake_run(env, "--methods", "random")) == 0   # fake_run passes --quiet
    err = capsys.readouterr().err
    assert "cases on tinyfake" not in err and "cell random" not in err
    argv = [a for a in fake_run(env, "--methods", "random", "--force", "--no-progress") if a != "--quiet"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "cell random/tinyfake/s0 ok" in err.replace("_", "/") or "ok (" in err
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--log-level", "loud"])
    assert exc.value.code == 2


def test_plain_progress_lines_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PROGRESS_INTERVAL", "0")
    bar = PlainProgress(total=3, desc="cells")
    bar.set_postfix_str("synthetic: training simulators")
    bar.update(1)
    bar.update(2)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("cells: 1/3 (33%)") and "training simulators" in lines[0]
    assert lines[-1].startswith("cells: 3/3 (100%)")
    assert "\r" not in "".join(lines)
    assert list(PlainProgress(range(3), desc="x", disable=True)) == [0, 1, 2]


def test_running_shows_the_simulator_stage(env, capsys, monkeypatch):
    monkeypatch.setenv("PRORLBENCH_PROGRESS_INTERVAL", "0")
    root, plug, cfg = env
    argv = [a for a in fake_run(env, "--methods", "random") if a != "--quiet"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "tinyfake: preparing (data, simulators, cases)" in err
    assert "cells: 1/1 (100%)" in err


def test_tensorboard_events_read_back(env, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = env[0] / "tb"
    assert main(fake_run(env, "--methods", "flaky", "--seeds", "0", "--tensorboard", str(tb))) == 0
    runs = [p for p in tb.iterdir() if p.is_dir()]
    assert len(runs) == 1 and "flaky" in runs[0].name
    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"loss", "length"}
    loss = acc.Scalars("loss")
    assert [e.step for e in loss] == [0, 1, 2]
    assert [round(e.value, 6) for e in loss] == [1.0, 0.5, round(1 / 3, 6)]
    assert (env[0] / "out" / "train_log.csv").exists()    # the CSV log stays


def test_display_names_override(env, capsys):
    root, plug, cfg = env
    cfg.write_text(cfg.read_text() + '\n[display]\npop = "Popularity"\nioi = "Influence"\n')
    assert main(fake_run(env, "--methods", "random,pop")) == 0
    out = capsys.readouterr().out
    assert "| Popularity" in out and "Influence ↑" in out
    cfg.write_text(cfg.read_text() + 'popp = "x"\n')
    assert main(fake_run(env, "--methods", "pop")) == 2
    assert "did you mean 'pop'" in one_line_error(capsys)


def test_dataset_variants_are_separate_datasets(env, capsys):
    root, plug, cfg = env
    cfg.write_text(cfg.read_text() + textwrap.dedent('''
        [datasets.tiny-small]
        plugin = "tinyfake"
        n_cases = 5
    '''))
    assert main(fake_run(env, "--methods", "random,pop", "--datasets", "tinyfake,tiny-small")) == 0
    out = capsys.readouterr().out
    assert "## tinyfake (eval: fakesim)" in out and "## tiny-small (eval: fakesim)" in out
    import pandas as pd

    s = pd.read_csv(root / "out" / "summary.csv")
    assert set(s["dataset"]) == {"tinyfake", "tiny-small"}
    assert set(s[s["dataset"] == "tiny-small"]["n_cases"]) == {5}
    assert set(s[s["dataset"] == "tinyfake"]["n_cases"]) == {12}
    written = (root / "out" / "config.toml").read_text()
    assert 'plugin = "tinyfake"' in written
    cfg.write_text(cfg.read_text() + '\n[datasets.bad]\nplugin = "tinyfak"\n')
    assert main(fake_run(env, "--methods", "pop")) == 2
    assert "did you mean 'tinyfake'" in one_line_error(capsys)


def test_broken_plugin_file_warns_during_run(env, capsys):
    root, plug, cfg = env
    (plug / "broken_plugin.py").write_text("import not_a_module_xyz\n")
    assert main(fake_run(env, "--methods", "random")) == 0
    err = capsys.readouterr().err            # --quiet still shows warnings
    assert "warning: plugin" in err and "broken_plugin.py" in err and "not_a_module_xyz" in err


def test_weak_simulator_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="prorlbench"):
        assert warn_if_weak("sasrec", "ml", 0.05, 0.08)
        assert not warn_if_weak("sasrec", "ml", 0.10, 0.08)
        assert not warn_if_weak("sasrec", "ml", None, 0.08)
    assert len(caplog.records) == 1 and "weaker than popularity" in caplog.records[0].getMessage()
