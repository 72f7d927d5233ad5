"""``Table.diff`` / ``pw.stdlib.ordered.diff``: static results, update streams, bad arguments,
and incremental == recomputation on both engine paths of the neighbours operator."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import deltaflow as pw
from _util import snapshot, stream
from deltaflow.engine.stateful import neighbours
from test_stateful_properties import SETTINGS, Event, check, update_streams

#: Values of neighbours.BIG_DELTA forcing the Polars path, the Python path, or a mix.
PATHS = {"columnar": 0, "python": 10**9, "mixed": 3}


@contextlib.contextmanager
def path(mode: str) -> Iterator[None]:
    saved = neighbours.BIG_DELTA
    neighbours.BIG_DELTA = PATHS[mode]
    try:
        yield
    finally:
        neighbours.BIG_DELTA = saved


def series() -> pw.Table:
    return pw.debug.table_from_markdown("""
        | t | v  | w   | k
      1 | 1 | 10 | 1.5 | a
      2 | 3 | 13 | 2.0 | a
      3 | 2 | 11 | 2.5 | b
      4 | 5 | 7  | 3.0 | a
      5 | 4 | 20 | 4.0 | b
    """)


@pytest.mark.parametrize("mode", sorted(PATHS))
def test_diff_static(mode: str) -> None:
    table = series()
    with path(mode):
        result = table.diff(pw.this.t, pw.this.v, pw.this.w)
        assert result.column_names() == ["diff_v", "diff_w"]
        assert repr(result.schema.typehints()["diff_v"]) in ("typing.Optional[int]", "int | None")
        rows = snapshot((table + result).select(pw.this.t, pw.this.diff_v, pw.this.diff_w))
    assert rows == [(1, None, None), (2, 1, 1.0), (3, 2, -0.5), (4, 7, 2.0), (5, -13, -1.0)]


def test_diff_module_function_and_instance() -> None:
    table = series()
    result = pw.stdlib.ordered.diff(table, table.t, table.v, instance=table.k)
    rows = snapshot(table.select(table.k, table.t) + result)
    assert rows == [("a", 1, None), ("a", 3, 3), ("a", 5, -6), ("b", 2, None), ("b", 4, 9)]


def test_diff_ties_follow_ids_and_none_values() -> None:
    table = pw.debug.table_from_markdown("""
        | t | v
      1 | 1 | 1
      2 | 2 |
      3 | 1 | 4
    """)
    rows = snapshot((table + table.diff(pw.this.t, pw.this.v)).select(pw.this.v, pw.this.diff_v))
    # Rows 1 and 3 tie on t: whichever comes first by id has no difference, the other one
    # differs from it; the row holding None has a None difference of its own.
    assert rows in ([(None, None), (1, None), (4, 3)], [(None, None), (1, -3), (4, None)])


def test_diff_of_datetimes_gives_durations() -> None:
    table = pw.debug.table_from_markdown("""
      t | at
      1 | 2024-01-01T00:00:00
      2 | 2024-01-01T00:01:30
    """).select(pw.this.t, at=pw.this.at.dt.strptime("%Y-%m-%dT%H:%M:%S"))
    result = table.diff(pw.this.t, pw.this.at)
    assert sorted(snapshot(result), key=str) == [(None,), (datetime.timedelta(seconds=90),)]


def test_diff_update_stream() -> None:
    table = pw.debug.table_from_markdown("""
        | t | v  | __time__ | __diff__
      1 | 1 | 10 | 2        | 1
      2 | 3 | 13 | 2        | 1
      3 | 2 | 11 | 4        | 1
      2 | 3 | 13 | 6        | -1
      2 | 3 | 20 | 6        | 1
      1 | 1 | 10 | 8        | -1
    """)
    result = (table + table.diff(pw.this.t, pw.this.v)).select(pw.this.t, pw.this.diff_v)
    assert stream(result) == [
        (2, 1, None, 1),
        (2, 3, 3, 1),
        (4, 2, 1, 1),
        (4, 3, 2, 1),
        (4, 3, 3, -1),
        (6, 3, 2, -1),
        (6, 3, 9, 1),
        (8, 1, None, -1),
        (8, 2, None, 1),
        (8, 2, 1, -1),
    ]


def test_diff_none_in_previous_value_stops_the_run() -> None:
    table = pw.debug.table_from_markdown("""
      t | v
      1 |
      2 | 5
    """)
    with pytest.raises(ValueError, match="unwrap"):
        pw.debug.table_to_dicts(table.diff(pw.this.t, pw.this.v))


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.diff("t", pw.this.v),
        lambda t: t.diff(pw.this.t, "v"),
        lambda t: t.diff(pw.this.t + 1, pw.this.v),
        lambda t: t.diff(pw.this.t, pw.this.v, instance="k"),
    ],
)
def test_diff_needs_column_references(call: object) -> None:
    with pytest.raises(TypeError, match="column reference"):
        call(series())  # type: ignore[operator]


def test_diff_of_strings_fails_when_defined() -> None:
    with pytest.raises(TypeError):
        series().diff(pw.this.t, pw.this.k)


@SETTINGS
@given(update_streams(max_key=3), st.sampled_from(sorted(PATHS)), st.booleans())
def test_diff_matches_recomputation(events: list[Event], mode: str, by_instance: bool) -> None:
    def program(t: pw.Table) -> pw.Table:
        instance = t.k if by_instance else None
        return t + t.diff(t.v, t.k, instance=instance)

    with path(mode):
        check(program, events)


@SETTINGS
@given(update_streams(max_times=5, changes=st.sampled_from([0, 1, 3, 8]), max_key=3))
def test_diff_mixed_paths_with_bursts(events: list[Event]) -> None:
    def program(t: pw.Table) -> pw.Table:
        return (t + t.diff(t.v, t.v, instance=t.k)).select(pw.this.v, pw.this.diff_v)

    with path("mixed"):
        check(program, events)
