"""The public API a plugin is written against: frozen specs and Protocols.

Everything here is small and typed on purpose; read it top to bottom before writing a plugin.

Conventions used everywhere in prorlbench:

* Items are dense integer ids ``0 .. n_items - 1``. Raw ids from a source file are mapped by the
  dataset plugin (``Interactions.item_ids`` keeps the raw id of each dense id).
* A *path* is a tuple of item ids shown before the target, without the target itself.
  ``len(path) <= max_path_len``; a method may stop early (empty path allowed). The harness
  fails a cell whose path holds the target, an id outside ``0 .. n_items - 1`` or a non-integer
  (:mod:`prorlbench.engine.pathrules`); an item of the history is allowed and counted by ``invalid``.
* A *case* is ``(history, target[, reference path])`` (SPEC section 1).
* Tensors of item ids use ``pad_id == n_items`` for padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import torch

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One guidance case (SPEC section 1)."""

    history: tuple[int, ...]
    """The user's last ``n_history`` items, oldest first."""
    target: int
    """The item the path should lead the user to."""
    reference: tuple[int, ...] = ()
    """P*: the items the real user consumed after the history, ending with ``target``
    (empty when the source has none). A method's test cases never carry it (it is the answer):
    the harness hands them over blind (:mod:`prorlbench.engine.pathrules`)."""
    user: str = ""
    """Raw id of the user the case was built from (for paired tests and debugging)."""
    case_id: str = ""
    """Stable id, unique within a split (e.g. ``"u12:3"``)."""


@dataclass(frozen=True)
class Interactions:
    """What a dataset plugin loads: user sequences with a user-disjoint split (SPEC section 4).

    ``sequences[split]`` holds one item sequence per user, sorted by time. The simulator is trained
    on ``sequences["train"]`` only; ``sequences["valid"]`` measures its HR@10 / NDCG@10.
    Datasets that ship ready-made cases (``prorl-json``) fill ``cases`` and the harness uses them
    as they are; otherwise the harness builds cases with :func:`prorlbench.seq.cases.build_cases`.
    """

    name: str
    n_items: int
    sequences: dict[str, list[tuple[int, ...]]]
    """Keys ``"train"``, ``"valid"``, ``"test"``; each a list of per-user item sequences."""
    users: dict[str, list[str]] = field(default_factory=dict)
    """Raw user ids, parallel to ``sequences`` (optional)."""
    item_ids: tuple[str, ...] = ()
    """Raw id of each dense item id (optional; length ``n_items`` when given)."""
    item_attributes: tuple[frozenset[int], ...] | None = None
    """Attribute (genre) ids of each item, or ``None`` when the source has none."""
    item_names: tuple[str, ...] = ()
    """Human-readable titles (optional)."""
    item_codes: tuple[tuple[int, ...], ...] | None = None
    """Semantic IDs shipped with the data (optional): one tuple of codebook tokens per dense item,
    unique per item (``prorl-json`` loads ProRL's ``*.sem_ids``). The ``semantic-id`` policy uses
    them; without them it builds codes itself (:mod:`prorlbench.rl.semantic_ids`)."""
    cases: dict[str, list[Case]] | None = None
    """Ready-made cases per split (``"train"``, ``"valid"``, ``"test"``), or ``None``."""
    world: Any = None
    """The ground-truth generative process, for synthetic data only (used by ``oracle``)."""
    notes: tuple[str, ...] = ()
    """Log lines the loader wants the user to read (e.g. 'training split carved out of val')."""

    def popularity(self) -> torch.Tensor:
        """Item counts over the training sequences, shape ``[n_items]`` (float)."""
        counts = torch.zeros(self.n_items)
        for seq in self.sequences.get("train", []):
            if seq:
                counts += torch.bincount(torch.tensor(seq), minlength=self.n_items).float()
        return counts


@dataclass(frozen=True)
class CaseSplits:
    """The guidance cases of one dataset."""

    train: Sequence[Case]
    valid: Sequence[Case]
    test: Sequence[Case]
    """A method gets tuples of its own copies, the test cases without ``reference``."""

    def __getitem__(self, split: str) -> Sequence[Case]:
        return {"train": self.train, "valid": self.valid, "test": self.test}[split]


# --------------------------------------------------------------------------------------------
# Simulators
# --------------------------------------------------------------------------------------------


@runtime_checkable
class SequenceModel(Protocol):
    """A causal next-item model: the user simulator (SPEC section 2), also used as a backbone.

    Implementations are ``torch.nn.Module`` s. One call of :meth:`encode` over a batch of
    sequences yields the user state after *every* prefix, which is what makes path scoring cost
    one forward pass per path (see :mod:`prorlbench.seq.scoring`).
    """

    n_items: int
    max_seq_len: int

    def encode(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """States after each prefix.

        ``seqs``: ``[B, T]`` item ids, right-padded with ``n_items``; ``lengths``: ``[B]``.
        Returns ``[B, T, d]``: row ``t`` is u(S) for ``S = seqs[:, : t + 1]``. Rows at padded
        positions are unspecified. ``T <= max_seq_len``.
        """
        ...

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """``score(S)``: next-item logits over the catalog, ``[..., d] -> [..., n_items]``."""
        ...

    def accept_logit(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``u(S) . e_i`` for the given items; ``accept = sigmoid`` of it. Shapes broadcast:
        ``states [..., d]``, ``items [...]`` -> ``[...]``."""
        ...

    def item_embeddings(self) -> torch.Tensor:
        """The output item embedding matrix ``[n_items, d]`` (``logits(s) == s @ E.T`` up to a
        per-item bias); baselines use it for item-to-item similarity."""
        ...

    # Optional, not part of the protocol: ``encode_shared_prefix(seqs, lengths, shared, group,
    # first)``, equal to ``encode(seqs, lengths)`` bit for bit for rows that come in groups with
    # equal first ``shared`` items, doing those items' per-token work once per group. The scorer
    # uses it on CPU when a model has it (:mod:`prorlbench.seq.rowshare`; SASRec has it).


@dataclass(frozen=True)
class SimulatorInfo:
    """What the harness knows about a trained simulator (logged and stored with results)."""

    name: str
    hr10: float | None = None
    ndcg10: float | None = None
    cache_path: str | None = None
    trained: bool = False
    """``True`` when this call trained it, ``False`` when it came from the cache."""
    popularity_hr10: float | None = None
    """HR@10 of the popularity ranking on the same validation users: a learned simulator below it
    fails its dataset's cells unless ``allow_weak_simulator`` (:mod:`prorlbench.seq.strength`)."""


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


class TrainLogger(Protocol):
    """Per-step training diagnostics sink (written to ``train_log.csv``)."""

    def log(self, step: int, **values: float) -> None: ...


@dataclass
class FitContext:
    """Everything a method may use while fitting. Not frozen: it carries live objects."""

    data: Interactions
    cases: CaseSplits
    simulator: SequenceModel
    """The *training* simulator: methods may query it for rewards, never the eval simulator."""
    simulator_name: str
    device: torch.device
    seed: int
    cache_dir: Path
    """A folder for per-dataset caches shared between cells (SFT checkpoints, backbones)."""
    max_path_len: int
    logger: TrainLogger
    progress: bool = True
    make_backbone: Callable[[str, int], SequenceModel] | None = None
    """``make_backbone(kind, seed)``: a freshly trained (cached) sequence model of the given kind
    (``"sasrec"``, ``"gru4rec"``) on the training split: baselines use it, never the simulator."""
    checkpoint: Path | None = None
    """A file of this cell's own (``cells/<cell>.resume.pt``) where a method may keep its
    mid-training state, written atomically, so that a killed cell resumes on the next run; the
    harness deletes it once the cell is stored, and at the start of ``--force``. None: nowhere
    (tests, benchmarks). The RL family uses it (:mod:`prorlbench.rl.checkpoint`)."""
    checkpoint_key: str = ""
    """The cell's training fingerprint: store it with the state and resume only from a file that
    holds the same key (another config, data, seed or simulator starts afresh)."""


@runtime_checkable
class Method(Protocol):
    """A proactive recommender. Constructed from its config dataclass by its spec's factory."""

    def fit(self, ctx: FitContext) -> None:
        """Train on ``ctx.cases.train`` (select on ``ctx.cases.valid``)."""
        ...

    def generate(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        """Return, for each case, ``k`` candidate paths (best first; fewer only if the method
        cannot produce more). Deterministic for the seed given to ``fit``."""
        ...


# --------------------------------------------------------------------------------------------
# Specs (what plugins register)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset plugin: ``load(config, data_dir)`` returns :class:`Interactions`."""

    name: str
    summary: str
    load: Callable[[Any, Path | None], Interactions]
    config_cls: type
    """A dataclass with documented fields; TOML ``[datasets.NAME]`` sets them."""
    needs_data_dir: bool = False


@dataclass(frozen=True)
class SimulatorSpec:
    """A simulator plugin.

    ``build(config, data, *, device, seed, cache_dir, progress) -> (model, info)`` trains (or
    loads from ``cache_dir``) a :class:`SequenceModel` on ``data.sequences["train"]`` only, in
    eval mode with gradients off. ``seed`` seeds its training (the harness passes the simulator
    seed, or another seed when it trains a method's own backbone of the same kind).
    """

    name: str
    summary: str
    build: Callable[..., tuple[SequenceModel, SimulatorInfo]]
    config_cls: type
    learned: bool = True
    """``False`` for ground-truth simulators (``oracle``) that only exist for some datasets."""


@dataclass(frozen=True)
class MethodSpec:
    """A method plugin: ``factory(config) -> Method``."""

    name: str
    summary: str
    factory: Callable[[Any], Method]
    config_cls: type
    family: str = "baseline"
    """Free-form grouping used in reports (``"baseline"``, ``"rl"``, ...)."""
    display: str = ""
    """The method's name in report tables (empty: ``name``)."""


@dataclass(frozen=True)
class MetricSpec:
    """A per-path metric (SPEC section 3).

    ``compute(scores, paths_info) -> Tensor[N]`` gets a :class:`prorlbench.seq.scoring.PathScores`
    for N paths and returns one value per path. ``@K`` takes the best of the first K candidates
    of a case: ``max`` when ``higher_is_better``, ``min`` when it is ``False``; when it is ``None``
    (descriptive metrics such as Len) ``@K`` is the value of the candidate that is best by the
    headline metric ``IoI``.
    """

    name: str
    summary: str
    compute: Callable[..., torch.Tensor]
    higher_is_better: bool | None = True
    needs_attributes: bool = False
    display: str = ""
    """The metric's name in report tables and plots, e.g. ``"SR@10"`` (empty: ``name``)."""
    decimals: int = 3
    """Printed decimals of its means and stds (Markdown and LaTeX alike)."""
    headline: bool = False
    """Shown in the report's ``metrics.png``."""
    needs_simulator: bool = False
    """``compute(scores, context)`` also gets a :class:`MetricContext` (the evaluating simulator
    and the batch's cases), e.g. to score reference paths of its own."""
    default: bool = True
    """Computed when a run names no metrics. ``False``: only when named (``--metrics``), for
    metrics that cost extra simulator passes (``ioi-lift``)."""


@dataclass(frozen=True)
class MetricContext:
    """What a metric with ``needs_simulator`` gets besides the :class:`~prorlbench.seq.scoring.PathScores`:
    row ``i`` of the scores is a path for ``cases[i]``, scored by ``simulator``. ``memo`` is shared
    by the metrics of one batch (e.g. ``ioi-lift`` and ``ior-lift`` score the same random paths once)."""

    simulator: SequenceModel
    cases: Sequence[Case]
    memo: dict[Any, Any] = field(default_factory=dict)
    cache_dir: Path | None = None
    """A folder for values worth keeping across cells of the dataset (None: keep nothing)."""
    simulator_key: str = ""
    """A fingerprint of the evaluating simulator's weights ("" when unknown: cache nothing)."""


@dataclass(frozen=True)
class EstimatorSpec:
    """An advantage estimator for the RL family (SPEC section 5): registering one adds a method.

    ``estimate(batch) -> Tensor[B, G, P]`` with ``P = max_path_len``: the weight of every position
    (items, then the STOP action at position ``n_items`` when the path stopped early; a path of
    ``max_path_len`` items has no STOP action) of every sampled path; the batch is a
    :class:`prorlbench.rl.estimators.AdvantageBatch` (see ``docs/rl.md``).
    ``centered`` says whether rewards are centred (SRC) or only scaled before it is called.
    """

    name: str
    summary: str
    estimate: Callable[..., torch.Tensor]
    centered: bool = True


@dataclass(frozen=True)
class ExecutorSpec:
    """An executor plugin (how the cells of a dataset are run, e.g. on Slurm or Dask).

    ``factory() -> Executor``: an object with a ``name`` and
    ``run(jobs, work, where) -> Iterator[CellStatus]`` (the protocol of
    :mod:`prorlbench.executors.base`); chosen with ``--executor NAME``.
    """

    name: str
    summary: str
    factory: Callable[[], Any]
