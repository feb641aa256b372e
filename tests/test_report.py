"""Tests of prorlbench.report: hand-built run folders with known winners."""

from __future__ import annotations

import csv
import math
import re
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prorlbench.errors import ConfigError, DataError
from prorlbench.report import latex_escape, metric_directions, summarize
from prorlbench.report import write_report as _write_report


def write_report(run, **kw):
    """The report with built-in metric directions and, unless asked, no plots (fast)."""
    kw.setdefault("registry", False)
    kw.setdefault("plots", False)
    return _write_report(run, **kw)

CASE_COLS = ["method", "dataset", "simulator", "seed", "case", "metric", "k", "value"]
CELL_COLS = ["method", "dataset", "seed", "simulator", "eval_simulator", "status", "error",
             "seconds"]


def make_run(root: Path, rows, cells=None, train_log=None, config: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=CASE_COLS).to_csv(root / "cases.csv.gz", index=False)
    if cells is None:
        seen = sorted({(r[0], r[1], r[3], r[2]) for r in rows})
        cells = [(m, d, s, sim, sim, "ok", "", 1.0) for m, d, s, sim in seen]
    pd.DataFrame(cells, columns=CELL_COLS).to_csv(root / "cells.csv", index=False)
    if train_log is not None:
        train_log.to_csv(root / "train_log.csv", index=False)
    if config is not None:
        (root / "config.toml").write_text(config)
    return root


def column_rows(method, values_by_seed, *, metric="ioi", k=1, dataset="toy", sim="sasrec",
                case_prefix="c"):
    """Rows for one method: ``values_by_seed[seed] = [value of case 0, case 1, ...]``."""
    return [(method, dataset, sim, seed, f"{case_prefix}{i}", metric, k, v)
            for seed, vals in values_by_seed.items() for i, v in enumerate(vals)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def paper_rows(run: Path, metric="ioi", k="1") -> dict[str, dict[str, str]]:
    return {r["method"]: r for r in read_csv(run / "paper.csv")
            if r["metric"] == metric and r["k"] == k}


# ------------------------------------------------------------------------------------------
# summary.csv
# ------------------------------------------------------------------------------------------


def test_summary_values_by_hand(tmp_path):
    rows = column_rows("a", {0: [1.0, 3.0], 1: [2.0, 6.0]})          # seed means 2, 4
    rows += column_rows("b", {0: [0.5, 1.5]})                         # one seed
    rows += column_rows("c", {0: [1.0, float("nan"), 2.0], 1: [4.0, 5.0, 6.0]})  # NaN skipped
    run = make_run(tmp_path / "run", rows)
    write_report(run)
    got = {r["method"]: r for r in read_csv(run / "summary.csv")}
    assert list(read_csv(run / "summary.csv")[0]) == ["method", "dataset", "simulator", "metric",
                                                      "k", "mean", "std", "n_seeds", "n_cases"]
    assert float(got["a"]["mean"]) == 3.0
    assert float(got["a"]["std"]) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert (got["a"]["n_seeds"], got["a"]["n_cases"]) == ("2", "2")
    assert float(got["b"]["mean"]) == 1.0 and float(got["b"]["std"]) == 0.0
    assert got["b"]["n_seeds"] == "1"
    # c: seed 0 mean over the 2 non-NaN cases = 1.5, seed 1 = 5 -> mean 3.25, std |5-1.5|/sqrt 2
    assert float(got["c"]["mean"]) == pytest.approx(3.25, rel=1e-15)
    assert float(got["c"]["std"]) == pytest.approx(3.5 / math.sqrt(2.0), rel=1e-15)
    assert got["c"]["n_cases"] == "3"
    assert got["a"]["metric"] == "ioi" and got["a"]["k"] == "1"


def test_summary_csv_is_byte_reproducible_and_sorted(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for meth in ["zeta", "alpha", "mid"]:
        for metric in ["ior", "ioi", "invalid"]:
            for k in [10, 1, 5]:
                rows += column_rows(meth, {s: list(rng.normal(size=7)) for s in (2, 0, 1)},
                                    metric=metric, k=k)
    run1 = make_run(tmp_path / "r1", rows)
    write_report(run1)
    first = (run1 / "summary.csv").read_bytes()
    write_report(run1)
    assert (run1 / "summary.csv").read_bytes() == first
    # The same results in another row order give the same bytes.
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    run2 = make_run(tmp_path / "r2", shuffled)
    write_report(run2)
    assert (run2 / "summary.csv").read_bytes() == first
    got = read_csv(run1 / "summary.csv")
    keys = [(r["method"], r["dataset"], r["simulator"], r["metric"], int(r["k"])) for r in got]
    assert keys == sorted(keys) and len(keys) == 3 * 3 * 3
    assert all(repr(float(r["mean"])) == r["mean"] for r in got)


# ------------------------------------------------------------------------------------------
# ranks, ties, significance
# ------------------------------------------------------------------------------------------


def test_bold_best_and_underlined_second(tmp_path):
    n = 30
    # best = second + 0.5 + 0.002 * i: distinct positive differences, so the test is exact
    rows = column_rows("best_m", {0: [1.0 + 0.012 * i for i in range(n)],
                                  1: [1.1 + 0.012 * i for i in range(n)]})
    rows += column_rows("second_m", {0: [0.5 + 0.01 * i for i in range(n)],
                                     1: [0.6 + 0.01 * i for i in range(n)]})
    rows += column_rows("third_m", {0: [0.1] * n, 1: [0.2] * n})
    run = make_run(tmp_path / "run", rows)
    md = write_report(run, style="paper")
    pr = paper_rows(run)
    assert (pr["best_m"]["rank"], pr["best_m"]["best"], pr["best_m"]["second"]) == ("1", "true",
                                                                                    "false")
    assert (pr["second_m"]["rank"], pr["second_m"]["second"]) == ("2", "true")
    assert (pr["third_m"]["rank"], pr["third_m"]["best"], pr["third_m"]["second"]) == ("3", "false",
                                                                                      "false")
    # best strictly higher on all 30 paired cases -> exact two-sided p = 2 / 2**30 < 0.05
    assert pr["best_m"]["significant"] == "true"
    assert float(pr["best_m"]["p_value"]) == pytest.approx(2 / 2**30, rel=1e-6)
    assert pr["best_m"]["runner_up"] == "second_m"
    line = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ")}
    best_cell = "**1.224 ± 0.071**†"   # seed means 1.174, 1.274
    assert best_cell in line["best_m"]
    assert "<u>0.695 ± 0.071</u>" in line["second_m"]
    assert "**" not in line["third_m"] and "<u>" not in line["third_m"]
    assert "Wilcoxon signed-rank" in md and "p < 0.05" in md
    tex = (run / "paper.tex").read_text()
    assert r"\textbf{1.224$\pm$0.071}$^\dagger$" in tex
    assert r"\underline{0.695$\pm$0.071}" in tex
    assert "Wilcoxon signed-rank" in tex
    # summary.tex/md (default style) bold the best only
    stex = (run / "summary.tex").read_text()
    assert r"\textbf{1.224$\pm$0.071}" in stex and r"\underline" not in stex


def test_ties_share_bold_and_get_no_mark(tmp_path):
    vals = {0: [0.3 + 0.02 * i for i in range(30)], 1: [0.35 + 0.02 * i for i in range(30)]}
    rows = column_rows("twin_a", vals) + column_rows("twin_b", vals)
    rows += column_rows("worse", {0: [0.0] * 30, 1: [0.1] * 30})
    run = make_run(tmp_path / "run", rows)
    md = write_report(run, style="paper")
    pr = paper_rows(run)
    for m in ("twin_a", "twin_b"):
        assert (pr[m]["rank"], pr[m]["best"], pr[m]["significant"], pr[m]["p_value"]) == \
            ("1", "true", "false", "")
    assert (pr["worse"]["rank"], pr["worse"]["second"]) == ("2", "true")
    assert "†" not in md.split("## ")[-1]  # no dagger in the table
    assert md.count("**0.615 ± 0.035**") == 2
    assert r"$^\dagger$" not in (run / "paper.tex").read_text().split(r"\begin{tabular}")[1] \
        .split(r"\end{tabular}")[0]


def test_rounded_tie_is_dense_ranked(tmp_path):
    # 0.1234 and 0.1232 both print as 0.123: they share rank 1; 0.100 gets rank 2 (dense).
    rows = column_rows("x", {0: [0.1234] * 4}) + column_rows("y", {0: [0.1232] * 4})
    rows += column_rows("z", {0: [0.1] * 4})
    run = make_run(tmp_path / "run", rows)
    write_report(run, style="paper")
    pr = paper_rows(run)
    assert [pr[m]["rank"] for m in "xyz"] == ["1", "1", "2"]
    assert pr["x"]["significant"] == "false" and pr["z"]["second"] == "true"


def test_nothing_significant_with_few_cases(tmp_path):
    # Best higher on all 5 cases: the exact two-sided p is 2/32 = 0.0625 >= 0.05 -> no mark.
    rows = column_rows("hi", {0: [1.0, 2.0, 3.0, 4.0, 5.0]})
    rows += column_rows("lo", {0: [0.9, 1.8, 2.7, 3.6, 4.5]})
    run = make_run(tmp_path / "run", rows)
    md = write_report(run, style="paper")
    pr = paper_rows(run)
    assert pr["hi"]["rank"] == "1" and pr["hi"]["significant"] == "false"
    assert float(pr["hi"]["p_value"]) == pytest.approx(0.0625)
    assert "†" not in md.split("## ")[-1]


def test_nothing_significant_with_tiny_noisy_differences(tmp_path):
    # 40 paired differences of alternating sign and growing size: "a" is ahead by 0.005 on
    # average (each -/+ pair adds 0.01), but the signed ranks are balanced (W+ 420, W- 400).
    base = np.linspace(-1.0, 1.0, 40)
    diff = np.array([(-1) ** (i + 1) * (0.1 + 0.01 * i) for i in range(40)])
    rows = column_rows("a", {0: list(base + diff)})
    rows += column_rows("b", {0: list(base)})
    run = make_run(tmp_path / "run", rows)
    write_report(run, style="paper")
    pr = paper_rows(run)
    assert pr["a"]["rank"] == "1" and pr["b"]["rank"] == "2"
    assert pr["a"]["significant"] == "false"
    assert float(pr["a"]["p_value"]) >= 0.05


def test_significance_pairs_by_case_id_and_averages_seeds(tmp_path):
    # Per-case values differ only after averaging over seeds and pairing by id: "a" wins on
    # every case on average (seed 1 lists the cases in another order).
    n = 12
    a0 = [float(i) + 1.0 for i in range(n)]
    a1 = [float(i) - 0.5 for i in range(n)]                     # per-case mean = i + 0.25
    b = [float(i) for i in range(n)]
    rows = column_rows("a", {0: a0})
    rows += [("a", "toy", "sasrec", 1, f"c{i}", "ioi", 1, a1[i]) for i in reversed(range(n))]
    rows += column_rows("b", {0: b, 1: b})
    run = make_run(tmp_path / "run", rows)
    write_report(run, style="paper")
    pr = paper_rows(run)
    assert pr["a"]["rank"] == "1"
    assert float(pr["a"]["p_value"]) == pytest.approx(2 / 2**n, rel=1e-6)
    assert pr["a"]["significant"] == "true"


def test_invalid_lower_is_better(tmp_path):
    rows = column_rows("clean", {0: [0.0, 0.1]}, metric="invalid")
    rows += column_rows("dirty", {0: [0.5, 0.7]}, metric="invalid")
    rows += column_rows("clean", {0: [2.0, 3.0]}, metric="len")
    rows += column_rows("dirty", {0: [4.0, 5.0]}, metric="len")
    run = make_run(tmp_path / "run", rows)
    md = write_report(run, style="paper", metrics=["invalid", "len"], ks=[1])
    pr = paper_rows(run, metric="invalid")
    assert pr["clean"]["rank"] == "1" and pr["dirty"]["rank"] == "2"
    assert "| Invalid ↓" in md and "Len ↑" not in md and "Len ↓" not in md and "at K=1" in md
    lens = paper_rows(run, metric="len")
    assert lens["clean"]["rank"] == "" and lens["dirty"]["rank"] == ""  # no direction: no marks
    summary_md = (run / "summary.md").read_text()
    assert "**0.050**" in summary_md and "**0.600**" not in summary_md
    assert "**3.50**" not in summary_md and "**4.50**" not in summary_md


def test_directions_from_registry_with_fallback():
    class FakeRegistry:
        def metric(self, name):
            if name == "custom":
                return types.SimpleNamespace(higher_is_better=False)
            raise KeyError(name)

    got = metric_directions(["custom", "invalid", "ioi", "len", "mystery"], FakeRegistry())
    assert got == {"custom": False, "invalid": False, "ioi": True, "len": None, "mystery": None}
    assert metric_directions(["custom", "ior"], False) == {"custom": None, "ior": True}


def test_registry_direction_is_used_in_tables(tmp_path):
    class FakeRegistry:
        def metric(self, name):
            return types.SimpleNamespace(higher_is_better=False)   # everything: lower is better

    rows = column_rows("a", {0: [1.0, 1.0]}, metric="weird") + column_rows(
        "b", {0: [2.0, 2.0]}, metric="weird")
    run = make_run(tmp_path / "run", rows)
    write_report(run, style="paper", registry=FakeRegistry())
    pr = paper_rows(run, metric="weird")
    assert pr["a"]["rank"] == "1" and pr["b"]["rank"] == "2"


# ------------------------------------------------------------------------------------------
# failures, selection, errors
# ------------------------------------------------------------------------------------------


def test_failed_cells_are_shown_with_their_error(tmp_path):
    rows = column_rows("good", {0: [1.0, 2.0], 1: [1.5, 2.5]})
    rows += column_rows("flaky", {0: [0.5, 0.6]})
    cells = [("good", "toy", 0, "sasrec", "sasrec", "ok", "", 1.0),
             ("good", "toy", 1, "sasrec", "sasrec", "ok", "", 1.0),
             ("flaky", "toy", 0, "sasrec", "sasrec", "ok", "", 1.0),
             ("flaky", "toy", 1, "sasrec", "sasrec", "failed", "ValueError: seed one broke", 0.5),
             ("bad_m", "toy", 0, "sasrec", "sasrec", "failed", "RuntimeError: CUDA OOM | big", 0.1),
             ("bad_m", "toy", 1, "sasrec", "sasrec", "failed", "RuntimeError: again", 0.1)]
    run = make_run(tmp_path / "run", rows, cells=cells)
    md = write_report(run)
    table_lines = [ln for ln in md.splitlines() if ln.startswith("| bad_m")]
    assert len(table_lines) == 1 and table_lines[0].count("failed") == 1   # one column (ioi@1)
    assert "RuntimeError: CUDA OOM \\| big" in md and "RuntimeError: again" in md
    assert "ValueError: seed one broke" in md
    assert "| flaky (1/2 seeds)" in md
    assert md == (run / "summary.md").read_text()
    tex = (run / "summary.tex").read_text()
    assert r"bad\_m & \textit{failed} \\" in tex
    assert "% failed: toy / sasrec / bad_m / seed 0: RuntimeError: CUDA OOM | big" in tex
    paper = write_report(run, style="paper")
    assert "| bad_m" in paper and "RuntimeError: again" in paper
    assert paper_rows(run)["bad_m"]["cell"] == "failed"
    # Failed methods never take part in ranks.
    assert paper_rows(run)["bad_m"]["rank"] == ""


def test_everything_failed_still_reports(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame([("m", "toy", 0, "sasrec", "sasrec", "failed", "boom", 0.0)],
                 columns=CELL_COLS).to_csv(run / "cells.csv", index=False)
    md = write_report(run, style="paper", plots=True)
    assert "boom" in md and "| m        | failed" in md
    assert read_csv(run / "summary.csv") == []
    assert not (run / "metrics.png").exists()


def test_metric_and_k_selection(tmp_path):
    rows = []
    for metric in ["ioi", "ior", "ctr", "coherence", "sr10"]:
        for k in [1, 5, 10, 20]:
            rows += column_rows("a", {0: [1.0, 2.0]}, metric=metric, k=k)
    run = make_run(tmp_path / "run", rows)
    md = write_report(run, style="paper")
    header = next(ln for ln in md.splitlines() if ln.startswith("| Method"))
    cols = [c.strip() for c in header.strip("|").split("|")][1:]
    assert cols == [f"{m} (K={k}) ↑" for m in ["IoI", "IoR", "CTR", "Coherence"] for k in [1, 5, 10]]
    md = write_report(run, style="paper", metrics=["sr10", "ioi"], ks=[20])
    header = next(ln for ln in md.splitlines() if ln.startswith("| Method"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == ["SR@10 ↑", "IoI ↑"]  # one K:
    assert "Results at K=20" in md                                                   # in the caption
    md = write_report(run)   # default style: every metric at K = 1
    header = next(ln for ln in md.splitlines() if ln.startswith("| Method"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == [
        "IoI ↑", "IoR ↑", "CTR ↑", "Coherence ↑", "SR@10 ↑"]
    assert "Results at K=1" in md
    with pytest.raises(ConfigError, match="ioix.*did you mean 'ioi'"):
        write_report(run, metrics=["ioix"])
    with pytest.raises(ConfigError, match="K 7"):
        write_report(run, ks=[7])
    with pytest.raises(ConfigError, match="unknown style 'papers'.*did you mean 'paper'"):
        write_report(run, style="papers")


def test_bad_input_raises_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither cases.csv.gz nor cells.csv"):
        write_report(tmp_path / "empty")
    run = make_run(tmp_path / "run", column_rows("a", {0: [1.0]}))
    df = pd.read_csv(run / "cases.csv.gz")
    df["seed"] = df["seed"].astype(object)
    df.loc[0, "seed"] = "zero"
    df.to_csv(run / "cases.csv.gz", index=False)
    with pytest.raises(DataError, match=r"cases.csv.gz:2: column 'seed'"):
        write_report(run)
    df.drop(columns=["seed"]).to_csv(run / "cases.csv.gz", index=False)
    with pytest.raises(DataError, match="missing column"):
        write_report(run)
    (run / "cases.csv.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(DataError, match="cannot read"):
        write_report(run)


def test_config_order_of_methods(tmp_path):
    rows = column_rows("zz", {0: [1.0]}) + column_rows("aa", {0: [2.0]})
    run = make_run(tmp_path / "run", rows, config='methods = ["zz", "aa"]\n')
    md = write_report(run)
    order = [ln.split("|")[1].strip() for ln in md.splitlines()
             if ln.startswith("| ") and not ln.startswith("| Method")]
    assert order == ["zz", "aa"]


# ------------------------------------------------------------------------------------------
# LaTeX
# ------------------------------------------------------------------------------------------

NASTY = ["a_b", "50%_off", "x&y", "h#sh", "$cash", "{br}", "t~i^l", "back\\slash", "p$\\q^$r"]


def _split_row(row: str) -> list[str]:
    cells, depth, cur, i = [], 0, "", 0
    while i < len(row):
        ch = row[i]
        if ch == "\\":
            cur += row[i:i + 2]
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "&" and depth == 0:
            cells.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    return cells + [cur]


def _braces_balanced(text: str) -> bool:
    depth, i = 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth < 0:
            return False
        i += 1
    return depth == 0


def validate_tables(tex: str) -> list[list[list[list[str]]]]:
    """Check every float of a generated file: per float, the split rows of each of its tabulars."""
    body = "\n".join(ln for ln in tex.splitlines() if not ln.lstrip().startswith("%"))
    assert _braces_balanced(body)
    parts = re.findall(r"\\begin\{table\*?\}.*?\\end\{table\*?\}", body, flags=re.S)
    assert parts and len(parts) == body.count(r"\begin{table")
    return [validate_tabular(p) for p in parts]


def validate_tabular(tex: str) -> list[list[list[str]]]:
    """Check the structure of one generated float (one or more tabulars stacked); return the split
    rows of each tabular (header rows included)."""
    body = "\n".join(ln for ln in tex.splitlines() if not ln.lstrip().startswith("%"))
    assert _braces_balanced(body)
    assert body.count(r"\begin{table") == body.count(r"\end{table") == 1
    assert body.count(r"\footnotesize") == 1 and r"\scriptsize" not in body   # 8 pt, never smaller
    tabulars = re.findall(r"\\begin\{tabular\}.*?\\end\{tabular\}", body, flags=re.S)
    assert tabulars and len(tabulars) == body.count(r"\begin{tabular}") == body.count(r"\end{tabular}")
    out = []
    for tab in tabulars:
        top, mid, bottom = tab.index(r"\toprule"), tab.index(r"\midrule"), tab.index(r"\bottomrule")
        assert top < mid < bottom
        spec = re.search(r"\\begin\{tabular\}\{(.*)\}$", tab, flags=re.M).group(1).replace("@{}", "")
        assert set(spec) <= set("lcr"), spec
        ncols = len(spec)
        rows = []
        for line in tab[top:bottom].splitlines():
            line = line.strip()
            if not line.endswith(r"\\"):
                continue
            cells = _split_row(line[:-2])
            width = sum(int(m.group(1)) if (m := re.match(r"\s*\\multicolumn\{(\d+)\}", c)) else 1
                        for c in cells)
            assert width == ncols, line
            rows.append(cells)
        for m in re.finditer(r"\\cmidrule\(lr\)\{(\d+)-(\d+)\}", tab):
            assert 2 <= int(m.group(1)) <= int(m.group(2)) <= ncols
        out.append(rows)
    return out


def _nasty_run(tmp_path: Path) -> Path:
    rows = []
    for j, name in enumerate(NASTY):
        for ds in ["d_1", "d%2"]:
            for metric in ["ioi", "ior", "ctr", "coherence", "invalid"]:
                for k in [1, 5, 10]:
                    rows += column_rows(name, {0: [0.1 * j - 0.3, 0.1 * j], 1: [0.1 * j, 0.2]},
                                        metric=metric, k=k, dataset=ds)
    cells = [(n, ds, s, "sasrec", "sasrec", "ok", "", 1.0) for n in NASTY for ds in ["d_1", "d%2"]
             for s in (0, 1)]
    cells.append(("fail&ed_1", "d_1", 0, "sasrec", "sasrec", "failed", "bad {brace} 100% & more",
                  0.0))
    return make_run(tmp_path / "run", rows, cells=cells)


def test_latex_structure_and_escaping(tmp_path):
    assert latex_escape("a_b%c&d#e$f{g}h~i^j\\k") == (
        r"a\_b\%c\&d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k")
    run = _nasty_run(tmp_path)
    write_report(run, style="paper", plots=True)
    assert _is_png(run / "metrics.png")    # names with $ ^ { } _ do not break the plot
    paper = (run / "paper.tex").read_text()
    floats = validate_tables(paper)
    captions = re.findall(r"\\caption\{(.*)\}", paper)
    # one table per (dataset, eval simulator), continued over further floats where it must
    assert [c for c in captions if "continued" not in c] == [
        r"Results on d\%2 scored by the sasrec simulator: mean $\pm$ std over 2 seeds.",
        r"Results on d\_1 scored by the sasrec simulator: mean $\pm$ std over 2 seeds."]
    assert len(captions) == len(floats) and r"\label{tab:run-paper-1}" in paper
    n_methods = len(NASTY) + 1
    block = [t for f, c in zip(floats, captions) if "d\\_1" in c for t in f]
    for rows in block:   # header rows (the metric over its K, then Method and K), then every method
        names = [r[0].strip() for r in rows[-n_methods:]]
        assert names == [latex_escape(n) for n in sorted(NASTY + ["fail&ed_1"])]
        assert rows[-n_methods - 1][0].strip() == "Method"
    for n in names:
        assert not re.search(r"(?<!\\)[_%&#$]", n.replace(r"\textbackslash{}", "")), n
    # default paper columns: IoI, IoR, CTR, Coherence x K = 1, 5, 10 (Invalid not by default), each once
    heads = [(g, k) for rows in block for g, k in _column_heads(rows[:-n_methods])]
    assert sorted(heads) == sorted((m + r"$\uparrow$", f"$K={k}$") for m in ("IoI", "IoR", "CTR", "Coherence")
                                   for k in (1, 5, 10))
    assert r"\textit{failed}" in paper
    assert r"$-$0.025$\pm$0.177" in paper    # "a_b": seed means -0.15 and 0.1
    summary = (run / "summary.tex").read_text()
    for f in validate_tables(summary):
        for rows in f:
            assert any(r[0].strip() == r"\multicolumn{6}{@{}l@{}}{\textit{d\_1 (eval: sasrec)}}"
                       or r[0].startswith(r"\multicolumn") for r in rows)
    assert r"{\textit{d\_1 (eval: sasrec)}}" in summary and r"{\textit{d\%2 (eval: sasrec)}}" in summary


def _column_heads(header: list[list[str]]) -> list[tuple[str, str]]:
    """``(group header, column header)`` of each data column of a tabular's two header rows."""
    groups: list[str] = []
    for cell in header[0][1:]:
        m = re.match(r"\s*\\multicolumn\{(\d+)\}\{c\}\{(.*)\}\s*$", cell)
        groups += [m.group(2)] * int(m.group(1)) if m else [cell.strip()]
    return list(zip(groups, [c.strip() for c in header[1][1:]]))


# ------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------


def _plot_run(tmp_path: Path, train_log: pd.DataFrame | None = None) -> Path:
    rows = []
    for meth, off in [("m1", 0.0), ("m2", 0.5)]:
        for ds in ["d1", "d2"]:
            for metric in ["ioi", "ior", "ctr", "sr10", "len"]:
                rows += column_rows(meth, {0: [off, off + 1], 1: [off + 0.2, off + 1.1]},
                                    metric=metric, dataset=ds)
    return make_run(tmp_path / "run", rows, train_log=train_log)


def _is_png(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and \
        path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_plot_is_written(tmp_path):
    run = _plot_run(tmp_path)
    md = write_report(run, plots=True)
    assert _is_png(run / "metrics.png")
    assert "- metrics.png" in md


def test_training_plots_are_delegated_and_listed(tmp_path, monkeypatch):
    log = pd.DataFrame({"method": ["prorl"] * 3, "dataset": ["d1"] * 3, "seed": [0] * 3,
                        "step": [0, 1, 2], "metric": ["loss"] * 3, "value": [1.0, 0.5, 0.2]})
    run = _plot_run(tmp_path, train_log=log)
    calls = []

    def plot_training(df, run_dir, *args, **kwargs):
        calls.append((df.copy(), Path(run_dir)))
        out = Path(run_dir) / "training_prorl.png"
        out.write_bytes(b"\x89PNG\r\n\x1a\n")
        return [out]

    import prorlbench.report.plots as plots_module

    monkeypatch.setattr(plots_module, "plot_training", plot_training)
    md = write_report(run, plots=True)
    assert len(calls) == 1 and calls[0][1] == run
    assert list(calls[0][0]["value"]) == [1.0, 0.5, 0.2]
    assert "- training_prorl.png" in md and "- metrics.png" in md

    def missing(df, run_dir, *args, **kwargs):   # a module the training plots need is absent
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(plots_module, "plot_training", missing)
    md = write_report(run, plots=True)
    assert "training plots unavailable" in md and _is_png(run / "metrics.png")


def test_summarize_empty():
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in CASE_COLS})
    assert summarize(empty).empty


# ------------------------------------------------------------------------------------------
# ranking property
# ------------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from prorlbench.report import Block, Cell, fmt_number, mark_ranks  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(means=st.lists(st.floats(-5, 5, allow_nan=False) | st.sampled_from([0.1234, 0.1232, 0.1]),
                      min_size=1, max_size=6),
       metric=st.sampled_from(["ioi", "ior", "invalid", "len"]))
def test_dense_rank_of_printed_means(means, metric):
    methods = [f"m{i}" for i in range(len(means))]
    cells = {(m, metric, 1): Cell(v, 0.0, 1, 1, "ok") for m, v in zip(methods, means)}
    block = Block("d", "s", methods, cells, {m: m for m in methods}, [])
    directions = {"ioi": True, "ior": True, "invalid": False, "len": None}
    mark_ranks([block], [metric], [1], directions)
    printed = {m: float(fmt_number(v, metric)) for m, v in zip(methods, means)}
    if directions[metric] is None:
        assert all(c.rank is None for c in cells.values())
        return
    distinct = sorted(set(printed.values()), reverse=directions[metric])
    for m in methods:
        assert cells[(m, metric, 1)].rank == distinct.index(printed[m]) + 1


def test_combined_table_puts_the_datasets_side_by_side(tmp_path):
    """combined.tex: the datasets are the column groups when all fit one column; with wider cells
    each metric is a group with a column per dataset, so every tabular still compares them."""
    def run_with(seeds, name, metrics):
        rows = []
        for meth, off in (("m1", 0.0), ("m2", 0.5)):
            for ds in ("d1", "d2"):
                for metric in metrics:
                    rows += column_rows(meth, {s: [off + 0.1 * s, off + 1] for s in seeds}, metric=metric, dataset=ds)
        run = make_run(tmp_path / name, rows)
        write_report(run, style="paper", ks=[1])
        return (run / "combined.tex").read_text()

    narrow = run_with([0], "one_seed", ["ioi", "ctr"])    # cells like 0.250: 4 columns fit one column
    (tab,) = [t for f in validate_tables(narrow) for t in f]
    assert _column_heads(tab[:2]) == [("d1", r"IoI$\uparrow$"), ("d1", r"CTR$\uparrow$"),
                                      ("d2", r"IoI$\uparrow$"), ("d2", r"CTR$\uparrow$")]
    assert "the datasets side by side" in narrow and r"\label{tab:one-seed-combined-1}" in narrow
    wide = run_with([0, 1], "two_seeds", ["ioi", "ior", "ctr", "coherence"])   # a metric group, a column per dataset
    heads = [h for f in validate_tables(wide) for t in f for h in _column_heads(t[:2])]
    assert sorted(heads) == sorted((m + r"$\uparrow$", ds) for m in ("IoI", "IoR", "CTR", "Coherence")
                                   for ds in ("d1", "d2"))
    assert all(len({ds for _, ds in _column_heads(t[:2])}) == 2 for f in validate_tables(wide) for t in f)
