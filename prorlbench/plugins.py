"""Plugin loading and the registry of datasets, simulators, methods, metrics, estimators and
executors.

Nothing here is module-global: :func:`load_registry` builds a fresh plugin manager and registry
each time it is called (the CLI calls it once per command, tests call it as often as they like).

Where plugins come from, in order:

1. the ``prorlbench`` entry-point group (the built-ins under ``plugins/`` are registered there
   too, exactly as a third-party package would be), filtered by the allow-list environment
   variable :data:`ALLOW_ENV` (comma-separated entry-point names; unset means all, empty means
   none);
2. every ``*.py`` file in each ``--plugins-dir`` folder, in name order;
3. plugin objects passed in by the caller (tests).

Hooks are called kind by kind; estimators are collected before methods, and ``register_methods``
receives them (``estimators``), so a plugin can turn them into methods (the RL family does). A
method named after an estimator is credited to the estimator's provider.

A plugin that fails to import, or whose hook raises, is kept out and listed with its error
(``prorlbench list`` shows it) instead of crashing the CLI; so is a plugin that registers
something that is not a spec of its kind, or a spec whose ``config_cls`` is not a dataclass.
Two plugins registering the same name for the same kind is an error that names both providers;
so are two method (or dataset) names that differ only in characters a file name cannot hold
(``first items`` and ``first-items`` would share cell files).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .api import DatasetSpec, EstimatorSpec, ExecutorSpec, MethodSpec, MetricSpec, SimulatorSpec
from .errors import UnknownNameError, UserError
from .executors import EXECUTORS, SUMMARIES

GROUP = "prorlbench"
BUILT_IN = "prorlbench"
"""The provider of the executors that ship with the core."""
ALLOW_ENV = "PRORLBENCH_PLUGINS"
"""Comma-separated entry-point names to load (unset: all; set but empty: none)."""

KINDS: dict[str, tuple[str, type]] = {
    "datasets": ("register_datasets", DatasetSpec),
    "simulators": ("register_simulators", SimulatorSpec),
    "methods": ("register_methods", MethodSpec),
    "metrics": ("register_metrics", MetricSpec),
    "estimators": ("register_estimators", EstimatorSpec),
    "executors": ("register_executors", ExecutorSpec),
}
SINGULAR = {"datasets": "dataset", "simulators": "simulator", "methods": "method",
            "metrics": "metric", "estimators": "estimator", "executors": "executor"}
HOOK_ORDER = ("datasets", "simulators", "estimators", "methods", "metrics", "executors")
"""The order hooks are called in: estimators before the methods made from them."""


class DuplicateNameError(UserError):
    """Two plugins registered the same name."""


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised."""

    plugin: str
    error: str


@dataclass
class Registry:
    """Everything the loaded plugins registered, by kind and name, with who provided it."""

    specs: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in KINDS})
    providers: dict[tuple[str, str], str] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    plugin_manager: pluggy.PluginManager | None = None

    def add(self, kind: str, spec: Any, provider: str) -> None:
        _, cls = KINDS[kind]
        if not isinstance(spec, cls):
            raise TypeError(f"register_{kind} expects {cls.__name__}, got {type(spec).__name__}")
        config_cls = getattr(spec, "config_cls", None)
        if config_cls is not None and not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
            raise TypeError(f"{SINGULAR[kind]} '{spec.name}': config_cls must be a dataclass, "
                            f"got {getattr(config_cls, '__name__', type(config_cls).__name__)}")
        name = spec.name
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"a {SINGULAR[kind]} name must be a non-empty string, got {name!r}")
        if name in self.specs[kind]:
            other = self.providers[(kind, name)]
            raise DuplicateNameError(
                f"{SINGULAR[kind]} '{name}' is registered twice: by plugin '{other}' and by plugin '{provider}'"
            )
        if kind in ("methods", "datasets"):
            from .folder.files import safe_name

            clash = next((n for n in self.specs[kind] if safe_name(n) == safe_name(name)), None)
            if clash is not None:
                other = self.providers[(kind, clash)]
                raise DuplicateNameError(
                    f"{SINGULAR[kind]} names '{clash}' (plugin '{other}') and '{name}' (plugin "
                    f"'{provider}') give the same file name '{safe_name(name)}'; rename one")
        self.specs[kind][name] = spec
        if kind == "methods" and name in self.specs["estimators"]:
            provider = self.providers[("estimators", name)]  # who wrote the estimator
        self.providers[(kind, name)] = provider

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def default_metrics(self) -> list[str]:
        """The metrics a run computes when it names none (those with ``default``)."""
        return [n for n in self.names("metrics") if self.specs["metrics"][n].default]

    def get(self, kind: str, name: str) -> Any:
        try:
            return self.specs[kind][name]
        except KeyError:
            raise UnknownNameError(SINGULAR[kind], name, self.names(kind)) from None

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("datasets", name)

    def simulator(self, name: str) -> SimulatorSpec:
        return self.get("simulators", name)

    def method(self, name: str) -> MethodSpec:
        return self.get("methods", name)

    def metric(self, name: str) -> MetricSpec:
        return self.get("metrics", name)

    def estimator(self, name: str) -> EstimatorSpec:
        return self.get("estimators", name)

    def executor(self, name: str) -> ExecutorSpec:
        return self.get("executors", name)


def make_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows prorlbench's hook specs and nothing else."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _allowed(name: str, allow: str | None) -> bool:
    if allow is None:
        return True
    wanted = {p.strip() for p in allow.split(",") if p.strip()}
    return name in wanted


def _register(pm: pluggy.PluginManager, plugin: Any, name: str, failures: list[PluginFailure]) -> None:
    unknown = [a for a in dir(plugin) if a.startswith("register_") and not hasattr(hookspecs, a)
               and callable(getattr(plugin, a, None))
               and getattr(getattr(plugin, a), GROUP + "_impl", None) is not None]
    if unknown:
        failures.append(PluginFailure(name, f"unknown hook(s) {', '.join(unknown)}; known: "
                                      + ", ".join(KINDS[k][0] for k in KINDS)))
        return
    try:
        pm.register(plugin, name=name)
    except Exception as exc:  # pluggy validation (bad argument names) or a duplicate plugin
        failures.append(PluginFailure(name, f"{type(exc).__name__}: {exc}"))


def load_module_from_file(path: Path) -> Any:
    """Import a loose plugin file under a private module name."""
    mod_name = f"prorlbench_local_{abs(hash(str(path.resolve())))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def load_registry(
    plugins_dirs: Iterable[str | Path] = (),
    *,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    use_entry_points: bool = True,
    allow: str | None | object = ...,
) -> Registry:
    """Load plugins (see the module docstring) and collect what they register."""
    pm = make_plugin_manager()
    failures: list[PluginFailure] = []
    allow_list = os.environ.get(ALLOW_ENV) if allow is ... else allow
    if use_entry_points:
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            if not _allowed(ep.name, allow_list):  # type: ignore[arg-type]
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                failures.append(PluginFailure(ep.name, f"import failed: {type(exc).__name__}: {exc}"))
                continue
            _register(pm, plugin, ep.name, failures)
    for d in plugins_dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise UserError(f"--plugins-dir {folder}: not a directory")
        for f in sorted(folder.glob("*.py")):
            if f.name.startswith("_"):
                continue
            try:
                plugin = load_module_from_file(f)
            except Exception as exc:
                failures.append(PluginFailure(str(f), f"import failed: {type(exc).__name__}: {exc}"))
                continue
            _register(pm, plugin, str(f), failures)
    for name, plugin in extra_plugins:
        _register(pm, plugin, name, failures)
    pm.check_pending()

    reg = Registry(failures=failures, plugin_manager=pm)
    for name, factory in EXECUTORS.items():
        reg.add("executors", ExecutorSpec(name, SUMMARIES[name], factory), BUILT_IN)
    arguments = {"estimators": MappingProxyType(reg.specs["estimators"])}
    for kind in HOOK_ORDER:
        hook_name = KINDS[kind][0]
        caller = getattr(pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # registration order
            provider = impl.plugin_name
            collected: list[Any] = []
            try:
                impl.function(register=collected.append,
                              **{a: arguments[a] for a in impl.argnames if a in arguments})
            except Exception as exc:
                failures.append(PluginFailure(provider, f"{hook_name} raised {type(exc).__name__}: {exc}"))
                continue
            for spec in collected:
                try:
                    reg.add(kind, spec, provider)
                except TypeError as exc:  # not a spec, or a config class that is not a dataclass
                    failures.append(PluginFailure(provider, f"{hook_name}: {exc}"))
    return reg
