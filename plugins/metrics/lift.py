"""Length-controlled metrics: ``ioi-lift`` and ``ior-lift`` (opt-in: ``--metrics ...,ioi-lift``).

A longer path moves the simulated user further, whatever it contains: on the oracle world,
random 5-item paths score an IoI close to SFT's. A lift metric controls for that. For each case
and path of length m it is

    lift = value(path) - mean over r = 1..R of value(random_r(case, m))

where ``value`` is IoI (``ioi-lift``) or IoR (``ior-lift``) under the same evaluating simulator,
and ``random_r(case, m)`` are R random *valid* paths of m items for the same case: distinct
catalog items, none in the history, none the target. An empty path has lift 0. @K takes the best
of the first K candidates, like the others.

Seeding. The random paths depend only on (seed, case, m, r), the case by its history and target:
every item of the catalog gets a key from a counter-based hash (splitmix64) of those numbers and
the item id, and the m items with the largest keys, in key order, form the path. So every
method, cell and batch of a run compares against the same random paths of a case (a paired
comparison), on CPU and CUDA alike, and no random stream is consumed.

Cost. Each distinct (case, m) of a batch costs R extra paths in one simulator pass each (the
candidates of a case often share lengths, so it is less than R x the candidates); ``ioi-lift``
and ``ior-lift`` share them (``MetricContext.memo``). Where the context has a ``cache_dir`` and a
``simulator_key`` (the runner passes the dataset's cache folder and the evaluating simulator's
weight fingerprint), the per-(case, m) means are kept in ``<cache_dir>/lift/`` and every later
cell of any method or seed looks them up instead of scoring again; a stored mean equals a fresh
one up to float rounding (batch composition), so the printed figures do not depend on which cell
came first. The hashing
is ``rows x n_items`` integer work, done in chunks of about 2**22 keys.

Other R or seeds: register another spec from a plugin file, e.g.
``register(lift_metric("ioi-lift64", "ioi", samples=64))`` (``from prorlbench_plugins.metrics.lift
import lift_metric``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import torch

from prorlbench import hookimpl
from prorlbench.api import Case, MetricContext, MetricSpec
from prorlbench.toolkit import PathScores, atomic_write, entry_lock, histories_tensor, score_paths

from .core import ior, ioi

SAMPLES = 16
"""R: random paths per (case, length)."""
KEYS_PER_CHUNK = 1 << 22
"""Hash keys (rows x catalog items) computed at once."""

_M1 = 0xBF58476D1CE4E5B9 - (1 << 64)  # splitmix64 multipliers as signed int64
_M2 = 0x94D049BB133111EB - (1 << 64)
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)


def _srl(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 values."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """The splitmix64 finaliser on an int64 tensor (wrapping arithmetic): a counter-based hash."""
    x = x ^ _srl(x, 30)
    x = x * _M1
    x = x ^ _srl(x, 27)
    x = x * _M2
    return x ^ _srl(x, 31)


def case_key(case: Case) -> int:
    """A stable 62-bit number for a case's content (history and target: what its random paths
    depend on), whatever its id."""
    text = f"{tuple(case.history)}>{case.target}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 2


def random_valid_paths(hist: torch.Tensor, hist_len: torch.Tensor, targets: torch.Tensor,
                       row_keys: torch.Tensor, lengths: torch.Tensor, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One random valid path per row: ``(paths [N, max(lengths)] padded with n_items, lengths)``.

    Row i draws ``lengths[i]`` distinct items outside ``hist[i, :hist_len[i]]`` and ``targets[i]``
    (fewer when fewer are left), ordered by the hash keys of ``(row_keys[i], item)``.
    """
    N, device = int(row_keys.shape[0]), row_keys.device
    L = int(lengths.max()) if N else 0
    out = torch.full((N, max(L, 1)), n_items, dtype=torch.long, device=device)
    got = torch.zeros(N, dtype=torch.long, device=device)
    if N == 0 or L == 0:
        return out[:, :L], got
    items = torch.arange(n_items, device=device)
    lowest = torch.iinfo(torch.long).min
    H = hist.shape[1]
    rows = max(1, KEYS_PER_CHUNK // max(n_items, 1))
    for s in range(0, N, rows):
        sl = slice(s, s + rows)
        keys = mix64(mix64(row_keys[sl, None] * _GOLDEN + items[None, :]))
        banned = torch.zeros_like(keys, dtype=torch.bool)
        hmask = torch.arange(H, device=device)[None, :] < hist_len[sl, None]
        banned.scatter_(1, torch.where(hmask, hist[sl], targets[sl, None]), True)
        banned.scatter_(1, targets[sl, None], True)
        keys = keys.masked_fill(banned, lowest)
        top = keys.topk(min(L, n_items), dim=1).indices
        n_free = n_items - banned.sum(1)
        got[sl] = torch.minimum(lengths[sl], n_free)
        keep = torch.arange(top.shape[1], device=device)[None, :] < got[sl, None]
        out[sl, : top.shape[1]] = torch.where(keep, top, torch.full_like(top, n_items))
    return out[:, :L], got


VALUES: dict[str, Callable[[PathScores], torch.Tensor]] = {"ioi": ioi, "ior": ior}
"""The path values a lift can control: both are computed from the same random paths."""


def pair_keys(case_keys: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """One int64 per (case, length) pair (a hash; collisions are negligible at 64 bits)."""
    return mix64(case_keys * _GOLDEN + lengths)


def _store_path(ctx: MetricContext, samples: int, seed: int) -> Path | None:
    if ctx.cache_dir is None or not ctx.simulator_key:
        return None
    return Path(ctx.cache_dir) / "lift" / f"{ctx.simulator_key}-r{samples}-s{seed}.pt"


def _load(path: Path | None) -> dict[str, torch.Tensor] | None:
    if path is None or not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged store is recomputed, never trusted
        return None


def _save(path: Path, keys: torch.Tensor, means: dict[str, torch.Tensor]) -> None:
    """Merge ``keys -> means`` into the store at ``path`` (under its lock; atomic replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(path.with_suffix(".lock")):
        old = _load(path)
        if old is not None:
            keep = ~torch.isin(old["keys"], keys)
            keys = torch.cat([old["keys"][keep], keys])
            means = {n: torch.cat([old[n][keep], means[n]]) for n in VALUES}
        order = keys.argsort()
        doc = {"keys": keys[order], **{n: means[n][order] for n in VALUES}}
        atomic_write(path, lambda fh: torch.save(doc, fh))


def _lookup(store: dict[str, torch.Tensor], keys: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(found [U] bool, {value: [U]})`` of ``keys`` in a store (sorted keys)."""
    sk = store["keys"].to(keys.device)
    pos = torch.searchsorted(sk, keys).clamp(max=max(len(sk) - 1, 0))
    found = sk[pos] == keys if len(sk) else torch.zeros_like(keys, dtype=torch.bool)
    return found, {n: store[n].to(keys.device)[pos] for n in VALUES}


def random_baseline(value: str, scores: PathScores, ctx: MetricContext, samples: int = SAMPLES,
                    seed: int = 0) -> torch.Tensor:
    """``[N]``: the mean ``value`` ('ioi' or 'ior') of ``samples`` random valid paths of each row's
    length for its case (0 for empty paths), scored by ``ctx.simulator``: one set per distinct
    (case, length), scored once per batch for every lift metric of the same ``samples`` and
    ``seed``, and kept across cells in ``ctx.cache_dir`` when the context names the simulator."""
    key = ("lift-baseline", samples, seed)
    if key not in ctx.memo:
        ctx.memo[key] = _baselines(scores, ctx, samples, seed)
    inverse, means = ctx.memo[key]
    return means[value][inverse]


def _baselines(scores: PathScores, ctx: MetricContext, samples: int, seed: int):
    """``(inverse, {value: [U]})``: row i's (case, length) pair is ``inverse[i]``."""
    device, n = scores.paths.device, len(ctx.cases)
    model = ctx.simulator
    keys = torch.tensor([case_key(c) for c in ctx.cases], dtype=torch.long, device=device)
    lengths_all = scores.lengths.to(device)
    pk = pair_keys(keys, lengths_all)
    uniq, inverse = torch.unique(pk, return_inverse=True)
    first = torch.full((uniq.shape[0],), n, dtype=torch.long, device=device)
    first = first.scatter_reduce(0, inverse, torch.arange(n, device=device), reduce="amin")
    means = {v: torch.zeros(uniq.shape[0], device=device) for v in VALUES}
    need = lengths_all[first] > 0
    path = _store_path(ctx, samples, seed)
    store = _load(path)
    if store is not None and len(store["keys"]):
        found, stored = _lookup(store, uniq)
        for v in VALUES:
            means[v] = torch.where(found & need, stored[v].float(), means[v])
        need &= ~found
    if bool(need.any()):
        rows = first[need]
        src = rows.repeat_interleave(samples)  # a representative row of each missing pair, R times
        r = torch.arange(samples, device=device).repeat(int(need.sum()))
        lengths = lengths_all[src]
        hist, hist_len = histories_tensor([ctx.cases[i] for i in rows.tolist()], model.n_items)
        hist = hist.to(device).repeat_interleave(samples, 0)
        hist_len = hist_len.to(device).repeat_interleave(samples)
        seed_key = mix64(torch.tensor([seed], dtype=torch.long, device=device))
        row_keys = mix64(mix64(keys[src] ^ seed_key) + lengths * _M1) + r
        paths, got = random_valid_paths(hist, hist_len, scores.targets[src], row_keys, lengths, model.n_items)
        rs = score_paths(model, hist=hist, hist_len=hist_len, targets=scores.targets[src],
                         path_tensor=paths, path_len=got)
        new = {v: f(rs).float().view(-1, samples).mean(1) for v, f in VALUES.items()}
        for v in VALUES:
            means[v][need] = new[v]
        if path is not None:
            _save(path, uniq[need].cpu(), {v: new[v].cpu() for v in VALUES})
    return inverse, means


def lift_metric(name: str, base: str, samples: int = SAMPLES, seed: int = 0) -> MetricSpec:
    """A ``MetricSpec`` for ``base`` ('ioi' or 'ior') minus its mean over ``samples`` random valid
    paths of the same length and case (seeded by ``seed``)."""
    display, decimals = {"ioi": ("IoI-lift", 3), "ior": ("IoR-lift", 1)}[base]
    value = VALUES[base]

    def compute(scores: PathScores, ctx: MetricContext) -> torch.Tensor:
        return value(scores).float() - random_baseline(base, scores, ctx, samples, seed)

    return MetricSpec(name, f"{display}: {display[:3]} minus the mean {display[:3]} of {samples} random "
                      f"valid paths of the same length for the case (length-controlled)",
                      compute, True, display=display, decimals=decimals, needs_simulator=True, default=False)


METRICS: Sequence[MetricSpec] = (lift_metric("ioi-lift", "ioi"), lift_metric("ior-lift", "ior"))


@hookimpl
def register_metrics(register):
    for spec in METRICS:
        register(spec)
