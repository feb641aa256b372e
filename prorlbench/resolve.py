"""Resolving a run: every name, profile and plugin config checked and built once, up front.

:func:`resolve` turns a :class:`~prorlbench.runconfig.RunConfig` and a plugin registry into a
:class:`Resolved` run: the device, the folders, and every dataset, simulator, method and case
config built from its table (profile applied), so that a typo fails before anything is computed.
The rest of the runner reads only the :class:`Resolved` object. It also holds the cell
fingerprint (everything a cell's numbers depend on) and the metadata the report needs
(:meth:`Resolved.metadata_document`), so that reports never load the plugin registry.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from .cases import CaseConfig
from .config import build_config, to_dict
from .dsvariants import BASE_KEY, add_dataset_variants, variant_table
from .errors import ConfigError, UnknownNameError, UserError, did_you_mean
from .executors import CellJob, ExecutorContext, make_executor
from .plugins import Registry, load_registry
from .runconfig import (NOT_WRITTEN, PLUGIN_TABLES, PROFILES, RUN_KEYS, STYLES, RunConfig, default_cache_dir,
                        out_dir)
from .tomlwriter import Table

log = logging.getLogger("prorlbench")


@dataclass
class Resolved:
    """A run configuration checked against the registry, with every plugin config built."""

    cfg: RunConfig
    registry: Registry
    out: Path
    cache_dir: Path
    device: torch.device
    dataset_cfgs: dict[str, Any]
    simulator_cfgs: dict[str, Any]
    method_cfgs: dict[str, Any]
    cases_cfg: Any
    eval_simulators: list[str]
    metrics: list[Any]
    backbone_cfgs: dict[str, Any] = field(default_factory=dict)
    """Configs of the other learned simulators, for ``ctx.make_backbone(kind, seed)``."""
    dataset_bases: dict[str, str] = field(default_factory=dict)
    """``{variant: base plugin}`` of the dataset variants (:mod:`prorlbench.dsvariants`)."""

    @property
    def k_max(self) -> int:
        return max(self.cfg.ks)

    # Pickling (for executors that run cells in other processes): the registry holds a plugin
    # manager and loose plugin modules, so it is rebuilt from the config where it is unpickled.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["registry"] = None
        state["metrics"] = [m.name for m in self.metrics]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.registry = load_registry(self.cfg.plugins_dirs)
        add_dataset_variants(self.registry, self.cfg.plugin_tables)
        self.metrics = [self.registry.metric(n) for n in state["metrics"]]

    def config_document(self) -> dict[str, Any]:
        """The content of ``<out>/config.toml``: the resolved run and every plugin config used."""
        run = {k: getattr(self.cfg, k) for k in RUN_KEYS if k not in NOT_WRITTEN}
        run["eval_simulators"] = list(self.eval_simulators)
        run["metrics"] = [m.name for m in self.metrics]
        run["plugins_dirs"] = [str(Path(p).resolve()) for p in self.cfg.plugins_dirs]
        doc: dict[str, Any] = Table(run=Table(run))
        doc["datasets"] = Table({n: Table(({BASE_KEY: self.dataset_bases[n]} if n in self.dataset_bases else {})
                                          | to_dict(c)) for n, c in self.dataset_cfgs.items()})
        doc["simulators"] = Table({n: Table(to_dict(c)) for n, c in self.simulator_cfgs.items()})
        doc["methods"] = Table({n: Table(to_dict(c)) for n, c in self.method_cfgs.items()})
        doc["cases"] = Table(to_dict(self.cases_cfg))
        if self.cfg.display:
            doc["display"] = Table(dict(self.cfg.display))
        return doc

    def simulator_config(self, name: str) -> Any:
        """The built config of simulator ``name`` (a run simulator or a backbone kind)."""
        return self.simulator_cfgs[name] if name in self.simulator_cfgs else self.backbone_cfgs[name]

    def metadata_document(self) -> dict[str, Any]:
        """The content of ``<out>/metadata.json``: how the report shows the run's metrics (in
        their registration order) and methods, taken from their specs."""
        chosen = {m.name for m in self.metrics}
        metrics = {n: {"display": s.display or n, "decimals": s.decimals, "headline": s.headline,
                       "higher_is_better": s.higher_is_better}
                   for n, s in self.registry.specs["metrics"].items() if n in chosen}
        shown = self.cfg.display
        for n in metrics:
            metrics[n]["display"] = shown.get(n, metrics[n]["display"])
        from .report.metadata import method_colors

        colors = method_colors(list(self.cfg.methods))
        methods = {n: {"display": shown.get(n) or self.registry.method(n).display or n,
                       "family": self.registry.method(n).family, "color": colors[n]}
                   for n in self.cfg.methods}
        doc: dict[str, Any] = {"metrics": metrics, "methods": methods}
        datasets = {n: {"display": shown[n]} for n in self.cfg.datasets if n in shown}
        if datasets:
            doc["datasets"] = datasets
        return doc

    def executor_context(self, folder: Path) -> ExecutorContext:
        """What an executor is told about this run (see :mod:`prorlbench.executors`)."""
        return ExecutorContext(folder=folder, device=str(self.device), address=self.cfg.ray_address,
                               plugins_dirs=tuple(str(Path(d).resolve()) for d in self.cfg.plugins_dirs))

    def executor_factories(self) -> dict[str, Any]:
        return executor_factories(self.registry)

    def fingerprint(self, job: CellJob) -> str:
        """Hash of everything a cell's numbers depend on."""
        key = {
            "method": job.method, "seed": job.seed, "dataset": job.dataset,
            "method_cfg": to_dict(self.method_cfgs[job.method]),
            "dataset_cfg": to_dict(self.dataset_cfgs[job.dataset]),
            "cases": to_dict(self.cases_cfg), "simulator": self.cfg.simulator,
            "simulators": {n: to_dict(self.simulator_cfgs[n])
                           for n in [self.cfg.simulator, *self.eval_simulators]},
            "simulator_seed": self.cfg.simulator_seed, "ks": list(self.cfg.ks),
            "metrics": [m.name for m in self.metrics], "data_dir": self.cfg.data_dir,
        }
        if job.dataset in self.dataset_bases:  # only variants: other fingerprints stay as they were
            key["dataset_plugin"] = self.dataset_bases[job.dataset]
        blob = json.dumps(key, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve_device(name: str) -> torch.device:
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine "
                              "(torch.cuda.is_available() is False); use --device cpu or auto")
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise ConfigError(f"--device {name}: not a valid device name") from None
        if dev.index is None:  # an explicit index, so device comparisons (cuda vs cuda:0) agree
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise ConfigError(f"--device {name}: expected auto, cpu, cuda or cuda:N")


def _check_names(kind: str, names: Sequence[str], registry: Registry) -> None:
    for n in names:
        if n not in registry.specs[kind]:
            err = UnknownNameError(kind.rstrip("s"), n, registry.names(kind))
            failed = [f.plugin for f in registry.failures]
            if failed:
                raise UserError(f"{err}; note: {len(failed)} plugin(s) failed to load "
                                f"(see `prorlbench list`): {', '.join(failed)}")
            raise err


def resolve(cfg: RunConfig, registry: Registry) -> Resolved:
    """Check names, profile, device and every plugin table; build the plugin configs."""
    if not cfg.methods:
        raise ConfigError("no methods given: pass --methods A,B or set methods in the [run] table "
                          "(see `prorlbench list methods`)")
    if not cfg.datasets:
        raise ConfigError("no datasets given: pass --datasets NAME or set datasets in [run]")
    if not cfg.seeds:
        raise ConfigError("no seeds given: pass --seeds 0,1,2 or set seeds in [run]")
    for key in ("methods", "datasets", "seeds"):
        vals = getattr(cfg, key)
        dup = sorted({str(v) for v in vals if vals.count(v) > 1})
        if dup:
            raise ConfigError(f"{key}: listed twice: {', '.join(dup)}")
    if cfg.profile not in PROFILES:
        raise ConfigError(f"profile '{cfg.profile}': expected one of {', '.join(PROFILES)}")
    if cfg.style not in STYLES:
        raise ConfigError(f"style '{cfg.style}': expected one of {', '.join(STYLES)}")
    bases = add_dataset_variants(registry, cfg.plugin_tables, cfg.where)
    make_executor(cfg.executor, executor_factories(registry))  # unknown name -> UserError now, not after the data is loaded
    _check_names("methods", cfg.methods, registry)
    _check_names("datasets", cfg.datasets, registry)
    eval_sims = list(dict.fromkeys(cfg.eval_simulators)) or [cfg.simulator]
    _check_names("simulators", [cfg.simulator, *eval_sims], registry)
    if cfg.metrics:
        _check_names("metrics", cfg.metrics, registry)
        metric_names = list(dict.fromkeys(cfg.metrics))
    else:
        metric_names = registry.names("metrics")
    if not metric_names:
        raise UserError("no metrics are registered (did the built-in metrics plugin fail to load? "
                        "see `prorlbench list metrics`)")
    metrics = [registry.metric(n) for n in metric_names]

    # Every plugin table in the file must name a registered plugin, even if unused in this run.
    for kind in PLUGIN_TABLES:
        for name in cfg.plugin_tables.get(kind, {}):
            if name not in registry.specs[kind]:
                err = UnknownNameError(kind.rstrip("s"), name, registry.names(kind))
                raise ConfigError(f"{cfg.where(kind + '.' + name)}: {err}")

    shown = set(registry.names("methods")) | set(registry.names("metrics")) | set(registry.names("datasets"))
    for key in cfg.display:
        if key not in shown:
            raise ConfigError(f"{cfg.where('display')}: unknown name '{key}'{did_you_mean(key, sorted(shown))}; "
                              "[display] names methods, metrics and datasets")

    def build(kind: str, name: str, cls: type) -> Any:
        table = variant_table(cfg.plugin_tables, name, bases) if kind == "datasets" else cfg.table(kind, name)
        return build_config(cls, table, where=cfg.where(f"{kind}.{name}"), profile=cfg.profile)

    dataset_cfgs = {n: build("datasets", n, registry.dataset(n).config_cls) for n in cfg.datasets}
    sims = list(dict.fromkeys([cfg.simulator, *eval_sims]))
    simulator_cfgs = {n: build("simulators", n, registry.simulator(n).config_cls) for n in sims}
    method_cfgs = {n: build("methods", n, registry.method(n).config_cls) for n in cfg.methods}
    backbone_cfgs = {n: build("simulators", n, registry.simulator(n).config_cls)
                     for n in registry.names("simulators") if registry.simulator(n).learned and n not in simulator_cfgs}
    cases_cfg = build_config(CaseConfig, cfg.cases, where=cfg.where("cases"), profile=cfg.profile)
    if not registry.simulator(cfg.simulator).learned:
        log.warning("training simulator '%s' is a ground-truth simulator: methods will be trained "
                    "against the true user model", cfg.simulator)
    if cfg.tensorboard:
        from .logs import check_tensorboard

        check_tensorboard()
    device = resolve_device(cfg.device)
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    return Resolved(cfg=cfg, registry=registry, out=out_dir(cfg), cache_dir=cache, device=device,
                    dataset_cfgs=dataset_cfgs, simulator_cfgs=simulator_cfgs, method_cfgs=method_cfgs,
                    cases_cfg=cases_cfg, eval_simulators=eval_sims, metrics=metrics,
                    backbone_cfgs=backbone_cfgs, dataset_bases=bases)


def executor_factories(registry: Registry) -> dict[str, Any]:
    """Executor factories registered by plugins (``register_executors``), by name."""
    return {n: s.factory for n, s in registry.specs["executors"].items()}


def expand_grid(methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int]) -> list[CellJob]:
    """All cells, dataset-major then method then seed (the order they are computed in)."""
    return [CellJob(m, d, int(s)) for d in datasets for m in methods for s in seeds]
