"""Put one block of a grid, run elsewhere or later, into a committed study folder.

    python -m prorlbench.study.splice NEW_RUN INTO_RUN --datasets prorl-json

A study grid such as ``experiments/prorl_study.toml`` is often run in parts (one dataset per
sitting, or on another machine), and a committed run folder (``results/prorl-study``) keeps its
tables but not its per-case files (``cells/``, ``cases.csv.gz``), which are too large for git. So
``prorlbench report --all-cells`` cannot re-merge a block whose cells are no longer on disk. This
script replaces, in ``INTO_RUN``, the rows of the named datasets by those of ``NEW_RUN`` and keeps
every other dataset's rows as they are:

* ``summary.csv``, ``paper.csv`` and ``cells.csv`` (row for row, the other datasets unchanged);
* ``comparisons.md`` (``python -m prorlbench.study.claims``'s tables; run it on ``NEW_RUN`` first). This
  is exact, not an approximation: every statistic of a row uses that dataset's cases only, and
  Holm's correction is done per dataset;
* ``run.log``: ``NEW_RUN``'s log is appended.

Then ``prorlbench report INTO_RUN --style paper`` rebuilds the Markdown, LaTeX and plots from
``summary.csv`` and ``paper.csv`` (a folder without ``cases.csv.gz`` is read that way). Both
folders must come from the same grid: the splice refuses folders whose ``config.toml`` differ in
the training simulator or its config, the scoring (metrics, ks, eval simulators) or the spliced
datasets' config, or whose ``metadata.json`` records other data for them
(``prorlbench/study/splice_safe.py``); ``INTO_RUN/config.toml`` is kept. The splice is built in a
temporary copy of ``INTO_RUN`` and moved into place only when complete, so a write error leaves
the committed folder unchanged.

``--methods A,B`` narrows the splice to those methods' rows of the named datasets (a few methods
re-run, or added, in a later sitting, when the other cells of the block are no longer on disk):

* the tables' rows of those methods, and the comparison rows whose methods are *both* among them
  (a comparison of one of them with another method needs both methods' per-case values, so the
  splice refuses when ``INTO_RUN`` holds such a row);
* Holm's correction stays one family per dataset: every ``p (Holm)`` of the dataset is redone
  over the spliced family (``splice_md.rehome_holm``: a new row's from the ``p`` column as
  printed, a kept row's stored value scaled by how far the splice moves it, so a row whose rank
  and family size stay keeps its value exactly), which the note at the top of
  ``comparisons.md`` says;
* ``seeds_*.md`` (``prorlbench.study.claims --seeds-table``) rows of those methods, when both folders
  have the file;
* ``--same C`` names methods NEW re-ran only so that they can be paired with the spliced ones
  (their per-case files were gone too): their ``summary.csv`` rows must agree in both folders
  (a seeded re-run on the same platform: seed and case counts exactly, means and stds to a
  relative 1e-6 plus 1e-4; the splice refuses otherwise), their rows stay,
  and their comparisons with the spliced methods come from NEW;
* the report is rebuilt in place, and a best-method significance mark (†) of ``paper.csv`` is
  kept only where the best method and its runner-up come from the same run and the runner-up is
  still the one it was tested against; the others are cleared and listed (the paired test needs
  both methods' per-case values).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .splice_md import splice_markdown, splice_seeds_table, stranded
from .splice_safe import commit, grid_mismatch, staged
from ..report.gridcheck import read_grid_record, update_grid_record

TABLES = ("summary.csv", "paper.csv", "cells.csv")


def _rows(df: pd.DataFrame, datasets: set[str], methods: set[str]) -> pd.Series:
    hit = df["dataset"].isin(datasets)
    return hit & df["method"].isin(methods) if methods else hit


def splice_table(new: pd.DataFrame, into: pd.DataFrame, datasets: set[str],
                 methods: set[str] = frozenset()) -> pd.DataFrame:
    """``into`` with the rows of ``datasets`` (of ``methods`` only, when given) replaced by
    ``new``'s, in ``into``'s dataset order."""
    kept = into[~_rows(into, datasets, methods)]
    added = new[_rows(new, datasets, methods)]
    out = pd.concat([kept, added[into.columns]], ignore_index=True)
    order = {d: i for i, d in enumerate(dict.fromkeys([*into["dataset"], *added["dataset"]]))}
    return out.sort_values("dataset", key=lambda s: s.map(order), kind="mergesort").reset_index(drop=True)


def check_marks(paper: pd.DataFrame, datasets: set[str], methods: set[str]) -> tuple[pd.DataFrame, list[str]]:
    """``paper.csv`` as the report rebuilt it, with the significance marks cleared that no single
    run tested: best and runner-up from different runs (``methods`` came from the new one), or a
    runner-up other than the one the mark was computed against (its ``runner_up``)."""
    out, cleared = paper.copy(), []
    for key, g in out[out["dataset"].isin(datasets)].groupby(["dataset", "simulator", "metric", "k"]):
        best = g[g["rank"] == "1"]
        if len(best) != 1:
            continue
        i, winner = best.index[0], best["method"].iloc[0]
        second = sorted(g[g["rank"] == "2"]["method"])
        runs = {m in methods for m in [winner, *second]}
        if out.at[i, "runner_up"] and (len(runs) > 1 or out.at[i, "runner_up"] != ";".join(second)):
            out.loc[i, ["p_value", "significant", "runner_up"]] = ["", "false", ""]
            cleared.append(f"{'/'.join(map(str, key))}: {winner} vs {';'.join(second)}")
    return out, cleared


RTOL, ATOL = 1e-6, 1e-4
"""How far a ``--same`` row's mean and std may move (``|a - b| <= ATOL + RTOL * |b|``, far below
every printed precision): the lift metrics' random-path baselines are float sums whose batches
depend on which cell scored a (case, length) first (``plugins/metrics/lift.py``), which moves
their ninth digit, and IoR-lift, a difference of two IoR near 10^2-10^3, carries that as about
1e-5 absolute; a re-run on another trajectory moves the first or second digit."""


def differing_rows(new: pd.DataFrame, into: pd.DataFrame, datasets: set[str], same: set[str]) -> list[str]:
    """Rows of ``same`` (methods re-run in NEW only to pair with the spliced ones) that differ
    between the tables: seed and case counts exactly, mean and std beyond :data:`RTOL`, :data:`ATOL`."""
    key = [c for c in ("method", "dataset", "simulator", "metric", "k", "seed") if c in into.columns]
    a = new[_rows(new, datasets, same)].set_index(key).sort_index()
    b = into[_rows(into, datasets, same)].set_index(key).sort_index()
    if list(a.index) != list(b.index):
        return [f"rows {sorted(set(map(str, a.index)) ^ set(map(str, b.index)))[:1]} are in one table only"]
    exact = [c for c in ("n_seeds", "n_cases") if c in into.columns]
    close = [c for c in ("mean", "std") if c in into.columns]
    bad = (a[exact] != b[exact]).any(axis=1)
    for c in close:
        x, y = pd.to_numeric(a[c]).to_numpy(float), pd.to_numeric(b[c]).to_numpy(float)
        bad |= ~np.isclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=True)
    return [f"{idx}: {a.loc[idx, exact + close].tolist()} vs {b.loc[idx, exact + close].tolist()}"
            for idx in a.index[bad]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prorlbench.study.splice", description=__doc__.split("\n\n")[0])
    ap.add_argument("new", type=Path, help="the run folder that holds the new block (with its report written)")
    ap.add_argument("into", type=Path, help="the committed study folder to update in place")
    ap.add_argument("--datasets", required=True, help="comma-separated datasets whose rows NEW replaces")
    ap.add_argument("--methods", default="", help="comma-separated methods: replace only their rows of those "
                    "datasets (see the module help); empty: every method's")
    ap.add_argument("--same", default="", help="with --methods: comma-separated methods NEW re-ran only to pair "
                    "with them; their summary rows must agree with INTO's (within 1e-4 + 1e-6 x value), and their "
                    "comparisons with --methods come from NEW")
    args = ap.parse_args(argv)
    datasets = {d.strip() for d in args.datasets.split(",") if d.strip()}
    methods = {m.strip() for m in args.methods.split(",") if m.strip()}
    same = {m.strip() for m in args.same.split(",") if m.strip()} - methods
    if same and not methods:
        print("splice: --same needs --methods", file=sys.stderr)
        return 2
    for folder in (args.new, args.into):
        for name in TABLES:
            if not (folder / name).exists():
                print(f"splice: {folder / name}: missing (write the report first: prorlbench report {folder})",
                      file=sys.stderr)
                return 2
    spliced = {}
    for name in TABLES:  # check every table before writing any, so a refusal changes nothing
        new = pd.read_csv(args.new / name, dtype=str, keep_default_na=False)
        into = pd.read_csv(args.into / name, dtype=str, keep_default_na=False)
        missing = datasets - set(new["dataset"])
        if missing:
            print(f"splice: {args.new / name}: no rows for dataset(s) {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
        absent = methods - set(new[new["dataset"].isin(datasets)]["method"])
        if absent:
            print(f"splice: {args.new / name}: no rows for method(s) {', '.join(sorted(absent))}", file=sys.stderr)
            return 2
        if same and name == "summary.csv" and (diff := differing_rows(new, into, datasets, same)):
            print(f"splice: {args.new / name}: {len(diff)} row(s) of {', '.join(sorted(same))} differ from "
                  f"{args.into / name} (a re-run that did not reproduce); first: {diff[0]}", file=sys.stderr)
            return 2
        spliced[name] = splice_table(new, into, datasets, methods)
    comp_new, comp_into = args.new / "comparisons.md", args.into / "comparisons.md"
    both = comp_new.exists() and comp_into.exists()
    if both and methods and (bad := stranded(comp_into.read_text(), datasets, methods, same)):
        print(f"splice: {comp_into}: {len(bad)} comparison row(s) pair a spliced method with another one, which "
              f"needs both methods' per-case values; first: {bad[0]}", file=sys.stderr)
        return 2
    why, notes = grid_mismatch(args.new, args.into, datasets)
    if why is not None:
        print(f"splice: {why}; the folders come from different grids, and a splice puts together blocks of one "
              "grid only", file=sys.stderr)
        return 2
    for note in notes:
        print(f"splice: note: {note}", file=sys.stderr)
    # Built in a temporary copy of INTO, then moved into place file by file (splice_safe.commit):
    # a write error anywhere leaves the committed study folder as it was.
    try:
        with staged(args.into) as work:
            code = _write(args, work, spliced, datasets, methods, same, both)
            if code == 0:
                commit(work, args.into)
    except OSError as exc:
        print(f"splice: cannot write {args.into} ({exc.strerror or exc}); {args.into} is unchanged", file=sys.stderr)
        return 2
    return code


def _write(args: argparse.Namespace, work: Path, spliced: dict[str, pd.DataFrame], datasets: set[str],
           methods: set[str], same: set[str], both: bool) -> int:
    """Write the splice into ``work`` (a copy of INTO's files); messages name INTO."""
    comp_new = args.new / "comparisons.md"
    for name, table in spliced.items():
        table.to_csv(work / name, index=False)
        print(f"{args.into / name}: {', '.join(sorted(datasets))} from {args.new}")
    what = f"{', '.join(sorted(datasets))}" + (f" for {', '.join(sorted(methods))}" if methods else "")
    if both:
        first = comp_new.read_text().splitlines()[0]
        note = (f"The rows of {what} were replaced by those of a later run (prorlbench.study.splice): "
                f"{first} The other rows are from the run above.")
        if methods:
            note += (f" p (Holm) of {', '.join(sorted(datasets))} is redone over the spliced family: a new row's "
                     "from the p column as printed, a kept row's stored value scaled by how far the splice moves "
                     "it (prorlbench/study/splice_md.py).")
        if same:
            note += (f" {', '.join(sorted(same))} was re-run beside them, its rows equal to the run above's "
                     f"(checked to {ATOL:g} + {RTOL:g} x value), for the comparisons that pair it with them.")
        (work / "comparisons.md").write_text(splice_markdown(comp_new.read_text(), (work / "comparisons.md").read_text(),
                                                             datasets, note, methods, same) + "\n")
        print(f"{args.into / 'comparisons.md'}: {what} rows from {comp_new}")
    if methods:
        for seeds in sorted(args.new.glob("seeds_*.md")):
            if (work / seeds.name).exists():
                target = work / seeds.name
                target.write_text(splice_seeds_table(seeds.read_text(), target.read_text(), methods))
                print(f"{args.into / seeds.name}: rows of {', '.join(sorted(methods))} from {seeds}")
    if (args.new / "run.log").exists():
        with open(work / "run.log", "a") as f:
            f.write((args.new / "run.log").read_text())
    grids = read_grid_record(args.new / "metadata.json") or {}
    update_grid_record(work / "metadata.json", {d: g for d, g in grids.items() if d in datasets})
    if methods:
        return _rebuild_report(work, datasets, methods, args.into)
    return 0


def _rebuild_report(into: Path, datasets: set[str], methods: set[str], shown: Path | None = None) -> int:
    """The report of ``into`` rebuilt, then the significance marks no single run tested cleared
    (messages name ``shown``, the study folder ``into`` is a staged copy of)."""
    shown = shown or into
    from ..report import write_report

    write_report(into, style="paper")
    paper, cleared = check_marks(pd.read_csv(into / "paper.csv", dtype=str, keep_default_na=False),
                                 datasets, methods)
    if cleared:
        paper.to_csv(into / "paper.csv", index=False)
        write_report(into, style="paper")
        print(f"{shown / 'paper.csv'}: {len(cleared)} best-method mark(s) cleared (best and runner-up not "
              "tested in one run):")
        for line in cleared:
            print(f"  {line}")
    print(f"report of {shown} rebuilt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
