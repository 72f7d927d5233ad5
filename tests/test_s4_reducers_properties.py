"""Property tests for the reducers added or changed for Pathway parity: the incremental update
stream equals from-scratch recomputation at every time (helpers of test_stateful_properties).

Order-insensitive user reducers are used here: an order-sensitive accumulator legitimately
depends on the times its rows arrived (as in Pathway), so it is tested on fixed streams in
test_s4_reducers_custom.py instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import deltaflow as pw
from test_stateful_properties import SETTINGS, Event, check, update_streams


class SquareSum(pw.BaseCustomAccumulator):
    """Sum of squares, with retract (so removals are taken back, not rebuilt)."""

    def __init__(self, total: int) -> None:
        self.total = total

    @classmethod
    def from_row(cls, row: list[Any]) -> SquareSum:
        return cls(row[0] * row[0])

    def update(self, other: SquareSum) -> None:
        self.total += other.total

    def retract(self, other: SquareSum) -> None:
        self.total -= other.total

    def compute_result(self) -> int:
        return self.total


class Largest(pw.BaseCustomAccumulator):
    """The largest value, without retract (removals rebuild the accumulator)."""

    def __init__(self, value: int) -> None:
        self.value = value

    @classmethod
    def from_row(cls, row: list[Any]) -> Largest:
        return cls(row[0])

    def update(self, other: Largest) -> None:
        self.value = max(self.value, other.value)

    def compute_result(self) -> int:
        return self.value


def _net_count(state: Any, rows: list[tuple[list[Any], int]]) -> int:
    return (state or 0) + sum(count for _, count in rows)


NEW_REDUCERS: dict[str, Callable[[pw.Table], Any]] = {
    "count_distinct_approximate": lambda t: pw.reducers.count_distinct_approximate(
        t.v, precision=4
    ),
    "count_distinct_approximate_pairs": lambda t: pw.reducers.count_distinct_approximate(t.k, t.v),
    "udf_with_retract": lambda t: pw.reducers.udf_reducer(SquareSum)(t.v),
    "udf_rebuilt": lambda t: pw.reducers.udf_reducer(Largest)(t.v),
    "stateful_many_count": lambda t: pw.reducers.stateful_many(_net_count)(t.v),
    "float_sum": lambda t: pw.reducers.sum(t.v * 0.1),
}


@SETTINGS
@given(update_streams(), st.sampled_from(sorted(NEW_REDUCERS)))
def test_new_reducers_match_recomputation(stream: list[Event], name: str) -> None:
    def program(t: pw.Table) -> pw.Table:
        return t.groupby(t.k).reduce(t.k, r=NEW_REDUCERS[name](t))

    check(program, stream)


@SETTINGS
@given(update_streams(), st.sampled_from(["tuple", "ndarray", "sorted_tuple"]))
def test_sort_by_order_matches_recomputation(stream: list[Event], name: str) -> None:
    reducer = getattr(pw.reducers, name)

    def program(t: pw.Table) -> pw.Table:
        result = t.groupby(t.k, sort_by=t.v).reduce(t.k, r=reducer(t.v * 10 + t.k))
        if name == "ndarray":  # compare arrays by their values
            return result.select(
                pw.this.k, r=pw.apply(lambda a: tuple(np.asarray(a).tolist()), pw.this.r)
            )
        return result

    check(program, stream)


@SETTINGS
@given(update_streams())
def test_sum_of_arrays_matches_recomputation(stream: list[Event]) -> None:
    def program(t: pw.Table) -> pw.Table:
        arrays = t.select(
            t.k, a=pw.apply_with_type(lambda v: np.array([v, 2 * v]), np.ndarray, t.v)
        )
        summed = arrays.groupby(arrays.k).reduce(arrays.k, s=pw.reducers.sum(arrays.a))
        return summed.select(summed.k, s=pw.apply(lambda a: tuple(a.tolist()), summed.s))

    check(program, stream)
