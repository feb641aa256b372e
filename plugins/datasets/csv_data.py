"""``csv``: interactions from a plain CSV file with a header row.

Required columns ``user``, ``item``, ``timestamp`` (any order, names case-insensitive); optional
``attributes`` (``|``-separated labels such as genres; an item's attributes are the union over
its rows). Other columns are ignored. The file is UTF-8 (a BOM is allowed); fields may be quoted
as the ``csv`` module understands. User and item ids are any non-empty strings; timestamps are
numbers (integers or decimals). Each user's items are sorted by timestamp (ties keep file order),
users with fewer than ``min_seq_len`` items are dropped, items get dense ids in natural order of
their raw ids (numeric ids numerically), and users are split user-disjointly.

The file is ``path`` from the config, else the only ``*.csv`` in the data folder.
Errors name the file and line: missing columns, a wrong number of fields, empty ids,
non-numeric timestamps and duplicate rows (same user, item and timestamp).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from prorlbench import hookimpl
from prorlbench.api import DatasetSpec, Interactions
from prorlbench.toolkit import ConfigError, DataError, UserError, opt

from ._tables import Rows, natural_key, oneline, parse_timestamp, read_text, to_interactions

REQUIRED = ("user", "item", "timestamp")


@dataclass(frozen=True)
class CsvConfig:
    """Which CSV file and how it is filtered and split."""

    path: str | None = opt(None, "the CSV file; default: the only *.csv in data_dir / --data-dir")
    data_dir: str | None = opt(None, "folder holding one *.csv (used when path is not set)")
    min_seq_len: int = opt(12, "drop users with fewer items (default 12 = n_history 10 + 2: a history, a path and a target)")
    split: list[float] = opt([0.8, 0.1, 0.1], "train / valid / test shares of users", ge=0)
    seed: int = opt(0, "seed of the user split")

    def __post_init__(self) -> None:
        if self.min_seq_len < 1:
            raise ConfigError(f"datasets.csv: min_seq_len must be >= 1, got {self.min_seq_len}")


def _find_file(cfg: CsvConfig, data_dir: Path | None) -> Path:
    if cfg.path:
        p = Path(cfg.path).expanduser()
        if not p.is_absolute() and data_dir is not None and not p.exists():
            p = Path(data_dir) / p
        return p
    folder = Path(cfg.data_dir).expanduser() if cfg.data_dir else data_dir
    if folder is None:
        raise UserError("dataset 'csv' needs a file: set [datasets.csv] path or pass --data-dir with one *.csv")
    folder = Path(folder)
    if folder.is_file():
        return folder
    if not folder.is_dir():
        raise DataError(folder, "data folder not found")
    found = sorted(folder.glob("*.csv"))
    if not found:
        raise DataError(folder, "no *.csv file in the data folder")
    if len(found) > 1:
        raise DataError(folder, f"several *.csv files ({', '.join(f.name for f in found[:5])}); "
                                "set [datasets.csv] path")
    return found[0]


def read_csv(path: Path) -> tuple[Rows, dict[str, set[str]] | None]:
    """Rows and (when the column exists) each item's attribute labels."""
    text = read_text(path, "utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(path, "file is empty") from None
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV: {oneline(str(exc))}", 1) from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)} in the header "
                              f"(found: {', '.join(repr(h.strip()) for h in header)[:120] or 'nothing'}); "
                              f"need {', '.join(REQUIRED)}[, attributes]", 1)
    dup = sorted({n for n in names if names.count(n) > 1 and n in REQUIRED + ("attributes",)})
    if dup:
        raise DataError(path, f"column {dup[0]!r} appears twice in the header", 1)
    cu, ci, ct = (names.index(c) for c in REQUIRED)
    ca = names.index("attributes") if "attributes" in names else None
    rows = Rows([], [], [], [])
    attrs: dict[str, set[str]] | None = {} if ca is not None else None
    width = len(header)
    try:
        for rec in reader:
            ln = reader.line_num
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue
            if len(rec) != width:
                raise DataError(path, f"expected {width} fields as in the header, got {len(rec)}", ln)
            user, item = rec[cu].strip(), rec[ci].strip()
            if not user:
                raise DataError(path, "empty user id", ln)
            if not item:
                raise DataError(path, "empty item id", ln)
            ts = parse_timestamp(rec[ct], path, ln)
            rows.users.append(user)
            rows.items.append(item)
            rows.times.append(ts)
            rows.lines.append(ln)
            if attrs is not None:
                labels = {a.strip() for a in rec[ca].split("|") if a.strip()}
                attrs.setdefault(item, set()).update(labels)
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV: {oneline(str(exc))}", reader.line_num) from None
    if not rows.users:
        raise DataError(path, "no data rows after the header")
    return rows, attrs


def load(cfg: CsvConfig, data_dir: Path | None = None) -> Interactions:
    """Load the CSV (see the module docstring)."""
    path = _find_file(cfg, data_dir)
    rows, attrs = read_csv(path)
    item_attributes = None
    notes = []
    if attrs is not None:
        labels = sorted({a for s in attrs.values() for a in s}, key=natural_key)
        ids = {a: k for k, a in enumerate(labels)}
        item_attributes = {item: frozenset(ids[a] for a in s) for item, s in attrs.items()}
        notes.append(f"csv: {len(labels)} attribute labels")
    return to_interactions("csv", rows, path, ratios=cfg.split, seed=cfg.seed, min_seq_len=cfg.min_seq_len,
                           item_attributes=item_attributes, notes=notes)


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="csv",
        summary="A CSV file with user,item,timestamp[,attributes] columns",
        load=load,
        config_cls=CsvConfig,
        needs_data_dir=True,
    ))
