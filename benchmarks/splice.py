"""Put one block of a grid, run elsewhere or later, into a committed study folder.

    python -m benchmarks.splice NEW_RUN INTO_RUN --datasets prorl-json

A study grid such as ``experiments/prorl_study.toml`` is often run in parts (one dataset per
sitting, or on another machine), and a committed run folder (``results/prorl-study``) keeps its
tables but not its per-case files (``cells/``, ``cases.csv.gz``), which are too large for git. So
``prorlbench report --all-cells`` cannot re-merge a block whose cells are no longer on disk. This
script replaces, in ``INTO_RUN``, the rows of the named datasets by those of ``NEW_RUN`` and keeps
every other dataset's rows as they are:

* ``summary.csv``, ``paper.csv`` and ``cells.csv`` (row for row, the other datasets unchanged);
* ``comparisons.md`` (``python -m benchmarks.study``'s tables; run it on ``NEW_RUN`` first). This
  is exact, not an approximation: every statistic of a row uses that dataset's cases only, and
  Holm's correction is done per dataset;
* ``run.log``: ``NEW_RUN``'s log is appended.

Then ``prorlbench report INTO_RUN --style paper`` rebuilds the Markdown, LaTeX and plots from
``summary.csv`` and ``paper.csv`` (a folder without ``cases.csv.gz`` is read that way). Both
folders must come from the same grid file; ``INTO_RUN/config.toml`` is kept.

``--methods A,B`` narrows the splice to those methods' rows of the named datasets (a few methods
re-run, or added, in a later sitting, when the other cells of the block are no longer on disk):

* the tables' rows of those methods, and the comparison rows whose methods are *both* among them
  (a comparison of one of them with another method needs both methods' per-case values, so the
  splice refuses when ``INTO_RUN`` holds such a row);
* Holm's correction stays one family per dataset: every ``p (Holm)`` of the dataset is recomputed
  over the spliced family from the ``p`` column as printed (two significant digits), which the
  note at the top of ``comparisons.md`` says;
* ``seeds_*.md`` (``benchmarks.study --seeds-table``) rows of those methods, when both folders
  have the file;
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


def _sections(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The lines before the first ``## `` heading, and each section's lines by heading."""
    head: list[str] = []
    sections: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("## "):
            cur = line
            sections[cur] = []
        elif cur is None:
            head.append(line)
        else:
            sections[cur].append(line)
    return head, sections


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`") for c in line.strip().strip("|").split("|")]


def _row_dataset(line: str) -> str | None:
    if not line.startswith("| ") or line.startswith("| dataset") or line.startswith("|---"):
        return None
    return line.split("|")[1].strip()


def _row_methods(line: str) -> set[str]:
    """The methods a table row is about: A and B of a comparison, the method of a dynamics row."""
    c = _cells(line)
    return {c[2], c[3]} if len(c) == 11 else {c[1]}


def _replaced(line: str, datasets: set[str], methods: set[str]) -> bool:
    if _row_dataset(line) not in datasets:
        return False
    return not methods or _row_methods(line) <= methods


def _p_value(text: str) -> float:
    return 0.0 if text.startswith("<") else float(text)


def _holm_by_row(lines: list[str], dataset: str) -> dict[tuple[str, ...], float]:
    """Holm over ``dataset``'s comparison rows, from the printed ``p``, by (dataset, eval, A, B, metric)."""
    from benchmarks.study import holm

    rows = [_cells(line) for line in lines if _row_dataset(line) == dataset and len(_cells(line)) == 11]
    adj = holm(np.array([_p_value(c[8]) for c in rows]))
    return {tuple(c[:5]): float(a) for c, a in zip(rows, adj)}


def rehome_holm(before: list[str], after: list[str], datasets: set[str], fresh: set[tuple[str, ...]]) -> list[str]:
    """``after``'s comparison rows of ``datasets`` with ``p (Holm)`` redone over the spliced family.

    Holm needs every raw p of the family, and the kept rows' raw p is known only as printed. So a
    kept row's stored ``p (Holm)`` (computed from full-precision p) is scaled by how the splice
    moves it, Holm from the printed p after over Holm from the printed p before: a row whose
    rank and family size do not change keeps its value exactly. The ``fresh`` rows (keys of the
    new run's rows) take Holm from the printed p after the splice.
    """
    from benchmarks.study import _p

    out = list(after)
    for ds in datasets:
        old, new = _holm_by_row(before, ds), _holm_by_row(after, ds)
        for i, line in enumerate(out):
            c = _cells(line)
            if _row_dataset(line) != ds or len(c) != 11:
                continue
            key = tuple(c[:5])
            if key in fresh or key not in old:
                value = new[key]
            else:
                stored = _p_value(c[9])
                value = min(1.0, stored * (new[key] / old[key])) if old[key] > 0 else stored
            parts = line.split("|")
            parts[10] = f" {_p(value)} "
            out[i] = "|".join(parts)
    return out


def splice_markdown(new: str, into: str, datasets: set[str], note: str,
                    methods: set[str] = frozenset()) -> str:
    """``into``'s tables with the rows of ``datasets`` (of ``methods`` only, when given) taken
    from ``new`` (sections matched by heading)."""
    order = ["prorl-json", "movielens", "synthetic"]
    head_old, old = _sections(into)
    _, fresh = _sections(new)
    out = [*[line for line in head_old if line.strip()], "", note, ""]
    for title in dict.fromkeys([*old, *fresh]):
        body_old, body_new = old.get(title, []), fresh.get(title, [])
        table_head = [line for line in (body_old or body_new) if line.startswith("| dataset") or line.startswith("|---")]
        rows = [line for line in body_old if _row_dataset(line) is not None and not _replaced(line, datasets, methods)]
        rows += [line for line in body_new if _row_dataset(line) is not None and _replaced(line, datasets, methods)]
        rank = {d: i for i, d in enumerate(order)}
        # benchmarks.study's order: dataset, then evaluating simulator (comparison rows), stable
        rows.sort(key=lambda line: (rank.get(_row_dataset(line) or "", len(order)),
                                    _cells(line)[1] if len(_cells(line)) == 11 else ""))
        if rows:
            out += [title, "", *table_head, *rows, ""]
    if not methods:
        return "\n".join(out)
    fresh = {tuple(_cells(line)[:5]) for body in fresh.values() for line in body
             if _replaced(line, datasets, methods) and len(_cells(line)) == 11}
    return "\n".join(rehome_holm(into.splitlines(), out, datasets, fresh))


def stranded(into: str, datasets: set[str], methods: set[str]) -> list[str]:
    """Comparison rows of ``into`` that pair one of ``methods`` with a method outside them."""
    return [line for line in into.splitlines() if _row_dataset(line) in datasets and len(_cells(line)) == 11
            and len(_row_methods(line) & methods) == 1]


def splice_seeds_table(new: str, into: str, methods: set[str]) -> str:
    """A ``seeds_*.md`` table (one row per method) with the rows of ``methods`` taken from ``new``."""
    def method(line: str) -> str | None:
        return _cells(line)[0] if line.startswith("| `") else None
    kept = [line for line in into.splitlines() if method(line) not in methods]
    added = [line for line in new.splitlines() if method(line) in methods]
    last = max(i for i, line in enumerate(kept) if line.startswith("|"))
    return "\n".join([*kept[: last + 1], *added, *kept[last + 1:]]) + "\n"


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.splice", description=__doc__.split("\n\n")[0])
    ap.add_argument("new", type=Path, help="the run folder that holds the new block (with its report written)")
    ap.add_argument("into", type=Path, help="the committed study folder to update in place")
    ap.add_argument("--datasets", required=True, help="comma-separated datasets whose rows NEW replaces")
    ap.add_argument("--methods", default="", help="comma-separated methods: replace only their rows of those "
                    "datasets (see the module help); empty: every method's")
    args = ap.parse_args(argv)
    datasets = {d.strip() for d in args.datasets.split(",") if d.strip()}
    methods = {m.strip() for m in args.methods.split(",") if m.strip()}
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
        spliced[name] = splice_table(new, into, datasets, methods)
    comp_new, comp_into = args.new / "comparisons.md", args.into / "comparisons.md"
    both = comp_new.exists() and comp_into.exists()
    if both and methods and (bad := stranded(comp_into.read_text(), datasets, methods)):
        print(f"splice: {comp_into}: {len(bad)} comparison row(s) pair a spliced method with another one, which "
              f"needs both methods' per-case values; first: {bad[0]}", file=sys.stderr)
        return 2
    for name, table in spliced.items():
        table.to_csv(args.into / name, index=False)
        print(f"{args.into / name}: {', '.join(sorted(datasets))} from {args.new}")
    what = f"{', '.join(sorted(datasets))}" + (f" for {', '.join(sorted(methods))}" if methods else "")
    if both:
        first = comp_new.read_text().splitlines()[0]
        note = (f"The rows of {what} were replaced by those of a later run (benchmarks.splice): "
                f"{first} The other rows are from the run above.")
        if methods:
            note += (f" p (Holm) of {', '.join(sorted(datasets))} is recomputed over the spliced family from the "
                     "p column as printed (two significant digits).")
        comp_into.write_text(splice_markdown(comp_new.read_text(), comp_into.read_text(), datasets, note,
                                             methods) + "\n")
        print(f"{comp_into}: {what} rows from {comp_new}")
    if methods:
        for seeds in sorted(args.new.glob("seeds_*.md")):
            if (args.into / seeds.name).exists():
                target = args.into / seeds.name
                target.write_text(splice_seeds_table(seeds.read_text(), target.read_text(), methods))
                print(f"{target}: rows of {', '.join(sorted(methods))} from {seeds}")
    if (args.new / "run.log").exists():
        with open(args.into / "run.log", "a") as f:
            f.write((args.new / "run.log").read_text())
    if methods:
        return _rebuild_report(args.into, datasets, methods)
    return 0


def _rebuild_report(into: Path, datasets: set[str], methods: set[str]) -> int:
    """The report of ``into`` rebuilt, then the significance marks no single run tested cleared."""
    from prorlbench.report import write_report

    write_report(into, style="paper")
    paper, cleared = check_marks(pd.read_csv(into / "paper.csv", dtype=str, keep_default_na=False),
                                 datasets, methods)
    if cleared:
        paper.to_csv(into / "paper.csv", index=False)
        write_report(into, style="paper")
        print(f"{into / 'paper.csv'}: {len(cleared)} best-method mark(s) cleared (best and runner-up not "
              "tested in one run):")
        for line in cleared:
            print(f"  {line}")
    print(f"report of {into} rebuilt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
