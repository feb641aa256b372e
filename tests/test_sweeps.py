"""``--set`` overrides and sweeps, seed ranges, ``methods = all`` and ``--select-on valid`` (issue 28).

The end-to-end test runs a 2 x 2 sweep of ``sft`` on the tiny fake data (seconds): it runs,
resumes and reports like the same variants written by hand, and the selection names the variant
with the best validation figure, computed here again from the cells' own statuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from prorlbench.cli import main
from prorlbench.errors import ConfigError
from prorlbench.executors import expand_grid
from prorlbench.plugins import load_registry
from prorlbench.settings.runconfig import RunConfig, apply_overrides, parse_config_text, read_config_file
from prorlbench.engine.runner import resolve, run
from prorlbench.settings.sweeps import parse_set, parse_value, split_values

from runner_support import BUILTINS_FOR_FAKES, fake_env

RL = BUILTINS_FOR_FAKES + ",rl_family"
TINY_SFT = ["--set", "methods.sft.sft_epochs=1", "--set", "methods.sft.sft_batch=8", "--set", "methods.sft.d_model=16",
            "--set", "methods.sft.n_valid_cases=8"]
SWEEP = ["--set", "methods.sft.sft_lr=1e-3,3e-2", "--set", "methods.sft.max_history=2,5"]
NAMES = ["sft+sft_lr=1e-3+max_history=2", "sft+sft_lr=1e-3+max_history=5",
         "sft+sft_lr=3e-2+max_history=2", "sft+sft_lr=3e-2+max_history=5"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    return fake_env(tmp_path, monkeypatch, allow=RL)


def fake_cfg(env, **over) -> RunConfig:
    root, plug, cfg = env
    return apply_overrides(read_config_file(cfg), {"plugins_dirs": [str(plug)], "device": "cpu", **over})


def test_values_split_at_top_level_commas_and_read_as_toml():
    assert split_values('1e-4, 5e-4') == ["1e-4", "5e-4"]
    assert split_values('[0.8, 0.1],"a,b",position') == ["[0.8, 0.1]", '"a,b"', "position"]
    assert [parse_value(v) for v in ("1e-4", "0", "true", "[1, 2]", "position", '"x,y"')] == \
        [1e-4, 0, True, [1, 2], "position", "x,y"]
    item = parse_set("methods.prorl.lr=1e-4,5e-4")
    assert (item.kind, item.name, item.key, item.values, item.shown) == \
        ("methods", "prorl", "lr", (1e-4, 5e-4), ("1e-4", "5e-4"))
    assert parse_set("cases.max_path_len=3").key == "max_path_len"


@pytest.mark.parametrize("sets,message", [
    (["methods.pop"], "expected KIND.NAME.KEY=VALUE"),
    (["method.pop.length=3"], "'method' is not a table (did you mean 'methods'?)"),
    (["methods.pop.lenght=3"], "method 'pop' has no key 'lenght' (did you mean 'length'?)"),
    (["methods.popp.length=3"], "unknown method 'popp'"),
    (["cases.max_path=3"], "[cases] has no key 'max_path' (did you mean 'max_path_len'?)"),
    (["datasets.tinyfake.n_items=10,20"], "several values sweep method keys only"),
    (["methods.random.length=2,3"], "method 'random' is not in the grid"),
    (["methods.pop.length=-1"], "length"),
])
def test_bad_sets_are_one_line_config_errors(env, sets, message):
    with pytest.raises(ConfigError) as exc:
        resolve(fake_cfg(env, methods=["pop"], sets=sets), load_registry([env[1]]))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_one_value_is_a_plain_override_of_any_plugin_key(env):
    res = resolve(fake_cfg(env, methods=["pop"], sets=["methods.pop.length=3", "cases.max_path_len=3",
                                                       "datasets.tinyfake.n_cases=5", "simulators.fakesim.dim=4"]),
                  load_registry([env[1]]))
    assert res.cfg.methods == ["pop"] and res.cfg.sets == [] and not res.cfg.variants
    assert res.method_cfgs["pop"].length == 3 and res.cases_cfg.max_path_len == 3
    assert res.dataset_cfgs["tinyfake"].n_cases == 5 and res.simulator_cfgs["fakesim"].dim == 4


def test_a_sweep_is_the_same_run_as_hand_written_variants(env):
    reg = load_registry([env[1]])
    swept = resolve(fake_cfg(env, methods=["sft", "pop"], sets=SWEEP[1::2]), reg)
    assert swept.cfg.methods == NAMES + ["pop"]
    tables = "\n".join(f'[variants."{n}"]\nmethod = "sft"\nsft_lr = {n.split("=")[1].split("+")[0]}\n'
                       f'max_history = {n.rsplit("=", 1)[1]}\n' for n in NAMES)
    by_hand = parse_config_text(f"[run]\nmethods = {json.dumps(NAMES + ['pop'])}\n{tables}", "hand.toml")
    hand = resolve(_with(fake_cfg(env), by_hand), load_registry([env[1]]))
    jobs = expand_grid(swept.cfg.methods, swept.cfg.datasets, swept.cfg.seeds, swept.cfg.variants)
    assert [swept.fingerprint(j) for j in jobs] == [hand.fingerprint(j) for j in jobs]
    assert swept.config_document()["variants"] == hand.config_document()["variants"]
    assert swept.cfg.name == "sft+pop_tinyfake"  # the grid as given names the folder


def _with(cfg: RunConfig, other: RunConfig) -> RunConfig:
    new = apply_overrides(cfg, {"methods": other.methods})
    new.variants = other.variants
    return new


def test_seed_ranges_and_methods_all(env, capsys):
    assert RunConfig(seeds="0-2").seeds == [0, 1, 2] and RunConfig(seeds="0-1,5").seeds == [0, 1, 5]
    assert RunConfig(seeds=3).seeds == [3] and RunConfig(methods="random").methods == ["random"]
    assert RunConfig(methods="random, pop").methods == ["random", "pop"]
    assert parse_config_text('[run]\nseeds = "0-2"\n').seeds == [0, 1, 2]
    with pytest.raises(ConfigError, match="range '2-0' is empty"):
        RunConfig(seeds="2-0")
    reg = load_registry([env[1]])
    res = resolve(fake_cfg(env, methods="all"), reg)
    assert res.cfg.methods == reg.names("methods") and res.cfg.name == "all_tinyfake"
    assert main(["run", "--config", str(env[2]), "--plugins-dir", str(env[1]), "--methods", "random",
                 "--seeds", "0-2", "--dry-run"]) == 0
    assert "3 cells = 1 method(s) x 1 dataset(s) x 3 seed(s)" in capsys.readouterr().out


def run_cli(env, out: str, *extra: str) -> int:
    root, plug, cfg = env
    return main(["run", "--config", str(cfg), "--plugins-dir", str(plug), "--quiet", "--device", "cpu",
                 "--out", str(root / out), *TINY_SFT, *extra])


def test_a_2x2_sweep_runs_resumes_and_reports_like_hand_written_variants(env, capsys):
    root = env[0]
    assert run_cli(env, "sweep", "--methods", "sft,pop", *SWEEP, "--select-on", "valid") == 0
    out = capsys.readouterr().out
    assert "5 cells (5 computed, 0 already done, 0 failed)" in out
    summary = pd.read_csv(root / "sweep" / "summary.csv")
    assert sorted(summary["method"].unique()) == sorted(NAMES + ["pop"])  # test figures for every variant
    # The selection: per method, the variant with the best validation IoI@1, from the statuses.
    valid = {n: json.loads((root / "sweep" / "cells" / f"{n.replace('=', '-')}__tinyfake__s0.json").read_text())["valid"]
             for n in NAMES}
    best = max(NAMES, key=lambda n: valid[n]["ioi@1"])
    sel = pd.read_csv(root / "sweep" / "selection.csv")
    assert sel.set_index("method").loc["sft", "selected"] == best
    assert sel.set_index("method").loc["sft", "valid"] == pytest.approx(valid[best]["ioi@1"])
    assert sel.set_index("method").loc["pop", "selected"] == "pop"
    assert "selected on the validation cases (ioi@1" in out and f"`{best}`" in out and "never on test" in out
    # Resume: the same command, and the written config (hand-written variants now), compute nothing.
    assert run_cli(env, "sweep", "--methods", "sft,pop", *SWEEP, "--select-on", "valid") == 0
    assert "5 cells (0 computed, 5 already done, 0 failed)" in capsys.readouterr().out
    written = read_config_file(root / "sweep" / "config.toml", trusted=True)
    assert written.methods == NAMES + ["pop"] and set(written.variants) == set(NAMES)
    again = run(apply_overrides(written, {"out": str(root / "sweep"), "progress": False}),
                load_registry(written.plugins_dirs))
    assert len(again.skipped) == 5
    # The report rebuilds the same selection; test values do not depend on --select-on.
    assert main(["report", str(root / "sweep")]) == 0
    assert f"`{best}`" in capsys.readouterr().out
    assert run_cli(env, "plain", "--methods", "sft,pop", *SWEEP) == 0
    capsys.readouterr()
    a, b = (pd.read_csv(root / d / "cases.csv.gz") for d in ("sweep", "plain"))
    assert a.equals(b) and not (root / "plain" / "selection.csv").exists()
    assert main(["rescore", str(root / "sweep"), "--plugins-dir", str(env[1]), "--ks", "1"]) == 0
    assert f"`{best}`" in capsys.readouterr().out  # the validation figures survive a re-scoring


def test_select_metric_is_checked_before_anything_runs(env, capsys):
    assert run_cli(env, "bad", "--methods", "pop", "--select-on", "valid", "--select-metric", "nope@1") == 2
    assert "select_metric: 'nope' is not a metric of this run" in capsys.readouterr().err
    assert run_cli(env, "bad", "--methods", "pop", "--select-on", "valid", "--select-metric", "ioi@7") == 2
    assert "K = 7 is not one of the run's ks" in capsys.readouterr().err
    assert not (Path(env[0]) / "bad").exists()
