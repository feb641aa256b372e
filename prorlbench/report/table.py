"""The table model: blocks (dataset, eval simulator) x columns (metric, K) x rows (methods).

:func:`build_blocks` turns a run's summary into :class:`Block` objects of :class:`Cell` objects;
:func:`prorlbench.report.stats.mark_ranks` marks them; each renderer (Markdown, LaTeX, CSV)
prints them. Numbers are printed with the metric's decimals (``metadata.json``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from .metadata import LEGACY, Metadata
from .reading import RunData, config_order, ordered


def fmt_number(x: float, metric: str, meta: Metadata = LEGACY) -> str:
    """``x`` with the metric's fixed decimals; ``-0.000`` is printed as ``0.000``."""
    s = f"{x:.{meta.decimals(metric)}f}"
    if s.startswith("-") and float(s) == 0.0:
        s = s[1:]
    return s


def rounded(x: float, metric: str, meta: Metadata = LEGACY) -> float:
    """The value as printed (what ranks and ties are decided on)."""
    return float(fmt_number(x, metric, meta))


def arrow(direction: bool | None, *, latex: bool) -> str:
    if direction is None:
        return ""
    if latex:
        return r"$\uparrow$" if direction else r"$\downarrow$"
    return "↑" if direction else "↓"


def tex_num(s: str) -> str:
    return "$-$" + s[1:] if s.startswith("-") else s


def seeds_note(blocks: list[Block]) -> str:
    ns = sorted({c.n_seeds for b in blocks for c in b.cells.values() if c.state == "ok"})
    if not ns:
        return "no results"
    if ns == [1]:
        return "mean of one seed"
    return f"mean ± std over {'/'.join(map(str, ns))} seeds"


@dataclass
class Cell:
    """One table cell: the numbers and the marks decided for it."""

    mean: float = math.nan
    std: float = math.nan
    n_seeds: int = 0
    n_cases: int = 0
    state: str = "missing"
    """``"ok"`` (numbers), ``"failed"`` (every cell of the row failed) or ``"missing"``."""
    rank: int | None = None
    p_value: float | None = None
    significant: bool = False
    runner_up: str = ""
    column_size: int = 0
    """Methods ranked in this cell's column: bold needs 2, an underlined second place 3."""

    @property
    def marked_best(self) -> bool:
        return self.rank == 1 and self.column_size >= 2

    @property
    def marked_second(self) -> bool:
        return self.rank == 2 and self.column_size >= 3

    def text(self, metric: str, *, latex: bool = False, meta: Metadata = LEGACY) -> str:
        if self.state == "failed":
            return "failed"
        if self.state != "ok" or math.isnan(self.mean):
            return "--" if latex else "–"
        m = fmt_number(self.mean, metric, meta)
        if latex:
            m = tex_num(m)
        if self.n_seeds <= 1:
            return m
        s = fmt_number(self.std, metric, meta)
        return f"{m}$\\pm${s}" if latex else f"{m} ± {s}"


@dataclass
class Block:
    dataset: str
    simulator: str
    methods: list[str]
    cells: dict[tuple[str, str, int], Cell]
    """``(method, metric, k) -> Cell``."""
    labels: dict[str, str]
    """Row label per method (with ``(n/m seeds)`` when some of its cells failed)."""
    failures: list[tuple[str, int, str]]
    """``(method, seed, error)`` of the failed cells of this block."""
    dataset_label: str = ""
    """How the dataset is shown (``[display]``; default: its name)."""
    weak: list[tuple[str, int, str]] = field(default_factory=list)
    """``(method, seed, reason)`` of the cells that used a simulator or backbone below popularity
    (``allow_weak_simulator``); their rows are labelled :data:`WEAK_MARK` and the reasons listed."""

    @property
    def title(self) -> str:
        return f"{self.dataset_label or self.dataset} (eval: {self.simulator})"


WEAK_MARK = " (weak simulator)"
"""Appended to the row label of a method with a cell scored under a weak simulator or backbone."""


def _split_sims(text: str) -> list[str]:
    return [s for s in re.split(r"[,;|\s]+", text.strip()) if s]


def build_blocks(run: RunData, summary: pd.DataFrame, metrics: list[str], ks: list[int],
                 *, all_methods: bool = False) -> list[Block]:
    """The table blocks. ``all_methods``: every block lists every method of the run (paper
    style, one shared row set); otherwise only methods with results or failures there."""
    cases, cells = run.cases, run.cells
    datasets_cfg = config_order(run.config, "datasets")
    methods_cfg = config_order(run.config, "methods")

    blocks: dict[tuple[str, str], set[str]] = {}
    for (ds, sim, meth) in summary[["dataset", "simulator", "method"]].drop_duplicates() \
            .itertuples(index=False):
        blocks.setdefault((ds, sim), set()).add(meth)

    sims_of: dict[str, set[str]] = {}
    for ds, sim in blocks:
        sims_of.setdefault(ds, set()).add(sim)
    # cells per (dataset, eval simulator, method): (n_total, failures)
    status: dict[tuple[str, str, str], list[tuple[int, str, str]]] = {}
    for row in cells.itertuples(index=False):
        sims = _split_sims(row.eval_simulator) or sorted(sims_of.get(row.dataset, set())) \
            or _split_sims(row.simulator) or ["?"]
        for sim in sims:
            status.setdefault((row.dataset, sim, row.method), []).append(
                (int(row.seed), row.status, row.error, getattr(row, "weak_simulator", "") or ""))
            if row.status != "ok":
                blocks.setdefault((row.dataset, sim), set()).add(row.method)

    every_method = ordered({m for ms in blocks.values() for m in ms}, methods_cfg)
    ds_order = ordered({ds for ds, _ in blocks}, datasets_cfg)
    out: list[Block] = []
    summ = {(r.method, r.dataset, r.simulator, r.metric, int(r.k)): r
            for r in summary.itertuples(index=False)}
    for ds in ds_order:
        for sim in sorted({s for d, s in blocks if d == ds}):
            present = blocks[(ds, sim)]
            methods = every_method if all_methods else [m for m in every_method if m in present]
            block_cells: dict[tuple[str, str, int], Cell] = {}
            labels: dict[str, str] = {}
            failures: list[tuple[str, int, str]] = []
            weak: list[tuple[str, int, str]] = []
            for meth in methods:
                st = status.get((ds, sim, meth), [])
                failed = sorted((seed, err) for seed, s, err, _ in st if s != "ok")
                weak_here = sorted((seed, w) for seed, s, _, w in st if s == "ok" and w)
                weak += [(meth, seed, w) for seed, w in weak_here]
                failures += [(meth, seed, err) for seed, err in failed]
                has_data = any((meth, ds, sim, m, k) in summ for m in metrics for k in ks)
                labels[meth] = run.meta.method(meth)
                if failed and has_data:
                    labels[meth] = f"{labels[meth]} ({len(st) - len(failed)}/{len(st)} seeds)"
                if weak_here:
                    labels[meth] += WEAK_MARK
                for m in metrics:
                    for k in ks:
                        r = summ.get((meth, ds, sim, m, k))
                        if r is not None:
                            c = Cell(float(r.mean), float(r.std), int(r.n_seeds), int(r.n_cases),
                                     "ok")
                        else:
                            c = Cell(state="failed" if failed and not has_data else "missing")
                        block_cells[(meth, m, k)] = c
            out.append(Block(ds, sim, methods, block_cells, labels, failures, run.meta.dataset(ds), weak))
    return out
