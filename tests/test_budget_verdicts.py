"""The science tools of issue 24: the compact per-case table (prorlbench.study.percase), the budget axis
(prorlbench.study.budget_axis) and the verdict rule of docs/findings.md's first table (prorlbench.study.verdicts),
on a small hand-made run folder whose differences are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prorlbench.study import budget_axis, percase, claims as study, verdicts

CONFIG = """\
[run]
methods = ["sft", "prorl", "noise-pg", "prorl+x4", "noise-pg+x4", "prorl+x16"]
datasets = ["synthetic"]
seeds = [0, 1, 2]

[variants."prorl+x4"]
method = "prorl"
epochs = 40

[variants."noise-pg+x4"]
method = "noise-pg"
epochs = 40

[variants."prorl+x16"]
method = "prorl"
epochs = 160
"""
SHIFT = {"sft": 0.0, "prorl": 0.5, "noise-pg": 0.4, "prorl+x4": 1.0, "noise-pg+x4": 0.2, "prorl+x16": -1.0}
"""Each method's IoI@1 is the case's base value plus this shift (plus small seeded noise)."""


def make_run(root, n_cases=40):
    run = root / "run"
    (run / "cells").mkdir(parents=True)
    (run / "config.toml").write_text(CONFIG)
    (run / "run.log").write_text("cases on synthetic: train 100, valid 20, test 40\n")
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, n_cases)
    for m, shift in SHIFT.items():
        for seed in range(3):
            rows = []
            for i in range(n_cases):
                for sim in ("sasrec", "oracle"):
                    for k in (1, 5, 10):
                        ioi = base[i] + shift + rng.normal(0, 0.05)
                        rows += [(m, "synthetic", sim, seed, f"u{i}:0", "ioi", k, round(ioi, 6)),
                                 (m, "synthetic", sim, seed, f"u{i}:0", "ioi-lift", k, round(ioi - 0.5, 6)),
                                 (m, "synthetic", sim, seed, f"u{i}:0", "len", k, 1.0 if m == "sft" else 10.0),
                                 (m, "synthetic", sim, seed, f"u{i}:0", "sr10", k, 1.0)]
            pd.DataFrame(rows, columns=["method", "dataset", "simulator", "seed", "case", "metric", "k", "value"]).to_csv(
                run / "cells" / f"{m}__synthetic__s{seed}.cases.csv.gz", index=False)
    return run


def test_percase_table_round_trips_and_recomputes_the_comparisons(tmp_path):
    run = make_run(tmp_path)
    files = percase.write(run, tmp_path / "committed" / "percase.csv.gz")
    wide = pd.read_csv(files[0])
    assert set(wide["k"]) == {1, 10} and "sr10" not in wide.columns  # K = 1 and 10, the study's metrics
    assert len(wide) == 6 * 3 * 40 * 2 * 2
    committed = tmp_path / "committed"
    (committed / "config.toml").write_text(CONFIG)
    a = study.read_cases(run).sort_values(["method", "simulator", "seed", "case", "metric"]).reset_index(drop=True)
    b = study.read_cases(committed).sort_values(["method", "simulator", "seed", "case", "metric"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[["method", "simulator", "seed", "case", "metric", "value"]],
                                  b[["method", "simulator", "seed", "case", "metric", "value"]], check_dtype=False)
    assert study.build(run).split("\n", 1)[1] == study.build(committed).split("\n", 1)[1]


def test_percase_splits_by_simulator_above_its_size_limit(tmp_path):
    run = make_run(tmp_path)
    files = percase.write(run, max_mb=1e-6)
    assert sorted(f.name for f in files) == ["percase.oracle.csv.gz", "percase.sasrec.csv.gz"]
    assert not (run / "percase.csv.gz").exists()
    assert set(pd.read_csv(files[0])["simulator"]) == {"oracle"}


def test_budget_axis_pairs_each_budget_with_its_own_placebo(tmp_path):
    run = make_run(tmp_path)
    assert budget_axis.split("prorl+x4") == ("prorl", "x4") and budget_axis.split("noise-pg") == ("noise-pg", "x1")
    assert budget_axis.split("prorl+greedy") is None
    paths = budget_axis.sampled_paths(run)
    assert paths[("synthetic", "x1")] == 10 * 100 * 8 and paths[("synthetic", "x16")] == 160 * 100 * 8
    res = budget_axis.table(run)
    row = res[(res["simulator"] == "oracle") & (res["budget"] == "x4") & (res["comparison"] == "prorl − noise-pg")
              & (res["metric"] == "IoI@1")].iloc[0]
    assert row["A"] == "prorl+x4" and row["B"] == "noise-pg+x4" and row["delta"] == pytest.approx(0.8, abs=0.03)
    assert row["verdict"] == "A > B"
    x16 = res[(res["budget"] == "x16") & (res["comparison"] == "prorl − sft") & (res["metric"] == "IoI@1")]
    assert (x16["B"] == "sft").all() and (x16["verdict"] == "A < B").all()
    assert res[(res["budget"] == "x16") & (res["comparison"] == "prorl − noise-pg")].empty  # no x16 placebo
    text = budget_axis.markdown(run)
    assert "| synthetic | oracle | x4 | 32,000 | prorl − noise-pg | IoI@1 |" in text and "Len@1" in text
    view = budget_axis.compact(run)
    row = next(line for line in view.splitlines() if line.startswith("| synthetic | oracle | prorl − noise-pg | IoI@1 |"))
    assert row.count("|") == 8 and "▲" in row and row.endswith("— |")  # x1, x4 (▲: counts), no x16 placebo
    assert view.index("| synthetic | sasrec |") < view.index("| synthetic | oracle |")  # the reward model first
    assert budget_axis.selected_epochs(run) == ""  # no training logs
    pd.DataFrame({"metric": ["path_len", "selected_epoch"], "step": [0, 39], "value": [3.0, 17.0]}).to_csv(
        run / "cells" / "prorl+x4__synthetic__s1.train_log.csv", index=False)
    assert "| synthetic | `prorl` | x4 | —, 17/40, — |" in budget_axis.selected_epochs(run)
    files = budget_axis.plot(run)
    assert [f.name for f in files] == ["budget_axis.png", "budget_axis.pdf"] and all(f.stat().st_size > 0 for f in files)


@pytest.mark.parametrize("reward, held, direction, expected", [
    (1, 1, 1, "**holds**"),
    (1, 0, 1, "reward model only"),
    (1, None, 1, "reward model only (held-out not measured)"),
    (1, -1, 1, "evaluators disagree: holds under the reward model, reversed held out"),
    (0, -1, 1, "**contradicted** held out"),
    (-1, -1, 1, "**contradicted**"),
    (-1, -1, -1, "**holds**"),
    (0, 0, 1, "not shown"),
])
def test_the_verdict_rule(reward, held, direction, expected):
    assert verdicts.verdict(reward, held, direction) == expected


def test_a_difference_counts_only_with_every_seed_and_a_small_holm_p():
    row = {"delta": "+0.434 [+0.411, +0.458]", "p_holm": "2.5e-236", "seeds": "3/3"}
    assert verdicts.counts(row) == 1
    assert verdicts.counts({**row, "seeds": "2/3"}) == 0
    assert verdicts.counts({**row, "p_holm": "0.06"}) == 0
    assert verdicts.counts({**row, "delta": "-1.192 [-1.234, -1.147]", "p_holm": "<1e-300"}) == -1
    assert verdicts.counts(None) == 0


def test_the_committed_verdict_table_names_budget_evaluator_and_length():
    text = verdicts.table(verdicts.default_sources())
    assert "**ML-1M (ProRL's cases)**" in text and "**ML-100K**" in text and "**toy world**" in text
    assert text.index("**ML-1M") < text.index("**ML-100K**") < text.index("**toy world**")  # real data first
    rows = [line for line in text.splitlines() if line.startswith("| (")]
    assert len(rows) >= 15
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] in ("quick", "official (GPU)"), line
        assert cells[6] and cells[7], line  # a verdict and its source
        if "IoI" in cells[2]:
            assert "/" in cells[5] and cells[5] != "—", line  # Len@1 beside every IoI verdict
