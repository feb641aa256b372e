"""The two simplest baselines of SPEC section 6: ``random`` and ``pop``.

Both ignore the target and the simulator; they are floors that every real method must beat.

* ``random``: ``length`` distinct items drawn uniformly from the catalog minus the history.
  The ``k`` candidates of a case are ``k`` independent draws. Seeded by the cell seed (a
  ``numpy`` generator created in ``fit``), so the same seed gives the same paths.
* ``pop``: the ``length`` most popular training items (counts over the training sequences, ties
  broken by the lower item id) that are not in the history. It is deterministic, so its ``k``
  candidates are *shifted* lists: candidate ``j`` starts at the ``(j * shift)``-th most popular
  eligible item (``shift`` defaults to 1). Candidate 0 is the classic POP path; @K > 1 of ``pop``
  therefore measures "the best of K neighbouring popularity windows".

Paths have a fixed length ``length`` (default 5, about the mean reference-path length of the
ProRL splits; capped at the run's ``max_path_len``). Neither method ever returns the target in
a path, and neither stops early. Deviation: the SPEC leaves the length open; 5 is our choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from prorlbench import hookimpl
from prorlbench.api import Case, FitContext, MethodSpec
from prorlbench.toolkit import opt


# ----------------------------------------------------------------------------------- config
@dataclass
class SimpleConfig:
    length: int = opt(5, "path length (capped at the run's max_path_len)")
    shift: int = opt(1, "pop only: candidate j starts at the (j*shift)-th most popular eligible item")

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ValueError(f"length must be >= 0, got {self.length}")
        if self.shift < 1:
            raise ValueError(f"shift must be >= 1, got {self.shift}")


# ----------------------------------------------------------------------------------- random
class RandomPaths:
    """Uniformly random items not in the history (nor the target), no repeats within a path."""

    def __init__(self, cfg: SimpleConfig):
        self.cfg = cfg
        self.rng: np.random.Generator | None = None
        self.n_items = 0
        self.length = cfg.length

    def fit(self, ctx: FitContext) -> None:
        self.rng = np.random.default_rng(ctx.seed)
        self.n_items = ctx.data.n_items
        self.length = min(self.cfg.length, ctx.max_path_len)

    def generate(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        assert self.rng is not None, "call fit first"
        out = []
        for case in cases:
            banned = {i for i in case.history if 0 <= i < self.n_items} | {case.target}
            m = min(self.length, self.n_items - len(banned))
            # The eligible items of a uniformly random ordered draw of m + |banned| distinct items
            # are a uniformly random ordered draw of eligible items: take the first m.
            size = min(self.n_items, m + len(banned))
            cands = []
            for _ in range(k):
                draw = self.rng.choice(self.n_items, size=size, replace=False)
                cands.append(tuple(int(x) for x in draw if int(x) not in banned)[:m])
            out.append(cands)
        return out


# ----------------------------------------------------------------------------------- pop
class PopularPaths:
    """The most popular training items not in the history (nor the target)."""

    def __init__(self, cfg: SimpleConfig):
        self.cfg = cfg
        self.order: list[int] = []
        self.length = cfg.length

    def fit(self, ctx: FitContext) -> None:
        counts = ctx.data.popularity().numpy()
        # Stable sort on -count: ties keep ascending item id.
        self.order = [int(i) for i in np.argsort(-counts, kind="stable")]
        self.length = min(self.cfg.length, ctx.max_path_len)

    def generate(self, cases: Sequence[Case], k: int) -> list[list[tuple[int, ...]]]:
        out = []
        for case in cases:
            banned = set(case.history) | {case.target}
            ranked = [i for i in self.order if i not in banned]
            cands = []
            for j in range(k):
                start = j * self.cfg.shift
                if j > 0 and start + self.length > len(ranked):
                    break  # fewer candidates rather than short or repeated ones
                cands.append(tuple(ranked[start : start + self.length]))
            out.append(cands)
        return out


@hookimpl
def register_methods(register):
    register(MethodSpec(name="random", summary="Random items not in the history, fixed length (floor)",
                        factory=RandomPaths, config_cls=SimpleConfig, family="baseline"))
    register(MethodSpec(name="pop", summary="Most popular training items not in the history, fixed length",
                        factory=PopularPaths, config_cls=SimpleConfig, family="baseline"))
