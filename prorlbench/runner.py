"""The runner: a grid of (method, dataset, seed) cells, computed, stored and resumable.

``run(cfg)`` does, for each dataset:

1. load the data (``DatasetSpec.load``), train or load from the cache the training simulator and
   every eval simulator (``SimulatorSpec.build``), build the guidance cases
   (:func:`prorlbench.cases.build_cases`; datasets that ship cases keep theirs);
2. for each (method, seed) cell not already done: seed ``random``, ``numpy`` and ``torch`` with the
   cell's seed, build the method from its config (profile applied), ``fit`` it with a
   :class:`~prorlbench.api.FitContext`, ``generate`` ``max(ks)`` candidate paths per test case,
   score them with :func:`prorlbench.evaluate.evaluate_paths` against each eval simulator, and
   write the cell's files (status last, see :mod:`prorlbench.results`);
3. merge the cells into ``cases.csv.gz``, ``cells.csv``, ``train_log.csv`` and build the report.

Seeds. The run seed of a cell seeds only the method (its initialisation, sampling, and the
backbones it asks for). The data split, the case construction and the simulators depend only on
the dataset, ``[cases]`` and simulator configs and ``simulator_seed``, so all seeds of a method
see the same cases and the spread over seeds is the method's own. A backbone built with
``ctx.make_backbone(kind, seed)`` is a separate model of that simulator kind, trained with seed
``1000 + seed`` through the same cache (never the simulator object, never its seed).

Reliability. A cell that raises, or whose per-case metrics or logged training values are NaN or
infinite, is stored as failed with a one-line reason (traceback in run.log) and the grid goes on.
A :class:`~prorlbench.errors.UserError` from loading data or resolving configs aborts the run
(what is already stored stays). A cell whose status file says ``ok`` with the same configuration
fingerprint is skipped unless ``force``; so re-running an interrupted command resumes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .api import CaseSplits, FitContext, Interactions, SequenceModel, SimulatorInfo
from .config import build_config, to_dict
from .errors import ConfigError, UnknownNameError, UserError
from .executors import CellJob, make_executor
from .logs import CellTrainLogger, NonFiniteError, run_log
from .variants import add_variants
from .plugins import Registry, load_registry
from .results import CASE_COLUMNS, CellStatus, RunFolder, cell_name
from .runconfig import (NOT_WRITTEN, PLUGIN_TABLES, RUN_KEYS, RunConfig, Table, default_cache_dir,
                        out_dir, write_toml)

log = logging.getLogger("prorlbench")

BACKBONE_SEED_OFFSET = 1000
"""``make_backbone(kind, seed)`` trains with seed ``BACKBONE_SEED_OFFSET + seed``."""
PROFILES = ("quick", "paper", "official")
STYLES = ("default", "paper")


# --------------------------------------------------------------------------------------------
# Resolution: every name and config checked before anything is computed
# --------------------------------------------------------------------------------------------


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
        add_variants(self.registry, self.cfg.variants, self.cfg.plugin_tables)
        self.metrics = [self.registry.metric(n) for n in state["metrics"]]

    def config_document(self) -> dict[str, Any]:
        """The content of ``<out>/config.toml``: the resolved run and every plugin config used."""
        run = {k: getattr(self.cfg, k) for k in RUN_KEYS if k not in NOT_WRITTEN}
        run["eval_simulators"] = list(self.eval_simulators)
        run["metrics"] = [m.name for m in self.metrics]
        run["plugins_dirs"] = [str(Path(p).resolve()) for p in self.cfg.plugins_dirs]
        doc: dict[str, Any] = Table(run=Table(run))
        doc["datasets"] = Table({n: Table(to_dict(c)) for n, c in self.dataset_cfgs.items()})
        doc["simulators"] = Table({n: Table(to_dict(c)) for n, c in self.simulator_cfgs.items()})
        doc["methods"] = Table({n: Table(to_dict(c)) for n, c in self.method_cfgs.items()})
        doc["cases"] = Table(to_dict(self.cases_cfg))
        used = {n: v for n, v in self.cfg.variants.items() if n in self.method_cfgs}
        if used:  # [methods.NAME] above holds the full config; the variant names its base
            doc["variants"] = Table({n: Table(method=v["method"]) for n, v in used.items()})
        return doc

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
        if job.method in self.cfg.variants:
            key["variant_of"] = self.cfg.variants[job.method]["method"]
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
    from .cases import CaseConfig

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
    make_executor(cfg.executor)  # unknown name -> UserError now, not after the data is loaded
    variant_tables = add_variants(registry, cfg.variants, cfg.plugin_tables, cfg.source)
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

    def build(kind: str, name: str, cls: type) -> Any:
        return build_config(cls, cfg.table(kind, name), where=cfg.where(f"{kind}.{name}"),
                            profile=cfg.profile)

    dataset_cfgs = {n: build("datasets", n, registry.dataset(n).config_cls) for n in cfg.datasets}
    sims = list(dict.fromkeys([cfg.simulator, *eval_sims]))
    simulator_cfgs = {n: build("simulators", n, registry.simulator(n).config_cls) for n in sims}
    variant_cfgs = {n: build_config(registry.method(n).config_cls, t, where=cfg.where(f"variants.{n}"),
                                    profile=cfg.profile) for n, t in variant_tables.items()}  # all checked
    method_cfgs = {n: variant_cfgs[n] if n in variant_cfgs else build("methods", n, registry.method(n).config_cls)
                   for n in cfg.methods}
    cases_cfg = build_config(CaseConfig, cfg.cases, where=cfg.where("cases"), profile=cfg.profile)
    if not registry.simulator(cfg.simulator).learned:
        log.warning("training simulator '%s' is a ground-truth simulator: methods will be trained "
                    "against the true user model", cfg.simulator)
    device = resolve_device(cfg.device)
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    return Resolved(cfg=cfg, registry=registry, out=out_dir(cfg), cache_dir=cache, device=device,
                    dataset_cfgs=dataset_cfgs, simulator_cfgs=simulator_cfgs, method_cfgs=method_cfgs,
                    cases_cfg=cases_cfg, eval_simulators=eval_sims, metrics=metrics)


def expand_grid(methods: Sequence[str], datasets: Sequence[str], seeds: Sequence[int]) -> list[CellJob]:
    """All cells, dataset-major then method then seed (the order they are computed in)."""
    return [CellJob(m, d, int(s)) for d in datasets for m in methods for s in seeds]


# --------------------------------------------------------------------------------------------
# Per-dataset preparation
# --------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's global RNG states after the block."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@dataclass
class DatasetContext:
    """One dataset, ready for its cells: data, simulators and cases."""

    name: str
    data: Interactions
    cases: CaseSplits
    simulator: SequenceModel
    simulator_info: SimulatorInfo
    eval_models: dict[str, SequenceModel]
    cache_dir: Path
    max_path_len: int
    metrics: list[str] = field(default_factory=list)
    """Names of the run's metrics this dataset supports (attribute metrics need item attributes)."""
    backbones: dict[tuple[str, int], SequenceModel] = field(default_factory=dict)


def _cache_folder(res: Resolved, dataset: str) -> Path:
    """Per-dataset cache folder: a different dataset config never shares cached models."""
    blob = json.dumps({"dataset": dataset, "config": to_dict(res.dataset_cfgs[dataset]),
                       "data_dir": res.cfg.data_dir}, sort_keys=True, default=str)
    return res.cache_dir / f"{dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def _build_simulator(res: Resolved, name: str, data: Interactions, seed: int, cache: Path,
                     progress: bool) -> tuple[SequenceModel, SimulatorInfo]:
    spec = res.registry.simulator(name)
    cache.mkdir(parents=True, exist_ok=True)
    model, info = spec.build(res.simulator_cfgs.get(name) or build_config(spec.config_cls, {}, profile=res.cfg.profile),
                             data, device=res.device, seed=seed, cache_dir=cache, progress=progress)
    return model, info


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def prepare_dataset(res: Resolved, name: str, progress: bool) -> DatasetContext:
    """Load a dataset, its simulators and its cases (seeded by configs only, never by run seeds)."""
    from .cases import build_cases

    spec = res.registry.dataset(name)
    data_dir = Path(res.cfg.data_dir).expanduser() if res.cfg.data_dir else None
    # Datasets that need files take their folder from --data-dir or their own `data_dir` key; the
    # loader says which is missing (one line, naming the dataset).
    seed_everything(res.cfg.simulator_seed)
    t0 = time.perf_counter()
    data = spec.load(res.dataset_cfgs[name], data_dir)
    n_seq = {k: len(v) for k, v in data.sequences.items()}
    log.info("dataset %s: %d items, users per split %s (%.1fs)", name, data.n_items, n_seq,
             time.perf_counter() - t0)
    for note in data.notes:
        log.info("dataset %s: %s", name, note)
    cache = _cache_folder(res, name)
    seed_everything(res.cfg.simulator_seed)
    sim, info = _build_simulator(res, res.cfg.simulator, data, res.cfg.simulator_seed, cache, progress)
    log.info("simulator %s on %s: HR@10 %s NDCG@10 %s (%s)", info.name, name, _fmt(info.hr10),
             _fmt(info.ndcg10), "trained" if info.trained else f"cached {info.cache_path or ''}".strip())
    eval_models: dict[str, SequenceModel] = {}
    for ev in res.eval_simulators:
        if ev == res.cfg.simulator:
            eval_models[ev] = sim
            continue
        seed_everything(res.cfg.simulator_seed)
        try:
            model, einfo = _build_simulator(res, ev, data, res.cfg.simulator_seed, cache, progress)
        except UserError as exc:
            # A ground-truth simulator (oracle) exists only for some datasets: evaluating a grid of
            # several datasets against it skips the others instead of aborting the whole run.
            if res.registry.simulator(ev).learned:
                raise
            log.warning("eval simulator %s skipped on %s: %s", ev, name, exc)
            continue
        log.info("eval simulator %s on %s: HR@10 %s NDCG@10 %s", einfo.name, name, _fmt(einfo.hr10),
                 _fmt(einfo.ndcg10))
        eval_models[ev] = model
    seed_everything(res.cfg.simulator_seed)
    cases = build_cases(data, sim, res.cases_cfg, device=res.device, progress=progress)
    log.info("cases on %s: train %d, valid %d, test %d", name, len(cases.train), len(cases.valid),
             len(cases.test))
    if not cases.test:
        raise UserError(f"dataset '{name}': no test cases could be built; lower [cases] "
                        "min_target_rank or n_history, or use more users")
    metrics = [m.name for m in res.metrics if not (m.needs_attributes and data.item_attributes is None)]
    dropped = [m.name for m in res.metrics if m.name not in metrics]
    if dropped:
        if not metrics:
            raise UserError(f"dataset '{name}' has no item attributes, which metric(s) "
                            f"{', '.join(dropped)} need; choose other --metrics")
        log.warning("dataset %s has no item attributes: metric(s) %s not computed", name, ", ".join(dropped))
    return DatasetContext(name=name, data=data, cases=cases, simulator=sim, simulator_info=info,
                          eval_models=eval_models, cache_dir=cache,
                          max_path_len=int(res.cases_cfg.max_path_len), metrics=metrics)


def make_backbone_factory(res: Resolved, dctx: DatasetContext, progress: bool) -> Callable[[str, int], SequenceModel]:
    """``make_backbone(kind, seed)`` for :class:`FitContext` (see the module docstring)."""

    def make_backbone(kind: str, seed: int) -> SequenceModel:
        spec = res.registry.simulator(kind)
        if not spec.learned:
            raise ValueError(f"backbone kind '{kind}' is a ground-truth simulator; use a learned one "
                             f"({', '.join(n for n in res.registry.names('simulators') if res.registry.simulator(n).learned)})")
        bseed = BACKBONE_SEED_OFFSET + int(seed)
        if bseed == res.cfg.simulator_seed:
            bseed += 1_000_000
        key = (kind, bseed)
        if key not in dctx.backbones:
            cfg = res.simulator_cfgs.get(kind) or build_config(
                spec.config_cls, res.cfg.table("simulators", kind),
                where=res.cfg.where(f"simulators.{kind}"), profile=res.cfg.profile)
            with preserved_rng():  # building a backbone must not shift the method's RNG streams
                model, info = spec.build(cfg, dctx.data, device=res.device, seed=bseed,
                                         cache_dir=dctx.cache_dir, progress=progress)
            log.info("backbone %s (seed %d) on %s: HR@10 %s NDCG@10 %s", kind, bseed, dctx.name,
                     _fmt(info.hr10), _fmt(info.ndcg10))
            dctx.backbones[key] = model
        return dctx.backbones[key]

    return make_backbone


# --------------------------------------------------------------------------------------------
# One cell
# --------------------------------------------------------------------------------------------


class CellFailure(Exception):
    """A method broke the output contract (wrong number of candidate lists, ...)."""


@dataclass
class CellWork:
    """Computes one cell of a prepared dataset and writes its files (picklable state only
    besides the dataset context, so a remote executor can ship it)."""

    res: Resolved
    dctx: DatasetContext
    folder: RunFolder
    progress: bool

    def __call__(self, job: CellJob) -> CellStatus:
        return run_cell(self.res, self.dctx, job, self.folder, progress=self.progress)


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def run_cell(res: Resolved, dctx: DatasetContext, job: CellJob, folder: RunFolder, *,
             progress: bool = False) -> CellStatus:
    """Fit, generate, evaluate and store one cell; failures are contained in the status."""
    from .evaluate import evaluate_paths

    name = job.name
    folder.clear_cell(name)
    status = CellStatus(method=job.method, dataset=job.dataset, seed=job.seed, simulator=res.cfg.simulator,
                        eval_simulator=",".join(res.eval_simulators), status="failed",
                        fingerprint=res.fingerprint(job))
    logger = CellTrainLogger(folder.cell_train_log(name), job.method, job.dataset, job.seed)
    t0 = time.perf_counter()
    if res.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(res.device)
    try:
        seed_everything(job.seed)
        spec = res.registry.method(job.method)
        method = spec.factory(res.method_cfgs[job.method])
        ctx = FitContext(
            data=dctx.data, cases=dctx.cases, simulator=dctx.simulator, simulator_name=res.cfg.simulator,
            device=res.device, seed=job.seed, cache_dir=dctx.cache_dir, max_path_len=dctx.max_path_len,
            logger=logger, progress=progress, make_backbone=make_backbone_factory(res, dctx, progress),
        )
        method.fit(ctx)
        test = dctx.cases.test
        candidates = method.generate(test, res.k_max)
        if len(candidates) != len(test):
            raise CellFailure(f"generate returned {len(candidates)} candidate lists for {len(test)} cases")
        candidates = [[tuple(int(i) for i in p) for p in list(c)[: res.k_max]] for c in candidates]
        too_long = max((len(p) for c in candidates for p in c), default=0)
        if too_long > dctx.max_path_len:
            raise CellFailure(f"generate returned a path of {too_long} items; max_path_len is {dctx.max_path_len}")
        frames = []
        for ev_name, model in dctx.eval_models.items():
            metrics = [res.registry.metric(n) for n in dctx.metrics]
            df = evaluate_paths(model, test, candidates, metrics, ks=tuple(res.cfg.ks),
                                item_attributes=dctx.data.item_attributes,
                                batch_size=res.cfg.eval_batch_size, device=res.device)
            df = df.assign(method=job.method, dataset=job.dataset, simulator=ev_name, seed=job.seed)
            frames.append(df)
        table = pd.concat(frames, ignore_index=True)[CASE_COLUMNS]
        values = pd.to_numeric(table["value"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            rows = table[bad]
            which = ", ".join(sorted({f"{r.metric}@{r.k} ({r.simulator})" for r in rows.itertuples()}))
            raise NonFiniteError(f"{int(bad.sum())} non-finite metric value(s): {which}")
        folder.write_cell_cases(name, table)
        status.status = "ok"
        status.n_cases = len(test)
    except KeyboardInterrupt:
        logger.close()
        raise
    except Exception as exc:  # containment: the grid goes on
        status.error = _one_line(exc)
        log.error("cell %s failed: %s", name, status.error)
        _write_traceback(folder, name)
    finally:
        logger.close()
        if res.device.type == "cuda":
            status.peak_gpu_mib = round(torch.cuda.max_memory_allocated(res.device) / 2**20, 1)
            torch.cuda.empty_cache()
    status.seconds = round(time.perf_counter() - t0, 3)
    folder.write_status(name, status)
    if status.ok:
        gpu = f", peak GPU memory {status.peak_gpu_mib:.0f} MiB" if status.peak_gpu_mib is not None else ""
        log.info("cell %s ok (%d cases, %.1fs%s)", name, status.n_cases, status.seconds, gpu)
    return status


def _write_traceback(folder: RunFolder, name: str) -> None:
    """The full traceback goes to run.log (file only, not the console)."""
    for h in log.handlers:
        if isinstance(h, logging.FileHandler):
            try:
                h.stream.write(traceback.format_exc())
                h.flush()
            except (OSError, ValueError):
                pass


# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What :func:`run` did."""

    out: Path
    cells: list[CellStatus]
    summary: str | None = None
    """The Markdown summary table from :func:`prorlbench.report.write_report`."""
    report_error: str | None = None

    @property
    def failed(self) -> list[CellStatus]:
        return [c for c in self.cells if not c.ok]

    @property
    def skipped(self) -> list[CellStatus]:
        return [c for c in self.cells if c.skipped]

    @property
    def computed(self) -> list[CellStatus]:
        return [c for c in self.cells if not c.skipped]


def _done(folder: RunFolder, res: Resolved, job: CellJob) -> CellStatus | None:
    if res.cfg.force:
        return None
    st = folder.read_status(job.name)
    if st is None or not st.ok or st.fingerprint != res.fingerprint(job):
        return None
    if not folder.cell_cases(job.name).exists():
        return None
    st.skipped = True
    return st


def run(cfg: RunConfig, registry: Registry | None = None, *, progress: bool | None = None,
        report: bool = True) -> RunResult:
    """Run (or resume) the grid of ``cfg`` and write the run folder; see the module docstring.

    Raises :class:`UserError` for bad input and lets ``KeyboardInterrupt`` through (finished
    cells stay on disk). Never prints.
    """
    if registry is None:
        registry = load_registry(cfg.plugins_dirs)
    progress = cfg.progress if progress is None else progress
    res = resolve(cfg, registry)
    folder = RunFolder(res.out)
    try:
        folder.make()
    except OSError as exc:
        raise UserError(f"cannot create output folder {res.out}: {exc.strerror}") from None
    executor = make_executor(cfg.executor)
    from .results import atomic_write_text

    atomic_write_text(folder.config, write_toml(res.config_document()))
    jobs = expand_grid(cfg.methods, cfg.datasets, cfg.seeds)
    statuses: dict[str, CellStatus] = {}
    with run_log(folder.log):
        log.info("run %s: %d cells (%s x %s x seeds %s), device %s, executor %s", res.out, len(jobs),
                 ",".join(cfg.methods), ",".join(cfg.datasets), ",".join(map(str, cfg.seeds)),
                 res.device, executor.name)
        bar = tqdm(total=len(jobs), desc="cells", unit="cell", disable=not progress, leave=False)
        try:
            for dataset in cfg.datasets:
                ds_jobs = [j for j in jobs if j.dataset == dataset]
                todo = []
                for j in ds_jobs:
                    done = _done(folder, res, j)
                    if done is not None:
                        statuses[j.name] = done
                        log.info("cell %s already done; skipped (use --force to recompute)", j.name)
                        bar.update(1)
                    else:
                        todo.append(j)
                if not todo:
                    continue
                try:
                    dctx = prepare_dataset(res, dataset, progress)
                except (UserError, KeyboardInterrupt):
                    raise
                except Exception as exc:  # e.g. a simulator crashed: this dataset's cells fail
                    msg = f"preparing dataset '{dataset}' failed: {_one_line(exc)}"
                    log.error(msg)
                    _write_traceback(folder, dataset)
                    for j in todo:
                        st = CellStatus(method=j.method, dataset=j.dataset, seed=j.seed,
                                        simulator=cfg.simulator, eval_simulator=",".join(res.eval_simulators),
                                        status="failed", error=msg, fingerprint=res.fingerprint(j))
                        folder.clear_cell(j.name)
                        folder.write_status(j.name, st)
                        statuses[j.name] = st
                        bar.update(1)
                    continue
                work = CellWork(res, dctx, folder, progress)
                for st in executor.run(todo, work):
                    statuses[cell_name(st.method, st.dataset, st.seed)] = st
                    bar.set_postfix_str(f"{st.method}/{st.dataset}/s{st.seed} {st.status}")
                    bar.update(1)
        finally:
            bar.close()
        cells = [statuses[j.name] for j in jobs]
        folder.merge(cells)
        result = RunResult(out=res.out, cells=cells)
        n_fail = len(result.failed)
        log.info("run finished: %d cells, %d computed, %d skipped, %d failed", len(cells),
                 len(result.computed), len(result.skipped), n_fail)
        if report:
            try:
                result.summary = build_report(res.out, style=cfg.style, registry=registry)
            except UserError as exc:
                result.report_error = str(exc)
                log.error("report: %s", exc)
            except Exception as exc:
                result.report_error = _one_line(exc)
                log.error("report failed: %s", result.report_error)
                _write_traceback(folder, "report")
    return result


def build_report(run_dir: Path, *, style: str = "default", metrics: Sequence[str] | None = None,
                 ks: Sequence[int] | None = None, registry: Registry | None = None) -> str:
    """:func:`prorlbench.report.write_report`, with a clear error while it is unavailable."""
    try:
        from .report import write_report
    except ImportError as exc:
        raise UserError(f"the report module is not available ({exc}); the per-case results are in "
                        f"{run_dir / 'cases.csv.gz'}") from None
    return write_report(Path(run_dir), style=style, metrics=list(metrics) if metrics else None,
                        ks=list(ks) if ks else None, registry=registry)
