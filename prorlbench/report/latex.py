r"""The LaTeX renderer: ``summary.tex``, ``paper.tex`` and ``combined.tex`` (booktabs tables that
read at 8 pt).

Sizing (:mod:`.texlayout`, rendered by :mod:`.texfloats`): ``width="single"`` (default) fits one
column of a two-column paper, ``"full"`` the whole text width (``table*``). Every table is ``\footnotesize`` and cut into column
chunks and floats that fit the width and the page, so nothing is scaled down to unreadable text.
``summary.tex``: the default columns, a row section per (dataset, evaluating simulator).
``paper.tex``: floats per (dataset, evaluating simulator), a column group per metric, one column
per K. ``combined.tex``: per evaluating simulator, the datasets side by side (one K): a column group
per dataset when they fit the width, else per metric with a column per dataset.
Labels are ``tab:PREFIX-summary-N``, ``tab:PREFIX-paper-N``, ``tab:PREFIX-combined-N``
(``--latex-label PREFIX``, default: the run folder's name), so two runs' tables can share a paper.
Captions are one sentence; marks, test and profile are a note under the first table. Needs
``booktabs`` and ``graphicx``.
"""

from __future__ import annotations

import re

from ..errors import ConfigError
from .metadata import LEGACY, Metadata
from .stats import ALPHA
from .table import Block, Cell, fmt_number, seeds_note
from .texfloats import document, floats, one_piece
from .texlayout import MATH, WIDTHS, Column, Section, Tex, text_width

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}
_LABEL_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,79}$")


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text (method and dataset names, errors)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def label_prefix(name: str) -> str:
    """A ``\\label`` prefix made of a run folder's name (letters, digits and ``-`` only)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", str(name)).strip("-")[:60] or "prorlbench"


def check_label(prefix: str) -> str:
    """``--latex-label``: letters, digits, ``:._-``, at most 80 characters."""
    if not _LABEL_OK.match(prefix or ""):
        raise ConfigError(f"report: --latex-label '{prefix}': use letters, digits and : . _ - "
                          "(at most 80 characters, starting with a letter or digit)")
    return prefix


def _name(text: str) -> Tex:
    """A row label, escaped."""
    return Tex(latex_escape(text), text_width(text))


def _metric(m: str, directions: dict[str, bool | None], meta: Metadata, suffix: str = "") -> Tex:
    d = directions.get(m)
    arrow = "" if d is None else (r"$\uparrow$" if d else r"$\downarrow$")
    return Tex(latex_escape(meta.display(m) + suffix) + arrow,
               text_width(meta.display(m) + suffix) + (MATH["arrow"] if arrow else 0))


def _cell(c: Cell, metric: str, meta: Metadata, *, marks: bool) -> Tex:
    if c.state == "failed":
        return Tex(r"\textit{failed}", text_width("failed", "i"))
    if c.state != "ok":
        return Tex("--", 4.25)
    mean = fmt_number(c.mean, metric, meta)
    font = "b" if c.marked_best else "r"
    w = text_width(mean.lstrip("-"), font) + (MATH["minus"] if mean.startswith("-") else 0)
    t = ("$-$" + mean[1:]) if mean.startswith("-") else mean
    if c.n_seeds > 1:
        std = fmt_number(c.std, metric, meta)
        t += r"$\pm$" + std
        w += MATH["pm"] + text_width(std, font)
    if c.marked_best:
        t = rf"\textbf{{{t}}}"
        if marks and c.significant:
            t += r"$^\dagger$"
            w += MATH["dagger"]
    elif marks and c.marked_second:
        t = rf"\underline{{{t}}}"
    return Tex(t, w)


def _metric_columns(blocks: list[Block], metrics: list[str], ks: list[int], directions, meta: Metadata,
                    *, marks: bool, key=lambda bi, meth: meth) -> list[Column]:
    cols = []
    for m in metrics:
        for k in ks:
            head = _metric(m, directions, meta) if len(ks) == 1 else Tex(f"$K={k}$", 15.9 + 6.61 + 4.25 * len(str(k)))
            cells = {key(bi, meth): _cell(b.cells[(meth, m, k)], m, meta, marks=marks)
                     for bi, b in enumerate(blocks) for meth in b.methods}
            cols.append(Column(m, _metric(m, directions, meta) if len(ks) > 1 else None, head, cells))
    return cols


def _k_text(ks: list[int]) -> str:
    return f"$K={ks[0]}$" if len(ks) == 1 else "$K=" + ", ".join(map(str, ks)) + "$"


def _profile_text(profile: str) -> str:
    if not profile:
        return ""
    from ..settings.display import profile_note

    return " Profile: " + latex_escape(profile_note(profile)) + "."


def _tex(text: str) -> str:
    return latex_escape(text).replace("±", r"$\pm$")


def render_summary_tex(blocks: list[Block], metrics: list[str], ks: list[int],
                       directions: dict[str, bool | None], meta: Metadata = LEGACY, *,
                       width: str = "single", profile: str = "", label: str = "prorlbench") -> str:
    width = width if width in WIDTHS else "single"
    sections = [Section(Tex(latex_escape(b.title), text_width(b.title, "i")),
                        [(f"{bi}|{meth}", _name(b.labels[meth])) for meth in b.methods])
                for bi, b in enumerate(blocks)]
    cols = _metric_columns(blocks, metrics, ks, directions, meta, marks=False, key=lambda bi, meth: f"{bi}|{meth}")
    caption = f"Results at {_k_text(ks)}: {_tex(seeds_note(blocks))}."
    note = (r"Best per column in bold (ties: all bold; no mark with one method). $\uparrow$ higher "
            r"is better, $\downarrow$ lower is better." + _profile_text(profile))
    body, _ = floats("table*" if width == "full" else "table", width, caption,
                      f"Results at {_k_text(ks)} (continued).", (label, "summary", 1), sections, cols, note)
    return document("", blocks, body)


PAPER_NOTE_TEX = (
    "Best per column in bold, second underlined when at least three methods are ranked (dense "
    "ranking of means rounded to the printed precision; ties share a rank). $^\\dagger$: best "
    "significantly better than the runner-up, two-sided Wilcoxon signed-rank test on per-case "
    "values averaged over seeds and paired by case, $p < {alpha}$. $\\uparrow$ higher is better, "
    "$\\downarrow$ lower is better.")


def _paper_note(blocks: list[Block], alpha: float, profile: str) -> str:
    note = PAPER_NOTE_TEX.replace("{alpha}", f"{alpha:g}") + _profile_text(profile)
    if any(b.labels.get(meth, meth) != meth for b in blocks for meth in b.methods):
        note += r" $^*$: some seeds of this method failed (listed in paper.md)."
    return note


def _method_rows(b: Block, meta: Metadata) -> list[tuple[str, Tex]]:
    rows = []
    for meth in b.methods:
        lab = _name(meta.method(meth))
        if b.labels.get(meth, meth) != meth:
            lab = Tex(lab.text + r"$^*$", lab.width + MATH["star"])
        rows.append((meth, lab))
    return rows


def render_paper_tex(blocks: list[Block], metrics: list[str], ks: list[int],
                     directions: dict[str, bool | None], alpha: float = ALPHA,
                     meta: Metadata = LEGACY, *, width: str = "single", profile: str = "",
                     label: str = "prorlbench") -> str:
    width = width if width in WIDTHS else "single"
    env = "table*" if width == "full" else "table"
    lines: list[str] = []
    note = _paper_note(blocks, alpha, profile)
    first = f"tab:{label}-paper-1"
    n = 1
    for bi, b in enumerate(blocks):
        where = f"{latex_escape(b.dataset_label or b.dataset)} scored by the {latex_escape(b.simulator)} simulator"
        cols = _metric_columns([b], metrics, ks, directions, meta, marks=True)
        body, used = floats(env, width, f"Results on {where}: {_tex(seeds_note([b]))}.",
                             f"Results on {where} (continued).", (label, "paper", n),
                             [Section(None, _method_rows(b, meta))], cols,
                             note if bi == 0 else rf"Marks as in Table~\ref{{{first}}}.")
        lines += body
        n += used
    if not blocks:
        lines += floats(env, width, "No results.", "", (label, "paper", 1), [Section(None, [])], [], note)[0]
    return document(" --style paper", blocks, lines)


def render_combined_tex(blocks: list[Block], metrics: list[str], k: int,
                        directions: dict[str, bool | None], alpha: float = ALPHA,
                        meta: Metadata = LEGACY, *, width: str = "single", profile: str = "",
                        label: str = "prorlbench") -> str:
    """One table per evaluating simulator: rows methods, ``metrics`` at K = ``k`` of every dataset
    side by side (marks as in ``paper.tex``): a column group per dataset when all fit the width,
    else a column group per metric with a column per dataset, so each chunk still compares the
    datasets."""
    width = width if width in WIDTHS else "single"
    env = "table*" if width == "full" else "table"
    lines: list[str] = []
    note = _paper_note(blocks, alpha, profile)
    n, first = 1, f"tab:{label}-combined-1"
    for sim in dict.fromkeys(b.simulator for b in blocks):
        group = [b for b in blocks if b.simulator == sim]
        methods = list(dict.fromkeys(m for b in group for m in b.methods))
        rows = {meth: lab for b in group for meth, lab in _method_rows(b, meta)}
        section = [Section(None, [(m, rows[m]) for m in methods])]

        def column(b: Block, m: str, by_dataset: bool) -> Column:
            ds = b.dataset_label or b.dataset
            dtex, mtex = Tex(latex_escape(ds), text_width(ds)), _metric(m, directions, meta)
            cells = {meth: _cell(b.cells[(meth, m, k)], m, meta, marks=True) for meth in b.methods}
            return Column(b.dataset, dtex, mtex, cells) if by_dataset else Column(m, mtex, dtex, cells)

        cols = [column(b, m, True) for b in group for m in metrics]
        if not one_piece(section, cols, width):
            cols = [column(b, m, False) for m in metrics for b in group]
        caption = (f"Results at $K={k}$ scored by the {latex_escape(sim)} simulator, the datasets side by "
                   f"side: {_tex(seeds_note(group))}.")
        body, used = floats(env, width, caption, f"Results at $K={k}$, {latex_escape(sim)} simulator (continued).",
                            (label, "combined", n), section, cols,
                            note if n == 1 else rf"Marks as in Table~\ref{{{first}}}.")
        lines += body
        n += used
    return document(" --style paper (datasets side by side)", blocks, lines)
