"""Stored candidate paths: what a cell generated, kept so it can be scored again without retraining.

``cells/<cell>.paths.json.gz`` is gzip-compressed JSON (fixed header time, so equal content gives
equal bytes)::

    {"format": "prorlbench-paths-1",
     "cases": [{"id": "u12:3", "history": [..], "target": 7, "reference": [..], "user": "12"}, ...],
     "paths": [[[3, 5], [3, 9, 1]], ...]}

``paths[c]`` are the candidate paths (best first, at most ``max(ks)``) of ``cases[c]``, the test
cases in the order the method saw them. ``prorlbench rescore`` and ``prorlbench paths`` read it;
:func:`read_paths` gives back the :class:`~prorlbench.api.Case` objects and the candidates.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any, Sequence

from ..api import Case
from ..errors import UserError

FORMAT = "prorlbench-paths-1"


def encode_paths(cases: Sequence[Case], candidates: Sequence[Sequence[Sequence[int]]]) -> bytes:
    doc = {
        "format": FORMAT,
        "cases": [{"id": c.case_id, "history": list(c.history), "target": int(c.target),
                   "reference": list(c.reference), "user": c.user} for c in cases],
        "paths": [[[int(i) for i in p] for p in cands] for cands in candidates],
    }
    raw = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


def write_paths(path: str | Path, cases: Sequence[Case], candidates: Sequence[Sequence[Sequence[int]]]) -> None:
    from .files import atomic_write

    data = encode_paths(cases, candidates)
    atomic_write(path, lambda fh: fh.write(data), "wb")


def read_paths(path: str | Path) -> tuple[list[Case], list[list[tuple[int, ...]]]]:
    """``(cases, candidates)`` from a stored paths file; a damaged file is a one-line UserError."""
    p = Path(path)
    try:
        with gzip.open(p, "rb") as gz:
            doc: Any = json.loads(gz.read().decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        cases = [Case(history=tuple(int(i) for i in c["history"]), target=int(c["target"]),
                      reference=tuple(int(i) for i in c.get("reference", ())), user=str(c.get("user", "")),
                      case_id=str(c["id"])) for c in doc["cases"]]
        cands = [[tuple(int(i) for i in path) for path in cs] for cs in doc["paths"]]
        if len(cands) != len(cases):
            raise ValueError(f"{len(cases)} cases but {len(cands)} candidate lists")
    except FileNotFoundError:
        raise UserError(f"{p}: no stored paths (the cell was computed by an older version or failed); "
                        "re-run the cell with prorlbench run") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{p}: unreadable stored paths ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:100]})") from None
    return cases, cands
