r"""Rendering laid-out tables (:mod:`.texlayout`) as LaTeX: tabulars, floats, the file.

Each tabular is boxed and its natural width written to the log (``prorlbench-fit: LABEL WIDTH in
LINEWIDTH``); only a tabular still wider than ``\\linewidth`` is scaled down to it, which
``tests/test_latex_fit.py`` measures. A file of many floats asks LaTeX for room for them
(``\\extrafloats``, LaTeX 2015 or later): floats with no text between them pile up otherwise.
"""

from __future__ import annotations

import re

from ..errors import one_line
from .table import Block
from .texlayout import FONT, SEP, Column, Piece, Section, Tex, chunk_columns, label_limit, pack, text_lines, \
    text_width


def wrapped(label: Tex, limit: float) -> str:
    """A label wider than ``limit`` in a ragged-right ``\\parbox`` (later lines indented), with break
    points after ``+`` and ``_`` (TeX breaks after ``-`` by itself)."""
    if label.width <= limit:
        return label.text
    text = label.text.replace("+", r"+\allowbreak{}").replace(r"\_", r"\_\allowbreak{}")
    return rf"\parbox[t]{{{limit:.0f}pt}}{{\raggedright\hangindent=4pt\hangafter=1 {text}}}"


def failure_comments(blocks: list[Block]) -> list[str]:
    out = []
    for b in blocks:
        for meth, seed, err in b.failures:
            out.append(f"% failed: {b.dataset} / {b.simulator} / {meth} / seed {seed}: "
                       f"{one_line(err, 300) or '(no message)'}")
        for meth, seed, why in b.weak:  # rows labelled "(weak simulator)": allow_weak_simulator
            out.append(f"% weak simulator: {b.dataset} / {b.simulator} / {meth} / seed {seed}: {one_line(why, 300)}")
    return out


def tabular(piece: Piece, limit: float) -> list[str]:
    cols = piece.columns
    n = len(cols)
    out = [r"\begin{tabular}{@{}l" + "c" * n + "@{}}", r"\toprule"]
    if any(c.group_head for c in cols):
        row, rules, i = [""], [], 0
        while i < n:
            j = i
            while j < n and cols[j].group == cols[i].group:
                j += 1
            head = cols[i].group_head.text if cols[i].group_head else ""
            row.append(rf"\multicolumn{{{j - i}}}{{c}}{{{head}}}")
            rules.append(rf"\cmidrule(lr){{{i + 2}-{j + 1}}}")
            i = j
        out += [" & ".join(row) + r" \\", " ".join(rules)]
    out += [" & ".join(["Method"] + [c.head.text for c in cols]) + r" \\", r"\midrule"]
    for si, s in enumerate(piece.sections):
        if si:
            out.append(r"\midrule")
        if s.title:
            out.append(rf"\multicolumn{{{n + 1}}}{{@{{}}l@{{}}}}{{\textit{{{s.title.text}}}}} \\")
        for key, lab in s.rows:
            out.append(" & ".join([wrapped(lab, limit)] + [c.cells.get(key, Tex("--", 4.25)).text for c in cols]) + r" \\")
    return out + [r"\bottomrule", r"\end{tabular}"]


def one_piece(sections: list[Section], columns: list[Column], width: str) -> bool:
    """Whether ``columns`` fit the width side by side (one chunk)."""
    rows = [lab for s in sections for _, lab in s.rows] + [Tex("Method", text_width("Method"))]
    return len(chunk_columns(columns, label_limit(rows, width) + SEP, width)) == 1


def floats(env: str, width: str, caption: str, cont: str, labels: tuple[str, str, int], sections: list[Section],
            columns: list[Column], note: str) -> tuple[list[str], int]:
    """The floats of one table (continued over several when it must); returns the lines and how
    many labels were used. ``labels``: (prefix, kind, first number)."""
    rows = [lab for s in sections for _, lab in s.rows] + [Tex("Method", text_width("Method"))]
    limit = label_limit(rows, width)
    chunks = chunk_columns(columns, limit + SEP, width)
    caption_h = text_lines(text_width(re.sub(r"\\[a-zA-Z]+|[{}$]", "", caption)) + 40, width) * 9.5 + 12
    note_h = (text_lines(text_width(re.sub(r"\\[a-zA-Z]+|[{}$]", "", note)), width) * 9.5 + 6) if note else 0
    out: list[str] = []
    floats = pack(sections, chunks, limit, caption_h + note_h)
    for fi, pieces in enumerate(floats):
        label = f"tab:{labels[0]}-{labels[1]}-{labels[2] + fi}"
        out += [rf"\begin{{{env}}}[tbp]", r"\centering", FONT, rf"\setlength{{\tabcolsep}}{{{SEP:g}pt}}",
                r"\caption{" + (caption if fi == 0 else cont) + "}", rf"\label{{{label}}}",
                r"\ifdefined\prorlbenchbox\else\newsavebox\prorlbenchbox\fi"]
        for pi, piece in enumerate(pieces):
            if pi:
                out.append(r"\par\medskip")
            out += [r"\sbox\prorlbenchbox{%", *tabular(piece, limit), "}%",
                    rf"\typeout{{prorlbench-fit: {label} \the\wd\prorlbenchbox\space in \the\linewidth}}%",
                    r"\ifdim\wd\prorlbenchbox>\linewidth\resizebox{\linewidth}{!}{\usebox\prorlbenchbox}"
                    r"\else\usebox\prorlbenchbox\fi"]
        if note and fi == 0:
            out += [r"\par\smallskip", r"\parbox{\linewidth}{" + note + "}"]
        out.append(rf"\end{{{env}}}")
    return out, len(floats)


def document(kind: str, blocks: list[Block], body: list[str]) -> str:
    """The file: a header comment, the failures as comments, room for many floats, the floats."""
    n = sum(line.startswith(r"\begin{table") for line in body)
    lines = [rf"% Generated by prorlbench report{kind}. Needs \usepackage{{booktabs,graphicx}}; tables are",
             "% \\footnotesize (8 pt in a 10 pt class) and sized for the column (see docs/report.md).",
             *failure_comments(blocks)]
    if n > MANY_FLOATS:  # LaTeX holds 18 pending floats; with no text between them they pile up
        lines += [f"% {n} floats: \\extrafloats (LaTeX 2015 or later) lets LaTeX hold them all.",
                  rf"\ifdefined\extrafloats\extrafloats{{{n}}}\fi"]
    return "\n".join(lines + body) + "\n"


MANY_FLOATS = 12
"""Files with more floats than this ask LaTeX for room for them (``\\extrafloats``)."""
