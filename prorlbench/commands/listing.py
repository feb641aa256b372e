"""``prorlbench list``: registered plugins, one kind or one plugin, and with ``--details`` each
config key with the value the chosen profile (and ``--config`` file) actually gives it.

Without ``--details`` and ``--config`` the list comes from the plugin catalogue when nothing
changed since the last full load (:mod:`prorlbench.commands.plugindex`): no plugin and no torch is imported.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..errors import UserError
from ..settings.runconfig import RunConfig, read_config_file

SINGULAR = {"datasets": "dataset", "simulators": "simulator", "methods": "method",
            "metrics": "metric", "estimators": "estimator", "executors": "executor"}
"""The kinds of ``prorlbench.plugins.KINDS`` (a test keeps them equal), without importing it."""
KINDS = tuple(SINGULAR)


def _plural(kind: str) -> str:
    k = kind.lower().strip()
    for plural, single in SINGULAR.items():
        if k in (plural, single):
            return plural
    from ..errors import did_you_mean

    raise UserError(f"list: unknown kind '{kind}'{did_you_mean(k, list(KINDS))}; "
                    f"valid: {', '.join(KINDS)}")


def _details(kind: str, name: str, spec: Any, profile: str, cfg: RunConfig | None) -> str | None:
    """The config keys of one plugin: default, the value the run would use (``profile`` and
    the ``--config`` table applied) and help."""
    from tabulate import tabulate

    from ..config import build_config, field_help, to_dict

    cls = getattr(spec, "config_cls", None)
    if cls is None or not dataclasses.is_dataclass(cls):
        return None
    table = cfg.table(kind, name) if cfg is not None else {}
    where = cfg.where(f"{kind}.{name}") if cfg is not None else f"[{kind}.{name}]"
    try:
        used = to_dict(build_config(cls, table, where=where, profile=profile))
    except TypeError:  # a config with required fields: only the defaults can be shown
        used = {}
    helps = field_help(cls)
    frows = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        value = used.get(f.name, default)
        frows.append([f.name, repr(value), "" if value == default else repr(default),
                      helps.get(f.name, "")])
    profiles = sorted(getattr(cls, "PROFILES", {}) or {})
    head = f"  [{kind}.{name}]  values with profile '{profile}'" + \
        (f" (profiles: {', '.join(profiles)})" if profiles else " (no profiles)")
    body = tabulate(frows, headers=["key", f"value ({profile})", "default if different", "help"],
                    tablefmt="simple") if frows else "(no keys)"
    return head + "\n" + "\n".join("    " + line for line in body.splitlines())


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from . import plugindex
    from ..errors import UnknownNameError

    kinds = [_plural(args.kind)] if args.kind else list(KINDS)
    cfg = read_config_file(args.config) if args.config else None
    dirs = list(args.plugins_dirs or ()) + (list(cfg.plugins_dirs) if cfg else [])
    if args.name is not None and not args.kind:
        raise UserError("list: give the kind before the name, e.g. `prorlbench list methods prorl`")
    cat = plugindex.load(dirs) if not args.details and cfg is None else None
    registry = None
    if cat is None:
        from ..plugins import load_registry

        registry = load_registry(dirs)
        plugindex.save(registry, dirs)
        if cfg is not None:  # its [variants.NAME] methods are listed too
            from ..settings.variants import add_variants

            add_variants(registry, cfg.variants, cfg.plugin_tables, cfg.source)
        cat = plugindex.catalogue(registry)
    rows_of = {kind: {r[0]: r for r in rows} for kind, rows in cat["rows"].items()}
    if args.name is not None and args.name not in rows_of[kinds[0]]:
        raise UnknownNameError(SINGULAR[kinds[0]], args.name, list(rows_of[kinds[0]]))
    blocks = []
    for kind in kinds:
        names = [args.name] if args.name is not None else list(rows_of[kind])
        rows = [[n, rows_of[kind][n][1] + (" [opt-in: --metrics]" if rows_of[kind][n][3] else ""),
                 rows_of[kind][n][2]] for n in names]
        blocks.append(f"{kind}:\n" + (tabulate(rows, headers=["name", "summary", "plugin"], tablefmt="simple")
                                       if rows else "  (none)"))
        if args.details and registry is not None:
            for name in names:
                text = _details(kind, name, registry.get(kind, name), args.profile, cfg)
                if text:
                    blocks.append(text)
    print("\n\n".join(blocks))
    if cat["failures"]:
        print()
        print("plugins that failed to load:")
        print(tabulate(cat["failures"], headers=["plugin", "error"], tablefmt="simple"))
    return 0
