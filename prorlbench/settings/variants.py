"""Method variants: ``[variants.NAME]`` tables that make a configured copy of a method.

A run's TOML file may hold::

    [variants."prorl+position"]
    method = "prorl"          # the base method (any registered method)
    centering = "position"    # any keys of the base method's config

which registers a method ``prorl+position``: the base method's factory with the base's
``[methods.prorl]`` table, then a ``[methods."prorl+position"]`` table if given, then the
variant's own keys (later wins; the run's profile is applied first, as for every method). A
variant is its own row in every table, is fingerprinted by its full config and its base, and is
listed by ``prorlbench list methods --config FILE``. ``datasets = ["prorl-json"]`` (optional)
runs the variant on those datasets of the run only (e.g. a policy that needs the data's semantic
IDs); the other datasets get no cell of it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError, UnknownNameError

PROVIDER = "variants"


def parse_variants(tables: Any, where: str) -> dict[str, dict[str, Any]]:
    """Check the structure of the ``[variants]`` table: ``{NAME: {"method": BASE, key: value}}``."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{where}: 'variants' must hold tables like [variants.NAME]")
    out: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        w = f"{where} [variants.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{w}: must be a table with a 'method' key, got {type(table).__name__}")
        base = table.get("method")
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{w}: needs method = \"BASE\" (the method it varies)")
        if base == name:
            raise ConfigError(f"{w}: a variant cannot have its own name as its method")
        only = table.get("datasets", [])
        if not isinstance(only, list) or not all(isinstance(d, str) and d for d in only):
            raise ConfigError(f"{w}: datasets must be a list of dataset names, got {only!r}")
        out[str(name)] = dict(table)
    return out


def add_variants(registry: Any, variants: dict[str, dict[str, Any]], plugin_tables: dict[str, dict],
                 where: str = "") -> dict[str, dict[str, Any]]:
    """Register every variant in ``registry`` as a method; returns ``{NAME: method table}`` (the
    merged keys to build its config from). Idempotent for a registry that already holds them."""
    from ..api import MethodSpec

    tables: dict[str, dict[str, Any]] = {}
    methods = registry.specs["methods"]
    for name, table in variants.items():
        w = f"{where} [variants.{name}]".strip()
        base = table["method"]
        if base in variants:
            raise ConfigError(f"{w}: method '{base}' is itself a variant; name a registered method")
        if base not in methods:
            raise ConfigError(f"{w}: {UnknownNameError('method', base, registry.names('methods'))}")
        spec = methods[base]
        if name in methods and registry.providers.get(("methods", name)) != PROVIDER:
            raise ConfigError(f"{w}: '{name}' is already a registered method; choose another name")
        keys = {k: v for k, v in table.items() if k not in ("method", "datasets")}
        if keys and spec.config_cls is None:
            raise ConfigError(f"{w}: method '{base}' has no config keys")
        merged = {**plugin_tables.get("methods", {}).get(base, {}),
                  **plugin_tables.get("methods", {}).get(name, {}), **keys}
        shown = ", ".join(f"{k}={v}" for k, v in keys.items()) or "no changes"
        methods[name] = dataclasses.replace(spec, name=name, summary=f"{base} with {shown} (variant)")
        registry.providers[("methods", name)] = PROVIDER
        tables[name] = merged
    return tables


def variant_configs(registry: Any, cfg: Any) -> dict[str, Any]:
    """Register ``cfg.variants`` (a RunConfig's) and build every variant's config (the profile
    first, then the merged tables); a bad key is a ConfigError naming ``[variants.NAME]``."""
    from ..config import build_config

    tables = add_variants(registry, cfg.variants, cfg.plugin_tables, cfg.source)
    for n, v in cfg.variants.items():
        for d in v.get("datasets", []):
            if d not in registry.specs["datasets"]:
                raise ConfigError(f"{cfg.where(f'variants.{n}')}: datasets: "
                                  f"{UnknownNameError('dataset', d, registry.names('datasets'))}")
    return {n: build_config(registry.method(n).config_cls, t, where=cfg.where(f"variants.{n}"),
                            profile=cfg.profile) for n, t in tables.items()}


def variants_document(variants: dict[str, dict[str, Any]], method_cfgs: dict[str, Any]) -> dict[str, Any]:
    """The ``[variants]`` part of a run's ``config.toml``: each used variant names its base (its
    full config is written under ``[methods.NAME]``)."""
    from ..folder.tomlwriter import Table

    used = {n: v for n, v in variants.items() if n in method_cfgs}
    return {"variants": Table({n: Table({k: v[k] for k in ("method", "datasets") if k in v})
                               for n, v in used.items()})} if used else {}

