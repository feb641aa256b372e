"""Shared helpers of the file-based dataset loaders (``movielens``, ``csv``, ``prorl-json``).

Reading text with one-line errors, and turning ``(user, item, timestamp)`` rows into
:class:`prorlbench.api.Interactions` (SPEC section 4, steps 1 and 2): stable time sort per user
(ties keep file order), users with fewer than ``min_seq_len`` items dropped, dense item ids over
the items that remain, and a seeded user-disjoint split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from prorlbench.api import Interactions
from prorlbench.toolkit import DataError, regular_file, split_users


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """A file's text; missing, unreadable, empty or wrongly encoded files raise :class:`DataError`,
    and so does a path that is not a regular file (``/dev/zero`` would be read forever, a FIFO
    would block): it is checked first, with a ``stat`` that never blocks."""
    try:
        regular_file(path, folder_ok=True)  # a folder: IsADirectoryError below
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, expected a file") from None
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None
    if not raw.strip():
        raise DataError(path, "file is empty")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(path, f"not {encoding.upper()} text (byte 0x{raw[exc.start]:02x})", line) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(path, "contains a NUL byte (binary file?)", line)
    return text


def oneline(text: str) -> str:
    """``text`` with line breaks escaped, for one-line error messages."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def parse_timestamp(value: str, path: Path, line: int) -> float:
    """A finite number, else :class:`DataError` naming the line."""
    try:
        ts = float(value.strip())
    except ValueError:
        raise DataError(path, f"non-numeric timestamp {value.strip()[:40]!r}", line) from None
    if not math.isfinite(ts):
        raise DataError(path, f"timestamp must be a finite number, got {value.strip()[:40]!r}", line)
    return ts


def natural_key(raw: str) -> tuple[int, int, str]:
    """Sort numeric ids numerically, then other ids as strings."""
    s = raw.strip()
    if s.isascii() and s.isdigit():  # not str.isdigit alone: '²' is a digit int() cannot read
        return (0, int(s), s)
    return (1, 0, s)


@dataclass
class Rows:
    """Interaction rows as parallel lists (raw ids as strings)."""

    users: list[str]
    items: list[str]
    times: list[float]
    lines: list[int]


def check_duplicates(rows: Rows, path: Path) -> None:
    """Reject two rows with the same user, item and timestamp."""
    seen: dict[tuple[str, str, float], int] = {}
    for u, i, t, ln in zip(rows.users, rows.items, rows.times, rows.lines):
        key = (u, i, t)
        first = seen.setdefault(key, ln)
        if first != ln:
            raise DataError(path, f"duplicate row: user {u!r}, item {i!r}, timestamp {t:g} already on line {first}", ln)


def to_interactions(
    name: str, rows: Rows, path: Path, *, ratios: Sequence[float], seed: int, min_seq_len: int,
    item_attributes: dict[str, frozenset[int]] | None = None, item_names: dict[str, str] | None = None,
    notes: Iterable[str] = (),
) -> Interactions:
    """Sort, filter, densify and split ``rows`` (see the module docstring)."""
    if not rows.users:
        raise DataError(path, "no interactions")
    check_duplicates(rows, path)
    per_user: dict[str, list[tuple[float, int, str]]] = {}
    for k, (u, i, t) in enumerate(zip(rows.users, rows.items, rows.times)):
        per_user.setdefault(u, []).append((t, k, i))
    kept_users = sorted((u for u, r in per_user.items() if len(r) >= min_seq_len), key=natural_key)
    if not kept_users:
        raise DataError(path, f"no user has at least {min_seq_len} interactions "
                              f"({len(per_user)} users; lower min_seq_len?)")
    seqs_raw = []
    for u in kept_users:
        r = per_user[u]
        r.sort(key=lambda x: (x[0], x[1]))
        seqs_raw.append([i for _, _, i in r])
    catalog = sorted({i for s in seqs_raw for i in s}, key=natural_key)
    dense = {raw: k for k, raw in enumerate(catalog)}
    seqs = [tuple(dense[i] for i in s) for s in seqs_raw]
    parts = split_users(len(kept_users), ratios, seed)
    attrs = None
    if item_attributes is not None:
        attrs = tuple(item_attributes.get(raw, frozenset()) for raw in catalog)
    names = tuple((item_names or {}).get(raw, "") for raw in catalog) if item_names else ()
    n_rows = sum(len(s) for s in seqs)
    dropped = len(per_user) - len(kept_users)
    all_notes = list(notes) + [
        f"{name}: {len(kept_users)} users ({dropped} with fewer than {min_seq_len} items dropped), "
        f"{len(catalog)} items, {n_rows} interactions"
    ]
    return Interactions(
        name=name,
        n_items=len(catalog),
        sequences={s: [seqs[k] for k in idx] for s, idx in parts.items()},
        users={s: [kept_users[k] for k in idx] for s, idx in parts.items()},
        item_ids=tuple(catalog),
        item_attributes=attrs,
        item_names=names,
        notes=tuple(all_notes),
    )


def resolve_dir(config_dir: str | None, data_dir: Path | None, dataset: str) -> Path:
    """The data folder: the config's ``data_dir`` wins over the runner's ``--data-dir``."""
    from prorlbench.toolkit import UserError

    d = Path(config_dir).expanduser() if config_dir else data_dir
    if d is None:
        raise UserError(f"dataset '{dataset}' needs a data folder: pass --data-dir or set "
                        f"[datasets.{dataset}] data_dir")
    d = Path(d)
    if not d.exists():
        raise DataError(d, "data folder not found")
    if not d.is_dir():
        raise DataError(d, "not a folder")
    return d
