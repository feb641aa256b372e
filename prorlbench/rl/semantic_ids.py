"""Semantic item IDs for the ``semantic-id`` policy: each item is a short code of codebook tokens.

Where the data ships codes (``Interactions.item_codes``; ``prorl-json`` loads ProRL's
``*.sem_ids``) they are used as they are. Otherwise :func:`build_codes` makes TIGER-style codes
by residual k-means (RQ-KMeans, scikit-learn):

1. item vectors from the *training* sequences only: the item x item co-occurrence counts (two
   items co-occur when one user's sequence holds both), log-scaled, reduced by a truncated SVD
   to ``svd_dim`` columns and L2-normalised; where the dataset has attributes their one-hot
   (scaled to unit norm) is appended;
2. ``n_codebooks`` levels of k-means with ``codebook_size`` centroids, each on the residual the
   previous levels left (the size is capped at the number of distinct residual rows, so a small
   catalog gets fewer centroids);
3. a last *disambiguation* token: 0 for the first item of each group of colliding codes, 1 for
   the second, ... (ProRL's file does the same, counting from 1).

So every code maps to exactly one item. The codes are seeded (``codes_seed``) and cached under
``<cache>/semantic_ids/`` with a key of the training sequences, the attributes and the code
options; a broken cache file is rebuilt.

:class:`SemanticIds` turns codes into decoder tokens: token 0 is padding (and the decoder's start
token), digit ``d`` of a code occupies tokens ``offset_d + 1 .. offset_d + size_d``, then EOS.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..folder.files import safe_name

log = logging.getLogger("prorlbench")

CODES_VERSION = 1


@dataclass(frozen=True)
class SemanticIds:
    """``codes [n_items, D]`` (digit ``d`` in ``0 .. sizes[d] - 1``) and the token layout."""

    codes: torch.Tensor
    sizes: tuple[int, ...]
    source: str = ""

    @classmethod
    def from_codes(cls, codes: Sequence[Sequence[int]] | np.ndarray | torch.Tensor, source: str = ""
                   ) -> "SemanticIds":
        t = torch.as_tensor(np.asarray(codes, dtype=np.int64))
        if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
            raise ValueError(f"codes must be a non-empty [n_items, D] table, got shape {tuple(t.shape)}")
        if bool((t < 0).any()):
            raise ValueError("codes must be >= 0")
        if torch.unique(t, dim=0).shape[0] != t.shape[0]:
            raise ValueError("two items share a code: codes must be unique")
        sizes = tuple(int(x) + 1 for x in t.max(0).values.tolist())
        return cls(t, sizes, source)

    @property
    def n_items(self) -> int:
        return self.codes.shape[0]

    @property
    def n_digits(self) -> int:
        return self.codes.shape[1]

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(x) for x in np.cumsum((0,) + self.sizes[:-1]))

    @property
    def eos(self) -> int:
        return sum(self.sizes) + 1

    @property
    def vocab_size(self) -> int:
        """pad (0) + every digit token + EOS."""
        return sum(self.sizes) + 2

    def item_tokens(self) -> torch.Tensor:
        """``[n_items + 1, D]`` decoder tokens of every item; the last row (pad item) is all 0."""
        off = torch.tensor(self.offsets, dtype=torch.long)
        return torch.cat([self.codes + off + 1, torch.zeros(1, self.n_digits, dtype=torch.long)], 0)

    def token_digit(self) -> torch.Tensor:
        """``[vocab]`` the digit a token belongs to (-1 for pad and EOS)."""
        out = torch.full((self.vocab_size,), -1, dtype=torch.long)
        for d, (o, s) in enumerate(zip(self.offsets, self.sizes)):
            out[o + 1 : o + 1 + s] = d
        return out

    def item_of(self, code: Sequence[int]) -> int | None:
        """The item whose code is ``code`` (digits, not tokens), or None."""
        hit = (self.codes == torch.tensor(list(code), dtype=torch.long)).all(1).nonzero()
        return int(hit[0, 0]) if len(hit) else None


# --------------------------------------------------------------------------------------------
# Building codes: item vectors, RQ-KMeans, disambiguation
# --------------------------------------------------------------------------------------------


def item_vectors(sequences: Sequence[Sequence[int]], n_items: int,
                 attributes: Sequence[frozenset[int]] | None = None, svd_dim: int = 64, seed: int = 0
                 ) -> np.ndarray:
    """``[n_items, k]`` float64: truncated SVD of the log co-occurrence matrix, L2-normalised,
    plus the unit-norm attribute one-hot where attributes exist. Items never seen get zeros
    (then only the disambiguation token tells them apart)."""
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD

    rows, cols = [], []
    for u, seq in enumerate(sequences):
        for i in set(int(x) for x in seq if 0 <= int(x) < n_items):
            rows.append(u)
            cols.append(i)
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(max(len(sequences), 1), n_items))
    co = (x.T @ x).tocsr()
    co.data = np.log1p(co.data)
    k = max(1, min(svd_dim, n_items - 1))
    if co.nnz and n_items > 1:
        vec = TruncatedSVD(n_components=k, random_state=seed).fit_transform(co)
    else:
        vec = np.zeros((n_items, k))
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    vec = np.divide(vec, norm, out=np.zeros_like(vec), where=norm > 0)
    if attributes is not None:
        n_attr = max((max(a) for a in attributes if a), default=-1) + 1
        if n_attr > 0:
            hot = np.zeros((n_items, n_attr))
            for i, a in enumerate(attributes):
                if a:
                    hot[i, sorted(a)] = 1.0 / np.sqrt(len(a))
            vec = np.concatenate([vec, hot], 1)
    return vec


def rq_kmeans(vectors: np.ndarray, n_codebooks: int = 3, codebook_size: int = 256, seed: int = 0) -> np.ndarray:
    """``[n, n_codebooks]`` int64 residual k-means codes (level ``l`` seeded ``seed + l``)."""
    from sklearn.cluster import KMeans

    residual = np.asarray(vectors, dtype=np.float64).copy()
    n = residual.shape[0]
    codes = np.zeros((n, n_codebooks), dtype=np.int64)
    for level in range(n_codebooks):
        distinct = np.unique(np.round(residual, 12), axis=0).shape[0]
        k = max(1, min(codebook_size, distinct))
        if k == 1:
            centers, labels = residual.mean(0, keepdims=True), np.zeros(n, dtype=np.int64)
        else:
            km = KMeans(n_clusters=k, random_state=seed + level, n_init=1, max_iter=100).fit(residual)
            centers, labels = km.cluster_centers_, km.labels_.astype(np.int64)
        codes[:, level] = labels
        residual = residual - centers[labels]
    return codes


def disambiguate(codes: np.ndarray, start: int = 0) -> np.ndarray:
    """Append a token that numbers (from ``start``) the items sharing the same code."""
    seen: dict[tuple[int, ...], int] = {}
    extra = np.zeros((codes.shape[0], 1), dtype=np.int64)
    for i, row in enumerate(map(tuple, codes.tolist())):
        extra[i, 0] = start + seen.get(row, 0)
        seen[row] = seen.get(row, 0) + 1
    return np.concatenate([codes, extra], 1)


def _key(sequences: Sequence[Sequence[int]], n_items: int, attributes: Sequence[frozenset[int]] | None,
         options: dict) -> str:
    h = hashlib.sha256(json.dumps({"v": CODES_VERSION, "n_items": n_items, **options}, sort_keys=True).encode())
    for seq in sequences:
        h.update(np.asarray(seq, dtype=np.int64).tobytes() + b"|")
    if attributes is not None:
        h.update(repr([sorted(a) for a in attributes]).encode())
    return h.hexdigest()[:24]


def build_codes(sequences: Sequence[Sequence[int]], n_items: int,
                attributes: Sequence[frozenset[int]] | None = None, *, n_codebooks: int = 3,
                codebook_size: int = 256, seed: int = 0, svd_dim: int = 64,
                cache_dir: Path | str | None = None, name: str = "data") -> SemanticIds:
    """RQ-KMeans codes plus the disambiguation token (see the module docstring), cached."""
    options = {"n_codebooks": n_codebooks, "codebook_size": codebook_size, "seed": seed, "svd_dim": svd_dim}
    path = None
    if cache_dir is not None:
        stem = safe_name(name, limit=40, default="data")  # a plugin's data name is never a path
        path = Path(cache_dir) / "semantic_ids" / f"codes-{stem}-{_key(sequences, n_items, attributes, options)}.json"
        if path.exists():
            try:
                return SemanticIds.from_codes(json.loads(path.read_text())["codes"], source=f"rq-kmeans (cached {path.name})")
            except Exception as exc:  # corrupt: rebuild
                log.warning("semantic-ID cache %s unreadable (%s); rebuilding", path, exc)
    vec = item_vectors(sequences, n_items, attributes, svd_dim=svd_dim, seed=seed)
    codes = disambiguate(rq_kmeans(vec, n_codebooks, codebook_size, seed))
    sem = SemanticIds.from_codes(codes, source="rq-kmeans")
    log.info("semantic IDs: RQ-KMeans %s over %d items, digit sizes %s", options, n_items, sem.sizes)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"options": options, "codes": codes.tolist()}))
        os.replace(tmp, path)
    return sem


def codes_for(data, cache_dir: Path | str | None, n_codebooks: int = 3, codebook_size: int = 256,
              seed: int = 0) -> SemanticIds:
    """The dataset's own codes (``data.item_codes``) when it has them, else RQ-KMeans codes."""
    if data.item_codes is not None:
        return SemanticIds.from_codes(data.item_codes, source=f"{data.name} item_codes")
    return build_codes(data.sequences.get("train", []), data.n_items, data.item_attributes,
                       n_codebooks=n_codebooks, codebook_size=codebook_size, seed=seed,
                       cache_dir=cache_dir, name=data.name)
