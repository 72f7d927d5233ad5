"""A reducer that fails (``unique`` over different values, a user reducer raising) gives an
Error in its group's cell when the run keeps errors; the group's other reducers are computed
as usual, and the Error goes away when the group's rows make the reducer succeed again."""

from __future__ import annotations

from typing import Any

import pytest

import deltaflow as pw


def _changes(table: pw.Table) -> list[tuple[Any, ...]]:
    names = table.column_names()
    rows = [
        (time, *(repr(row[n]) for n in names), diff)
        for time, row, diff in pw.debug.table_to_stream(table, terminate_on_error=False)
    ]
    return sorted(rows)


UPDATES = """
  | a | __time__ | __diff__
1 | 1 |     2    |     1
2 | 1 |     2    |     1
3 | 2 |     4    |     1
3 | 2 |     6    |    -1
"""


def test_failing_unique_gives_an_error_cell_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    t = pw.debug.table_from_markdown(UPDATES)
    result = t.reduce(
        a=pw.fill_error(pw.reducers.unique(t.a), -1),
        u=pw.reducers.unique(t.a),
        n=pw.reducers.count(),
    )
    assert _changes(result) == [
        (2, "1", "1", "2", 1),
        (4, "-1", "Error", "3", 1),
        (4, "1", "1", "2", -1),
        (6, "-1", "Error", "3", -1),
        (6, "1", "1", "2", 1),
    ]
    reported = [r.getMessage() for r in caplog.records if r.name == "deltaflow.errors"]
    assert reported and all("more than one distinct value" in m for m in reported)


def test_failing_unique_stops_the_run_by_default() -> None:
    t = pw.debug.table_from_markdown(UPDATES)
    with pytest.raises(ValueError, match="more than one distinct value"):
        pw.debug.table_to_dicts(t.reduce(u=pw.reducers.unique(t.a)))


def test_failing_user_reducer_gives_an_error_in_its_group_only() -> None:
    @pw.reducers.stateful_many
    def picky(state: int | None, rows: list[tuple[list[Any], int]]) -> int:
        total = (state or 0) + sum(values[0] * count for values, count in rows)
        if total > 10:
            raise ValueError("too much")
        return total

    t = pw.debug.table_from_markdown("""
        g | v | __time__
        1 | 4 | 2
        2 | 9 | 2
        2 | 5 | 4
    """)
    result = t.groupby(t.g).reduce(t.g, p=picky(t.v), n=pw.reducers.count())
    assert _changes(result) == [
        (2, "1", "4", "1", 1),
        (2, "2", "9", "1", 1),
        (4, "2", "9", "1", -1),
        (4, "2", "Error", "2", 1),
    ]
