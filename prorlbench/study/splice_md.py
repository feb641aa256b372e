"""The Markdown side of ``prorlbench.study.splice``: the tables of ``comparisons.md`` and
``seeds_*.md``, row by row (which rows a splice replaces, and Holm's correction redone over a
dataset's family). See ``python -m prorlbench.study.splice --help``."""

from __future__ import annotations

import numpy as np

from .claims import _p, holm


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


def _replaced(line: str, datasets: set[str], methods: set[str], same: set[str] = frozenset()) -> bool:
    """A row NEW supplies: of ``datasets``, and (with ``methods``) about one of them, paired at
    most with a method of ``same``."""
    if _row_dataset(line) not in datasets:
        return False
    about = _row_methods(line)
    return not methods or (about <= methods | same and bool(about & methods))


def _p_value(text: str) -> float:
    return 0.0 if text.startswith("<") else float(text)


def _holm_by_row(lines: list[str], dataset: str) -> dict[tuple[str, ...], float]:
    """Holm over ``dataset``'s comparison rows, from the printed ``p``, by (dataset, eval, A, B, metric)."""
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
                    methods: set[str] = frozenset(), same: set[str] = frozenset()) -> str:
    """``into``'s tables with the rows of ``datasets`` (of ``methods`` only, when given) taken
    from ``new`` (sections matched by heading)."""
    order = ["prorl-json", "movielens", "synthetic"]
    head_old, old = _sections(into)
    _, fresh = _sections(new)
    out = [*[line for line in head_old if line.strip()], "", note, ""]
    for title in dict.fromkeys([*old, *fresh]):
        body_old, body_new = old.get(title, []), fresh.get(title, [])
        table_head = [line for line in (body_old or body_new) if line.startswith("| dataset") or line.startswith("|---")]
        rows = [line for line in body_old
                if _row_dataset(line) is not None and not _replaced(line, datasets, methods, same)]
        rows += [line for line in body_new if _row_dataset(line) is not None and _replaced(line, datasets, methods, same)]
        rank = {d: i for i, d in enumerate(order)}
        # prorlbench.study.claims's order: dataset, then evaluating simulator (comparison rows), stable
        rows.sort(key=lambda line: (rank.get(_row_dataset(line) or "", len(order)),
                                    _cells(line)[1] if len(_cells(line)) == 11 else ""))
        if rows:
            out += [title, "", *table_head, *rows, ""]
    if not methods:
        return "\n".join(out)
    fresh_keys = {tuple(_cells(line)[:5]) for body in fresh.values() for line in body
                  if _replaced(line, datasets, methods, same) and len(_cells(line)) == 11}
    return "\n".join(rehome_holm(into.splitlines(), out, datasets, fresh_keys))


def stranded(into: str, datasets: set[str], methods: set[str], same: set[str] = frozenset()) -> list[str]:
    """Comparison rows of ``into`` that pair one of ``methods`` with a method NEW does not supply."""
    return [line for line in into.splitlines() if _row_dataset(line) in datasets and len(_cells(line)) == 11
            and _row_methods(line) & methods and not _row_methods(line) <= methods | same]


def splice_seeds_table(new: str, into: str, methods: set[str]) -> str:
    """A ``seeds_*.md`` table (one row per method) with the rows of ``methods`` taken from ``new``."""
    def method(line: str) -> str | None:
        return _cells(line)[0] if line.startswith("| `") else None
    kept = [line for line in into.splitlines() if method(line) not in methods]
    added = [line for line in new.splitlines() if method(line) in methods]
    last = max(i for i, line in enumerate(kept) if line.startswith("|"))
    return "\n".join([*kept[: last + 1], *added, *kept[last + 1:]]) + "\n"
