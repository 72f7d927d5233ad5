"""Accurate sums of floats for ``pw.reducers.sum`` and ``pw.reducers.avg``.

A plain left-to-right float sum loses the small terms next to big ones that later cancel
(``1e16 + 0.5 - 1e16`` gives ``0.0``). Pathway's float sums are compensated, so the values of
a minibatch are added here without that loss:

* in Python, with :func:`math.fsum` (correctly rounded);
* in Polars group aggregations, by splitting each value ``x`` of a group into a high part
  ``q`` on a grid coarse enough that the ``q`` add up exactly in any order, and a small
  remainder ``r = x - q`` (exact as well); the group's sum is ``sum(q) + sum(r)``, whose only
  rounding is in the sum of the small remainders. The grid is ``sigma = 2**k`` with
  ``sigma >= 2 * count * max|x|`` (the error-free extraction of Rump, Ogita and Oishi).

Values that are not finite (inf, NaN) or so large that the grid overflows fall back to the
plain sum, which gives the IEEE answer for them. Sums of ints are exact already and sums of
numpy arrays are left as they are.

Within a minibatch the sum is accurate; a group's running total adds each minibatch's sum to
the previous total with one ordinary float addition (the reduce operator keeps one
accumulator per sum).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t


def is_float_sum(arg_type: t.DType) -> bool:
    """Whether a sum over values of this type is a float sum (compensated here)."""
    return arg_type.strip_optional() == t.FLOAT


def exact_sum(values: Iterable[Any]) -> Any:
    """The sum of ``values``: correctly rounded when they hold floats, the plain sum for ints
    and arrays (and for floats that are not finite)."""
    items = list(values)
    if not any(type(value) is float for value in items):
        return builtins.sum(items)
    try:
        return math.fsum(items)
    except (OverflowError, ValueError):  # inf - inf, or an intermediate overflow
        return builtins.sum(items)


def wrap_int64(total: Any) -> Any:
    """An int sum wrapped around at 64 bits, as Polars' sums (the frame path) and Pathway's
    wrap; anything else as it is."""
    if type(total) is int and not t.INT64_MIN <= total <= t.INT64_MAX:
        return (total - t.INT64_MIN) % 2**64 + t.INT64_MIN
    return total


def average(total: Any, count: int) -> Any:
    """``pw.reducers.avg`` of rows summing to ``total``: an int sum wraps at 64 bits and is
    turned into a float before the division, as Pathway, Polars and NumPy divide (Python's
    ``int / int`` rounds once, which above 2**53 can differ from them by one unit in the last
    place); float and array sums are divided as they are."""
    if type(total) is int:
        return float(wrap_int64(total)) / count
    return total / count


def sum_expr(terms: pl.Expr, arg_type: t.DType) -> pl.Expr:
    """A Polars aggregation summing ``terms`` per group: accurate for floats (see the module
    docstring), the plain ``sum()`` otherwise."""
    if not is_float_sum(arg_type):
        return terms.sum()
    largest = terms.abs().max()
    sigma = pl.lit(2.0).pow((largest * terms.len()).log(2).ceil() + 1)
    high = (terms + sigma) - sigma
    total = high.sum() + (terms - high).sum()
    return pl.when(total.is_finite() & (largest > 0)).then(total).otherwise(terms.sum())


def compensate_small_sums(
    calls: Sequence[Any],
    accumulated: Sequence[int],
    sums: Sequence[tuple[int, int]],
    rows: Sequence[tuple[Any, ...]],
    group_of: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    diff_at: int,
    touched: dict[tuple[Any, ...], list[Any]],
    with_deletions: bool,
) -> None:
    """For the reduce operator's small-delta path: replace the running float sums of the
    delta's groups (``touched[group][slot]``, added row by row) by accurate ones.

    ``accumulated`` are the indices of the calls with accumulators and ``sums`` their
    (slot, argument position) pairs, in the same order; deletions count only
    ``with_deletions`` (as they do in the row-by-row sums)."""
    floats = [
        (slot, position)
        for index, (slot, position) in zip(accumulated, sums, strict=True)
        if is_float_sum(calls[index].arg_types[0])
    ]
    if not floats:
        return
    terms: dict[tuple[tuple[Any, ...], int], list[Any]] = {}
    for row in rows:
        diff = row[diff_at]
        if diff < 0 and not with_deletions:
            continue
        group = group_of(row)
        for slot, position in floats:
            terms.setdefault((group, slot), []).append(row[position] * diff)
    for (group, slot), values in terms.items():
        touched[group][slot] = exact_sum(values)
