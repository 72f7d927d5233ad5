"""Int ``sum`` and ``avg`` near and past the 64-bit range, as Pathway 0.33 computes them: the
sum wraps around at 64 bits, and ``avg`` divides that wrapped sum, turned into a float, by
the count turned into a float. Every reduce path (running accumulators, the small-delta fold,
groups recomputed from their rows, windows) gives the same values whether the rows arrive in
one minibatch or one by one, and a live group retracts exactly the value it emitted."""

from __future__ import annotations

import random
from typing import Any

import pytest
from tests._util import snapshot, stream

import deltaflow as pw
from deltaflow._float_sums import average, wrap_int64

_BIG = 2**62
# Summing to 2305843009213694124 (over 2**53): float(sum) / 3 and the correctly rounded
# sum / 3 differ in the last place, and Pathway gives the first.
_ROUNDED = [2305843009213694124, 2**40, -(2**40)]


def _table(values: list[int], *, one_by_one: bool, groups: int = 1) -> pw.Table:
    """Rows (k, v, ts) in one minibatch, or each at its own time."""
    header = "  | k | v | ts" + (" | __time__" if one_by_one else "")
    lines = [
        f"{i} | {i % groups} | {v} | {i % 20}" + (f" | {2 * (i + 1)}" if one_by_one else "")
        for i, v in enumerate(values)
    ]
    return pw.debug.table_from_markdown("\n".join([header, *lines]))


def _expected(values: list[int]) -> tuple[int, float]:
    total = wrap_int64(sum(values))
    return total, float(total) / len(values)


def test_average_helper_divides_as_pathway() -> None:
    assert average(3 * _BIG, 3) == float(-(2**62)) / 3
    total = sum(_ROUNDED)
    assert average(total, 3) == float(total) / 3 != total / 3
    assert average(1.5, 2) == 0.75


@pytest.mark.parametrize("one_by_one", [False, True], ids=["one-batch", "one-by-one"])
@pytest.mark.parametrize(
    "extra",
    [{}, {"t": pw.reducers.sorted_tuple}],
    ids=["accumulated", "recomputed-with-a-tuple"],
)
@pytest.mark.parametrize("values", [[_BIG] * 3, _ROUNDED, [-_BIG] * 3], ids=str)
def test_grouped_sum_and_avg(values: list[int], extra: dict[str, Any], one_by_one: bool) -> None:
    table = _table(values, one_by_one=one_by_one)
    more = {name: reducer(table.v) for name, reducer in extra.items()}
    result = table.groupby(table.k).reduce(
        s=pw.reducers.sum(table.v), a=pw.reducers.avg(table.v), **more
    )
    total, mean = _expected(values)
    assert [row[:2] for row in snapshot(result)] == [(total, mean)]


@pytest.mark.parametrize("one_by_one", [False, True], ids=["one-batch", "one-by-one"])
def test_global_reduce(one_by_one: bool) -> None:
    values = [_BIG] * 3 + _ROUNDED
    table = _table(values, one_by_one=one_by_one)
    result = table.reduce(s=pw.reducers.sum(table.v), a=pw.reducers.avg(table.v))
    assert snapshot(result) == [_expected(values)]


@pytest.mark.parametrize("one_by_one", [False, True], ids=["one-batch", "one-by-one"])
def test_windowed_sum_and_avg(one_by_one: bool) -> None:
    # ts = position % 20: rows 0-9 fall in window 0, rows 10-12 in window 10.
    values = [_BIG] * 3 + _ROUNDED + [1, 2, 3, 4] + [_BIG, _BIG, 7]
    table = _table(values, one_by_one=one_by_one)
    result = table.windowby(table.ts, window=pw.temporal.tumbling(duration=10)).reduce(
        start=pw.this._pw_window_start,
        s=pw.reducers.sum(pw.this.v),
        a=pw.reducers.avg(pw.this.v),
    )
    assert snapshot(result) == [(0, *_expected(values[:10])), (10, *_expected(values[10:]))]


def _retractions_match(changes: list[tuple[Any, ...]]) -> None:
    """Every retraction of a group's row removes the value that group last emitted."""
    live: dict[Any, tuple[Any, ...]] = {}
    for _time, key, *values, diff in sorted(changes, key=lambda c: (c[0], c[-1])):
        if diff < 0:
            assert live.pop(key) == tuple(values), (key, values)
        else:
            assert key not in live
            live[key] = tuple(values)


def test_live_averages_retract_what_they_emitted() -> None:
    # Many live one-row updates of big sums through both the small-delta fold and the
    # columnar group state: the two used to round the average differently, so a group could
    # retract a value one unit in the last place away from the one it had emitted.
    rng = random.Random(3)
    values = [rng.choice([_BIG, 2**61 + 7, -_BIG - 3, 2**63 - 1]) for _ in range(600)]
    groups = 3
    live = _table(values, one_by_one=True, groups=groups)
    averages = live.groupby(live.k).reduce(live.k, a=pw.reducers.avg(live.v))
    _retractions_match(stream(averages))
    batch = _table(values, one_by_one=False, groups=groups)
    final = batch.groupby(batch.k).reduce(batch.k, a=pw.reducers.avg(batch.v))
    expected = [(k, _expected(values[k::groups])[1]) for k in range(groups)]
    assert snapshot(final) == expected
    assert snapshot(averages) == expected
