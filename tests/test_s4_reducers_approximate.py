"""``pw.reducers.count_distinct_approximate``: a HyperLogLog estimate of distinct values."""

from __future__ import annotations

import pytest

import deltaflow as pw
from _util import snapshot, stream
from deltaflow import _hyperloglog as hll


def test_small_groups_are_counted_exactly() -> None:
    t = pw.debug.table_from_markdown("""
        a | b
        1 | 2
        3 | 4
        3 | 5
        5 | 5
        5 | 6
    """)
    result = t.reduce(
        empty=pw.reducers.count_distinct_approximate(),
        a=pw.reducers.count_distinct_approximate(t.a),
        b=pw.reducers.count_distinct_approximate(t.b, precision=8),
        both=pw.reducers.count_distinct_approximate(t.a, t.b, precision=18),
    )
    assert snapshot(result) == [(1, 3, 4, 5)]
    assert result.schema.typehints()["a"] is int


def test_estimate_follows_deletions() -> None:
    t = pw.debug.table_from_markdown("""
          | g | v | __time__ | __diff__
        1 | 1 | 1 | 2 | 1
        2 | 1 | 2 | 2 | 1
        3 | 1 | 2 | 2 | 1
        2 | 1 | 2 | 4 | -1
        3 | 1 | 2 | 6 | -1
    """)
    result = t.groupby(t.g).reduce(n=pw.reducers.count_distinct_approximate(t.v))
    assert stream(result) == [(2, 2, 1), (6, 1, 1), (6, 2, -1)]


@pytest.mark.parametrize("precision", [4, 10, 14])
def test_estimate_is_within_a_few_standard_errors(precision: int) -> None:
    count = 3000
    rows = "\n".join(f"{i % 7} | {i * 7919 % 100_003}" for i in range(count))
    t = pw.debug.table_from_markdown("g | v\n" + rows)
    result = t.reduce(
        exact=pw.reducers.count_distinct(t.v),
        approx=pw.reducers.count_distinct_approximate(t.v, precision=precision),
    )
    [(exact, approx)] = snapshot(result)
    assert exact == count
    assert abs(approx - exact) / exact < 4 * 1.04 / 2 ** (precision / 2)


def test_precision_is_checked_when_defined() -> None:
    t = pw.debug.table_from_markdown("a\n1")
    for wrong in (3, 19):
        with pytest.raises(ValueError, match="precision must be between 4 and 18"):
            pw.reducers.count_distinct_approximate(t.a, precision=wrong)
    with pytest.raises(TypeError, match="precision must be an int"):
        pw.reducers.count_distinct_approximate(t.a, precision=4.0)  # type: ignore[arg-type]


def test_estimator_statistics() -> None:
    # Hashes of distinct integers behave like random ones: the estimate of 20000 values at
    # precision 12 (standard error 1.6%) stays within 5%, an empty sketch estimates 0.
    hashes = [hll.value_hash(i) for i in range(20_000)]
    assert abs(hll.count(hashes, 12) - 20_000) < 1_000
    assert hll.count([], 8) == 0
    assert hll.value_hash((1, "a")) == hll.value_hash((1, "a"))
