"""Evaluating candidate paths against a simulator: per-path metrics and the @K protocol.

:func:`evaluate_paths` scores every candidate path of every case once (cases x candidates are
flattened and scored in batches by :func:`prorlbench.seq.scoring.score_paths`, one forward pass per
path), computes each metric per path, then reduces per case: ``metric@K`` is the best value among
the first K candidates of the case (``max`` when higher is better, ``min`` when lower is better;
for descriptive metrics with no direction, the value of the candidate that is best by IoI among
the first K, earliest candidate on ties). A case with fewer than K candidates uses those it has;
a case with no candidate at all is scored as the empty path (the method showed nothing).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..api import Case, MetricContext, MetricSpec, SequenceModel
from .scoring import PathScores, attribute_matrix, score_paths


def _ioi(s: PathScores) -> torch.Tensor:
    return s.final(s.log_p) - s.log_p[:, 0]


def per_path_values(
    model: SequenceModel,
    cases: Sequence[Case],
    paths: Sequence[Sequence[int]],
    metrics: Sequence[MetricSpec],
    item_attributes=None,
    batch_size: int = 1024,
    cache_dir=None,
    simulator_key: str = "",
) -> dict[str, np.ndarray]:
    """Metric values of each (case, path) pair, ``{name: float64 array [N]}``, plus ``"_ioi"``.

    ``item_attributes``: per-item attribute sets or a ``[n_items, n_attr]`` bool tensor (needed
    by metrics with ``needs_attributes``). ``cache_dir`` and ``simulator_key`` reach metrics with
    ``needs_simulator`` through their :class:`MetricContext`.
    """
    if len(cases) != len(paths):
        raise ValueError(f"{len(cases)} cases but {len(paths)} paths")
    out: dict[str, list[np.ndarray]] = {m.name: [] for m in metrics}
    out["_ioi"] = []
    for s in range(0, len(cases), batch_size):
        sc = score_paths(model, cases[s : s + batch_size], paths[s : s + batch_size],
                         item_attributes=item_attributes)
        ctx = MetricContext(simulator=model, cases=cases[s : s + batch_size], cache_dir=cache_dir,
                            simulator_key=simulator_key)
        for m in metrics:
            v = m.compute(sc, ctx) if m.needs_simulator else m.compute(sc)
            out[m.name].append(v.double().cpu().numpy())
        out["_ioi"].append(_ioi(sc).double().cpu().numpy())
    return {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in out.items()}


def best_of_k(values: np.ndarray, counts: np.ndarray, k: int, higher_is_better: bool | None,
              ioi: np.ndarray | None = None) -> np.ndarray:
    """Reduce ``values [n_cases, C]`` (NaN where a case has no such candidate) to ``[n_cases]``.

    ``counts[c]`` candidates exist for case c. ``higher_is_better=None`` picks the value of the
    candidate with the best ``ioi`` among the first K (the first such candidate on ties).
    """
    n, C = values.shape
    kk = min(k, C)
    have = np.arange(C)[None, :kk] < counts[:, None]
    v = values[:, :kk]
    if higher_is_better is None:
        assert ioi is not None
        key = np.where(have, ioi[:, :kk], -np.inf)
        pick = key.argmax(1)
        return v[np.arange(n), pick]
    if higher_is_better:
        return np.where(have, v, -np.inf).max(1)
    return np.where(have, v, np.inf).min(1)


def evaluate_paths(
    model: SequenceModel,
    cases: Sequence[Case],
    candidates: Sequence[Sequence[Sequence[int]]],
    metrics: Sequence[MetricSpec],
    ks: Sequence[int] = (1, 5, 10),
    item_attributes=None,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    cache_dir=None,
    simulator_key: str = "",
) -> pd.DataFrame:
    """Score the candidate paths of every case and reduce them with the @K protocol.

    ``candidates[c]`` are the paths a method generated for ``cases[c]``, best first.
    Returns a long DataFrame with columns ``case`` (the case's ``case_id``, or its index when
    empty), ``metric``, ``k``, ``value``: one row per case x metric x K, in that order.
    The model is used where it is; ``device``, when given, must be the model's device (it is
    checked, never used to move a shared model). ``cache_dir`` / ``simulator_key``: see
    :func:`per_path_values`.
    """
    if len(cases) != len(candidates):
        raise ValueError(f"{len(cases)} cases but {len(candidates)} candidate lists")
    if device is not None and isinstance(model, torch.nn.Module):
        p = next(iter(model.parameters()), None)
        want = torch.device(device)
        if p is not None and (p.device.type != want.type
                              or (want.index is not None and p.device.index != want.index)):
            raise ValueError(f"model is on {p.device}, not on {device}")
    if any(m.needs_attributes for m in metrics) and item_attributes is None:
        names = [m.name for m in metrics if m.needs_attributes]
        raise ValueError(f"metric(s) {', '.join(names)} need item attributes, and none were given")
    attrs = item_attributes
    if attrs is not None and not isinstance(attrs, torch.Tensor):
        attrs = attribute_matrix(attrs)  # built once per call, not once per batch
    counts = np.array([max(len(c), 1) for c in candidates], dtype=np.int64)
    flat_cases: list[Case] = []
    flat_paths: list[tuple[int, ...]] = []
    for case, cands in zip(cases, candidates):
        for p in (cands if len(cands) else [()]):
            flat_cases.append(case)
            flat_paths.append(tuple(p))
    vals = per_path_values(model, flat_cases, flat_paths, metrics, item_attributes=attrs, batch_size=batch_size,
                           cache_dir=cache_dir, simulator_key=simulator_key)

    n, C = len(cases), int(counts.max()) if len(cases) else 0
    rows = np.repeat(np.arange(n), counts)
    cols = np.arange(len(flat_paths)) - np.repeat(np.cumsum(counts) - counts, counts)

    def grid(x: np.ndarray) -> np.ndarray:
        g = np.full((n, C), np.nan)
        g[rows, cols] = x
        return g

    ioi_grid = grid(vals["_ioi"])
    ids = [c.case_id or str(i) for i, c in enumerate(cases)]
    frames = []
    for m in metrics:
        g = grid(vals[m.name])
        for k in ks:
            frames.append(pd.DataFrame({"case": ids, "metric": m.name, "k": int(k),
                                        "value": best_of_k(g, counts, int(k), m.higher_is_better, ioi_grid)}))
    if not frames or n == 0:
        return pd.DataFrame({"case": pd.Series(dtype=object), "metric": pd.Series(dtype=object),
                             "k": pd.Series(dtype=np.int64), "value": pd.Series(dtype=float)})
    df = pd.concat(frames, ignore_index=True)
    order = {m.name: i for i, m in enumerate(metrics)}
    df["_c"] = np.tile(np.arange(n), len(frames))
    df["_m"] = df["metric"].map(order)
    df = df.sort_values(["_c", "_m", "k"], kind="stable").drop(columns=["_c", "_m"]).reset_index(drop=True)
    return df
