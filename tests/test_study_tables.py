"""benchmarks.study (the paired comparisons of docs/findings.md) and benchmarks.rl_table on a
hand-made run folder whose per-case values are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import rl_table, study

METHODS = ["sft", "noise-pg", "naive-pg", "prorl"]
SHIFT = {"sft": 0.0, "noise-pg": -0.1, "naive-pg": 0.2, "prorl": 0.5}


@pytest.fixture()
def run(tmp_path):
    d = tmp_path / "run"
    (d / "cells").mkdir(parents=True)
    (d / "config.toml").write_text(f"[run]\nmethods = {METHODS!r}\nsimulator = \"sasrec\"\n".replace("'", '"'))
    rng = np.random.default_rng(0)
    base = rng.normal(size=40)
    for m in METHODS:
        for s in (0, 1, 2):
            rows = []
            for c in range(40):
                for metric, v in (("ioi", base[c] + SHIFT[m] + 0.01 * s), ("ioi-lift", SHIFT[m]),
                                  ("len", 10.0 if m == "naive-pg" else 3.0), ("ior", 1.0), ("ctr", 0.5)):
                    rows.append((m, "synthetic", "sasrec", s, f"u{c}", metric, 1, v))
            pd.DataFrame(rows, columns=["method", "dataset", "simulator", "seed", "case", "metric", "k", "value"]
                         ).to_csv(d / "cells" / f"{m}__synthetic__s{s}.cases.csv.gz", index=False)
            (d / "cells" / f"{m}__synthetic__s{s}.json").write_text("{}")
            if m != "sft":
                steps = range(40)
                log = pd.DataFrame({"method": m, "dataset": "synthetic", "seed": s, "step": list(steps),
                                    "metric": "path_len", "value": [4.0 if t < 16 else 9.0 for t in steps]})
                log.to_csv(d / "cells" / f"{m}__synthetic__s{s}.train_log.csv", index=False)
    return d


def test_holm_matches_the_step_down_rule():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> max(0.06, 0.04)=0.06
    assert np.allclose(study.holm(p)[[4, 0, 2, 1]], [0.02, 0.03, 0.06, 0.06]) and np.isnan(study.holm(p)[3])


def test_compare_is_paired_by_case_with_a_bootstrap_interval(run):
    cases = study.read_cases(run)
    r = study.compare(cases, "prorl", "sft", "ioi")
    assert r["delta"] == pytest.approx(0.5) and r["lo"] <= 0.5 <= r["hi"] and r["hi"] - r["lo"] < 1e-9
    assert r["seeds"] == "3/3" and r["n_cases"] == 40 and r["p"] < 1e-6
    assert study.compare(cases, "prorl", "grpo", "ioi") is None  # no such method


def test_study_tables_list_the_claims_with_holm_corrected_p(run):
    text = study.build(run)
    assert "## (a) naive policy gradient takes a length shortcut" in text
    assert "| synthetic | sasrec | `naive-pg` | `sft` | Len@1 | 10.00 | 3.00 | +7.00 [+7.00, +7.00] |" in text
    assert "| synthetic | sasrec | `prorl` | `noise-pg` | IoI-lift@1 | 0.500 | -0.100 | +0.600" in text
    d = text.split("## (d)")[1].split("## (e)")[0]  # the only baseline of this run is sft
    assert {ln.split("|")[4].strip() for ln in d.splitlines() if ln.startswith("| synthetic")} == {"`sft`"}
    assert "| synthetic | `prorl` | 3 | 4.00 ± 0.00 | 9.00 ± 0.00 |" in text  # first vs last 16 steps


def test_rl_table_reads_the_study_folder_with_another_config(run, tmp_path):
    cfg = tmp_path / "grid.toml"
    cfg.write_text('[run]\nmethods = ["sft", "prorl"]\nsimulator = "sasrec"\n')
    text = rl_table.build_tables(run, config=cfg)
    assert "test metrics by `sasrec`" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
    assert [r.split("|")[1].strip() for r in rows] == ["`sft`", "`prorl`"]
    assert "-0.500 (p" in rows[0]  # ΔIoI@1 vs prorl: sft's minus prorl's


def test_claims_plot_shows_the_compared_methods(run):
    path = study.plot_claims(run)
    assert path == run / "claims_dynamics.png" and path.stat().st_size > 10_000
