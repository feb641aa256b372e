"""The benchmark's rules for a method, enforced by the harness (never left to the method).

What a method sees. :func:`method_inputs` gives a cell's method its own copy of everything it
reads, so nothing it does reaches the harness's copy, another cell, or its own scoring:

* the test cases **without** ``reference`` (the real user's future items: reading them would
  be reading the answer), as new frozen :class:`~prorlbench.api.Case` objects in a tuple;
* the train and valid cases as new objects in tuples (they keep ``reference``: SFT learns from
  it, as the paper does);
* the data with its per-split sequences and user lists as read-only mappings of tuples
  (``world``, the synthetic generator, as a deep copy).

What a method may return. :func:`check_paths` checks every candidate path of every test case
before anything is scored, and the same check runs on stored paths when they are scored again
(``prorlbench rescore``, a resumed cell). A path is a sequence of integer item ids
``0 .. n_items - 1`` of at most ``max_path_len`` items, shown *before* the target. These are
**violations**, which fail the cell with a one-line reason naming the method and the first bad
case:

* an item that is the case's target (a path holding the target scores the target as reached:
  IoI 2.03 on synthetic for ``[target]``, above every honest method);
* an id outside ``0 .. n_items - 1`` other than ``-1``, or an item that is not an integer (a
  float, a bool, a string; numpy and torch integers are integers);
* a path longer than ``max_path_len``, or a candidate list per case that does not match the cases.

``-1`` (:data:`UNKNOWN_ITEM`) is the one id outside the catalog a path may hold: an *unknown item*,
such as a semantic-ID code that names no item under free decoding (docs/rl.md). Scoring drops it
from the path and the ``invalid`` metric counts it, so it earns nothing: a path of unknown items
scores as the empty path, with ``invalid`` 1.

An item of the user's history, or an item repeated within the path, is **not** a violation: it is
a poor recommendation, and the ``invalid`` metric counts it (SPEC: the share of path items that
are unknown, repeated or already in H), so a method that shows one pays for it in its own row.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
from types import MappingProxyType
from typing import Any, Sequence

import numpy as np
import torch

from ..api import Case, CaseSplits, Interactions

UNKNOWN_ITEM = -1
"""The id of an unknown item (a code that names no catalog item): allowed in a path, dropped by
scoring and counted by the ``invalid`` metric."""


class PathRuleViolation(Exception):
    """A method's paths broke a rule of the benchmark (the cell fails with this one line)."""


def blind(cases: Sequence[Case]) -> tuple[Case, ...]:
    """New frozen copies of ``cases`` without ``reference``."""
    return tuple(dataclasses.replace(c, reference=()) for c in cases)


def method_inputs(data: Interactions, cases: CaseSplits) -> tuple[Interactions, CaseSplits]:
    """What a cell's method is given: its own read-only copies (see the module docstring)."""
    view = dataclasses.replace(
        data,
        sequences=MappingProxyType({k: tuple(tuple(s) for s in v) for k, v in data.sequences.items()}),
        users=MappingProxyType({k: tuple(v) for k, v in data.users.items()}),
        world=copy.deepcopy(data.world),
    )
    splits = CaseSplits(train=tuple(dataclasses.replace(c) for c in cases.train),
                        valid=tuple(dataclasses.replace(c) for c in cases.valid), test=blind(cases.test))
    return view, splits


def _describe(item: Any) -> str:
    text = repr(item)
    return text if len(text) <= 40 else text[:37] + "..."


def _as_ids(path: Any) -> np.ndarray | str:
    """The path as an int64 array, or why it is not a path of integer ids."""
    if isinstance(path, torch.Tensor):
        if path.dtype.is_floating_point or path.dtype.is_complex or path.dtype == torch.bool:
            return f"a {path.dtype} tensor, not integer item ids"
        path = path.detach().cpu().numpy()
    if isinstance(path, (str, bytes)) or not hasattr(path, "__len__"):
        return f"{_describe(path)} is not a sequence of item ids"
    arr = np.asarray(path) if len(path) else np.zeros(0, dtype=np.int64)
    if arr.ndim != 1:
        return f"a {arr.ndim}-d array, not a flat sequence of item ids"
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    for item in path:  # only on the way to an error: find the first item that is not an integer
        if isinstance(item, bool) or not isinstance(item, (numbers.Integral, np.integer)):
            if isinstance(item, torch.Tensor) and item.ndim == 0 and not item.dtype.is_floating_point \
                    and item.dtype != torch.bool:
                continue
            return f"item {_describe(item)} is not an integer item id"
    try:
        return np.array([int(i) for i in path], dtype=np.int64)
    except OverflowError:
        return f"item {_describe(max(path, key=abs))} is not an item id (out of range)"


def check_paths(method: str, cases: Sequence[Case], candidates: Any, *, n_items: int,
                max_path_len: int, k_max: int | None = None) -> list[list[tuple[int, ...]]]:
    """``candidates`` as lists of int tuples (the first ``k_max`` per case), or
    :class:`PathRuleViolation` naming ``method`` and the first bad case (module docstring)."""
    who = f"method '{method}'"
    try:
        n_lists = len(candidates)
    except TypeError:
        raise PathRuleViolation(f"{who}: generate returned {type(candidates).__name__}, "
                                "not one candidate list per case") from None
    if n_lists != len(cases):
        raise PathRuleViolation(f"{who}: generate returned {n_lists} candidate lists for {len(cases)} cases")
    arrays: list[np.ndarray] = []
    counts = np.zeros(len(cases), dtype=np.int64)
    for c, (case, cands) in enumerate(zip(cases, candidates)):
        where = f"{who} broke the path rules: case {case.case_id or c} (test case #{c})"
        if isinstance(cands, (str, bytes)) or not hasattr(cands, "__iter__"):
            raise PathRuleViolation(f"{where}: its candidates are {_describe(cands)}, not a list of paths")
        kept = list(cands)[:k_max] if k_max is not None else list(cands)
        for j, p in enumerate(kept):
            ids = _as_ids(p)
            if isinstance(ids, str):
                raise PathRuleViolation(f"{where}, candidate {j}: {ids}")
            if len(ids) > max_path_len:
                raise PathRuleViolation(f"{where}, candidate {j}: a path of {len(ids)} items; "
                                        f"max_path_len is {max_path_len}")
            arrays.append(ids)
        counts[c] = len(kept)
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    path_case = np.repeat(np.arange(len(cases)), counts)
    item_case = np.repeat(path_case, lengths)
    targets = np.array([int(c.target) for c in cases], dtype=np.int64)
    bad = ((flat < 0) & (flat != UNKNOWN_ITEM)) | (flat >= n_items) | (flat == targets[item_case])
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        c = int(item_case[first])
        path_idx = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
        j = path_idx - int(counts[:c].sum())
        pos = first - int(lengths[:path_idx].sum())
        item = int(flat[first])
        why = (f"item {item} is the case's target (a path holds the items shown before the target)"
               if 0 <= item < n_items else f"item id {item} is outside 0..{n_items - 1} (and not -1, "
               "the unknown item)")
        raise PathRuleViolation(f"{who} broke the path rules: case {cases[c].case_id or c} (test case #{c}), "
                                f"candidate {j}, position {pos}: {why}")
    values = flat.tolist()
    offs = [0, *np.cumsum(lengths).tolist()]
    out: list[list[tuple[int, ...]]] = []
    i = 0
    for n in counts.tolist():
        out.append([tuple(values[offs[i + j]:offs[i + j + 1]]) for j in range(n)])
        i += n
    return out
