"""Dataset variants: ``[datasets.NAME]`` tables with a ``plugin`` key make a configured copy of a
dataset plugin under a name of its own (the same idea as method variants)::

    [datasets.ml1m]
    plugin = "movielens"          # the base dataset plugin (any registered dataset)
    data_dir = "data/ml-1m"       # any keys of the base plugin's config

    [datasets.ml100k-active]
    plugin = "movielens"
    min_seq_len = 50

registers datasets ``ml1m`` and ``ml100k-active``: the base plugin's loader with the base's
``[datasets.movielens]`` table (when given), then the variant's own keys (later wins; the run's
profile is applied first, as for every dataset). A variant is its own dataset in the grid and its
own block in every table; the default names (``movielens``, ``csv``, ...) stay as they are. A
variant's data and simulators are cached by its name and full config, and its cells are
fingerprinted with its base plugin too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError, UnknownNameError

PROVIDER = "variants"
BASE_KEY = "plugin"


def add_dataset_variants(registry: Any, plugin_tables: dict[str, dict[str, dict[str, Any]]],
                         where: Any = None) -> dict[str, str]:
    """Register every dataset variant of ``plugin_tables`` in ``registry``; returns
    ``{variant: base plugin}``. Idempotent for a registry that already holds them. ``where(t)``
    names a table in errors (``RunConfig.where``)."""
    def w(name: str) -> str:
        return where(f"datasets.{name}") if where else f"[datasets.{name}]"

    tables = plugin_tables.get("datasets", {})
    specs = registry.specs["datasets"]
    bases: dict[str, str] = {}
    for name, table in tables.items():
        if BASE_KEY not in table:
            continue
        base = table[BASE_KEY]
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{w(name)}: {BASE_KEY} must name a dataset plugin, got {base!r}")
        if base == name:
            raise ConfigError(f"{w(name)}: a variant cannot have its own name as its plugin")
        if BASE_KEY in tables.get(base, {}):
            raise ConfigError(f"{w(name)}: plugin '{base}' is itself a variant; name a registered dataset")
        if base not in specs or registry.providers.get(("datasets", base)) == PROVIDER:
            valid = [n for n in registry.names("datasets") if registry.providers.get(("datasets", n)) != PROVIDER]
            raise ConfigError(f"{w(name)}: {UnknownNameError('dataset plugin', base, valid)}")
        if name in specs and registry.providers.get(("datasets", name)) != PROVIDER:
            raise ConfigError(f"{w(name)}: '{name}' is already a registered dataset; choose another "
                              f"name for the variant (or drop {BASE_KEY} = to configure it)")
        keys = {k: v for k, v in table.items() if k != BASE_KEY}
        shown = ", ".join(f"{k}={v}" for k, v in keys.items()) or "no changes"
        specs[name] = dataclasses.replace(specs[base], name=name, summary=f"{base} with {shown} (variant)")
        registry.providers[("datasets", name)] = PROVIDER
        bases[name] = base
    return bases


def variant_table(plugin_tables: dict[str, dict[str, dict[str, Any]]], name: str,
                  bases: dict[str, str]) -> dict[str, Any]:
    """The keys a dataset's config is built from: for a variant, its base's table then its own
    keys (without ``plugin``); for any other dataset, its table."""
    tables = plugin_tables.get("datasets", {})
    if name not in bases:
        return dict(tables.get(name, {}))
    own = {k: v for k, v in tables.get(name, {}).items() if k != BASE_KEY}
    return {**tables.get(bases[name], {}), **own}
