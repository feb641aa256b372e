"""``synthetic``: the embedded default dataset, a small world with known user dynamics (SPEC section 7).

The world:

* ``n_genres`` genre centres are random unit vectors in ``dim`` dimensions; each item belongs to
  one genre (balanced, randomly assigned) and its latent vector ``e_i`` is the genre centre plus
  isotropic Gaussian noise of expected norm ``item_spread``, normalised to unit length. The genre id is the item's attribute.
* Item popularity ``pop_i ~ popularity_scale * N(0, 1)``.
* A user's initial preference is the unit-normalised centre of a random genre plus
  noise of expected norm ``pref_noise``.
* At each step every user consumes item ``i`` with probability
  ``softmax_i(beta * pref . e_i + pop_i)`` over the items it has **not consumed yet** (no repeat
  consumption, as in MovieLens), then its preference drifts: ``pref <- gamma * pref + (1 - gamma) * e_i``.

All users step in parallel (one ``[n_users, n_items]`` logit matrix per step); sampling uses the
Gumbel-max trick with a seeded ``torch.Generator`` on the CPU, so a seed gives the same data on
every machine. Every user gets ``seq_len`` items. Users are split user-disjointly with
:func:`prorlbench.seq.cases.split_users`. ``Interactions.world`` holds a :class:`SyntheticWorld`, which
the ``oracle`` simulator replays.

Deviation from a "real" log: no timestamps or ratings; sequence order is the consumption order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from prorlbench import hookimpl
from prorlbench.api import DatasetSpec, Interactions
from prorlbench.toolkit import ConfigError, opt, split_users


MAX_ITEMS = 1_000_000
MAX_USERS = 10_000_000
MAX_INTERACTIONS = 200_000_000
"""Bounds of the synthetic world's size (anything larger does not fit in memory anyway)."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes and dynamics of the synthetic world."""

    n_items: int = opt(300, "catalog size")
    n_users: int = opt(1000, "number of users (all splits together)")
    n_genres: int = opt(10, "number of genres (item clusters; also the item attributes)")
    dim: int = opt(16, "latent dimension of item and preference vectors")
    seq_len: int = opt(30, "items consumed per user")
    beta: float = opt(8.0, "preference sharpness: logit = beta * pref . e_i + pop_i")
    gamma: float = opt(0.8, "preference drift: pref <- gamma * pref + (1 - gamma) * e_i")
    popularity_scale: float = opt(1.0, "std of the item popularity logits pop_i")
    item_spread: float = opt(0.5, "expected norm of the noise added to the genre centre (before normalising)")
    pref_noise: float = opt(0.5, "expected norm of the noise around a user's initial genre centre")
    split: list[float] = opt([0.8, 0.1, 0.1], "train / valid / test shares of users", ge=0)
    seed: int = opt(0, "seed of the world and of the user split")

    def __post_init__(self) -> None:
        checks = [
            (2 <= self.n_items <= MAX_ITEMS, f"n_items must be between 2 and {MAX_ITEMS:,}"),
            (3 <= self.n_users <= MAX_USERS, f"n_users must be between 3 and {MAX_USERS:,}"),
            (self.dim <= 4096, "dim must be <= 4096"),
            (self.n_genres >= 1, "n_genres must be >= 1"),
            (self.dim >= 1, "dim must be >= 1"),
            (2 <= self.seq_len <= self.n_items, "seq_len must be between 2 and n_items (a simulator "
             "learns from consecutive items)"),
            (self.n_users * self.seq_len <= MAX_INTERACTIONS,
             f"n_users * seq_len must be <= {MAX_INTERACTIONS:,} interactions"),
            (0.0 <= self.gamma <= 1.0, "gamma must be in [0, 1]"),
            (self.popularity_scale >= 0 and self.item_spread >= 0 and self.pref_noise >= 0,
             "popularity_scale, item_spread and pref_noise must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"datasets.synthetic: {msg}")


@dataclass(frozen=True, eq=False)
class SyntheticWorld:
    """The ground-truth process (what ``oracle`` replays). Tensors live on the CPU."""

    item_vectors: torch.Tensor
    """``[n_items, dim]`` unit-norm latent vectors ``e_i``."""
    popularity: torch.Tensor
    """``[n_items]`` popularity logits ``pop_i``."""
    item_genre: tuple[int, ...]
    beta: float
    gamma: float
    initial_preferences: torch.Tensor
    """``[n_users, dim]`` each user's starting preference (in generation order, before the split)."""

    @property
    def n_items(self) -> int:
        return int(self.item_vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])


def _gumbel(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    u = torch.rand(shape, generator=gen).clamp_(1e-10, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def generate(cfg: SyntheticConfig) -> tuple[SyntheticWorld, torch.Tensor]:
    """The world and the ``[n_users, seq_len]`` consumption sequences, deterministic in ``cfg.seed``."""
    gen = torch.Generator().manual_seed(cfg.seed)
    n, u, d = cfg.n_items, cfg.n_users, cfg.dim
    centres = torch.nn.functional.normalize(torch.randn(cfg.n_genres, d, generator=gen), dim=1)
    genre = (torch.arange(n) % cfg.n_genres)[torch.randperm(n, generator=gen)]
    items = centres[genre] + cfg.item_spread * torch.randn(n, d, generator=gen) / d**0.5
    items = torch.nn.functional.normalize(items, dim=1)
    pop = cfg.popularity_scale * torch.randn(n, generator=gen)
    user_genre = torch.randint(cfg.n_genres, (u,), generator=gen)
    pref0 = centres[user_genre] + cfg.pref_noise * torch.randn(u, d, generator=gen) / d**0.5
    pref0 = torch.nn.functional.normalize(pref0, dim=1)

    pref = pref0.clone()
    consumed = torch.zeros(u, n, dtype=torch.bool)
    seqs = torch.empty(u, cfg.seq_len, dtype=torch.long)
    rows = torch.arange(u)
    for t in range(cfg.seq_len):
        logits = cfg.beta * pref @ items.T + pop
        logits.masked_fill_(consumed, float("-inf"))
        choice = (logits + _gumbel((u, n), gen)).argmax(1)
        seqs[:, t] = choice
        consumed[rows, choice] = True
        pref = cfg.gamma * pref + (1.0 - cfg.gamma) * items[choice]
    world = SyntheticWorld(item_vectors=items, popularity=pop, item_genre=tuple(int(g) for g in genre),
                           beta=float(cfg.beta), gamma=float(cfg.gamma), initial_preferences=pref0)
    return world, seqs


def load(cfg: SyntheticConfig, data_dir: Path | None = None) -> Interactions:
    """Generate the synthetic dataset (``data_dir`` is ignored)."""
    world, seqs = generate(cfg)
    parts = split_users(cfg.n_users, cfg.split, cfg.seed)
    rows = seqs.tolist()
    sequences = {s: [tuple(rows[i]) for i in idx] for s, idx in parts.items()}
    users = {s: [str(i) for i in idx] for s, idx in parts.items()}
    return Interactions(
        name="synthetic",
        n_items=cfg.n_items,
        sequences=sequences,
        users=users,
        item_ids=tuple(str(i) for i in range(cfg.n_items)),
        item_attributes=tuple(frozenset({g}) for g in world.item_genre),
        item_names=tuple(f"item {i} (genre {g})" for i, g in enumerate(world.item_genre)),
        world=world,
        notes=(f"synthetic world: {cfg.n_users} users x {cfg.seq_len} items, {cfg.n_items} items in "
               f"{cfg.n_genres} genres, beta={cfg.beta}, gamma={cfg.gamma}, seed={cfg.seed}",),
    )


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="synthetic",
        summary="Synthetic world with genre clusters and drifting preferences (SPEC 7); needs no download",
        load=load,
        config_cls=SyntheticConfig,
        needs_data_dir=False,
    ))
