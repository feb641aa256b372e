r"""The LaTeX tables compile and read at 8 pt in one column of a two-column paper.

Every committed ``.tex`` under ``results/`` and freshly generated ones are compiled in a
two-column ``article`` (10 pt: the column is 229.5 pt wide, the text 550 pt high). The test fails
on any error, on an overfull box (a table wider than its column, or a float taller than the page),
on "Float too large for page", on a tabular scaled below :data:`MIN_SCALE` (each tabular writes its
natural width to the log, ``prorlbench-fit: LABEL WIDTH in LINEWIDTH``; it is scaled only when
wider than the line) and on a font smaller than ``\footnotesize`` (8 pt in a 10 pt class).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from prorlbench.report import write_report

from test_report import _nasty_run

ROOT = Path(__file__).resolve().parents[1]
MIN_SCALE = 0.85

pytestmark = pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex is absent, so the LaTeX tables cannot be compiled here "
           "(apt-get install texlive-latex-base texlive-latex-recommended)")

COMMITTED = sorted((ROOT / "results").glob("*/*.tex"))


def compile_tables(tmp: Path, files: list[Path], *, twocolumn: bool = True) -> str:
    """Compile ``files`` in an article (two columns when ``twocolumn``), each file on pages of
    its own; return the log."""
    doc = tmp / "doc.tex"
    inputs = "\n".join(f"\\input{{{f.resolve().as_posix()}}}\n\\clearpage" for f in files)
    doc.write_text(f"\\documentclass[{'twocolumn' if twocolumn else 'onecolumn'}]{{article}}\n"
                   "\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n"
                   f"{inputs}\n\\end{{document}}\n")
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
                         cwd=tmp, capture_output=True, text=True, timeout=300)
    log = (tmp / "doc.log").read_text(errors="replace")
    assert res.returncode == 0, res.stdout[-3000:]
    assert (tmp / "doc.pdf").stat().st_size > 0
    return log


def problems(log: str, files: list[Path]) -> list[str]:
    """Everything that makes a table unreadable or not fit, as lines of the log or of the files."""
    out = [ln for ln in log.splitlines()
           if ln.startswith("!") or "Overfull \\" in ln or "Float too large" in ln]
    fits = re.findall(r"prorlbench-fit: (\S+) ([\d.]+)pt in ([\d.]+)pt", log)
    out += [f"{label} scaled to {float(lw) / float(w):.0%}" for label, w, lw in fits
            if float(w) * MIN_SCALE > float(lw)]
    for f in files:
        text = f.read_text()
        n_tables = len(re.findall(r"\\begin\{table\*?\}", text))
        boxes = len(re.findall(r"\\typeout\{prorlbench-fit", text))
        if boxes < n_tables or "\\resizebox" in text.replace(r"\resizebox{\linewidth}{!}{\usebox\prorlbenchbox}", ""):
            out.append(f"{f.name}: a table whose scaling cannot be measured")
        out += [f"{f.name}: font below 8 pt ({m})" for m in re.findall(r"\\(?:scriptsize|tiny)\b", text)]
    return out


@pytest.mark.parametrize("width,twocolumn", [("single", True), ("single", False), ("full", True)])
def test_generated_tables_fit(tmp_path, width, twocolumn):
    run = _nasty_run(tmp_path)
    write_report(run, style="paper", latex_width=width, plots="none")
    paper = (run / "paper.tex").read_text()
    assert (r"\begin{table*}" in paper) == (width == "full")
    files = [run / "paper.tex", run / "summary.tex", run / "combined.tex"]
    log = compile_tables(tmp_path, files, twocolumn=twocolumn)
    assert problems(log, files) == []
    assert re.findall(r"prorlbench-fit", log)


@pytest.mark.parametrize("path", COMMITTED, ids=[p.relative_to(ROOT).as_posix() for p in COMMITTED])
def test_committed_tables_fit_one_column(tmp_path, path):
    log = compile_tables(tmp_path, [path], twocolumn=True)
    assert problems(log, [path]) == []


def test_committed_reports_have_tex_files():
    for name in ("example", "paper", "prorl-study"):
        assert list((ROOT / "results" / name).glob("*.tex")), f"results/{name} has no .tex files"


def test_the_checks_catch_what_they_should(tmp_path):
    """A table wider than the column, a float taller than the page and a scaled-down tabular are
    each reported."""
    wide = tmp_path / "wide.tex"
    wide.write_text("\\begin{table}\\centering\\begin{tabular}{" + "c" * 30 + "}\n"
                    + " & ".join(["0.123$\\pm$0.456"] * 30) + "\\\\\n\\end{tabular}\\end{table}\n")
    tall = tmp_path / "tall.tex"
    tall.write_text("\\begin{table}\\centering\\begin{tabular}{c}\n" + "x\\\\\n" * 80
                    + "\\end{tabular}\\end{table}\n")
    scaled = tmp_path / "scaled.tex"
    scaled.write_text("\\begin{table}\\newsavebox\\mybox\\sbox\\mybox{\\begin{tabular}{" + "c" * 12 + "}"
                      + " & ".join(["0.123$\\pm$0.456"] * 12) + "\\end{tabular}}%\n"
                      "\\typeout{prorlbench-fit: tab:x \\the\\wd\\mybox\\space in \\the\\linewidth}%\n"
                      "\\resizebox{\\linewidth}{!}{\\usebox\\mybox}\\end{table}\n")
    for f, what in ((wide, "Overfull \\hbox"), (tall, "Float too large"), (scaled, "scaled to")):
        sub = tmp_path / f.stem
        sub.mkdir()
        found = problems(compile_tables(sub, [f]), [f])
        assert any(what in p for p in found), (f.name, found)
