"""Render docs/findings.md and the README's headline table from the committed study tables.

    python -m prorlbench.study.findings [--check]

``docs/findings.template.md`` is the prose; every number in it that comes from the study is a
marker, filled from ``results/prorl-study``:

* ``[[cmp:DATASET|EVAL|A|B|Metric@1]]``: that row of ``comparisons.md``, written
  ``A vs B, Δ d [lo, hi], Holm p p, n/m seeds``; ``[[cmp:...|FIELD]]`` gives one field of it
  (``A``, ``B``, ``delta``, ``p_holm`` or ``seeds``);
* ``[[len:DATASET|METHOD]]``: the training-dynamics row, ``first → last`` (sampled length over
  the first and the last 16 RL steps, mean ± std over seeds);
* ``[[verdicts]]``: the one-glance verdict table (``prorlbench.study.verdicts``);
* ``[[axis:DATASET|EVAL|BUDGET|A − B|Metric@1]]``: that row of ``results/budget-axis/budget_axis.md``
  (``prorlbench.study.budget_axis``), written ``Δ d [lo, hi], Holm p p, n/m seeds``;
* ``[[include:PATH]]``: the committed file PATH (relative to the repository root), as it is.

The README's table between ``<!-- headline:start -->`` and ``<!-- headline:end -->`` is the ML-1M
block of ``summary.csv`` (K = 1, SASRec, mean over seeds, with the std where there are several).
``--check`` writes nothing and exits 1 when either file differs from its rendering (the test
suite runs it), so a number in the findings cannot drift from the tables.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "results" / "prorl-study"
TEMPLATE = ROOT / "docs" / "findings.template.md"
FINDINGS = ROOT / "docs" / "findings.md"
README = ROOT / "README.md"
MARKER = re.compile(r"\[\[(cmp|len|axis|include):([^\]]+)\]\]|\[\[(verdicts)\]\]")
AXIS = ROOT / "results" / "budget-axis" / "budget_axis.md"
HEADLINE = re.compile(r"(<!-- headline:start -->\n)(.*?)(<!-- headline:end -->)", re.S)
HEADLINE_METRICS = (("ioi", "IoI@1", 3), ("ior", "IoR@1", 1), ("ctr", "CTR@1", 3), ("coherence", "Coherence@1", 3),
                    ("ioi-lift", "IoI-lift@1", 3), ("len", "Len@1", 2))


class MarkerError(ValueError):
    pass


def comparison_rows(text: str) -> tuple[dict[tuple[str, ...], dict[str, str]], dict[tuple[str, str], str]]:
    """``comparisons.md``'s rows by (dataset, eval, A, B, metric), and its dynamics by (dataset, method)."""
    cmp, dyn = {}, {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 11 and cells[0] != "dataset" and not cells[0].startswith("---"):
            ds, sim, a, b, metric, ma, mb, delta, p, ph, seeds = cells
            key = (ds, sim, a.strip("`"), b.strip("`"), metric)
            cmp.setdefault(key, {"A": ma, "B": mb, "delta": delta, "p": p, "p_holm": ph, "seeds": seeds})
        elif len(cells) == 6 and cells[0] != "dataset" and not cells[0].startswith("---"):
            dyn[(cells[0], cells[1].strip("`"))] = f"{cells[3]} → {cells[4]}"
    return cmp, dyn


def axis_rows(text: str) -> dict[tuple[str, ...], str]:
    """``budget_axis.md``'s rows by (dataset, eval, budget, A − B, metric)."""
    out = {}
    for line in text.splitlines():
        c = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(c) == 10 and c[0] != "dataset" and not c[0].startswith("---"):
            out[(c[0], c[1], c[2], c[4], c[5])] = f"Δ {c[6]}, Holm p {c[7]}, {c[8]} seeds"
    return out


def render_text(template: str, comparisons: str, root: Path = ROOT) -> str:
    """``template`` with every marker filled; ``[[include:PATH]]`` reads ``root / PATH``."""
    cmp, dyn = comparison_rows(comparisons)

    axis: dict[tuple[str, ...], str] | None = None

    def fill(m: re.Match) -> str:
        nonlocal axis
        if m.group(3) == "verdicts":
            from .verdicts import default_sources, table

            return table(default_sources()).rstrip("\n")
        kind, parts = m.group(1), m.group(2).split("|")
        if kind == "include":
            path = root / m.group(2)
            if not path.is_file():
                raise MarkerError(f"{m.group(0)}: no file {path}")
            return path.read_text(encoding="utf-8").rstrip("\n")
        if kind == "axis":
            if axis is None:
                axis = axis_rows(AXIS.read_text(encoding="utf-8")) if AXIS.exists() else {}
            if tuple(parts) not in axis:
                raise MarkerError(f"no budget_axis.md row for {m.group(0)}")
            return axis[tuple(parts)]
        if kind == "len":
            if tuple(parts) not in dyn:
                raise MarkerError(f"no training-dynamics row for {m.group(0)}")
            return dyn[tuple(parts)]
        key, field = tuple(parts[:5]), parts[5] if len(parts) > 5 else None
        if key not in cmp:
            raise MarkerError(f"no comparisons.md row for {m.group(0)}")
        r = cmp[key]
        if field is not None:
            if field not in r:
                raise MarkerError(f"{m.group(0)}: unknown field {field!r} (one of {', '.join(r)})")
            return r[field]
        return f"{r['A']} vs {r['B']}, Δ {r['delta']}, Holm p {r['p_holm']}, {r['seeds']} seeds"

    return MARKER.sub(fill, template)


def headline_table(summary: pd.DataFrame, methods: list[str], dataset: str = "prorl-json",
                   simulator: str = "sasrec") -> str:
    part = summary[(summary["dataset"] == dataset) & (summary["simulator"] == simulator) & (summary["k"] == 1)]
    lines = ["| method | " + " | ".join(h for _, h, _ in HEADLINE_METRICS) + " |",
             "|---|" + "---|" * len(HEADLINE_METRICS)]
    for method in methods:
        rows = part[part["method"] == method].set_index("metric")
        if rows.empty:
            continue
        cells = []
        for metric, _, dg in HEADLINE_METRICS:
            if metric not in rows.index:
                cells.append("")
                continue
            r = rows.loc[metric]
            sd = f" ± {r['std']:.{dg}f}" if int(r["n_seeds"]) > 1 and metric != "len" else ""
            cells.append(f"{r['mean']:.{dg}f}{sd}")
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render(run: Path = RUN, template: Path = TEMPLATE, readme_path: Path | None = README,
           root: Path = ROOT) -> tuple[str, str | None]:
    """The rendered ``docs/findings.md`` and ``README.md`` (``None`` without ``readme_path``)."""
    from ..settings.runconfig import read_config_file

    findings = render_text(template.read_text(), (run / "comparisons.md").read_text(), root)
    if readme_path is None:
        return findings, None
    summary = pd.read_csv(run / "summary.csv", keep_default_na=False)
    methods = list(read_config_file(run / "config.toml").methods)
    readme = readme_path.read_text()
    if not HEADLINE.search(readme):
        raise MarkerError(f"{readme_path}: no <!-- headline:start --> ... <!-- headline:end --> block")
    readme = HEADLINE.sub(lambda m: m.group(1) + headline_table(summary, methods) + m.group(3), readme)
    return findings, readme


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prorlbench.study.findings", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs from its rendering")
    args = ap.parse_args(argv)
    try:
        findings, readme = render()
    except MarkerError as exc:
        print(f"findings: {TEMPLATE}: {exc}", file=sys.stderr)
        return 2
    stale = [p for p, text in ((FINDINGS, findings), (README, readme)) if p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"findings: {p} differs from its rendering; run python -m prorlbench.study.findings", file=sys.stderr)
        return 1 if stale else 0
    for p, text in ((FINDINGS, findings), (README, readme)):
        p.write_text(text)
    print(f"wrote {FINDINGS.relative_to(ROOT)} and the headline table of {README.name}"
          + (f" ({len(stale)} changed)" if stale else " (unchanged)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
