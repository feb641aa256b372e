r"""Laying out LaTeX tables so they read at 8 pt: widths, column chunks, floats that fit the page.

Every table is set in ``\footnotesize`` (8 pt in a 10 pt class) with 4 pt column separation and
is never scaled below what the estimate below gives. The width of every cell is estimated from
the character widths of Computer Modern at 8 pt (:data:`_WIDTHS`, measured with pdflatex: roman,
bold, italic), and a table is cut into column chunks that fit :data:`WIDTHS` (``\linewidth`` of
a two-column ``article``: 229.5 pt; ``full``: the text width, 469 pt), each chunk its own
tabular. Chunks and row sections are packed into floats whose estimated height stays within
:data:`MAX_HEIGHT` (the article's text height is 550 pt), continued in the next float when not.
Method names wider than :data:`NAME_MAX` wrap (at ``-``, ``+``, ``_``) in a ``\parbox``.

The estimate errs wide; as a safety net each tabular is boxed, its natural width written to the
log (``prorlbench-fit: LABEL WIDTH in LINEWIDTH``) and scaled down only if it is still wider than
``\linewidth``: ``tests/test_latex_fit.py`` compiles the tables and fails on a scale below 85 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTHS = {"single": 229.5, "full": 469.0}
"""``\\linewidth`` (pt) a table must fit, per ``--latex-width``."""
FILL = 0.96
"""Share of the width the estimate may fill."""
MAX_HEIGHT = 470.0
"""Estimated float height (pt) a float may reach (a page holds 550 pt of text in ``article``)."""
NAME_MAX = {"single": 78.0, "full": 130.0}
"""Row labels wider than this (pt) wrap."""
SEP = 4.0
ROW = 9.5
RULE = 4.0
FONT = r"\footnotesize"

_R = ("283 236 425 708 425 708 661 236 331 331 425 661 236 283 236 425 425 425 425 425 425 425 425 425 425 425 "
      "236 236 661 661 661 401 661 637 602 614 649 578 554 667 637 306 436 660 531 778 637 661 578 661 625 472 "
      "614 637 637 873 637 637 519 236 425 236 425 306 236 425 472 378 472 378 260 425 472 236 260 449 236 708 "
      "472 425 472 449 331 335 331 472 449 614 449 449 378 425 236 425 425")
_B = ("327 298 509 817 490 817 762 272 381 381 490 762 272 327 272 490 490 490 490 490 490 490 490 490 490 490 "
      "272 272 762 762 762 463 762 738 696 708 750 642 615 770 764 367 505 765 588 927 764 736 668 736 732 544 "
      "682 751 738 1010 738 738 599 272 490 272 490 353 272 476 544 436 544 449 299 490 544 272 299 517 272 817 "
      "544 490 544 517 405 387 381 544 517 708 517 517 436 490 272 490 490")
_I = ("307 263 440 702 439 702 658 263 351 351 439 658 263 307 263 439 439 439 439 439 439 439 439 439 439 439 "
      "263 263 661 658 661 439 658 637 604 614 648 582 560 664 637 330 450 659 538 769 637 658 582 658 626 483 "
      "614 637 637 857 637 637 527 263 425 263 439 316 263 439 395 395 439 395 263 395 439 263 263 395 219 702 "
      "483 439 439 395 362 351 285 461 395 571 396 417 351 425 236 425 439")
_WIDTHS = {f: [int(x) / 100 for x in s.split()] for f, s in (("r", _R), ("b", _B), ("i", _I))}
"""Width (pt) of ASCII 32..126 in cmr8 / cmbx8 / cmti8 (``\\footnotesize`` of a 10 pt class)."""
MATH = {"pm": 6.61, "minus": 6.61, "arrow": 4.25, "dagger": 3.94, "star": 4.33}
"""Widths (pt) of the math symbols the tables use."""


def text_width(text: str, font: str = "r") -> float:
    """Estimated width (pt) of plain ``text`` (before escaping) at 8 pt; other characters count
    as an M."""
    table = _WIDTHS[font]
    return sum(table[ord(c) - 32] if 32 <= ord(c) < 127 else 8.5 for c in str(text))


@dataclass(frozen=True)
class Tex:
    """A piece of LaTeX and its estimated width (pt)."""

    text: str
    width: float


@dataclass
class Column:
    """One data column: its header (and its group's, spanning the group's columns)."""

    group: str
    """Key of the column group (metric, dataset); consecutive columns with one key share a header."""
    group_head: Tex | None
    head: Tex
    cells: dict[str, Tex]
    """Row key -> cell."""

    def width(self) -> float:
        return max([self.head.width, *(c.width for c in self.cells.values())])


@dataclass
class Section:
    """Rows under an optional italic title row (a dataset/simulator block of ``summary.tex``)."""

    title: Tex | None
    rows: list[tuple[str, Tex]]
    """``(row key, label)``."""


@dataclass
class Piece:
    """One tabular of a float: a column chunk and the sections (or part of one) it shows."""

    columns: list[Column]
    sections: list[Section] = field(default_factory=list)


def label_limit(labels: list[Tex], width: str) -> float:
    """Width of the label column: the widest label, but wrapped at :data:`NAME_MAX` (never
    narrower than a label's longest unbreakable part)."""
    widest = max([l.width for l in labels] or [0.0])
    return min(widest, max(NAME_MAX[width], *[_longest_part(l) for l in labels], 0.0))


def _longest_part(label: Tex) -> float:
    import re

    plain = re.sub(r"\\[a-zA-Z]+(\{\})?|[{}$^\\]", "", label.text)
    return max([text_width(p) + 8 for p in re.split(r"(?<=[-+_ ])", plain) if p] or [0.0])  # + the indent


def _lines(label: Tex, limit: float) -> int:
    return 1 if label.width <= limit else int(label.width // (limit * 0.8)) + 1


def chunk_columns(columns: list[Column], label_w: float, width: str) -> list[list[Column]]:
    """Columns cut into chunks that fit the width: a group's columns stay together when the group
    fits a chunk; a group wider than a chunk fills the current chunk and continues in the next."""
    avail = WIDTHS[width] * FILL - label_w
    groups: list[list[Column]] = []
    for c in columns:
        if groups and groups[-1][0].group == c.group:
            groups[-1].append(c)
        else:
            groups.append([c])
    chunks: list[list[Column]] = [[]]
    for g in groups:
        if _chunk_width(chunks[-1] + g) <= avail:
            chunks[-1] += g
            continue
        if _chunk_width(g) <= avail:
            chunks.append(list(g))
            continue
        for c in g:   # wider than any chunk: column by column
            if chunks[-1] and _chunk_width(chunks[-1] + [c]) > avail:
                chunks.append([])
            chunks[-1].append(c)
    return [c for c in chunks if c] or [[]]


def _group_width(cols: list[Column]) -> float:
    inner = sum(c.width() for c in cols) + 2 * SEP * (len(cols) - 1)
    head = cols[0].group_head.width if cols and cols[0].group_head else 0.0
    return max(inner, head) + 2 * SEP


def _chunk_width(cols: list[Column]) -> float:
    total, i = 0.0, 0
    while i < len(cols):
        j = i
        while j < len(cols) and cols[j].group == cols[i].group:
            j += 1
        total += _group_width(cols[i:j])
        i = j
    return total


def piece_height(piece: Piece, limit: float) -> float:
    heads = 2 if any(c.group_head for c in piece.columns) else 1
    h = 2 * RULE + heads * ROW + (3 if heads == 2 else 0) + 10
    for s in piece.sections:
        h += (ROW + RULE if s.title else 0) + sum(_lines(l, limit) for _, l in s.rows) * ROW
    return h


def pack(sections: list[Section], chunks: list[list[Column]], limit: float, fixed: float
         ) -> list[list[Piece]]:
    """Floats (each a list of tabulars) holding every (section, chunk): as many sections per
    float as fit with all chunks, else one section's chunks over several floats, else its rows
    cut. ``fixed``: the caption's and the note's height."""
    budget = MAX_HEIGHT - fixed
    units: list[list[Piece]] = []   # a float's content before merging sections
    for s in sections:
        for part in _row_parts(s, chunks, limit, budget):
            units.append([Piece(c, [part]) for c in chunks])
    floats: list[list[Piece]] = []
    for unit in units:
        if sum(piece_height(p, limit) for p in unit) > budget:
            floats += _by_chunk(unit, limit, budget)
            continue
        if floats and len(floats[-1]) == len(unit) and all(a.columns is b.columns for a, b in zip(floats[-1], unit)):
            merged = [Piece(a.columns, a.sections + b.sections) for a, b in zip(floats[-1], unit)]
            if sum(piece_height(p, limit) for p in merged) <= budget:
                floats[-1] = merged
                continue
        floats.append(unit)
    return floats


def _by_chunk(unit: list[Piece], limit: float, budget: float) -> list[list[Piece]]:
    out: list[list[Piece]] = [[]]
    for p in unit:
        if out[-1] and sum(piece_height(q, limit) for q in out[-1] + [p]) > budget:
            out.append([])
        out[-1].append(p)
    return out


def _row_parts(s: Section, chunks: list[list[Column]], limit: float, budget: float) -> list[Section]:
    """``s`` cut into row runs short enough for one chunk's tabular per float."""
    one = Piece(max(chunks, key=len), [s])
    if piece_height(one, limit) <= budget or len(s.rows) <= 1:
        return [s]
    per = max(1, int((budget - piece_height(Piece(one.columns, [Section(s.title, [])]), limit)) // (2 * ROW)))
    return [Section(s.title, s.rows[i:i + per]) for i in range(0, len(s.rows), per)]


def text_lines(width_pt: float, width: str) -> int:
    """Lines a paragraph of ``width_pt`` takes at the line width."""
    return int(width_pt // (WIDTHS[width] * 0.9)) + 1
