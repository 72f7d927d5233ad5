"""Property tests: with error values present, the incremental update stream equals the
differences of from-scratch recomputations at every time (terminate_on_error=False)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given

import deltaflow as pw
from test_stateful_properties import (
    SETTINGS,
    Event,
    _row,
    _state_at,
    _static_table,
    _stream_table,
    _times,
    update_streams,
)


def _stream(table: pw.Table) -> list[tuple[int, dict[str, Any], int]]:
    return pw.debug.table_to_stream(table, terminate_on_error=False)


def check_with_errors(program: Callable[..., pw.Table], *streams: list[Event]) -> None:
    """Like test_stateful_properties.check, in runs that keep errors as values."""
    pw.clear_graph()
    incremental: dict[int, Counter] = {}
    for time, row, diff in _stream(program(*map(_stream_table, streams))):
        assert diff != 0
        incremental.setdefault(time, Counter())[_row(row)] += diff
    previous: Counter = Counter()
    for time in _times(*streams):
        pw.clear_graph()
        current: Counter = Counter()
        tables = [_static_table(_state_at(s, time)) for s in streams]
        for _, row, diff in _stream(program(*tables)):
            current[_row(row)] += diff
        current = +current
        expected = Counter(current)
        expected.subtract(previous)
        expected = Counter({k: d for k, d in expected.items() if d != 0})
        got = Counter({k: d for k, d in incremental.pop(time, Counter()).items() if d != 0})
        assert got == expected, f"at time {time}: incremental {got} != expected {expected}"
        previous = current
    assert not any(incremental.values()), f"changes at unexpected times: {incremental}"


def _with_errors(t: pw.Table) -> pw.Table:
    return t.select(t.k, t.v, q=10 // t.v)  # an error where v == 0


PROGRAMS: dict[str, Callable[..., pw.Table]] = {
    "select": lambda t: _with_errors(t).select(
        pw.this.k, r=pw.this.q + 1, f=pw.fill_error(pw.this.q, -100)
    ),
    "filter": lambda t: _with_errors(t).filter(pw.this.q > 0),
    "remove_errors": lambda t: _with_errors(t).remove_errors(),
    "groupby_value": lambda t: (
        lambda e: e.groupby(e.k).reduce(e.k, s=pw.reducers.sum(e.q), m=pw.reducers.max(e.q))
    )(_with_errors(t)),
    "groupby_error_key": lambda t: (lambda e: e.groupby(e.q).reduce(e.q, c=pw.reducers.count()))(
        _with_errors(t)
    ),
    "same_universe": lambda t: (lambda e: t.select(t.k, q=e.q, f=pw.fill_error(e.q, 0)))(
        _with_errors(t)
    ),
}


@SETTINGS
@given(stream=update_streams())
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_errors_incremental_matches_recomputation(stream: list[Event], name: str) -> None:
    check_with_errors(PROGRAMS[name], stream)


@SETTINGS
@given(left=update_streams(), right=update_streams(100))
@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_join_carrying_errors_matches_recomputation(
    left: list[Event], right: list[Event], how: str
) -> None:
    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        ea, eb = _with_errors(a), _with_errors(b)
        # keys: one plain, one an error where v == 0 (rows matching nothing)
        ka = ea.with_columns(key=pw.this.k + pw.this.q * 0)
        join = {"inner": ka.join, "left": ka.join_left, "outer": ka.join_outer}[how]
        return join(eb, ka.key == eb.k).select(lk=ka.k, lq=ka.q, rq=eb.q)

    check_with_errors(program, left, right)
