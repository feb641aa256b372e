"""Writing TOML (the standard library only reads it): the run folder's ``config.toml``."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else _string(k)


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04X}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\uFFFD")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Path):
        return _string(str(v))
    if isinstance(v, (list, tuple, set, frozenset)):
        items = sorted(v) if isinstance(v, (set, frozenset)) else v
        return "[" + ", ".join(_value(x) for x in items if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items() if x is not None) + "}"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return _value({f.name: getattr(v, f.name) for f in dataclasses.fields(v)})
    return _string(str(v))


def write_toml(doc: dict[str, Any], comments: dict[str, str] | None = None) -> str:
    """TOML text for a document of (nested) tables of scalars and lists. ``None`` values are
    left out (TOML has no null), so such a key reads back as its default."""
    comments = comments or {}
    lines: list[str] = []

    def emit(path: list[str], table: dict[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) or not _is_table(v)}
        subs = {k: v for k, v in table.items() if isinstance(v, dict) and _is_table(v)}
        if path and (scalars or not subs):
            if lines:
                lines.append("")
            name = ".".join(_key(p) for p in path)
            if name in comments:
                lines.append(f"# {comments[name]}")
            lines.append(f"[{name}]")
        for k, v in scalars.items():
            if v is None:
                continue
            lines.append(f"{_key(str(k))} = {_value(v)}")
        for k, v in subs.items():
            emit(path + [str(k)], v)

    emit([], doc)
    return "\n".join(lines) + "\n"


def _is_table(v: dict[str, Any]) -> bool:
    """Nested dicts are written as [tables] when they came from the structure (marked by
    :class:`Table`), as inline tables when they are a plugin config value."""
    return isinstance(v, Table)


class Table(dict):
    """A dict written as a ``[table]`` by :func:`write_toml` (plain dicts become inline tables)."""
