"""Length-controlled metrics: ``ioi-lift`` and ``ior-lift`` (opt-in: ``--metrics ...,ioi-lift``).

A longer path moves the simulated user further, whatever it contains: on the oracle world,
random 5-item paths score an IoI close to SFT's. A lift metric controls for that. For each case
and path of length m it is

    lift = value(path) - mean over r = 1..R of value(random_r(case, m))

where ``value`` is IoI (``ioi-lift``) or IoR (``ior-lift``) under the same evaluating simulator,
and ``random_r(case, m)`` are R random *valid* paths of m items for the same case: distinct
catalog items, none in the history, none the target. An empty path has lift 0. @K takes the best
of the first K candidates, like the others.

Seeding. The random paths depend only on (seed, case id, m, r): every item of the catalog gets a
key from a counter-based hash (splitmix64) of those four numbers and the item id, and the m
items with the largest keys, in key order, form the path. So every method, cell and batch of a
run compares against the same random paths of a case (a paired comparison), on CPU and CUDA
alike, and no random stream is consumed.

Cost. Each distinct (case, m) of a batch costs R extra paths in one simulator pass each (the
candidates of a case often share lengths, so it is less than R x the candidates); ``ioi-lift``
and ``ior-lift`` share them (``MetricContext.memo``). The hashing
is ``rows x n_items`` integer work, done in chunks of about 2**22 keys.

Other R or seeds: register another spec from a plugin file, e.g.
``register(lift_metric("ioi-lift64", "ioi", samples=64))`` (``from prorlbench_plugins.metrics.lift
import lift_metric``).
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import torch

from prorlbench import hookimpl
from prorlbench.api import Case, MetricContext, MetricSpec
from prorlbench.toolkit import PathScores, histories_tensor, score_paths

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
    """A stable 62-bit number for a case: its id when it has one, else its history and target."""
    text = case.case_id or f"{case.history}>{case.target}"
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


def random_baseline(value: Callable[[PathScores], torch.Tensor], scores: PathScores, ctx: MetricContext,
                    samples: int = SAMPLES, seed: int = 0) -> torch.Tensor:
    """``[N]``: the mean ``value`` of ``samples`` random valid paths of each row's length for its
    case (0 for empty paths), scored by ``ctx.simulator``; one set per distinct (case, length),
    scored once per batch for every lift metric of the same ``samples`` and ``seed``."""
    key = ("lift-random-paths", samples, seed)
    if key not in ctx.memo:
        ctx.memo[key] = _score_random_paths(scores, ctx, samples, seed)
    inverse, live, rs = ctx.memo[key]
    mean = torch.zeros(live.shape[0], device=inverse.device)
    if rs is not None:
        mean[live] = value(rs).float().view(-1, samples).mean(1)
    return mean[inverse]


def _score_random_paths(scores: PathScores, ctx: MetricContext, samples: int, seed: int):
    """``(inverse, live, random path scores)``: row i's (case, length) pair is ``inverse[i]``;
    the scores hold ``samples`` paths per pair with ``live`` (length > 0), or are None."""
    device, n = scores.paths.device, len(ctx.cases)
    model = ctx.simulator
    keys = torch.tensor([case_key(c) for c in ctx.cases], dtype=torch.long, device=device)
    pair = torch.stack([keys, scores.lengths.to(device)], 1)
    uniq, inverse = torch.unique(pair, dim=0, return_inverse=True)
    first = torch.full((uniq.shape[0],), n, dtype=torch.long, device=device)
    first = first.scatter_reduce(0, inverse, torch.arange(n, device=device), reduce="amin")
    live = uniq[:, 1] > 0
    rs = None
    if bool(live.any()):
        src = first[live].repeat_interleave(samples)  # a representative row of each (case, m), R times
        r = torch.arange(samples, device=device).repeat(int(live.sum()))
        lengths = scores.lengths.to(device)[src]
        hist, hist_len = histories_tensor([ctx.cases[i] for i in first[live].tolist()], model.n_items)
        hist = hist.to(device).repeat_interleave(samples, 0)
        hist_len = hist_len.to(device).repeat_interleave(samples)
        seed_key = mix64(torch.tensor([seed], dtype=torch.long, device=device))
        row_keys = mix64(mix64(keys[src] ^ seed_key) + lengths * _M1) + r
        paths, got = random_valid_paths(hist, hist_len, scores.targets[src], row_keys, lengths, model.n_items)
        rs = score_paths(model, hist=hist, hist_len=hist_len, targets=scores.targets[src],
                         path_tensor=paths, path_len=got)
    return inverse, live, rs


def lift_metric(name: str, base: str, samples: int = SAMPLES, seed: int = 0) -> MetricSpec:
    """A ``MetricSpec`` for ``base`` ('ioi' or 'ior') minus its mean over ``samples`` random valid
    paths of the same length and case (seeded by ``seed``)."""
    value, display, decimals = {"ioi": (ioi, "IoI-lift", 3), "ior": (ior, "IoR-lift", 1)}[base]

    def compute(scores: PathScores, ctx: MetricContext) -> torch.Tensor:
        return value(scores).float() - random_baseline(value, scores, ctx, samples, seed)

    return MetricSpec(name, f"{display}: {display[:3]} minus the mean {display[:3]} of {samples} random "
                      f"valid paths of the same length for the case (length-controlled)",
                      compute, True, display=display, decimals=decimals, needs_simulator=True, default=False)


METRICS: Sequence[MetricSpec] = (lift_metric("ioi-lift", "ioi"), lift_metric("ior-lift", "ior"))


@hookimpl
def register_metrics(register):
    for spec in METRICS:
        register(spec)
