"""Errors as values inside groupby/reduce: an error argument is one reducer's problem only."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.debug import table_from_markdown, table_to_dicts


def _final(table: pw.Table) -> dict[Any, dict[str, Any]]:
    keys, columns = table_to_dicts(table, terminate_on_error=False)
    return {columns["g"][k]: {name: values[k] for name, values in columns.items()} for k in keys}


_ROWS = """
    g | b | d
    1 | 1 | 1
    1 | 2 | 0
    1 | 3 | 1
    2 | 4 | 1
    2 | 6 | 0
"""


def _grouped(skip: bool) -> pw.Table:
    t = table_from_markdown(_ROWS).with_columns(q=pw.this.b // pw.this.d)
    return t.groupby(pw.this.g, _skip_errors=skip).reduce(
        pw.this.g,
        total=pw.reducers.sum(pw.this.q),
        mean=pw.reducers.avg(pw.this.q),
        low=pw.reducers.min(pw.this.q),
        rows=pw.reducers.count(),
        plain=pw.reducers.sum(pw.this.b),
        values=pw.reducers.sorted_tuple(pw.this.q),
    )


def test_error_arguments_are_skipped_by_their_reducer_only() -> None:
    result = _final(_grouped(skip=True))
    assert result[1] == {
        "g": 1,
        "total": 4,
        "mean": 2.0,
        "low": 1,
        "rows": 3,
        "plain": 6,
        "values": (1, 3),
    }
    assert result[2] == {
        "g": 2,
        "total": 4,
        "mean": 4.0,
        "low": 4,
        "rows": 2,
        "plain": 10,
        "values": (4,),
    }


def test_skip_errors_false_makes_the_reducer_an_error() -> None:
    t = _grouped(skip=False).select(
        pw.this.g,
        pw.this.rows,
        pw.this.plain,
        total=pw.fill_error(pw.this.total, -1),
        low=pw.fill_error(pw.this.low, -1),
        mean=pw.fill_error(pw.this.mean, -1.0),
    )
    result = _final(t)
    assert result[1] == {"g": 1, "rows": 3, "plain": 6, "total": -1, "low": -1, "mean": -1.0}
    assert result[2] == {"g": 2, "rows": 2, "plain": 10, "total": -1, "low": -1, "mean": -1.0}


def test_a_group_recovers_when_its_error_row_is_deleted() -> None:
    t = table_from_markdown("""
          | g | b | d | __time__ | __diff__
        1 | 1 | 1 | 1 |    2     |    1
        2 | 1 | 2 | 0 |    4     |    1
        2 | 1 | 2 | 0 |    6     |   -1
    """).with_columns(q=pw.this.b // pw.this.d)
    result = t.groupby(pw.this.g, _skip_errors=False).reduce(
        pw.this.g, total=pw.fill_error(pw.reducers.sum(pw.this.q), -1), rows=pw.reducers.count()
    )
    keys, columns = table_to_dicts(result, terminate_on_error=False)
    assert [(columns["total"][k], columns["rows"][k]) for k in keys] == [(1, 1)]


def test_stateful_reducer_sees_only_good_values() -> None:
    @pw.reducers.stateful_single  # type: ignore[arg-type]
    def total(state: int | None, value: int) -> int:
        return value if state is None else state + value

    t = table_from_markdown(_ROWS).with_columns(q=pw.this.b // pw.this.d)
    result = t.groupby(pw.this.g).reduce(pw.this.g, s=total(pw.this.q)).update_types(s=int)
    assert {g: row["s"] for g, row in _final(result).items()} == {1: 4, 2: 4}


def test_skip_errors_must_be_a_bool() -> None:
    t = table_from_markdown(_ROWS)
    with pytest.raises(TypeError, match="_skip_errors"):
        t.groupby(pw.this.g, _skip_errors="yes")


def test_terminating_runs_are_unchanged() -> None:
    t = table_from_markdown(_ROWS).with_columns(q=pw.this.b // pw.this.d)
    pw.io.null.write(t.groupby(pw.this.g).reduce(pw.this.g, s=pw.reducers.sum(pw.this.q)))
    with pytest.raises(ZeroDivisionError):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)


_events = st.lists(
    st.tuples(st.integers(0, 2), st.integers(-3, 3), st.integers(0, 2)), min_size=1, max_size=12
)


@settings(max_examples=40, deadline=None)
@given(rows=_events, deletions=st.lists(st.integers(0, 11), max_size=4), skip=st.booleans())
def test_incremental_equals_recomputation_with_errors(
    rows: list[tuple[int, int, int]], deletions: list[int], skip: bool
) -> None:
    """Rows arrive one time at a time (some deleted later); at the end the groups equal a
    from-scratch run over the rows that remain."""
    lines = ["  | g | b | d | __time__ | __diff__"]
    for index, (g, b, d) in enumerate(rows):
        lines.append(f"{index + 1} | {g} | {b} | {d} | {2 * index + 2} | 1")
    alive = list(rows)
    removed = sorted({i for i in deletions if i < len(rows)})
    for step, index in enumerate(removed):
        g, b, d = rows[index]
        lines.append(f"{index + 1} | {g} | {b} | {d} | {2 * len(rows) + 2 * step + 2} | -1")
    for index in reversed(removed):
        alive.pop(index)

    def build(markdown: str) -> pw.Table:
        t = table_from_markdown(markdown).with_columns(q=pw.this.b // pw.this.d)
        return t.groupby(pw.this.g, _skip_errors=skip).reduce(
            pw.this.g,
            s=pw.fill_error(pw.reducers.sum(pw.this.q), -99),
            m=pw.fill_error(pw.reducers.max(pw.this.q), -99),
            n=pw.reducers.count(),
        )

    incremental = build("\n".join(lines))
    static_lines = ["g | b | d"] + [f"{g} | {b} | {d}" for g, b, d in alive]
    pw.clear_graph()
    if not alive:
        keys, _ = table_to_dicts(incremental, terminate_on_error=False)
        assert keys == []
        return
    expected = build("\n".join(static_lines))
    got = table_to_dicts(incremental, terminate_on_error=False)
    want = table_to_dicts(expected, terminate_on_error=False)

    def rows_of(result: tuple[list[Any], dict[str, dict[Any, Any]]]) -> set[tuple[Any, ...]]:
        keys, columns = result
        return {tuple(columns[c][k] for c in ("g", "s", "m", "n")) for k in keys}

    assert rows_of(got) == rows_of(want)
