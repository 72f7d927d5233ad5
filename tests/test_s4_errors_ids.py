"""Operations matching rows by id (update_cells, update_rows, restrict, with_universe_of):
what is checked when they are defined, and what happens when the data breaks a promise."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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

T = pw.debug.table_from_markdown


def _base() -> pw.Table:
    return T("""
      | a | b
    1 | 1 | 10
    2 | 2 | 20
    3 | 3 | 30
    """)


def _rows(table: pw.Table) -> list[tuple[Any, ...]]:
    """The final rows (Error cells shown as the string 'Error'), sorted."""
    _, columns = pw.debug.table_to_dicts(table, terminate_on_error=False)
    names = list(columns)
    ids = list(columns[names[0]]) if names else []
    return sorted(tuple(str(columns[n][i]) for n in names) for i in ids)


def _with_log(table: pw.Table) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The table's final rows and the error log's messages, from one run."""
    log = pw.global_error_log()
    sinks = pw.debug.capture(table, log, terminate_on_error=False)
    rows: Counter = Counter()
    for _, batch in sinks[0].batches:
        for record in batch.drop("_id").iter_rows(named=True):
            diff = record.pop("_diff")
            rows[tuple(str(v) for v in record.values())] += diff
    messages = [m for _, b in sinks[1].batches for m in b["message"].to_list()]
    return sorted(+rows), sorted(messages)


# --- checks when the operation is defined --------------------------------------------------


def test_update_cells_needs_the_update_rows_to_be_known_rows_of_the_table() -> None:
    update = T("""
      | b
    1 | 11
    5 | 55
    """)
    with pytest.raises(ValueError, match="not known to be rows"):
        _base().update_cells(update)
    live = T("""
      | b | __time__
    1 | 11 | 2
    """)
    with pytest.raises(ValueError, match="promise_universe_is_subset_of"):
        _base().update_cells(live)  # a stream's rows are not known in advance
    base = _base()
    live.promise_universe_is_subset_of(base)
    assert _rows(base.update_cells(live)) == [("1", "11"), ("2", "20"), ("3", "30")]


def test_static_ids_prove_a_subset() -> None:
    # Beyond Pathway (which only knows relations of the plan): the ids of static tables.
    update = T("""
      | b
    2 | 22
    """)
    assert _rows(_base() << update) == [("1", "10"), ("2", "22"), ("3", "30")]
    assert _rows(_base().restrict(update)) == [("2", "20")]


def test_restrict_needs_a_known_subset() -> None:
    other = T("""
      | c
    1 | 0
    9 | 0
    """)
    with pytest.raises(ValueError, match="restrict"):
        _base().restrict(other)
    base = _base()
    assert _rows(base.restrict(base.filter(pw.this.a > 1))) == [("2", "20"), ("3", "30")]
    # intersect's rows are rows of every argument.
    assert _rows(base.restrict(other.intersect(base))) == [("1", "10")]


def test_pointless_operations_warn() -> None:
    base = _base()
    same = T("""
      | b
    1 | 0
    2 | 0
    3 | 0
    """)
    with pytest.warns(UserWarning, match="with_columns"):
        updated = base.update_cells(same)
    assert _rows(updated) == [("1", "0"), ("2", "0"), ("3", "0")]
    with pytest.warns(UserWarning, match="changes nothing"):
        base.restrict(same)
    replacement = T("""
      | a | b
    1 | 7 | 70
    2 | 8 | 80
    3 | 9 | 90
    4 | 0 | 0
    """)
    smaller = base.filter(pw.this.a < 3)
    smaller.promise_universe_is_subset_of(replacement)
    with pytest.warns(UserWarning, match="update_rows"):
        result = smaller.update_rows(replacement)
    assert result is replacement
    with pytest.warns(UserWarning, match="always empty"):
        base.promise_universes_are_disjoint(base)


def test_empty_tables_have_the_same_rows() -> None:
    first = T("""
      | a | b
    """)
    second = T("""
      | b
    """)
    with pytest.warns(UserWarning, match="with_columns"):
        assert _rows(first.update_cells(second)) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first.promise_universes_are_disjoint(
            T("""
          | a | b
        """)
        )  # empty and disjoint: nothing suspicious


def test_promises_add_up() -> None:
    base = _base()
    part = base.filter(pw.this.a > 1)
    other = T("""
      | c
    2 | 0
    3 | 0
    7 | 0
    """)
    part.promise_universe_is_subset_of(other)
    # the filter is still known to be a subset of ``base``, the promise did not replace it
    assert _rows(base.restrict(part)) == [("2", "20"), ("3", "30")]
    assert _rows(other.restrict(part)) == [("0",), ("0",)]


# --- broken promises at run time -----------------------------------------------------------


def _broken_subset() -> tuple[pw.Table, pw.Table]:
    table = _base()
    other = T("""
      | c
    1 | 100
    4 | 400
    """)
    other.promise_universe_is_subset_of(table)
    return table, other


def test_restrict_with_a_missing_row_stops_the_run() -> None:
    table, other = _broken_subset()
    with pytest.raises(KeyError, match="restrict"):
        pw.debug.table_to_dicts(table.restrict(other))


def test_restrict_with_a_missing_row_gives_an_error_row() -> None:
    table, other = _broken_subset()
    restricted = table.restrict(other)
    rows, log = _with_log(restricted.select(pw.this.a, pw.this.b, c=other.c))
    assert rows == [("1", "10", "100"), ("Error", "Error", "400")]
    assert len(log) == 1 and "restrict" in log[0]


def test_restrict_repairs_itself_when_the_row_arrives() -> None:
    table = T("""
      | a | __time__
    1 | 1 | 2
    2 | 2 | 6
    """)
    other = T("""
      | c | __time__
    1 | 5 | 2
    2 | 6 | 4
    """)
    other.promise_universe_is_subset_of(table)
    sinks = pw.debug.capture(table.restrict(other), terminate_on_error=False)
    changes = [
        (time, str(row["a"]), row["_diff"])
        for time, batch in sinks[0].batches
        for row in batch.iter_rows(named=True)
    ]
    assert sorted(changes) == [(2, "1", 1), (4, "Error", 1), (6, "2", 1), (6, "Error", -1)]


def test_update_cells_with_repeated_and_unknown_ids() -> None:
    table = _base()
    update = T("""
      | b
    2 | 21
    2 | 22
    5 | 50
    """)
    update.promise_universe_is_subset_of(table)
    rows, log = _with_log(table.update_cells(update))
    assert rows == [("1", "10"), ("2", "Error"), ("3", "30")]
    assert len(log) == 2
    with pytest.raises(KeyError):
        pw.debug.table_to_dicts(table.update_cells(update))


def test_update_cells_of_a_row_arriving_later() -> None:
    table = T("""
      | a | b | __time__
    1 | 1 | 1 | 2
    2 | 2 | 2 | 6
    """)
    update = T("""
      | a | __time__
    1 | 5 | 2
    2 | 6 | 4
    """)
    update.promise_universe_is_subset_of(table)
    rows, log = _with_log(table.update_cells(update))
    assert rows == [("5", "1"), ("6", "2")]
    assert len(log) == 1  # at time 4 the update named no row yet


def test_update_rows_leaves_out_a_repeated_id() -> None:
    table = T("""
    a
    1
    2
    3
    """).with_id_from(pw.this.a)
    update = T("""
    a
    1
    1
    2
    """).with_id_from(pw.this.a)
    rows, log = _with_log(table.update_rows(update))
    assert rows == [("2",), ("3",)]
    assert len(log) == 1 and "update_rows" in log[0]


def test_update_rows_recovers_when_the_repetition_ends() -> None:
    table = T("""
      | a | __time__
    1 | 1 | 2
    """)
    update = T("""
      | a | __time__ | __diff__
    1 | 5 | 2 | 1
    1 | 6 | 4 | 1
    1 | 5 | 6 | -1
    """)
    sinks = pw.debug.capture(table.update_rows(update), terminate_on_error=False)
    changes = sorted(
        (time, row["a"], row["_diff"])
        for time, batch in sinks[0].batches
        for row in batch.iter_rows(named=True)
    )
    assert changes == [(2, 5, 1), (4, 5, -1), (6, 6, 1)]


def test_with_universe_of_checks_the_ids() -> None:
    table = _base()
    other = T("""
      | c
    1 | 100
    2 | 200
    4 | 400
    """)
    result = table.with_universe_of(other)
    rows, log = _with_log(result.select(pw.this.a, c=other.c))
    assert rows == [("1", "100"), ("2", "200"), ("Error", "400")]
    assert len(log) == 2  # id 4 without a row, row 3 outside ``other``
    with pytest.raises(KeyError, match="with_universe_of"):
        pw.debug.table_to_dicts(
            _base().with_universe_of(
                T("""
          | c
        1 | 0
        """)
            )
        )


def test_with_universe_of_known_rows_needs_no_check() -> None:
    table = _base()
    same = T("""
      | c
    1 | 0
    2 | 0
    3 | 0
    """)
    result = table.with_universe_of(same)
    assert result._universe is same._universe
    assert _rows(result.select(pw.this.a, same.c)) == [("1", "0"), ("2", "0"), ("3", "0")]


# --- incremental == from scratch, with promises broken at random ---------------------------

_PROGRAMS = {
    "restrict": lambda a, b: a.restrict(b.promise_universe_is_subset_of(a)),
    "with_universe_of": lambda a, b: a.with_universe_of(b),
    "update_cells": lambda a, b: a.update_cells(
        b.select(v=pw.this.v).promise_universe_is_subset_of(a)
    ),
    "update_rows": lambda a, b: a.update_rows(b),
}


def _run_stream(program: Any, streams: tuple[list[Event], ...]) -> dict[int, Counter]:
    pw.clear_graph()
    sinks = pw.debug.capture(program(*map(_stream_table, streams)), terminate_on_error=False)
    out: dict[int, Counter] = {}
    for time, batch in sinks[0].batches:
        for record in batch.iter_rows(named=True):
            diff = record.pop("_diff")
            record["id"] = record.pop("_id")
            out.setdefault(time, Counter())[_row({k: str(v) for k, v in record.items()})] += diff
    return out


def _snapshot(table: pw.Table) -> Counter:
    sinks = pw.debug.capture(table, terminate_on_error=False)
    state: Counter = Counter()
    for _, batch in sinks[0].batches:
        for record in batch.iter_rows(named=True):
            diff = record.pop("_diff")
            record["id"] = record.pop("_id")
            state[_row({k: str(v) for k, v in record.items()})] += diff
    return +state


@SETTINGS
@given(
    update_streams(max_key=1),
    update_streams(max_key=1),
    st.sampled_from(sorted(_PROGRAMS)),
    st.booleans(),
)
def test_id_operations_with_broken_promises_match_recomputation(
    base: list[Event], other: list[Event], kind: str, shared_labels: bool
) -> None:
    # Labels are row ids: with shared labels the two tables overlap, repeat ids within a
    # time (two labels of one stream never clash), and miss ids of each other.
    if not shared_labels:
        other = [(label + 100, *rest) for label, *rest in other]  # type: ignore[misc]
    program = _PROGRAMS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        incremental = _run_stream(program, (base, other))
        previous: Counter = Counter()
        for time in _times(base, other):
            pw.clear_graph()
            tables = [_static_table(_state_at(s, time)) for s in (base, other)]
            current = _snapshot(program(*tables))
            expected = Counter(current)
            expected.subtract(previous)
            assert (
                +incremental.get(time, Counter()) == +expected
                and -incremental.get(time, Counter()) == -expected
            ), (kind, time)
            previous = current


def test_docs_example_of_a_broken_promise(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "errors.md").read_text()
    section = text.split("## Row ids: promises and their checks", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "errors.md", "exec"), {})  # noqa: S102 - our own documentation
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    documented = [line[2:].rstrip() for line in block.splitlines() if line.startswith("# ")]
    assert printed == documented


def _overlapping() -> pw.Table:
    first = T("""
      | a
    1 | 1
    2 | 2
    """)
    second = T("""
      | a
    2 | 5
    3 | 3
    """)
    pw.universes.promise_are_pairwise_disjoint(first, second)  # untrue: both have id 2
    return first.concat(second)


def test_repeated_ids_in_a_final_table_stop_a_terminating_run() -> None:
    with pytest.raises(KeyError, match="several rows"):
        pw.debug.table_to_dicts(_overlapping())
    keyed = T("""
    a | b
    1 | 1
    1 | 2
    """).with_id_from(pw.this.a)
    with pytest.raises(KeyError, match="several rows"):
        pw.debug.compute_and_print(keyed)


def test_repeated_ids_in_a_final_table_are_errors_when_keeping_errors() -> None:
    with pytest.warns(UserWarning, match="several rows"):
        rows = _rows(_overlapping().select(b=pw.this.a * 10))
    assert rows == [("10",), ("30",), ("Error",)]
    # the repeated rows themselves pass through, as an update stream shows
    sinks = pw.debug.capture(_overlapping(), terminate_on_error=False)
    assert sum(batch.height for _, batch in sinks[0].batches) == 4
