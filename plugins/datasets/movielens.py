"""``movielens``: MovieLens 100K or 1M from a folder the user gives (GroupLens licences forbid shipping it).

Source files (auto-detected in the data folder, ML-100K first):

* ML-100K: ``u.data`` (``user<TAB>item<TAB>rating<TAB>timestamp``) and ``u.item``
  (``|``-separated, latin-1: id, title, release date, video date, URL, then 19 genre flags);
  genre names from ``u.genre`` when present.
* ML-1M: ``ratings.dat`` (``user::item::rating::timestamp``) and ``movies.dat``
  (``id::Title::Genre|Genre``, latin-1).

The rating files must be UTF-8 (they are ASCII); the movie files are read as latin-1, as
GroupLens publishes them. Rows with ``rating < min_rating`` are dropped (default 0 keeps all, the
usual implicit-feedback setting). Each user's items are sorted by timestamp (ties keep file
order), users with fewer than ``min_seq_len`` items are dropped, items get dense ids in numeric
order of their MovieLens id, and genres become item attributes. A movie file is optional; when
it is present every rated item must be listed in it.

Errors name the file and line: wrong number of fields, non-integer ids, non-numeric ratings or
timestamps, and duplicate rows (same user, item and timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prorlbench import hookimpl
from prorlbench.api import DatasetSpec, Interactions
from prorlbench.toolkit import ConfigError, DataError, opt

from ._tables import Rows, parse_timestamp, read_text, resolve_dir, to_interactions

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)


@dataclass(frozen=True)
class MovieLensConfig:
    """Where MovieLens lives and how it is filtered and split."""

    data_dir: str | None = opt(None, "folder with u.data (ML-100K) or ratings.dat (ML-1M); else --data-dir")
    min_rating: float = opt(0.0, "drop ratings below this (0 keeps all)")
    min_seq_len: int = opt(12, "drop users with fewer items (default 12 = n_history 10 + 2: a history, a path and a target)")
    split: list[float] = opt([0.8, 0.1, 0.1], "train / valid / test shares of users", ge=0)
    seed: int = opt(0, "seed of the user split")

    def __post_init__(self) -> None:
        if self.min_seq_len < 1:
            raise ConfigError(f"datasets.movielens: min_seq_len must be >= 1, got {self.min_seq_len}")


def _parse_int_id(value: str, what: str, path: Path, line: int) -> str:
    v = value.strip()
    if not v.isdigit() or not v.isascii():
        raise DataError(path, f"{what} id must be a non-negative integer, got {v[:40]!r}", line)
    return str(int(v))


def _read_ratings(path: Path, sep: str, min_rating: float) -> tuple[Rows, int]:
    text = read_text(path, "utf-8")
    rows = Rows([], [], [], [])
    n_low = 0
    for ln, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) != 4:
            raise DataError(path, f"expected 4 fields (user, item, rating, timestamp) separated by "
                                  f"{sep!r}, got {len(parts)}", ln)
        user = _parse_int_id(parts[0], "user", path, ln)
        item = _parse_int_id(parts[1], "item", path, ln)
        try:
            rating = float(parts[2])
        except ValueError:
            raise DataError(path, f"non-numeric rating {parts[2].strip()[:40]!r}", ln) from None
        if rating != rating:
            raise DataError(path, "rating is NaN", ln)
        ts = parse_timestamp(parts[3], path, ln)
        if rating < min_rating:
            n_low += 1
            continue
        rows.users.append(user)
        rows.items.append(item)
        rows.times.append(ts)
        rows.lines.append(ln)
    return rows, n_low


def _read_u_item(path: Path, genre_names: tuple[str, ...]) -> tuple[dict[str, frozenset[int]], dict[str, str]]:
    text = read_text(path, "latin-1")
    attrs: dict[str, frozenset[int]] = {}
    names: dict[str, str] = {}
    for ln, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 6:
            raise DataError(path, f"expected id|title|release|video|url|genre flags, got {len(parts)} fields", ln)
        item = _parse_int_id(parts[0], "item", path, ln)
        flags = parts[5:]
        if any(f.strip() not in ("0", "1") for f in flags):
            raise DataError(path, "genre flags must be 0 or 1", ln)
        if item in attrs:
            raise DataError(path, f"item {item} is listed twice", ln)
        attrs[item] = frozenset(k for k, f in enumerate(flags) if f.strip() == "1")
        names[item] = parts[1].strip()
    return attrs, names


def _read_u_genre(path: Path) -> tuple[str, ...]:
    if not path.exists():
        return ML100K_GENRES
    text = read_text(path, "latin-1")
    found: dict[int, str] = {}
    for ln, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        name, _, idx = line.rpartition("|")
        if not (idx.strip().isascii() and idx.strip().isdigit()) or int(idx) > 10_000:
            raise DataError(path, "expected name|index (index 0..10000)", ln)
        found[int(idx)] = name
    return tuple(found.get(k, str(k)) for k in range(max(found, default=-1) + 1)) or ML100K_GENRES


def _read_movies_dat(path: Path) -> tuple[dict[str, frozenset[int]], dict[str, str], list[str]]:
    text = read_text(path, "latin-1")
    genre_ids: dict[str, int] = {}
    attrs: dict[str, frozenset[int]] = {}
    names: dict[str, str] = {}
    for ln, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3:
            raise DataError(path, f"expected 3 fields (id::title::genres), got {len(parts)}", ln)
        item = _parse_int_id(parts[0], "item", path, ln)
        if item in attrs:
            raise DataError(path, f"item {item} is listed twice", ln)
        gs = [g.strip() for g in parts[2].split("|") if g.strip() and g.strip() != "(no genres listed)"]
        attrs[item] = frozenset(genre_ids.setdefault(g, len(genre_ids)) for g in gs)
        names[item] = parts[1].strip()
    return attrs, names, list(genre_ids)


def load(cfg: MovieLensConfig, data_dir: Path | None = None) -> Interactions:
    """Load ML-100K or ML-1M from ``cfg.data_dir`` (or ``data_dir``)."""
    folder = resolve_dir(cfg.data_dir, data_dir, "movielens")
    notes = []
    if (folder / "u.data").exists():
        ratings, items_file, variant = folder / "u.data", folder / "u.item", "ml-100k"
        rows, n_low = _read_ratings(ratings, "\t", cfg.min_rating)
        if items_file.exists():
            genres = _read_u_genre(folder / "u.genre")
            attrs, names = _read_u_item(items_file, genres)
            notes.append(f"movielens: genres: {', '.join(genres)}")
        else:
            attrs, names = None, None
    elif (folder / "ratings.dat").exists():
        ratings, items_file, variant = folder / "ratings.dat", folder / "movies.dat", "ml-1m"
        rows, n_low = _read_ratings(ratings, "::", cfg.min_rating)
        if items_file.exists():
            attrs, names, genre_list = _read_movies_dat(items_file)
            notes.append(f"movielens: genres: {', '.join(genre_list)}")
        else:
            attrs, names = None, None
    else:
        raise DataError(folder, "no MovieLens file found: expected u.data (ML-100K) or ratings.dat (ML-1M)")
    if attrs is not None:
        for item, ln in zip(rows.items, rows.lines):
            if item not in attrs:
                raise DataError(ratings, f"item {item} is not listed in {items_file.name}", ln)
    else:
        notes.append(f"movielens: {items_file.name} not found: no genres (Coherence is not available)")
    if n_low:
        notes.append(f"movielens: {n_low} ratings below min_rating={cfg.min_rating:g} dropped")
    if not rows.users:
        raise DataError(ratings, f"no ratings at or above min_rating={cfg.min_rating:g}")
    data = to_interactions(variant, rows, ratings, ratios=cfg.split, seed=cfg.seed, min_seq_len=cfg.min_seq_len,
                           item_attributes=attrs, item_names=names, notes=notes)
    return data


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="movielens",
        summary="MovieLens 100K (u.data, u.item) or 1M (ratings.dat, movies.dat) from --data-dir",
        load=load,
        config_cls=MovieLensConfig,
        needs_data_dir=True,
    ))
