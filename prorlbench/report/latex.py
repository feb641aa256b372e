"""The LaTeX renderer: ``summary.tex`` and ``paper.tex`` (booktabs tables that fit the page).

Sizing. ``width="single"`` (default) fits one column of a two-column paper, ``"full"`` the whole
text width (``table*``). Metrics are split into stacked column groups of at most
:data:`MAX_COLUMNS` data columns, and each tabular is scaled down (never up) to ``\\linewidth``
with graphicx's ``\\resizebox`` when it is still wider, so no table overflows the page.
``paper.tex`` holds one table per (dataset, evaluating simulator). Captions are one sentence;
the rest (marks, test, profile) is a note under the table. Needs ``booktabs`` and ``graphicx``.
"""

from __future__ import annotations

from ..errors import one_line
from .metadata import LEGACY, Metadata
from .stats import ALPHA
from .table import Block, Cell, arrow, seeds_note

WIDTHS = ("single", "full")
"""``--latex-width`` values."""
MAX_COLUMNS = {("single", True): 6, ("single", False): 8, ("full", True): 12, ("full", False): 16}
"""Data columns per column group, by (width, whether cells show ``mean±std``)."""

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text (method and dataset names, errors)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _tex(text: str) -> str:
    return latex_escape(text).replace("±", r"$\pm$")


def _tex_cell(c: Cell, metric: str, meta: Metadata, *, second: bool, dagger: bool) -> str:
    if c.state == "failed":
        return r"\textit{failed}"
    t = c.text(metric, latex=True, meta=meta)
    if c.marked_best:
        t = rf"\textbf{{{t}}}"
        if dagger and c.significant:
            t += r"$^\dagger$"
    elif second and c.marked_second:
        t = rf"\underline{{{t}}}"
    return t


def _tex_failure_comments(blocks: list[Block]) -> list[str]:
    out = []
    for b in blocks:
        for meth, seed, err in b.failures:
            out.append(f"% failed: {b.dataset} / {b.simulator} / {meth} / seed {seed}: "
                       f"{one_line(err, 300) or '(no message)'}")
        for meth, seed, why in b.weak:  # rows labelled "(weak simulator)": allow_weak_simulator
            out.append(f"% weak simulator: {b.dataset} / {b.simulator} / {meth} / seed {seed}: {one_line(why, 300)}")
    return out


def column_groups(metrics: list[str], ks: list[int], blocks: list[Block], width: str) -> list[list[str]]:
    """Metrics split into groups of at most ``MAX_COLUMNS`` data columns (a metric keeps all its
    K together; a metric wider than the limit is a group of its own)."""
    with_std = any(c.state == "ok" and c.n_seeds > 1 for b in blocks for c in b.cells.values())
    limit = max(MAX_COLUMNS[(width if width in WIDTHS else "single", with_std)] // max(len(ks), 1), 1)
    return [metrics[i:i + limit] for i in range(0, len(metrics), limit)] or [[]]


def _header(group: list[str], ks: list[int], directions: dict[str, bool | None], meta: Metadata,
            first_col: str) -> list[str]:
    """Header rows of one column group: metric names (with K below them when several K)."""
    def label(m: str) -> str:
        return latex_escape(meta.display(m)) + arrow(directions.get(m), latex=True)

    if len(ks) == 1:
        return [" & ".join([first_col] + [label(m) for m in group]) + r" \\"]
    row, rules = [""], []
    for j, m in enumerate(group):
        row.append(rf"\multicolumn{{{len(ks)}}}{{c}}{{{label(m)}}}")
        start = 2 + j * len(ks)
        rules.append(rf"\cmidrule(lr){{{start}-{start + len(ks) - 1}}}")
    return [" & ".join(row) + r" \\", " ".join(rules),
            " & ".join([first_col] + [f"$K={k}$" for _ in group for k in ks]) + r" \\"]


def _float(env: str, caption: str, label: str, tabular: list[str], note: str) -> list[str]:
    return [rf"\begin{{{env}}}[t]", r"\centering", r"\small", r"\caption{" + caption + "}",
            rf"\label{{{label}}}",
            r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
            *tabular, "}", r"\par\smallskip",
            r"\parbox{\linewidth}{\footnotesize " + note + "}", rf"\end{{{env}}}"]


def _k_text(ks: list[int]) -> str:
    return f"$K={ks[0]}$" if len(ks) == 1 else "$K=" + ", ".join(map(str, ks)) + "$"


def _profile_text(profile: str) -> str:
    if not profile:
        return ""
    from ..display import profile_note

    return " Profile: " + latex_escape(profile_note(profile)) + "."


def _group_head(tab: list[str], group: list[str], ks: list[int], directions: dict[str, bool | None],
                meta: Metadata, ncols: int) -> list[str]:
    """Append a column group's header rows (padded to ``ncols``) and a rule to ``tab``; returns
    the empty cells that pad the group's data rows."""
    pad = [""] * (ncols - 1 - len(group) * len(ks))
    tab += [line if not line.endswith(r"\\") else line[:-3] + "".join(" & " for _ in pad) + r" \\"
            for line in _header(group, ks, directions, meta, "Method")]
    tab.append(r"\midrule")
    return pad


def _tabular(metrics: list[str], ks: list[int], blocks: list[Block], width: str
             ) -> tuple[list[list[str]], int, list[str]]:
    """The column groups of ``blocks``, the column count and the opening lines of their tabular."""
    groups = column_groups(metrics, ks, blocks, width)
    ncols = 1 + max(len(g) for g in groups) * len(ks)
    return groups, ncols, [r"\begin{tabular}{" + "l" + "c" * (ncols - 1) + "}", r"\toprule"]


def render_summary_tex(blocks: list[Block], metrics: list[str], ks: list[int],
                       directions: dict[str, bool | None], meta: Metadata = LEGACY, *,
                       width: str = "single", profile: str = "") -> str:
    groups, ncols, tab = _tabular(metrics, ks, blocks, width)
    for gi, group in enumerate(groups):
        if gi:
            tab.append(r"\midrule")
        pad = _group_head(tab, group, ks, directions, meta, ncols)
        for i, b in enumerate(blocks):
            if i:
                tab.append(r"\midrule")
            tab.append(rf"\multicolumn{{{ncols}}}{{l}}{{\textit{{{latex_escape(b.title)}}}}} \\")
            for meth in b.methods:
                cells = [_tex_cell(b.cells[(meth, m, k)], m, meta, second=False, dagger=False)
                         for m in group for k in ks]
                tab.append(" & ".join([latex_escape(b.labels[meth])] + cells + pad) + r" \\")
    tab += [r"\bottomrule", r"\end{tabular}"]
    caption = f"Results at {_k_text(ks)}: {_tex(seeds_note(blocks))}."
    note = (r"Best per column in bold (ties: all bold; no mark with one method). $\uparrow$ higher "
            r"is better, $\downarrow$ lower is better." + _profile_text(profile))
    env = "table*" if width == "full" else "table"
    lines = [r"% Generated by prorlbench report. Needs \usepackage{booktabs,graphicx}.",
             *_tex_failure_comments(blocks),
             *_float(env, caption, "tab:prorlbench-summary", tab, note)]
    return "\n".join(lines) + "\n"


PAPER_NOTE_TEX = (
    "Best per column in bold, second underlined when at least three methods are ranked (dense "
    "ranking of means rounded to the printed precision; ties share a rank). $^\\dagger$: best "
    "significantly better than the runner-up, two-sided Wilcoxon signed-rank test on per-case "
    "values averaged over seeds and paired by case, $p < {alpha}$. $\\uparrow$ higher is better, "
    "$\\downarrow$ lower is better.")


def render_paper_tex(blocks: list[Block], metrics: list[str], ks: list[int],
                     directions: dict[str, bool | None], alpha: float = ALPHA,
                     meta: Metadata = LEGACY, *, width: str = "single", profile: str = "") -> str:
    env = "table*" if width == "full" else "table"
    lines = [r"% Generated by prorlbench report --style paper. Needs \usepackage{booktabs,graphicx}.",
             "% One table per (dataset, evaluating simulator).", *_tex_failure_comments(blocks)]
    note = PAPER_NOTE_TEX.replace("{alpha}", f"{alpha:g}") + _profile_text(profile)
    if any(b.labels.get(meth, meth) != meth for b in blocks for meth in b.methods):
        note += r" $^*$: some seeds of this method failed (listed in paper.md)."
    for bi, b in enumerate(blocks):
        groups, ncols, tab = _tabular(metrics, ks, [b], width)
        for gi, group in enumerate(groups):
            if gi:
                tab.append(r"\midrule")
            pad = _group_head(tab, group, ks, directions, meta, ncols)
            for meth in b.methods:
                partial = b.labels.get(meth, meth) != meth
                cells = [_tex_cell(b.cells[(meth, m, k)], m, meta, second=True, dagger=True)
                         for m in group for k in ks]
                name = latex_escape(meta.method(meth)) + (r"$^*$" if partial else "")
                tab.append(" & ".join([name] + cells + pad) + r" \\")
        tab += [r"\bottomrule", r"\end{tabular}"]
        caption = (f"Results on {latex_escape(b.dataset_label or b.dataset)} scored by the "
                   f"{latex_escape(b.simulator)} simulator: {_tex(seeds_note([b]))}.")
        lines += _float(env, caption, f"tab:prorlbench-paper-{bi + 1}", tab,
                        note if bi == 0 else r"Marks as in Table~\ref{tab:prorlbench-paper-1}.")
    if not blocks:
        lines += _float(env, "No results.", "tab:prorlbench-paper-1",
                        [r"\begin{tabular}{l}", r"\toprule", r"Method \\", r"\midrule", r"\bottomrule",
                         r"\end{tabular}"], note)
    return "\n".join(lines) + "\n"
