"""pw.io.subscribe and pw.io.null."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw


def stream() -> pw.Table:
    return pw.debug.table_from_markdown(
        """
          | k | v | __time__ | __diff__
        1 | x | 1 | 2        | 1
        2 | y | 2 | 2        | 1
        1 | x | 1 | 4        | -1
        1 | x | 5 | 4        | 1
        """
    )


def test_subscribe_callbacks_in_order() -> None:
    events: list = []
    pw.io.subscribe(
        stream(),
        lambda key, row, time, is_addition: events.append(
            (row["k"], row["v"], time, is_addition, isinstance(key, pw.Pointer))
        ),
        on_end=lambda: events.append("end"),
        on_time_end=lambda t: events.append(("t", t)),
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert sorted(events[:2]) == [("x", 1, 2, True, True), ("y", 2, 2, True, True)]
    assert events[2:] == [
        ("t", 2),
        ("x", 1, 4, False, True),
        ("x", 5, 4, True, True),
        ("t", 4),
        "end",
    ]


def test_subscribe_sort_by_and_repeated_access() -> None:
    seen: list[int] = []
    table = pw.debug.table_from_markdown("k | v\nb | 2\na | 3\nc | 1")
    pw.io.subscribe(
        table, lambda key, row, time, is_addition: seen.append(row["v"]), sort_by=[table.v]
    )
    pw.io.subscribe(table, lambda key, row, time, is_addition: None)  # the name stays callable
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert seen == [1, 2, 3]


def test_callback_error_stops_run_naming_subscriber() -> None:
    def fail(key, row, time, is_addition) -> None:
        raise RuntimeError("bad callback")

    pw.io.subscribe(stream(), fail, name="my-sub")
    with pytest.raises(pw.ConnectorError, match="my-sub.*bad callback"):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)


def test_subscribe_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="callable"):
        pw.io.subscribe(stream(), "not a function")
    with pytest.raises(TypeError, match="expected a table"):
        pw.io.subscribe([], lambda *a: None)


def test_null_write_counts_rows() -> None:
    from deltaflow import plan
    from deltaflow.io.null import NullSink

    pw.io.null.write(stream(), name="nothing")
    sink = plan.REGISTRY.outputs[-1].sink
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert isinstance(sink, NullSink)
    assert sink.stats.rows_written == 4


def test_subscribe_values_and_deletions_first() -> None:
    """Rows reach on_change as Python values (Pointer keys, None, nanosecond timestamps);
    the deletions of a time come before its insertions."""
    import pandas as pd

    stamp = pd.Timestamp("2024-01-02 03:04:05.123456789")
    table = pw.debug.table_from_markdown(
        """
          | k | v | __time__ | __diff__
        1 | c | 7 | 2        | 1
        2 | b |   | 2        | 1
        3 | a | 1 | 4        | 1
        1 | c | 7 | 4        | -1
        """
    ).select(pw.this.k, pw.this.v, at=pw.if_else(pw.this.v.is_none(), None, stamp))
    events: list = []
    pw.io.subscribe(
        table,
        lambda key, row, time, is_addition: events.append(
            (isinstance(key, pw.Pointer), row["k"], row["v"], row["at"], time, is_addition)
        ),
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert sorted(events[:2], key=str) == sorted(
        [(True, "c", 7, stamp, 2, True), (True, "b", None, None, 2, True)], key=str
    )
    assert events[2:] == [(True, "c", 7, stamp, 4, False), (True, "a", 1, stamp, 4, True)]


def test_on_change_gets_keyword_arguments_as_in_pathway() -> None:
    seen: list[list[str]] = []

    def on_change(**kwargs: object) -> None:
        seen.append(sorted(kwargs))

    pw.io.subscribe(pw.debug.table_from_markdown("a\n1"), on_change)
    pw.run()
    assert seen == [["is_addition", "key", "row", "time"]]


def test_async_callbacks_are_awaited() -> None:
    """``async def`` callbacks run to completion, in order, before the run goes on."""
    import asyncio

    seen: list[tuple[int, bool]] = []
    ended: list[bool] = []

    async def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        await asyncio.sleep(0)
        seen.append((row["a"], is_addition))

    async def on_end() -> None:
        await asyncio.sleep(0)
        ended.append(True)

    table = pw.debug.table_from_markdown("a\n1\n2\n3")
    pw.io.subscribe(table, on_change=on_change, on_end=on_end)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert sorted(seen) == [(1, True), (2, True), (3, True)]
    assert ended == [True]


@st.composite
def _batches(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(id, value, diff) rows, as consolidated (no zero diff): changed rows retracted and
    inserted under one id, rows present several times, deletions before or after insertions."""
    ids = st.sampled_from([1, 2, 3, 2**64 + 5, 2**127 + 9])
    diffs = st.sampled_from([-1, -1, 1, 1, -2, 2])
    return draw(st.lists(st.tuples(ids, st.integers(0, 9), diffs), min_size=1, max_size=12))


@settings(max_examples=200, deadline=None)
@given(_batches(), st.booleans())
def test_subscriber_sees_each_row_as_the_model_orders_it(
    rows: list[tuple[int, int, int]], sorted_by_user: bool
) -> None:
    """on_change per row copy, with ``is_addition`` from its diff's sign and ``key`` the row's
    Pointer; deletions before insertions (stable within each) unless ``sort_by`` ordered the
    rows, which are then called in their order."""
    from deltaflow import _types as t
    from deltaflow.io._core.callback_sink import CallbackSink

    batch = pl.DataFrame(
        {
            "_id": pl.Series([r[0] for r in rows], dtype=pl.UInt128),
            "v": [r[1] for r in rows],
            "_diff": [r[2] for r in rows],
        }
    )
    seen: list[tuple[Any, ...]] = []

    def on_change(*, key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        assert type(key) is pw.Pointer
        seen.append((int(key), row["v"], time, is_addition))

    sink = CallbackSink(
        "subscriber", {"v": t.INT}, on_change=on_change, sorted_by_user=sorted_by_user
    )
    sink.on_batch(6, batch)
    mixed = min(r[2] for r in rows) < 0 < max(r[2] for r in rows)
    order = (
        rows
        if sorted_by_user or not mixed
        else [r for r in rows if r[2] < 0] + [r for r in rows if r[2] > 0]
    )
    expected = [
        (row_id, value, 6, diff > 0) for row_id, value, diff in order for _ in range(abs(diff))
    ]
    assert seen == expected
