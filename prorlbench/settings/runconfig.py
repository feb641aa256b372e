"""The run configuration: what to run, where, and how each plugin is configured.

A :class:`RunConfig` comes from (lowest to highest priority) the field defaults, a TOML file
(``--config FILE``) and flags. The file's tables: ``[run]`` (the fields below),
``[datasets.NAME]`` / ``[simulators.NAME]`` / ``[methods.NAME]`` (that plugin's config
dataclass; a ``[datasets.NAME]`` table with a ``plugin`` key is a dataset variant),
``[variants.NAME]`` (``method = "prorl"`` plus keys: a method made from another), ``[cases]``
(:class:`prorlbench.seq.cases.CaseConfig`) and ``[display]`` (shown names); example: the README.

Unknown tables and keys, and values outside a key's range, are a ``ConfigError`` naming the file,
the table and the key; plugin tables are checked against their config class by
:func:`prorlbench.engine.resolve.resolve`. Paths in a file resolve from its folder, and the paths a file
may write to or load code from stay inside it (:mod:`prorlbench.folder.configpaths`,
docs/reliability.md). :func:`write_toml` writes ``<out>/config.toml``; :func:`read_config_file`
reads. The fields and the checks of one ``[run]`` value live in :mod:`prorlbench.settings.runfields`
(re-exported here): list keys take comma strings, ``seeds`` ranges (``"0-2"``), ``methods``
``"all"``, and ``sets`` (``--set``) overrides or sweeps plugin keys (:mod:`prorlbench.settings.sweeps`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..folder.configpaths import dataset_table_from_file, run_value_from_file
from ..folder.runnames import default_cache_dir, default_run_name, out_dir
from ..folder.tomlwriter import _value, write_toml
from .runfields import (LOG_LEVELS, MAX_K, NOT_WRITTEN, PLUGIN_TABLES, PROFILES, RUN_KEYS, SELECT_ON,  # noqa: F401
                        STYLES, TOP_TABLES, RunConfig, coerce_run_value, int_list, split_list)


def parse_config(doc: dict[str, Any], source: str = "", *, trusted: bool = False) -> RunConfig:
    """A :class:`RunConfig` from a parsed TOML document (structure and [run] types checked).

    ``trusted``: the document is a run folder's own ``config.toml`` (written by prorlbench), so
    the path rules for shared config files do not apply."""
    cfg = RunConfig(source=source)
    label = source or "config"
    if not isinstance(doc, dict):
        raise ConfigError(f"{label}: expected a TOML document")
    for key in doc:
        if key not in TOP_TABLES:
            raise ConfigError(f"{label}: unknown table [{key}]{did_you_mean(str(key), list(TOP_TABLES))}; "
                              f"valid tables: {', '.join('[' + t + ']' for t in TOP_TABLES)}")
    run = doc.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{label}: 'run' must be a table ([run])")
    base = Path(source).parent if source else Path(".")
    for key, value in run.items():
        value = coerce_run_value(key, value, cfg.where("run"))
        if not trusted:
            value = run_value_from_file(key, value, base, f"{cfg.where('run')} key '{key}'")
        setattr(cfg, key, value)
    for kind in PLUGIN_TABLES:
        tables = doc.get(kind, {})
        if not isinstance(tables, dict):
            raise ConfigError(f"{label}: '{kind}' must hold tables like [{kind}.NAME]")
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{label}: '{kind}.{name}' must be a table ([{kind}.{name}]), "
                                  f"got {type(table).__name__}")
            table = dict(table)
            if kind == "datasets" and not trusted:
                table = dataset_table_from_file(table, base)
            cfg.plugin_tables[kind][str(name)] = table
    cases = doc.get("cases", {})
    if not isinstance(cases, dict):
        raise ConfigError(f"{label}: 'cases' must be a table ([cases])")
    cfg.cases = dict(cases)
    from .variants import parse_variants

    cfg.variants = parse_variants(doc.get("variants", {}), label)

    from .display import parse_display

    cfg.display = parse_display(doc.get("display", {}), cfg.where("display"), label)
    return cfg


def read_config_file(path: str | Path, *, trusted: bool = False) -> RunConfig:
    """Read a run config TOML file; every problem is a :class:`ConfigError` naming the file."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a .toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    return parse_config_text(text, str(p), trusted=trusted)


def parse_config_text(text: str, source: str = "config", *, trusted: bool = False) -> RunConfig:
    if text.startswith("\ufeff"):  # a byte-order mark, as the data loaders accept
        text = text[1:]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. embedded NUL or absurd nesting
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return parse_config(doc, source, trusted=trusted)


def apply_overrides(cfg: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """A copy of ``cfg`` with command-line values (already typed) replacing file values."""
    new = dataclasses.replace(cfg, plugin_tables={k: dict(v) for k, v in cfg.plugin_tables.items()},
                              cases=dict(cfg.cases), variants={k: dict(v) for k, v in cfg.variants.items()},
                              display=dict(cfg.display))
    for key, value in overrides.items():
        if value is None:
            continue
        setattr(new, key, coerce_run_value(key, value, "command line"))
    return new
