"""Locality-sensitive hash functions ("bucketers") for vectors.

A bucketer maps a vector to ``L`` bucket numbers, one per band. Each band combines ``M``
elementary hashes (all must agree for two vectors to share the band's bucket), and two
vectors are candidate neighbours when they share the bucket of at least one band.

- Euclidean: an elementary hash is the index of the interval of length ``A`` that the
  vector's projection on a random unit line (with a random offset) falls in.
- Cosine: an elementary hash is the side of a random hyperplane through the origin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["generate_cosine_lsh_bucketer", "generate_euclidean_lsh_bucketer"]

Bucketer = Callable[[Any], np.ndarray]


def _band_number(values: np.ndarray) -> int:
    """A 63-bit number identifying a band's tuple of elementary hashes."""
    data = np.ascontiguousarray(values, dtype=np.int64).tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") >> 1


def generate_euclidean_lsh_bucketer(
    d: int, M: int, L: int, A: float = 1.0, seed: int = 0
) -> Bucketer:  # noqa: N803 - Pathway's parameter names
    """A bucketer for the Euclidean distance in ``d`` dimensions: ``L`` bands of ``M``
    random projections cut into intervals of length ``A``."""
    rng = np.random.default_rng(seed=seed)
    lines = rng.standard_normal((d, M * L))
    lines /= np.linalg.norm(lines, axis=0)
    offsets = rng.random(M * L) * A

    def buckets(vector: Any) -> np.ndarray:
        cells = np.floor((np.asarray(vector, dtype=float) @ lines + offsets) / A)
        return np.array([_band_number(band) for band in np.split(cells, L)], dtype=np.int64)

    return buckets


def generate_cosine_lsh_bucketer(d: int, M: int, L: int, seed: int = 0) -> Bucketer:  # noqa: N803
    """A bucketer for the cosine distance in ``d`` dimensions: ``L`` bands of ``M`` random
    hyperplanes; a band's bucket is the bit pattern of the vector's sides."""
    rng = np.random.default_rng(seed=seed)
    planes = rng.standard_normal((d, M * L))
    weights = 2 ** np.arange(M)

    def buckets(vector: Any) -> np.ndarray:
        sides = (np.asarray(vector, dtype=float) @ planes >= 0).astype(np.int64)
        return np.array([int(band @ weights) for band in np.split(sides, L)], dtype=np.int64)

    return buckets
