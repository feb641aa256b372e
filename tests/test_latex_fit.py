"""The LaTeX tables compile and fit the page: pdflatex's log has no ``Overfull \\hbox``.

``single`` tables go into one column of a two-column ``article``; ``full`` ones (``table*``) span
the page. The committed example and paper reports are checked as they are in git.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from prorlbench.report import write_report

from test_report import _nasty_run

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")


def compile_tables(tmp: Path, files: list[Path], *, twocolumn: bool) -> str:
    """Compile ``files`` in an article (two columns when ``twocolumn``); return the log."""
    doc = tmp / "doc.tex"
    inputs = "\n".join(f"\\input{{{f.resolve().as_posix()}}}\n\\clearpage" for f in files)
    doc.write_text(f"\\documentclass[{'twocolumn' if twocolumn else 'onecolumn'}]{{article}}\n"
                   "\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n"
                   f"{inputs}\n\\end{{document}}\n")
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
                         cwd=tmp, capture_output=True, text=True, timeout=120)
    log = (tmp / "doc.log").read_text(errors="replace")
    assert res.returncode == 0, res.stdout[-3000:]
    assert (tmp / "doc.pdf").stat().st_size > 0
    return log


def overfull(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if "Overfull \\hbox" in ln]


@pytest.mark.parametrize("width,twocolumn", [("single", True), ("single", False), ("full", True)])
def test_generated_tables_fit(tmp_path, width, twocolumn):
    run = _nasty_run(tmp_path)
    write_report(run, style="paper", latex_width=width)
    paper = (run / "paper.tex").read_text()
    assert (r"\begin{table*}" in paper) == (width == "full")
    log = compile_tables(tmp_path, [run / "paper.tex", run / "summary.tex"], twocolumn=twocolumn)
    assert overfull(log) == []


@pytest.mark.parametrize("name", ["example", "paper"])
def test_committed_reports_fit_one_column(tmp_path, name):
    folder = ROOT / "results" / name
    files = sorted(folder.glob("*.tex"))
    assert files, f"results/{name} has no .tex files"
    log = compile_tables(tmp_path, files, twocolumn=True)
    assert overfull(log) == []


def test_overflow_is_detected(tmp_path):
    """The check itself works: a table wider than the column is reported."""
    wide = tmp_path / "wide.tex"
    wide.write_text("\\begin{table}\\centering\\begin{tabular}{" + "c" * 30 + "}\n"
                    + " & ".join(["0.123$\\pm$0.456"] * 30) + "\\\\\n\\end{tabular}\\end{table}\n")
    assert overfull(compile_tables(tmp_path, [wide], twocolumn=True))
