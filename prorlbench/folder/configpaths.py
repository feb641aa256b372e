"""The path rules of config files (see :mod:`prorlbench.settings.runconfig`).

Paths in a config file resolve relative to that file's folder. ``out``, ``cache_dir`` and
``plugins_dirs`` (what a file may write to or load code from) must stay inside that folder's
tree: no ``..`` segments, no absolute paths, no symlinks leading out. ``name`` must be a plain
name. ``data_dir`` and the dataset path keys are only read and may point anywhere.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePath
from typing import Any

from ..errors import ConfigError

FILE_PATH_KEYS = ("out", "cache_dir", "plugins_dirs", "tensorboard")
"""``[run]`` path keys that must stay inside the config file's folder."""
DATASET_PATH_KEYS = ("path", "data_dir")
"""Keys of ``[datasets.NAME]`` tables that name input files; relative values resolve from the file."""


def _check_no_dotdot(value: str, where: str) -> None:
    if any(part == ".." for part in PurePath(value.replace("\\", "/")).parts):
        raise ConfigError(f"{where}: '..' is not allowed in paths read from a config file "
                          f"(got {value!r}); give the path on the command line instead")


def _inside(value: str, base: Path, where: str) -> str:
    """``value`` (a path from a config file) resolved from ``base``; it must stay inside it."""
    _check_no_dotdot(value, where)
    p = Path(value).expanduser() if value.startswith("~") else Path(value)
    if p.is_absolute():
        raise ConfigError(f"{where}: absolute paths are not allowed in a config file (got {value!r}); "
                          "use a path relative to the file's folder, or give it on the command line")
    target = (base / p).resolve()
    root = base.resolve()
    if target != root and root not in target.parents:
        raise ConfigError(f"{where}: {value!r} leads outside the config file's folder {root} (through a "
                          "symlink); give the path on the command line instead")
    return str(base / p) if str(base) not in ("", ".") else value


def _from_file(value: str, base: Path) -> str:
    """A read-only path from a config file: relative values resolve from the file's folder."""
    p = Path(value).expanduser()
    if not value or p.is_absolute() or str(base) in ("", "."):
        return value
    return str(base / p)



def run_value_from_file(key: str, value: Any, base: Path, where: str) -> Any:
    """A ``[run]`` value read from a config file in folder ``base``, with the path rules applied."""
    if key in FILE_PATH_KEYS:
        if isinstance(value, list):
            return [_inside(v, base, where) for v in value]
        return _inside(value, base, where) if value else value
    if key == "name" and (value in (".", "..") or any(c in value for c in "/\\\x00")):
        raise ConfigError(f"{where}: a run name, not a path (got {value!r}); set out for the folder")
    if key == "data_dir":
        return _from_file(value, base)
    return value


def dataset_table_from_file(table: dict[str, Any], base: Path) -> dict[str, Any]:
    """A ``[datasets.NAME]`` table read from a config file: relative input paths resolve from ``base``."""
    return {k: (_from_file(v, base) if k in DATASET_PATH_KEYS and isinstance(v, str) else v)
            for k, v in table.items()}


def absolute_paths(d: dict[str, Any]) -> dict[str, Any]:
    """A dataset config with its input paths absolute (for the config.toml a run writes)."""
    return {k: (str(Path(v).expanduser().resolve()) if k in DATASET_PATH_KEYS and isinstance(v, str) and v
                else v) for k, v in d.items()}


def without_paths(d: dict[str, Any]) -> dict[str, Any]:
    """A dataset config without its input-path keys: the inputs fingerprint (content and resolved
    location) stands for them, so spelling a path relative or absolute changes nothing."""
    return {k: v for k, v in d.items() if k not in DATASET_PATH_KEYS}


def warn_data_dir_overrides(data_dir: str, dataset_cfgs: dict[str, Any]) -> list[str]:
    """A warning per dataset whose own ``data_dir`` key takes the place of ``--data-dir`` (the lines).

    ``--data-dir`` is the folder of every dataset that does not name its own; a dataset table's
    ``data_dir`` (``[datasets.NAME] data_dir``, from a config file) names that dataset's own and
    wins for it, so one grid can hold several real datasets. When both are given the user may have
    meant the flag for every dataset: each is logged as a warning (the dry run shows it too)
    instead of silently reading another folder."""
    if not data_dir:
        return []
    out = []
    for name, cfg in dataset_cfgs.items():
        own = getattr(cfg, "data_dir", "") or ""
        if own and Path(own).expanduser().resolve() != Path(data_dir).expanduser().resolve():
            out.append(f"dataset '{name}' reads {own} ([datasets.{name}] data_dir), not --data-dir "
                       f"{data_dir}; drop that key to use the flag's folder")
            logging.getLogger("prorlbench").warning(out[-1])
    return out
