"""``pw.reducers.count_distinct_approximate``: deltaflow gives the exact count (the group's rows
are kept anyway, so an estimate would only add error)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

import deltaflow as pw
from _util import snapshot, stream
from test_stateful_properties import SETTINGS, Event, _stream_table, update_streams


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


@pytest.mark.parametrize("precision", [4, 10, 18])
def test_large_groups_are_counted_exactly_at_every_precision(precision: int) -> None:
    # 3000 distinct values spread over 7 groups, each value seen twice: a 16-register sketch
    # would be off by a quarter or more, the count is exact.
    rows = "\n".join(f"{i % 7} | {i * 7919 % 100_003}" for i in range(3000))
    t = pw.debug.table_from_markdown("g | v\n" + rows + "\n" + rows)
    result = t.groupby(t.g).reduce(
        t.g,
        exact=pw.reducers.count_distinct(t.v),
        approx=pw.reducers.count_distinct_approximate(t.v, precision=precision),
    )
    got = snapshot(result)
    assert len(got) == 7
    assert all(exact == approx for _, exact, approx in got)
    assert sum(exact for _, exact, _ in got) == 3000


def test_streamed_updates_match_a_recount() -> None:
    # Insertions and deletions of repeated values: each time's value is the number of
    # distinct values alive at that time.
    t = pw.debug.table_from_markdown("""
          | v  | __time__ | __diff__
        1 | 10 | 2 | 1
        2 | 10 | 2 | 1
        3 | 20 | 2 | 1
        1 | 10 | 4 | -1
        4 | 30 | 4 | 1
        2 | 10 | 6 | -1
        3 | 20 | 6 | -1
    """)
    result = t.reduce(n=pw.reducers.count_distinct_approximate(t.v, precision=4))
    assert stream(result) == [(2, 2, 1), (4, 2, -1), (4, 3, 1), (6, 1, 1), (6, 3, -1)]


def test_precision_is_checked_when_defined() -> None:
    t = pw.debug.table_from_markdown("a\n1")
    for wrong in (3, 19):
        with pytest.raises(ValueError, match="precision must be between 4 and 18"):
            pw.reducers.count_distinct_approximate(t.a, precision=wrong)
    with pytest.raises(TypeError, match="precision must be an int"):
        pw.reducers.count_distinct_approximate(t.a, precision=4.0)  # type: ignore[arg-type]


@SETTINGS
@given(update_streams())
def test_update_stream_equals_count_distincts(events: list[Event]) -> None:
    # For any stream of insertions, deletions and updates, the incremental updates of
    # count_distinct_approximate are those of count_distinct (which test_stateful_properties
    # checks against recomputation), time by time.
    def updates(reducer: object) -> list[tuple[Any, ...]]:
        pw.clear_graph()
        t = _stream_table(events)
        result = t.groupby(t.k).reduce(t.k, n=reducer(t.v))  # type: ignore[operator]
        return sorted(
            (time, row["k"], row["n"], diff) for time, row, diff in pw.debug.table_to_stream(result)
        )

    exact = updates(pw.reducers.count_distinct)
    approximate = updates(lambda v: pw.reducers.count_distinct_approximate(v, precision=4))
    assert approximate == exact
