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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

TABLES = ("summary.csv", "paper.csv", "cells.csv")


def splice_table(new: pd.DataFrame, into: pd.DataFrame, datasets: set[str]) -> pd.DataFrame:
    """``into`` with the rows of ``datasets`` replaced by ``new``'s, in ``into``'s dataset order."""
    kept = into[~into["dataset"].isin(datasets)]
    added = new[new["dataset"].isin(datasets)]
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


def _row_dataset(line: str) -> str | None:
    if not line.startswith("| ") or line.startswith("| dataset") or line.startswith("|---"):
        return None
    return line.split("|")[1].strip()


def splice_markdown(new: str, into: str, datasets: set[str], note: str) -> str:
    """``into``'s tables with the rows of ``datasets`` taken from ``new`` (sections matched by heading)."""
    order = ["prorl-json", "movielens", "synthetic"]
    head_old, old = _sections(into)
    _, fresh = _sections(new)
    out = [*[line for line in head_old if line.strip()], "", note, ""]
    for title in dict.fromkeys([*old, *fresh]):
        body_old, body_new = old.get(title, []), fresh.get(title, [])
        table_head = [line for line in (body_old or body_new) if line.startswith("| dataset") or line.startswith("|---")]
        rows = [line for line in body_old if (d := _row_dataset(line)) is not None and d not in datasets]
        rows += [line for line in body_new if (d := _row_dataset(line)) is not None and d in datasets]
        rank = {d: i for i, d in enumerate(order)}
        rows.sort(key=lambda line: rank.get(_row_dataset(line) or "", len(order)))
        if rows:
            out += [title, "", *table_head, *rows, ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.splice", description=__doc__.split("\n\n")[0])
    ap.add_argument("new", type=Path, help="the run folder that holds the new block (with its report written)")
    ap.add_argument("into", type=Path, help="the committed study folder to update in place")
    ap.add_argument("--datasets", required=True, help="comma-separated datasets whose rows NEW replaces")
    args = ap.parse_args(argv)
    datasets = {d.strip() for d in args.datasets.split(",") if d.strip()}
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
        spliced[name] = splice_table(new, into, datasets)
    for name, table in spliced.items():
        table.to_csv(args.into / name, index=False)
        print(f"{args.into / name}: {', '.join(sorted(datasets))} from {args.new}")
    comp_new, comp_into = args.new / "comparisons.md", args.into / "comparisons.md"
    if comp_new.exists() and comp_into.exists():
        first = comp_new.read_text().splitlines()[0]
        note = (f"The rows of {', '.join(sorted(datasets))} were replaced by those of a later run (benchmarks.splice): "
                f"{first} The other datasets' rows are from the run above.")
        comp_into.write_text(splice_markdown(comp_new.read_text(), comp_into.read_text(), datasets, note) + "\n")
        print(f"{comp_into}: {', '.join(sorted(datasets))} rows from {comp_new}")
    if (args.new / "run.log").exists():
        with open(args.into / "run.log", "a") as f:
            f.write((args.new / "run.log").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
