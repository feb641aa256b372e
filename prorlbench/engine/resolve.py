"""Resolving a run: every name, profile and plugin config checked and built once, up front.

:func:`resolve` turns a RunConfig and a registry into a :class:`Resolved` run (device, folders,
every dataset, simulator, method and case config built with its profile): a typo fails before
anything runs. It holds the cell fingerprints (docs/reliability.md) and the metadata
the report needs (:meth:`Resolved.metadata_document`): reports never load the registry.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..config import build_config, fingerprint_dict, to_dict
from ..errors import ConfigError, UnknownNameError, UserError
from ..executors import CellJob, ExecutorContext, expand_grid, make_executor
from ..folder.configpaths import warn_data_dir_overrides, without_paths
from ..folder.files import check_grid_names
from ..folder.fingerprint import FileHashes, input_locations, inputs_fingerprint
from ..plugins import Registry, load_registry
from ..seq.cases import CaseConfig
from ..settings.display import check_display
from ..settings.dsvariants import add_dataset_variants, variant_table
from ..settings.runconfig import PLUGIN_TABLES, PROFILES, STYLES, RunConfig, default_cache_dir, out_dir
from ..settings.variants import add_variants, variant_configs
from .devices import resolve_device  # noqa: F401  (re-exported)

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
    inputs: dict[str, str] = field(default_factory=dict)
    """Per dataset: the content fingerprint of its input files (:meth:`input_fingerprint`)."""
    backbone_cfgs: dict[str, Any] = field(default_factory=dict)
    """Configs of the other learned simulators, for ``ctx.make_backbone(kind, seed)``."""
    dataset_bases: dict[str, str] = field(default_factory=dict)
    """``{variant: base plugin}`` of the dataset variants (:mod:`prorlbench.settings.dsvariants`)."""
    hashes: FileHashes = field(default_factory=FileHashes)

    @property
    def k_max(self) -> int:
        return max(self.cfg.ks)

    # Pickling (executors in other processes): the registry (plugin manager, loose modules) is
    # rebuilt from the config where it is unpickled.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["registry"] = None
        state["metrics"] = [m.name for m in self.metrics]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.registry = load_registry(self.cfg.plugins_dirs)
        add_variants(self.registry, self.cfg.variants, self.cfg.plugin_tables)
        add_dataset_variants(self.registry, self.cfg.plugin_tables)
        self.metrics = [self.registry.metric(n) for n in state["metrics"]]

    def config_document(self) -> dict[str, Any]:
        """The content of ``<out>/config.toml`` (:func:`prorlbench.settings.rundocs.config_document`)."""
        from ..settings.rundocs import config_document

        return config_document(self)

    def simulator_config(self, name: str) -> Any:
        """Config of simulator ``name`` (run simulator or backbone kind)."""
        return self.simulator_cfgs[name] if name in self.simulator_cfgs else self.backbone_cfgs[name]

    def metadata_document(self) -> dict[str, Any]:
        """``<out>/metadata.json``: how the report shows metrics (registration order), methods
        and datasets: their specs' names overridden by ``[display]``, one colour per method."""
        chosen = {m.name for m in self.metrics}
        metrics = {n: {"display": s.display or n, "decimals": s.decimals, "headline": s.headline,
                       "higher_is_better": s.higher_is_better}
                   for n, s in self.registry.specs["metrics"].items() if n in chosen}
        shown = self.cfg.display
        for n in metrics:
            metrics[n]["display"] = shown.get(n, metrics[n]["display"])
        from ..report.metadata import method_colors

        colors = method_colors(list(self.cfg.methods), display=self.cfg.display)  # [display] colors win
        methods = {n: {"display": shown.get(n) or self.registry.method(n).display or n,
                       "family": self.registry.method(n).family, "color": colors[n]}
                   for n in self.cfg.methods}
        doc: dict[str, Any] = {"metrics": metrics, "methods": methods}
        datasets = {n: {"display": shown[n]} for n in self.cfg.datasets if n in shown}
        if datasets:
            doc["datasets"] = datasets
        return doc

    def executor_context(self, folder: Path) -> ExecutorContext:
        """What an executor is told about this run (:mod:`prorlbench.executors`)."""
        return ExecutorContext(folder=folder, device=str(self.device), address=self.cfg.ray_address,
                               plugins_dirs=tuple(str(Path(d).resolve()) for d in self.cfg.plugins_dirs),
                               threads=self.cfg.threads, workers=self.cfg.workers,
                               cell_timeout=self.cfg.cell_timeout)

    def executor_factories(self) -> dict[str, Any]:
        return executor_factories(self.registry)

    def input_fingerprint(self, dataset: str) -> str:
        """Content fingerprint of the dataset's input files (:mod:`prorlbench.folder.fingerprint`)."""
        if dataset not in self.inputs:  # content, read once per run (self.hashes: shared files)
            locations = input_locations(self.cfg.data_dir, self.dataset_cfgs[dataset])
            self.inputs[dataset] = inputs_fingerprint(locations, self.hashes)
        return self.inputs[dataset]

    def fingerprint(self, job: CellJob) -> str:
        """Hash of all a method's fit and paths depend on (method, seed, dataset, input files, cases,
        training simulator); not metrics, eval simulators or ks (:meth:`score_fingerprint`)."""
        key = {
            "method": job.method, "seed": job.seed, "dataset": job.dataset,
            "method_cfg": fingerprint_dict(self.method_cfgs[job.method]),
            "dataset_cfg": without_paths(to_dict(self.dataset_cfgs[job.dataset])),
            "cases": to_dict(self.cases_cfg), "simulator": self.cfg.simulator,
            "simulator_cfg": to_dict(self.simulator_cfgs[self.cfg.simulator]),
            "simulator_seed": self.cfg.simulator_seed, "inputs": self.input_fingerprint(job.dataset),
        }
        if job.method in self.cfg.variants:
            key["variant_of"] = self.cfg.variants[job.method]["method"]
        if job.dataset in self.dataset_bases:  # only variants: other fingerprints stay as they were
            key["dataset_plugin"] = self.dataset_bases[job.dataset]
        if self.cfg.select_on != "none":  # its cells also generate paths for the validation cases
            key["select_on"] = self.cfg.select_on
        blob = json.dumps(key, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def backbone_fingerprint(self, kind: str) -> str:
        """Hash of the config of backbone kind ``kind`` ("" when it is not a known simulator).
        A cell stores the hashes of the backbones its method asked for; a change recomputes it."""
        try:
            cfg = self.simulator_config(kind)
        except KeyError:
            return ""
        return hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def score_fingerprint(self) -> str:
        """Hash of how stored paths are scored: metrics, eval simulators (and configs), ks."""
        key = {"metrics": [m.name for m in self.metrics], "ks": list(self.cfg.ks),
               "eval": {n: to_dict(self.simulator_cfgs[n]) for n in self.eval_simulators},
               "eval_order": list(self.eval_simulators), "simulator_seed": self.cfg.simulator_seed,
               "eval_batch_size": self.cfg.eval_batch_size}
        blob = json.dumps(key, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


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
    """Check names, profile, device and every plugin table; build the plugin configs. ``--set``
    and ``methods = "all"`` are expanded first (:mod:`prorlbench.settings.sweeps`): ``Resolved.cfg`` is
    the expanded config."""
    from ..settings.sweeps import expand

    cfg = expand(cfg, registry)
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
    make_executor(cfg.executor, executor_factories(registry))  # unknown name: UserError now, not after loading data
    variant_cfgs = variant_configs(registry, cfg)  # every variant's config is checked, used or not
    _check_names("methods", cfg.methods, registry)
    _check_names("datasets", cfg.datasets, registry)
    check_grid_names(cfg.methods, cfg.datasets, expand_grid(cfg.methods, cfg.datasets, cfg.seeds, cfg.variants))
    eval_sims = list(dict.fromkeys(cfg.eval_simulators)) or [cfg.simulator]
    _check_names("simulators", [cfg.simulator, *eval_sims], registry)
    if cfg.metrics:
        _check_names("metrics", cfg.metrics, registry)
        metric_names = list(dict.fromkeys(cfg.metrics))
    else:
        metric_names = registry.default_metrics()
    if not metric_names:
        raise UserError("no metrics are registered (did the built-in metrics plugin fail to load? "
                        "see `prorlbench list metrics`)")
    metrics = [registry.metric(n) for n in metric_names]

    # Every plugin table must name a registered plugin, even if this run does not use it.
    for kind in PLUGIN_TABLES:
        for name in cfg.plugin_tables.get(kind, {}):
            if name not in registry.specs[kind]:
                err = UnknownNameError(kind.rstrip("s"), name, registry.names(kind))
                raise ConfigError(f"{cfg.where(kind + '.' + name)}: {err}")

    check_display(cfg.display, [n for k in ("methods", "metrics", "datasets") for n in registry.names(k)],
                  cfg.where("display"))

    def build(kind: str, name: str, cls: type) -> Any:
        table = variant_table(cfg.plugin_tables, name, bases) if kind == "datasets" else cfg.table(kind, name)
        return build_config(cls, table, where=cfg.where(f"{kind}.{name}"), profile=cfg.profile)

    # Tables of unused plugins are checked too: a typo there is still a typo.
    for kind in PLUGIN_TABLES:
        for name in cfg.plugin_tables.get(kind, {}):
            build(kind, name, registry.get(kind, name).config_cls)
    dataset_cfgs = {n: build("datasets", n, registry.dataset(n).config_cls) for n in cfg.datasets}
    warn_data_dir_overrides(cfg.data_dir, dataset_cfgs)
    sims = list(dict.fromkeys([cfg.simulator, *eval_sims]))
    simulator_cfgs = {n: build("simulators", n, registry.simulator(n).config_cls) for n in sims}
    method_cfgs = {n: variant_cfgs[n] if n in variant_cfgs else build("methods", n, registry.method(n).config_cls)
                   for n in cfg.methods}
    backbone_cfgs = {n: build("simulators", n, registry.simulator(n).config_cls)
                     for n in registry.names("simulators") if registry.simulator(n).learned and n not in simulator_cfgs}
    cases_cfg = build_config(CaseConfig, cfg.cases, where=cfg.where("cases"), profile=cfg.profile)
    if not registry.simulator(cfg.simulator).learned:
        log.warning("training simulator '%s' is a ground-truth simulator: methods will be trained "
                    "against the true user model", cfg.simulator)
    if cfg.tensorboard:
        from ..console.logs import check_tensorboard

        check_tensorboard()
    device = resolve_device(cfg.device)
    if cfg.profile == "official" and device.type == "cpu":
        log.warning("profile 'official' is sized for GPUs and would run on the CPU here: its RL cells take hours "
                    "each (`--dry-run` estimates them); use --device cuda, or --profile quick or paper")
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    if cache.exists() and not cache.is_dir():
        raise ConfigError(f"cache dir {cache}: is a file, expected a folder (--cache-dir, cache_dir "
                          "or $PRORLBENCH_CACHE_DIR)")
    res = Resolved(cfg=cfg, registry=registry, out=out_dir(cfg), cache_dir=cache, device=device,
                   dataset_cfgs=dataset_cfgs, simulator_cfgs=simulator_cfgs, method_cfgs=method_cfgs,
                   cases_cfg=cases_cfg, eval_simulators=eval_sims, metrics=metrics,
                   backbone_cfgs=backbone_cfgs, dataset_bases=bases)
    from .selection import check

    check(res)  # a bad select_metric fails now
    return res


def executor_factories(registry: Registry) -> dict[str, Any]:
    """Executor factories registered by plugins (``register_executors``), by name."""
    return {n: s.factory for n, s in registry.specs["executors"].items()}

