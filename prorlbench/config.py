"""Typed configuration: dataclasses with documented fields, filled from TOML tables.

Every plugin's config is a dataclass whose fields are declared with :func:`opt` (a default plus a
one-line help text). :func:`build_config` fills one from a TOML table, rejecting unknown keys with
a "did you mean" suggestion and values of the wrong type, naming the file and key. Numbers are
checked when the config is read, before anything trains: a float must be finite (``nan`` and
``inf`` are refused), an integer must fit in 64 bits, and a value must lie in the range its
field declares (``opt(..., gt=0)`` for a learning rate, ``ge=0, le=1`` for a probability; every
element of a list). Declaring the range with the field, not in an ``if`` of ``__post_init__``,
keeps one check and one message for every key, and lets ``prorlbench list --details`` show it.
A config class's own ``__post_init__`` checks (any exception it raises, assertions included,
e.g. rules between keys) become the same one-line error.
A config class may define ``PROFILES: ClassVar[dict[str, dict]]`` (e.g. ``quick`` and ``paper``):
the profile's values are applied first, then the user's table.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import field
from typing import Any

from .errors import ConfigError, did_you_mean

INT_LIMIT = 2**63


PROFILE_FALLBACK = {"official": "paper"}
"""A profile that only some configs define falls back to this one for the others (``official``
sets the RL family's keys; datasets, simulators and cases then use ``paper``)."""


def opt(default: Any, help: str, *, flag: dict[str, Any] | None = None, gt: float | None = None,
        ge: float | None = None, lt: float | None = None, le: float | None = None, omit_default: bool = False,
        **kw: Any) -> Any:
    """A config field with a default and a help text (shown by ``prorlbench list --details`` and docs).

    ``flag``: how the field appears as a command-line flag where one is generated from the fields
    (``prorlbench run`` from ``RunConfig``): ``name``, ``metavar``, ``choices``.
    ``gt``/``ge``/``lt``/``le``: the range a value must lie in (``> gt``, ``>= ge``, ...), checked by
    :func:`build_config` for every value read from a file, a profile or the command line; ``None``
    values (an optional key left unset) are not checked.
    ``omit_default``: the key is left out of a cell's fingerprint while it has its default
    (:func:`fingerprint_dict`): for a key added after cells were stored whose default reproduces
    them, or one that never changes results, so adding it does not recompute finished cells.
    """
    bounds = {k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None}
    meta = {"help": help, "flag": dict(flag or {}), "bounds": bounds, "omit_default": omit_default}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def field_help(cls: type) -> dict[str, str]:
    """Each field's help text, with its declared range appended (``... [> 0]``)."""
    out = {}
    for f in dataclasses.fields(cls):
        bounds = f.metadata.get("bounds") or {}
        out[f.name] = f.metadata.get("help", "") + (f" [{range_text(bounds)}]" if bounds else "")
    return out


_OPS = {"gt": (">", lambda v, b: v > b), "ge": (">=", lambda v, b: v >= b),
        "lt": ("<", lambda v, b: v < b), "le": ("<=", lambda v, b: v <= b)}


def range_text(bounds: dict[str, float]) -> str:
    """``> 0``, ``>= 1`` or ``in [0, 1]`` / ``in (0, 1)`` (an interval when both ends are set)."""
    low = next(((k, bounds[k]) for k in ("gt", "ge") if k in bounds), None)
    high = next(((k, bounds[k]) for k in ("lt", "le") if k in bounds), None)
    if low and high:
        return f"in {'(' if low[0] == 'gt' else '['}{low[1]:g}, {high[1]:g}{')' if high[0] == 'lt' else ']'}"
    return " and ".join(f"{_OPS[k][0]} {v:g}" for k, v in bounds.items())


def check_bounds(value: Any, bounds: dict[str, float] | None, where: str) -> None:
    """A :class:`ConfigError` naming ``where`` when ``value`` (each element of a list) lies outside
    ``bounds`` (an :func:`opt` field's ``gt``/``ge``/``lt``/``le``)."""
    if not bounds:
        return
    for v in value if isinstance(value, (list, tuple)) else [value]:
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not all(_OPS[k][1](v, b) for k, b in bounds.items()):
            raise ConfigError(f"{where}: must be {range_text(bounds)}, got {v!r}")


def field_bounds(cls: type, name: str) -> dict[str, float]:
    """The range field ``name`` of config class ``cls`` declares (empty when none)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return dict(f.metadata.get("bounds") or {})
    return {}


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        out = [_coerce(v, inner, where) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if not -INT_LIMIT <= value < INT_LIMIT:
            raise ConfigError(f"{where}: integer {value} is out of range (at most 2**63 - 1)")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            out = float(value)
        except OverflowError:
            raise ConfigError(f"{where}: number {value} is out of range") from None
        if not math.isfinite(out):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return out
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def build_config(cls: type, values: dict[str, Any] | None = None, *, where: str = "config",
                 profile: str | None = None) -> Any:
    """Instantiate config dataclass ``cls`` from ``values`` (a TOML table).

    ``where`` names the source for errors, e.g. ``"run.toml [methods.prorl]"``.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"{where}: the plugin's config class {getattr(cls, '__name__', cls)!r} is not a "
                          "dataclass (a plugin bug; see docs/plugins.md)")
    values = dict(values or {})
    merged: dict[str, Any] = {}
    profiles = getattr(cls, "PROFILES", None) or {}
    if profile is not None and profile not in profiles:
        profile = PROFILE_FALLBACK.get(profile, profile)
    if profile is not None and profile in profiles:
        merged.update(profiles[profile])
    merged.update(values)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, val in merged.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, list(fields))}; "
                              f"valid keys: {', '.join(sorted(fields))}")
        kwargs[key] = _coerce(val, hints.get(key, Any), f"{where} key '{key}'")
        check_bounds(kwargs[key], fields[key].metadata.get("bounds"), f"{where} key '{key}'")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except Exception as exc:  # a plugin's own checks: TypeError, ValueError, AssertionError, ...
        msg = " ".join(str(exc).split())
        detail = f"{type(exc).__name__}: {msg}" if msg else f"{type(exc).__name__} (no message)"
        raise ConfigError(f"{where}: invalid values ({detail})") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (for config.toml and cache keys)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.init}


def fingerprint_dict(cfg: Any) -> dict[str, Any]:
    """:func:`to_dict` without the ``omit_default`` keys that have their default (what a cell's
    fingerprint hashes)."""
    out = to_dict(cfg)
    for f in dataclasses.fields(cfg):
        if f.init and f.metadata.get("omit_default") and f.default is not dataclasses.MISSING \
                and out[f.name] == f.default:
            del out[f.name]
    return out
