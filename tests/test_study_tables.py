"""prorlbench.study.claims (the paired comparisons of docs/findings.md) and benchmarks.rl_table on a
hand-made run folder whose per-case values are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import rl_table

from prorlbench.study import findings, splice, splice_md, claims as study

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


def _folder(d, rows, comparisons):
    d.mkdir(parents=True)
    for name in splice.TABLES:
        pd.DataFrame(rows, columns=["dataset", "method", "value"]).to_csv(d / name, index=False)
    (d / "comparisons.md").write_text(comparisons)


def test_splice_replaces_one_dataset_block_and_keeps_the_others(tmp_path):
    head = "| dataset | eval | A |\n|---|---|---|\n"
    _folder(tmp_path / "old", [("synthetic", "sft", "1"), ("prorl-json", "sft", "2"), ("movielens", "sft", "3")],
                  "Run `old` (9 finished cells)\n\n## (a) x\n\n" + head
                  + "| prorl-json | sasrec | old-ml1m |\n| synthetic | sasrec | old-syn |\n")
    _folder(tmp_path / "new", [("prorl-json", "sft", "20"), ("prorl-json", "prorl", "21")],
            "Run `new` (2 finished cells)\n\n## (a) x\n\n" + head + "| prorl-json | sasrec | new-ml1m |\n\n"
            "## (b) y\n\n" + head + "| prorl-json | sasrec | only-new |\n")
    assert splice.main([str(tmp_path / "new"), str(tmp_path / "old"), "--datasets", "prorl-json"]) == 0
    for name in splice.TABLES:
        got = pd.read_csv(tmp_path / "old" / name, dtype=str)
        assert got.values.tolist() == [["synthetic", "sft", "1"], ["prorl-json", "sft", "20"],
                                       ["prorl-json", "prorl", "21"], ["movielens", "sft", "3"]]
    text = (tmp_path / "old" / "comparisons.md").read_text()
    assert "old-ml1m" not in text and "| synthetic | sasrec | old-syn |" in text
    a = text.split("## (a) x")[1].split("## (b)")[0]
    assert a.index("new-ml1m") < a.index("old-syn")  # ML-1M rows first, as prorlbench.study.claims orders them
    assert "only-new" in text.split("## (b) y")[1] and "The rows of prorl-json were replaced by those of a later run (prorlbench.study.splice): Run `new`" in text


def test_splice_refuses_a_block_the_new_run_lacks(tmp_path, capsys):
    _folder(tmp_path / "old", [("synthetic", "sft", "1")], "Run\n")
    _folder(tmp_path / "new", [("synthetic", "sft", "2")], "Run\n")
    assert splice.main([str(tmp_path / "new"), str(tmp_path / "old"), "--datasets", "prorl-json"]) == 2
    assert "no rows for dataset(s) prorl-json" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "old" / "summary.csv")["value"].tolist() == [1]


COMPARISONS = """## (a) x

| dataset | eval | A | B | metric | A | B | Δ [95 % CI] | p | p (Holm) | seeds |
|---|---|---|---|---|---|---|---|---|---|---|
| movielens | sasrec | `prorl` | `sft` | IoI@1 | -0.598 | -0.338 | -0.260 [-0.323, -0.195] | 1e-12 | 3e-11 | 3/3 |

## Training dynamics (sampled paths, mean ± std over seeds)

| dataset | method | seeds | length, first 16 steps | length, last 16 steps | valid IoI of sampled paths |
|---|---|---|---|---|---|
| movielens | `prorl` | 3 | 4.59 ± 0.21 | 9.88 ± 0.03 | -0.4 |
"""


def test_findings_markers_render_the_rows_of_the_comparisons():
    text = findings.render_text("IoI@1 [[cmp:movielens|sasrec|prorl|sft|IoI@1]]; Δ [[cmp:movielens|sasrec|prorl|sft|"
                                "IoI@1|delta]]; length [[len:movielens|prorl]].", COMPARISONS)
    assert text == ("IoI@1 -0.598 vs -0.338, Δ -0.260 [-0.323, -0.195], Holm p 3e-11, 3/3 seeds; "
                    "Δ -0.260 [-0.323, -0.195]; length 4.59 ± 0.21 → 9.88 ± 0.03.")
    for bad in ("[[cmp:movielens|sasrec|prorl|naive-pg|IoI@1]]", "[[len:synthetic|prorl]]",
                "[[cmp:movielens|sasrec|prorl|sft|IoI@1|mean]]"):
        with pytest.raises(findings.MarkerError):
            findings.render_text(bad, COMPARISONS)


def test_committed_findings_and_readme_table_are_the_rendering_of_the_study_tables():
    """Every study number in docs/findings.md and the README's headline table comes from results/prorl-study."""
    assert findings.main(["--check"]) == 0


def test_per_seed_table_lists_each_seed_mean(run):
    text = study.per_seed(run, dataset="synthetic")
    row = next(line for line in text.splitlines() if line.startswith("| `prorl` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    mean0 = float(np.mean(np.random.default_rng(0).normal(size=40))) + 0.5
    assert cells[1:4] == [f"{mean0:.3f}", f"{mean0 + 0.01:.3f}", f"{mean0 + 0.02:.3f}"]
    assert cells[7:10] == ["3.00", "3.00", "3.00"]


ROW = "| prorl-json | sasrec | `{a}` | `{b}` | IoI@1 | 1.0 | 0.5 | +0.5 [+0.4, +0.6] | {p} | {ph} | {s} |\n"
TABLE_HEAD = ("| dataset | eval | A | B | metric | A | B | Δ [95 % CI] | p | p (Holm) | seeds |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n")


def _paper_rows(rows):
    cols = ["dataset", "simulator", "metric", "k", "method", "mean", "rank", "p_value", "significant", "runner_up"]
    return pd.DataFrame(rows, columns=cols)


def test_splice_of_some_methods_keeps_the_others_rows_and_redoes_holm_over_the_family(tmp_path, monkeypatch):
    """--methods: the rows of those methods (and comparisons among them only) come from the new
    run; the kept rows' Holm p moves only as the family changes; a stored seed table is spliced."""
    old_cmp = ("Run `old`\n\n## (e) x\n\n" + TABLE_HEAD
               + ROW.format(a="prorl", b="sft", p="0.01", ph="0.03", s="3/3")
               + ROW.format(a="prorl+semid", b="sft+semid", p="0.2", ph="0.2", s="1/1")
               + ROW.format(a="naive-pg", b="sft", p="0.02", ph="0.04", s="3/3"))
    new_cmp = ("Run `new`\n\n## (e) x\n\n" + TABLE_HEAD
               + ROW.format(a="prorl+semid", b="sft+semid", p="0.001", ph="0.002", s="3/3")
               + ROW.format(a="prorl+semid", b="noise-pg+semid", p="0.3", ph="0.3", s="2/3"))
    _folder(tmp_path / "old", [("prorl-json", "sft", "1"), ("prorl-json", "sft+semid", "2"),
                               ("movielens", "sft+semid", "3")], old_cmp)
    _folder(tmp_path / "new", [("prorl-json", "sft+semid", "20"), ("prorl-json", "noise-pg+semid", "21"),
                               ("prorl-json", "prorl+semid", "22"), ("prorl-json", "sft", "99")], new_cmp)
    seeds_head = "Per-seed\n\n| method | IoI@1 s0 |\n|---|---|\n"
    (tmp_path / "old" / "seeds_ml1m.md").write_text(seeds_head + "| `sft` | 1.0 |\n| `sft+semid` | 2.0 |\n")
    (tmp_path / "new" / "seeds_ml1m.md").write_text(seeds_head + "| `sft+semid` | 5.0 |\n| `sft` | 9.0 |\n")
    rebuilt = []
    monkeypatch.setattr(splice, "_rebuild_report", lambda *a: rebuilt.append(a) or 0)
    methods = "sft+semid,prorl+semid,noise-pg+semid"
    assert splice.main([str(tmp_path / "new"), str(tmp_path / "old"), "--datasets", "prorl-json",
                        "--methods", methods]) == 0
    for name in splice.TABLES:  # sft's row (not named) stays; movielens is another dataset
        assert pd.read_csv(tmp_path / "old" / name, dtype=str).values.tolist() == [
            ["prorl-json", "sft", "1"], ["prorl-json", "sft+semid", "20"], ["prorl-json", "noise-pg+semid", "21"],
            ["prorl-json", "prorl+semid", "22"], ["movielens", "sft+semid", "3"]]
    assert len(rebuilt) == 1
    rows = {tuple(splice_md._cells(ln)[2:4]): splice_md._cells(ln) for ln in
            (tmp_path / "old" / "comparisons.md").read_text().splitlines() if ln.startswith("| prorl-json")}
    assert set(rows) == {("prorl", "sft"), ("naive-pg", "sft"), ("prorl+semid", "sft+semid"),
                         ("prorl+semid", "noise-pg+semid")}
    # family of 4 from printed p: 0.001*4, 0.01*3, 0.02*2, 0.3*1 -> 0.004, 0.03, 0.04, 0.3
    assert rows[("prorl+semid", "sft+semid")][8:] == ["0.001", "0.004", "3/3"]
    assert rows[("prorl+semid", "noise-pg+semid")][9] == "0.3"
    # before: 0.01*3=0.03, 0.02*2=0.04 (semid 0.2 last); after: the same ranks and multipliers
    assert rows[("prorl", "sft")][9] == "0.03" and rows[("naive-pg", "sft")][9] == "0.04"
    seeds = (tmp_path / "old" / "seeds_ml1m.md").read_text()
    assert "| `sft` | 1.0 |" in seeds and "| `sft+semid` | 5.0 |" in seeds and "2.0" not in seeds


def test_splice_of_some_methods_refuses_a_comparison_it_cannot_redo(tmp_path, capsys):
    old_cmp = "Run\n\n## (e) x\n\n" + TABLE_HEAD + ROW.format(a="prorl+semid", b="noise-pg", p="0.2", ph="0.2", s="1/1")
    _folder(tmp_path / "old", [("prorl-json", "prorl+semid", "1")], old_cmp)
    _folder(tmp_path / "new", [("prorl-json", "prorl+semid", "2")], "Run\n")
    assert splice.main([str(tmp_path / "new"), str(tmp_path / "old"), "--datasets", "prorl-json",
                        "--methods", "prorl+semid"]) == 2
    assert "pair a spliced method with another one" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "old" / "summary.csv")["value"].tolist() == [1]


def test_splice_clears_a_significance_mark_no_single_run_tested():
    paper = _paper_rows([
        # CTR: the best is a spliced method, the runner-up an old one: untested, cleared
        ("prorl-json", "sasrec", "ctr", "1", "prorl+semid", "0.9", "1", "1e-9", "true", "sft+semid"),
        ("prorl-json", "sasrec", "ctr", "1", "rec2inf", "0.8", "2", "", "false", ""),
        # IoI: best and runner-up both old, the runner-up the one tested: kept
        ("prorl-json", "sasrec", "ioi", "1", "shortest-path", "2.4", "1", "1e-5", "true", "rec2inf"),
        ("prorl-json", "sasrec", "ioi", "1", "rec2inf", "2.3", "2", "", "false", ""),
        # Coherence: both spliced, but tested against another runner-up than today's: cleared
        ("prorl-json", "sasrec", "coherence", "1", "prorl+semid", "0.9", "1", "1e-3", "true", "noise-pg+semid"),
        ("prorl-json", "sasrec", "coherence", "1", "sft+semid", "0.8", "2", "", "false", ""),
    ])
    out, cleared = splice.check_marks(paper, {"prorl-json"}, {"prorl+semid", "sft+semid", "noise-pg+semid"})
    assert cleared == ["prorl-json/sasrec/coherence/1: prorl+semid vs sft+semid",
                       "prorl-json/sasrec/ctr/1: prorl+semid vs rec2inf"]
    marks = out.set_index(["metric", "method"])[["p_value", "significant", "runner_up"]]
    assert marks.loc[("ioi", "shortest-path")].tolist() == ["1e-5", "true", "rec2inf"]
    assert marks.loc[("ctr", "prorl+semid")].tolist() == ["", "false", ""]


def _pair_folders(d):
    old_cmp = ("Run `old`\n\n## (e) x\n\n" + TABLE_HEAD
               + ROW.format(a="prorl", b="noise-pg", p="0.01", ph="0.02", s="3/3")
               + ROW.format(a="prorl+semid", b="sft+semid", p="0.2", ph="0.2", s="1/1"))
    new_cmp = ("Run `new`\n\n## (e) x\n\n" + TABLE_HEAD
               + ROW.format(a="prorl+semid", b="sft+semid", p="0.001", ph="0.002", s="3/3")
               + ROW.format(a="prorl+semid", b="noise-pg", p="0.04", ph="0.08", s="2/3"))
    rows = [("prorl-json", "noise-pg", "1.25"), ("prorl-json", "prorl+semid", "2"), ("prorl-json", "sft+semid", "3")]
    _folder(d / "old", rows, old_cmp)
    _folder(d / "new", [rows[0], ("prorl-json", "prorl+semid", "20"), ("prorl-json", "sft+semid", "30")], new_cmp)
    for name in ("old", "new"):  # summary.csv's value column is its mean, the column the check compares
        df = pd.read_csv(d / name / "summary.csv", dtype=str).rename(columns={"value": "mean"})
        df.to_csv(d / name / "summary.csv", index=False)
    return [str(d / "new"), str(d / "old"), "--datasets", "prorl-json", "--methods", "prorl+semid,sft+semid"]


def _pairs(d):
    return {tuple(splice_md._cells(ln)[2:4]): splice_md._cells(ln)[8:]
            for ln in (d / "old" / "comparisons.md").read_text().splitlines() if ln.startswith("| prorl-json")}


def test_splice_takes_the_comparisons_with_a_reproduced_method_and_refuses_one_that_moved(tmp_path, monkeypatch):
    """--same: a method re-run only to pair with the spliced ones must reproduce INTO's rows."""
    monkeypatch.setattr(splice, "_rebuild_report", lambda *a: 0)
    assert splice.main(_pair_folders(tmp_path / "plain")) == 0
    assert ("prorl+semid", "noise-pg") not in _pairs(tmp_path / "plain")  # noise-pg not named: its pairs stay out
    args = _pair_folders(tmp_path / "same")
    assert splice.main([*args, "--same", "noise-pg"]) == 0
    got = _pairs(tmp_path / "same")
    assert got[("prorl+semid", "noise-pg")] == ["0.04", "0.04", "2/3"]  # Holm over 3: 0.001*3, 0.01*2, 0.04
    assert got[("prorl", "noise-pg")][1] == "0.02"
    assert "re-run beside them, its rows equal to the run above" in (tmp_path / "same" / "old" / "comparisons.md").read_text()
    args = _pair_folders(tmp_path / "moved")
    df = pd.read_csv(tmp_path / "moved" / "new" / "summary.csv", dtype=str)
    df.loc[df["method"] == "noise-pg", "mean"] = "1.25000000001"  # float rounding of the lift baselines: the same
    df.to_csv(tmp_path / "moved" / "new" / "summary.csv", index=False)
    assert not splice.differing_rows(df, pd.read_csv(tmp_path / "moved" / "old" / "summary.csv", dtype=str),
                                     {"prorl-json"}, {"noise-pg"})
    df.loc[df["method"] == "noise-pg", "mean"] = "1.26"  # another trajectory
    df.to_csv(tmp_path / "moved" / "new" / "summary.csv", index=False)
    assert splice.main([*args, "--same", "noise-pg"]) == 2
    assert pd.read_csv(tmp_path / "moved" / "old" / "summary.csv")["mean"].tolist() == [1.25, 2, 3]
