"""The Markdown renderer: ``summary.md`` and ``paper.md`` (GitHub tables, one per block)."""

from __future__ import annotations

import re

from ..errors import one_line
from .metadata import LEGACY, Metadata
from .stats import ALPHA
from .table import Block, Cell, arrow, seeds_note


def md_escape(text: str) -> str:
    """Escape characters that would break a Markdown table cell (``|``) or start emphasis or
    code (``*``, backtick). Underscores stay readable: GitHub Markdown ignores intraword ``_``."""
    return re.sub(r"([|*`])", r"\\\1", str(text))


def _col_label(metric: str, k: int, directions: dict[str, bool | None], meta: Metadata,
               one_k: bool = False) -> str:
    """``IoI ↑`` when the table has one K (named in the caption), else ``IoI (K=5) ↑``: a metric
    whose name holds a cut-off (``SR@10``) never reads as ``SR@10@5``."""
    a = arrow(directions.get(metric), latex=False)
    return md_escape(meta.display(metric)) + ("" if one_k else f" (K={k})") + (f" {a}" if a else "")


def _md_cell(c: Cell, metric: str, meta: Metadata, *, second: bool, dagger: bool) -> str:
    t = c.text(metric, meta=meta)
    if c.marked_best:
        t = f"**{t}**"
        if dagger and c.significant:
            t += "†"
    elif second and c.marked_second:
        t = f"<u>{t}</u>"
    return t


def _md_failures(b: Block) -> list[str]:
    if not b.failures:
        return []
    lines = ["", "Failed cells:", ""]
    lines += [f"- {md_escape(meth)}, seed {seed}: {md_escape(one_line(err, 300) or '(no message)')}"
              for meth, seed, err in b.failures]
    return lines


def _md_weak(b: Block) -> list[str]:
    if not b.weak:
        return []
    lines = ["", "Rows marked (weak simulator) were scored with a model below popularity, kept because "
             "allow_weak_simulator = true:", ""]
    return lines + [f"- {md_escape(meth)}, seed {seed}: {md_escape(one_line(why, 300))}" for meth, seed, why in b.weak]


def _md_document(lines: list[str], blocks: list[Block], metrics: list[str], ks: list[int],
                 directions: dict[str, bool | None], *, paper: bool, meta: Metadata) -> str:
    """``lines`` (title and caption) then one Markdown table per block; ``paper`` adds the
    second-best underline and the significance mark."""
    from tabulate import tabulate

    if not blocks:
        lines.append("No results.")
    headers = ["Method"] + [_col_label(m, k, directions, meta, len(ks) == 1) for m in metrics for k in ks]
    for b in blocks:
        rows = [[md_escape(b.labels[meth])]
                + [_md_cell(b.cells[(meth, m, k)], m, meta, second=paper, dagger=paper)
                   for m in metrics for k in ks] for meth in b.methods]
        lines += [f"## {md_escape(b.title)}", "",
                  tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
        lines += _md_failures(b) + _md_weak(b)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _profile_line(profile: str) -> list[str]:
    if not profile:
        return []
    from ..settings.display import profile_note

    return [f"Profile: {profile_note(profile)}.", ""]


def _k_text(ks: list[int]) -> str:
    return f"K={ks[0]}" if len(ks) == 1 else "K=" + ", ".join(map(str, ks))


def render_summary_md(blocks: list[Block], metrics: list[str], ks: list[int],
                      directions: dict[str, bool | None], meta: Metadata = LEGACY, *,
                      profile: str = "") -> str:
    lines = ["# Summary", "", *_profile_line(profile),
             f"Results at {_k_text(ks)}: {seeds_note(blocks)}. Best per column in **bold** (ties: "
             "all bold; no mark with one method); ↑ higher is better, ↓ lower is better.", ""]
    return _md_document(lines, blocks, metrics, ks, directions, paper=False, meta=meta)


PAPER_CAPTION_MD = (
    "Results at {ks}: {seeds}. Per column the best mean is in **bold** and, when at least three "
    "methods are ranked, the second best <u>underlined</u>: methods are ranked by their means "
    "rounded to the printed precision (dense ranking, so tied methods share a rank and are all "
    "marked). † marks a best method that is significantly better than the runner-up (every method "
    "ranked second): two-sided Wilcoxon signed-rank test on per-case values (averaged over seeds, "
    "paired by case id), p < {alpha}. No mark when the best is tied or every paired difference is "
    "zero. ↑ higher is better, ↓ lower is better.")


def render_paper_md(blocks: list[Block], metrics: list[str], ks: list[int],
                    directions: dict[str, bool | None], alpha: float = ALPHA,
                    meta: Metadata = LEGACY, *, profile: str = "") -> str:
    lines = ["# Results (paper style)", "", *_profile_line(profile),
             PAPER_CAPTION_MD.format(ks=_k_text(ks), seeds=seeds_note(blocks), alpha=alpha), ""]
    return _md_document(lines, blocks, metrics, ks, directions, paper=True, meta=meta)
