"""``shortest-path``: the harness's own graph baseline (SPEC section 6).

No paper: a transparent reference point. ``fit`` builds the item transition graph of the
training sequences: an edge a → b for every consecutive pair (a, b) with a ≠ b, weighted
``−log P(b | a)``, ``P(b | a) = count(a → b) / count(a → ·)``. A path from the user's last history
item h to the target T minimises the summed cost, i.e. it is the most probable chain of observed
transitions. The path shown is its inner items (without h and T), truncated to ``max_path_len``.

Implementation: distances *to* T are what every case needs, so ``generate`` runs
``scipy.sparse.csgraph.dijkstra`` on the reversed graph once for all distinct targets of the
call (in chunks that bound memory to about ``dijkstra_cells`` entries), with predecessors: the
predecessor of v in the reversed tree is the next hop from v toward T. The graph is built once
per ``fit``; the shortest-path trees are computed per ``generate`` call and not kept (all-pairs in
``fit`` would need ``n_items²`` memory, too much for large catalogs).

Candidates (``generate(cases, k)``): candidate r leaves h by the out-edge a with the r-th lowest
``cost(h → a) + dist(a → T)`` and then follows the shortest path; candidate 0 is the shortest path.

On a dense transition graph the cheapest route is often the direct edge h → T (an empty path) or
a single hop: this baseline shows what "follow the most common transitions" achieves, nothing
more. ``hop_cost > 0`` shortens paths further.

Rules that keep paths valid (SPEC section 3): items of the history and repeats are skipped when
the path is read off (a shortest path can pass through an earlier history item), and out-edges
into history items are not used as first steps.

Fallback when T cannot be reached from h (``fallback``): ``"earlier-history"`` (default) starts from
the most recent history item that can reach T; ``"empty"`` returns the empty path. When no history
item reaches T the path is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from prorlbench import hookimpl
from prorlbench.api import Case, FitContext, MethodSpec
from prorlbench.toolkit import ConfigError, opt


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class ShortestPathConfig:
    hop_cost: float = opt(0.0, "extra cost added to every edge (> 0 favours fewer hops)")
    fallback: str = opt("earlier-history", "when the last history item cannot reach T: "
                        "'earlier-history' (start from the latest one that can) or 'empty'")
    dijkstra_cells: int = opt(20_000_000, "memory bound: targets per Dijkstra call x n_items", ge=1)

    def __post_init__(self) -> None:
        if self.fallback not in ("earlier-history", "empty"):
            raise ConfigError(f"shortest-path: fallback must be 'earlier-history' or 'empty', got {self.fallback!r}")
        if self.hop_cost < 0:
            raise ConfigError("shortest-path: hop_cost must be >= 0")


# --------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------


def transition_costs(sequences: Sequence[Sequence[int]], n_items: int, hop_cost: float = 0.0) -> sp.csr_matrix:
    """``[n_items, n_items]`` CSR matrix of edge costs ``−log P(b | a) + hop_cost`` (+1e-9 so that
    probability-1 edges stay explicit, non-zero entries)."""
    src, dst = [], []
    for s in sequences:
        a = np.asarray(s, dtype=np.int64)
        if len(a) > 1:
            src.append(a[:-1])
            dst.append(a[1:])
    if not src:
        return sp.csr_matrix((n_items, n_items))
    src, dst = np.concatenate(src), np.concatenate(dst)
    keep = src != dst
    counts = sp.coo_matrix((np.ones(int(keep.sum())), (src[keep], dst[keep])), shape=(n_items, n_items)).tocsr()
    counts.sum_duplicates()
    out_deg = np.asarray(counts.sum(1)).ravel()
    rows = np.repeat(np.arange(n_items), np.diff(counts.indptr))
    prob = counts.data / out_deg[rows]
    costs = counts.copy()
    costs.data = -np.log(prob) + hop_cost + 1e-9
    return costs


# --------------------------------------------------------------------------------------------
# Method
# --------------------------------------------------------------------------------------------


class ShortestPath:
    """Most probable chain of observed transitions from the last history item to T."""

    def __init__(self, config: ShortestPathConfig | None = None):
        self.cfg = config or ShortestPathConfig()

    def fit(self, ctx: FitContext) -> None:
        self.n_items = ctx.data.n_items
        self.max_path_len = ctx.max_path_len
        seqs = ctx.data.sequences.get("train", [])
        if not seqs:  # datasets with ready-made cases only: use their histories and paths
            seqs = [tuple(c.history) + tuple(c.reference) for c in ctx.cases.train]
        self.costs = transition_costs(seqs, self.n_items, self.cfg.hop_cost)
        self.reverse = self.costs.T.tocsr()

    def _paths(self, case: Case, k: int, dist: np.ndarray, next_hop: np.ndarray) -> list[tuple[int, ...]]:
        """Up to k paths for one case, given distances and next hops toward its target."""
        T, hist = case.target, list(case.history)
        if not hist:
            return [()]
        starts = [hist[-1]]
        if self.cfg.fallback == "earlier-history":
            starts = [h for h in reversed(hist) if 0 <= h < self.n_items and np.isfinite(dist[h])][:1] or starts
        h = starts[0]
        if not (0 <= h < self.n_items) or not np.isfinite(dist[h]):
            return [()]
        in_hist = set(hist)
        row = slice(self.costs.indptr[h], self.costs.indptr[h + 1])
        nbrs, cost = self.costs.indices[row], self.costs.data[row]
        total = cost + dist[nbrs]
        ok = np.isfinite(total) & np.array([a not in in_hist or a == T for a in nbrs.tolist()], dtype=bool)
        nbrs, total = nbrs[ok], total[ok]
        order = np.lexsort((nbrs, total))[:k]  # ties: lower item id first (deterministic)
        out: list[tuple[int, ...]] = []
        for a in nbrs[order].tolist():
            path: list[int] = []
            v, hops = a, 0
            while v != T and v >= 0 and len(path) < self.max_path_len and hops <= self.n_items:
                if v not in in_hist and v not in path:
                    path.append(v)
                v, hops = int(next_hop[v]), hops + 1
            out.append(tuple(path))
        return out or [()]

    def generate(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        out: list[list[tuple[int, ...]]] = [[()] for _ in cases]
        by_target: dict[int, list[int]] = {}
        for i, c in enumerate(cases):
            if 0 <= c.target < self.n_items:
                by_target.setdefault(c.target, []).append(i)
        targets = sorted(by_target)
        chunk = max(1, self.cfg.dijkstra_cells // max(1, self.n_items))
        for s in range(0, len(targets), chunk):
            idx = np.asarray(targets[s : s + chunk])
            dist, pred = dijkstra(self.reverse, directed=True, indices=idx, return_predecessors=True)
            for r, t in enumerate(idx.tolist()):
                for i in by_target[t]:
                    out[i] = self._paths(cases[i], max(1, k), dist[r], pred[r])
        return out


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="shortest-path",
        summary="most probable chain of training transitions from the last history item to T (Dijkstra)",
        factory=ShortestPath, config_cls=ShortestPathConfig, family="baseline",
    ))
