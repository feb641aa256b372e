"""Typed configuration: dataclasses with documented fields, filled from TOML tables.

Every plugin's config is a dataclass whose fields are declared with :func:`opt` (a default plus a
one-line help text). :func:`build_config` fills one from a TOML table, rejecting unknown keys with
a "did you mean" suggestion and values of the wrong type, naming the file and key. Numbers are
checked when the config is read, before anything trains: a float must be finite (``nan`` and
``inf`` are refused) and an integer must fit in 64 bits. A config class's own ``__post_init__``
checks (any exception it raises, assertions included) become the same one-line error.
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


def opt(default: Any, help: str, *, flag: dict[str, Any] | None = None, **kw: Any) -> Any:
    """A config field with a default and a help text (shown by ``prorlbench list --details`` and docs).

    ``flag``: how the field appears as a command-line flag where one is generated from the fields
    (``prorlbench run`` from ``RunConfig``): ``name``, ``metavar``, ``choices``.
    """
    meta = {"help": help, "flag": dict(flag or {})}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def field_help(cls: type) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


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
