"""A HyperLogLog sketch for ``pw.reducers.count_distinct_approximate``.

Each distinct value is hashed to 64 bits (BLAKE2b of its canonical form, so the same values give
the same estimate in every run and on both reduce paths). The top ``precision`` bits choose one
of ``2**precision`` registers; a register keeps the largest rank (position of the first set bit,
counted from 1) among the remaining bits of the hashes routed to it. The cardinality is then
estimated from the histogram of register values with Otmar Ertl's improved raw estimator
("New cardinality estimation algorithms for HyperLogLog sketches", 2017), which needs no
empirical bias tables and stays accurate from a handful of values (where it behaves like linear
counting) to billions. Its relative standard error is about ``1.04 / sqrt(2**precision)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any

MIN_PRECISION = 4
MAX_PRECISION = 18  # 2**18 registers; more would cost more memory than exact counting
_HASH_BITS = 64


def value_hash(key: Any) -> int:
    """A stable 64-bit hash of a canonical value (see ``_types.canonical_key``)."""
    digest = hashlib.blake2b(repr(key).encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def registers(hashes: Iterable[int], precision: int) -> list[int]:
    """The register values of a sketch holding the given 64-bit hashes."""
    width = _HASH_BITS - precision
    mask = (1 << width) - 1
    values = [0] * (1 << precision)
    for hashed in hashes:
        index = hashed >> width
        rest = hashed & mask
        # rank: 1 + number of leading zeros of ``rest`` in ``width`` bits (width + 1 if zero)
        rank = width - rest.bit_length() + 1
        if rank > values[index]:
            values[index] = rank
    return values


def estimate(register_values: list[int], precision: int) -> float:
    """Ertl's improved raw estimate of the number of distinct hashes behind the registers."""
    m = len(register_values)
    width = _HASH_BITS - precision
    histogram = [0] * (width + 2)
    for value in register_values:
        histogram[value] += 1
    if histogram[0] == m:
        return 0.0
    z = m * _tau(1.0 - histogram[width + 1] / m)
    for k in range(width, 0, -1):
        z = 0.5 * (z + histogram[k])
    z += m * _sigma(histogram[0] / m)
    return m * m / (2.0 * math.log(2.0)) / z


def count(hashes: Iterable[int], precision: int) -> int:
    """The rounded cardinality estimate of a set of 64-bit hashes."""
    return round(estimate(registers(hashes, precision), precision))


def _sigma(x: float) -> float:
    """sigma(x) = x + sum_k x^(2^k) 2^(k-1), the correction for empty registers."""
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    """tau(x), the correction for saturated registers (0 when none is saturated)."""
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1.0 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0
