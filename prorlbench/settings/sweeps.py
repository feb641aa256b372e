"""``--set`` overrides and sweeps, and ``methods = "all"``: a run config expanded before it is resolved.

``--set KIND.NAME.KEY=VALUE`` (``[run] sets``) sets one key of a plugin table from the command
line: ``methods.pop.length=3``, ``datasets.synthetic.n_users=500``, ``simulators.sasrec.epochs=5``,
``variants.NAME.KEY=V`` and ``cases.KEY=V``. A value is read as a TOML value (``1e-4``, ``true``,
``"text"``, ``[0.8, 0.1, 0.1]``); anything that is not TOML is a string.

Several comma-separated values of a method key are a sweep: ``--set methods.prorl.lr=1e-4,5e-4
--set methods.prorl.beta=0,0.01`` replaces ``prorl`` in the grid by one variant per combination
(the product of the values), named ``prorl+lr=1e-4+beta=0`` and so on: ``[variants.NAME]``
tables with ``method = "prorl"`` and those keys, run, fingerprinted, resumed and reported exactly
like hand-written variants (:mod:`prorlbench.settings.variants`); the run's ``config.toml`` holds them as
such. A sweep of a variant makes variants of its base with the variant's keys plus the swept ones.

:func:`expand` is called by :func:`prorlbench.engine.resolve.resolve`; it returns a new config with
``sets`` empty, so expanding twice changes nothing. The default run name of an expanded grid is
the name of the grid as given (``prorl_synthetic``), not of every variant.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, UnknownNameError, did_you_mean

KINDS = ("methods", "datasets", "simulators", "variants", "cases")


@dataclass(frozen=True)
class SetItem:
    """One ``--set``: the table it writes to, the key and its value(s) as given."""

    text: str
    kind: str
    name: str
    key: str
    values: tuple[Any, ...]
    shown: tuple[str, ...]
    """Each value as written (variant names use it: ``lr=1e-4``, not ``lr=0.0001``)."""


def split_values(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``1,[2,3],"a,b"`` -> three values."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def parse_value(text: str) -> Any:
    """A TOML value, else the text itself (``position`` needs no quotes)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return text


def parse_set(text: str) -> SetItem:
    """One ``--set`` argument; a malformed one is a one-line ConfigError naming it."""
    where = f"--set {text}"
    path, sep, raw = text.partition("=")
    parts = [p.strip() for p in path.strip().split(".")]
    if not sep or not raw.strip() or not all(parts):
        raise ConfigError(f"{where}: expected KIND.NAME.KEY=VALUE (e.g. methods.pop.length=3) or cases.KEY=VALUE")
    kind = parts[0]
    if kind not in KINDS:
        raise ConfigError(f"{where}: '{kind}' is not a table{did_you_mean(kind, list(KINDS))}; "
                          f"valid: {', '.join(KINDS)}")
    if (kind == "cases") != (len(parts) == 2) or len(parts) < 2:
        shape = "cases.KEY=VALUE" if kind == "cases" else f"{kind}.NAME.KEY=VALUE"
        raise ConfigError(f"{where}: expected {shape}")
    shown = tuple(split_values(raw.strip()))
    if not all(shown):
        raise ConfigError(f"{where}: an empty value")
    name = ".".join(parts[1:-1]) if kind != "cases" else ""
    return SetItem(text=text, kind=kind, name=name, key=parts[-1], values=tuple(parse_value(v) for v in shown),
                   shown=tuple(v.strip("\"'") for v in shown))


def _check_key(item: SetItem, cls: Any) -> None:
    names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    if item.key not in names:
        owner = f"{item.kind.rstrip('s')} '{item.name}'" if item.name else "[cases]"
        listing = f"see `prorlbench list {item.kind} {item.name} --details`" if item.name else \
            f"valid keys: {', '.join(names)}"
        raise ConfigError(f"--set {item.text}: {owner} has no key '{item.key}'{did_you_mean(item.key, names)}; "
                          f"{listing}" if names else f"--set {item.text}: {owner} has no config keys")


def _config_class(item: SetItem, cfg: Any, registry: Any) -> Any:
    """The config class the item's key belongs to (after checking the name)."""
    if item.kind == "cases":
        from ..seq.cases import CaseConfig

        return CaseConfig
    if item.kind == "variants":
        if item.name not in cfg.variants:
            raise ConfigError(f"--set {item.text}: no [variants.{item.name}] in the config"
                              f"{did_you_mean(item.name, list(cfg.variants))}")
        item_base = cfg.variants[item.name]["method"]
        return registry.method(item_base).config_cls if item_base in registry.specs["methods"] else None
    if item.kind == "methods" and item.name in cfg.variants:
        return registry.method(cfg.variants[item.name]["method"]).config_cls \
            if cfg.variants[item.name]["method"] in registry.specs["methods"] else None
    if item.kind == "datasets" and "plugin" in cfg.plugin_tables["datasets"].get(item.name, {}):
        base = cfg.plugin_tables["datasets"][item.name]["plugin"]
        return registry.dataset(base).config_cls if base in registry.specs["datasets"] else None
    if item.name not in registry.specs[item.kind]:
        raise ConfigError(f"--set {item.text}: {UnknownNameError(item.kind.rstrip('s'), item.name, registry.names(item.kind))}")
    return registry.get(item.kind, item.name).config_cls


def expand(cfg: Any, registry: Any) -> Any:
    """``cfg`` with ``methods = ["all"]`` and every ``sets`` item applied (see the module docstring)."""
    if not cfg.sets and cfg.methods != ["all"]:
        return cfg
    from .runconfig import apply_overrides, default_run_name

    new = apply_overrides(cfg, {})
    new.methods = list(new.methods)  # a copy: the caller's config is left as it was
    if new.methods == ["all"]:
        new.methods = list(dict.fromkeys([*registry.names("methods"), *new.variants]))
    sweeps: dict[str, list[SetItem]] = {}
    for item in map(parse_set, cfg.sets):
        cls = _config_class(item, new, registry)
        if cls is not None:
            _check_key(item, cls)
        if len(item.values) > 1:
            if item.kind not in ("methods", "variants"):
                raise ConfigError(f"--set {item.text}: several values sweep method keys only; a dataset "
                                  "is varied with [datasets.NAME] plugin = \"...\" tables (README)")
            sweeps.setdefault(item.name, []).append(item)
        elif item.kind == "cases":
            new.cases[item.key] = item.values[0]
        elif item.kind == "variants":
            new.variants[item.name] = {**new.variants[item.name], item.key: item.values[0]}
        else:
            new.plugin_tables[item.kind][item.name] = {**new.plugin_tables[item.kind].get(item.name, {}),
                                                       item.key: item.values[0]}
    for name, items in sweeps.items():
        if name not in new.methods:
            raise ConfigError(f"--set {items[0].text}: method '{name}' is not in the grid (--methods "
                              f"{','.join(new.methods)})")
        own = dict(new.variants.get(name, {"method": name}))
        made = []
        for combo in itertools.product(*[list(zip(i.values, i.shown)) for i in items]):
            vname = name + "".join(f"+{i.key}={shown}" for i, (_, shown) in zip(items, combo))
            if vname in new.variants or vname in registry.specs["methods"]:
                raise ConfigError(f"--set {items[0].text}: the sweep's variant '{vname}' is already a method")
            new.variants[vname] = {**own, **{i.key: v for i, (v, _) in zip(items, combo)}}
            made.append(vname)
        at = new.methods.index(name)
        new.methods[at:at + 1] = made
    if not new.name and not new.out:
        new.name = default_run_name(cfg)  # the grid as given, not every variant
    new.sets = []
    return new
