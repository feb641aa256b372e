"""Preparing a dataset for its cells: data, simulators, cases and on-demand backbones.

Everything here is seeded by configs only (``simulator_seed``), never by a cell's run seed, so
all seeds of a method see the same cases and simulators. A backbone built with
``ctx.make_backbone(kind, seed)`` is a separate model of that simulator kind, trained with seed
``BACKBONE_SEED_OFFSET + seed`` through the same cache (never the simulator object, never its seed).
A learned simulator or backbone below popularity on validation HR@10 is refused
(:mod:`prorlbench.seq.strength`): the simulator fails the dataset's cells, a backbone its own cell.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..api import CaseSplits, Interactions, SequenceModel, SimulatorInfo
from ..config import to_dict
from ..errors import UserError
from ..seq.cases import build_cases
from .resolve import Resolved
from .seeding import preserved_rng, seed_everything

log = logging.getLogger("prorlbench")

BACKBONE_SEED_OFFSET = 1000
"""``make_backbone(kind, seed)`` trains with seed ``BACKBONE_SEED_OFFSET + seed``."""


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
    checks: dict[str, str] = field(default_factory=dict)
    """:func:`prorlbench.engine.guards.model_check` of the simulators when prepared; compared before
    every cell is scored."""
    weak: list[str] = field(default_factory=list)
    """Why a simulator of this dataset is below popularity, used because ``allow_weak_simulator``
    (:mod:`prorlbench.seq.strength`); every cell records it."""
    weak_backbones: dict[tuple[str, int], str] = field(default_factory=dict)
    """The same for the backbones built so far, by (kind, training seed)."""


def _cache_folder(res: Resolved, dataset: str) -> Path:
    """Per-dataset cache folder: a different dataset config never shares cached models."""
    blob = json.dumps({"dataset": dataset, "config": to_dict(res.dataset_cfgs[dataset]),
                       "inputs": res.input_fingerprint(dataset)}, sort_keys=True, default=str)
    return res.cache_dir / f"{dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def _build_simulator(res: Resolved, name: str, data: Interactions, seed: int, cache: Path,
                     progress: bool) -> tuple[SequenceModel, SimulatorInfo]:
    spec = res.registry.simulator(name)
    cache.mkdir(parents=True, exist_ok=True)
    return spec.build(res.simulator_config(name), data, device=res.device, seed=seed, cache_dir=cache,
                      progress=progress)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def prepare_dataset(res: Resolved, name: str, progress: bool, *, scoring_only: bool = False) -> DatasetContext:
    """Load a dataset, its simulators and its cases (seeded by configs only, never by run seeds).

    Ground-truth eval simulators (``oracle``) are built first, so one that does not exist for
    this dataset is known before anything trains. ``scoring_only`` (re-scoring stored paths)
    builds only the eval simulators and no cases.
    """
    from .guards import model_check

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
    eval_models: dict[str, SequenceModel] = {}
    truth = [ev for ev in res.eval_simulators if not res.registry.simulator(ev).learned]
    for ev in truth:
        seed_everything(res.cfg.simulator_seed)
        try:
            eval_models[ev], _ = _build_simulator(res, ev, data, res.cfg.simulator_seed, cache, progress)
        except UserError as exc:
            # A ground-truth simulator (oracle) exists only for some datasets: evaluating a grid of
            # several datasets against it skips the others instead of aborting the whole run.
            if len(truth) == len(res.eval_simulators):
                raise UserError(f"--eval-simulator {','.join(truth)}: {exc}; nothing was trained") from None
            log.warning("eval simulator %s skipped on %s: %s", ev, name, exc)
    sim: Any = None
    info = SimulatorInfo(name=res.cfg.simulator)
    weak: list[str] = []
    if not scoring_only or res.cfg.simulator in res.eval_simulators:
        seed_everything(res.cfg.simulator_seed)
        sim, info = _build_simulator(res, res.cfg.simulator, data, res.cfg.simulator_seed, cache, progress)
        info = _judge(res, f"simulator {res.cfg.simulator}", name, data, info, weak)
        # A simulator that went through the model cache has logged its training or cache load
        # once already (seqtrain.train_or_load); this line then goes to debug only.
        log.log(logging.DEBUG if info.cache_path else logging.INFO,
                "simulator %s on %s: HR@10 %s NDCG@10 %s (%s)", info.name, name, _fmt(info.hr10),
                _fmt(info.ndcg10), "trained" if info.trained else f"cached {info.cache_path or ''}".strip())
    for ev in res.eval_simulators:
        if ev in truth:
            continue
        if ev == res.cfg.simulator:
            eval_models[ev] = sim
            continue
        seed_everything(res.cfg.simulator_seed)
        model, einfo = _build_simulator(res, ev, data, res.cfg.simulator_seed, cache, progress)
        einfo = _judge(res, f"eval simulator {ev}", name, data, einfo, weak)
        log.log(logging.DEBUG if einfo.cache_path else logging.INFO,
                "eval simulator %s on %s: HR@10 %s NDCG@10 %s", einfo.name, name, _fmt(einfo.hr10),
                 _fmt(einfo.ndcg10))
        eval_models[ev] = model
    eval_models = {ev: eval_models[ev] for ev in res.eval_simulators if ev in eval_models}  # run order
    if scoring_only:
        cases = CaseSplits([], [], [])
    else:
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
    checks = {"simulator": model_check(sim), **{f"eval:{n}": model_check(m) for n, m in eval_models.items()}}
    return DatasetContext(name=name, data=data, cases=cases, simulator=sim, simulator_info=info,
                          eval_models=eval_models, cache_dir=cache,
                          max_path_len=int(res.cases_cfg.max_path_len), metrics=metrics, checks=checks,
                          weak=weak)


def _judge(res: Resolved, role: str, dataset: str, data: Interactions, info: SimulatorInfo,
           weak: list[str]) -> SimulatorInfo:
    """:func:`prorlbench.seq.strength.check_strength` of a learned model (raises unless allowed; an
    allowed reason is appended to ``weak``). Returns ``info`` with popularity's HR@10 filled in."""
    from ..seq.strength import check_strength, with_popularity

    info = with_popularity(data, info)
    reason = check_strength(role, dataset, info, bool(res.cfg.allow_weak_simulator))
    if reason is not None:
        weak.append(reason)
    return info


def make_backbone_factory(res: Resolved, dctx: DatasetContext, progress: bool,
                          weak: list[str] | None = None) -> Callable[[str, int], SequenceModel]:
    """``make_backbone(kind, seed)`` for :class:`FitContext` (see the module docstring).

    A backbone below popularity raises :class:`~prorlbench.seq.strength.WeakSimulator` (its cell
    fails) unless ``allow_weak_simulator``; then its reason is appended to ``weak`` (the cell's
    status records it)."""

    from .guards import frozen_view

    views: dict[tuple[str, int], SequenceModel] = {}

    def make_backbone(kind: str, seed: int) -> SequenceModel:
        """The cell's own read-only copy of the shared backbone (memoised for the cell)."""
        if (kind, seed) not in views:
            views[(kind, seed)] = frozen_view(shared_backbone(kind, seed))
            reason = dctx.weak_backbones.get((kind, _backbone_seed(res, seed)))
            if reason is not None and weak is not None and reason not in weak:
                weak.append(reason)
        return views[(kind, seed)]

    def shared_backbone(kind: str, seed: int) -> SequenceModel:
        spec = res.registry.simulator(kind)
        if not spec.learned:
            raise ValueError(f"backbone kind '{kind}' is a ground-truth simulator; use a learned one "
                             f"({', '.join(n for n in res.registry.names('simulators') if res.registry.simulator(n).learned)})")
        bseed = _backbone_seed(res, seed)
        key = (kind, bseed)
        if key not in dctx.backbones:
            cfg = res.simulator_config(kind)
            with preserved_rng():  # building a backbone must not shift the method's RNG streams
                model, info = spec.build(cfg, dctx.data, device=res.device, seed=bseed,
                                         cache_dir=dctx.cache_dir, progress=progress)
            log.log(logging.DEBUG if info.cache_path else logging.INFO,
                    "backbone %s (seed %d) on %s: HR@10 %s NDCG@10 %s", kind, bseed, dctx.name,
                     _fmt(info.hr10), _fmt(info.ndcg10))
            weak_here: list[str] = []
            _judge(res, f"backbone {kind} (seed {bseed})", dctx.name, dctx.data, info, weak_here)
            if weak_here:
                dctx.weak_backbones[key] = weak_here[0]
            dctx.backbones[key] = model
        return dctx.backbones[key]

    return make_backbone


def _backbone_seed(res: Resolved, seed: int) -> int:
    """The training seed of ``make_backbone(kind, seed)``: never the simulator's own."""
    bseed = BACKBONE_SEED_OFFSET + int(seed)
    return bseed + 1_000_000 if bseed == res.cfg.simulator_seed else bseed
