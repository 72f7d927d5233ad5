"""Run-level checks: repeated row ids under a non-deterministic UDF, ``pw.run``'s signature,
``Table.debug`` and ``pw.apply`` without arguments."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import deltaflow as pw
from deltaflow.errors import InconsistentDataError


class Keyed(pw.Schema):
    a: int = pw.column_definition(primary_key=True)
    b: int


@pw.udf
def plus_one(x: int) -> int:
    return x + 1


def _results(markdown: str, **run_options: bool) -> list[tuple[int, int, bool]]:
    table = pw.debug.table_from_markdown(markdown, schema=Keyed)
    seen: list[tuple[int, int, bool]] = []
    pw.io.subscribe(
        table.select(b=plus_one(pw.this.b)),
        on_change=lambda key, row, time, is_addition: seen.append((time, row["b"], is_addition)),
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE, **run_options)
    return sorted(seen)


@pytest.mark.parametrize("terminate", [True, False])
def test_second_insertion_of_a_key_stops_the_run(terminate: bool) -> None:
    with pytest.raises(KeyError, match="inserted again"):
        _results(
            """
        a | b | __time__ | __diff__
        1 | 2 |     2    |     1
        2 | 3 |     2    |     1
        1 | 4 |     4    |     1
        2 | 3 |     6    |    -1
        """,
            terminate_on_error=terminate,
        )


def test_repeated_insertion_within_one_batch_is_seen() -> None:
    with pytest.raises(InconsistentDataError, match="inserted again"):
        _results("""
        a | b | __time__ | __diff__
        1 | 2 |     2    |     1
        1 | 2 |     2    |     1
        2 | 3 |     2    |     1
        2 | 3 |     6    |    -1
        """)


def test_deleting_a_row_twice_stops_the_run() -> None:
    with pytest.raises(KeyError, match="deleted more often"):
        _results("""
        a | b | __time__ | __diff__
        1 | 2 |     2    |     1
        1 | 2 |     6    |    -1
        1 | 2 |     6    |    -1
        """)


def test_append_only_tables_may_repeat_keys() -> None:
    # As in Pathway: without deletions the UDF's values need not be kept by row id.
    assert _results("""
        a | b | __time__ | __diff__
        1 | 2 |     2    |     1
        2 | 3 |     2    |     1
        1 | 4 |     4    |     1
        """) == [(2, 3, True), (2, 4, True), (4, 5, True)]


def test_updates_of_a_key_are_fine() -> None:
    assert _results("""
        a | b | __time__ | __diff__
        1 | 2 |     2    |     1
        1 | 2 |     4    |    -1
        1 | 7 |     4    |     1
        1 | 7 |     6    |    -1
        """) == [(2, 3, True), (4, 3, False), (4, 8, True), (6, 8, False)]


def test_run_and_run_all_have_one_signature() -> None:
    assert inspect.signature(pw.run) == inspect.signature(pw.run_all)
    parameters = inspect.signature(pw.run).parameters
    assert "event_loop" in parameters and "license_key" not in parameters
    with pytest.raises(TypeError, match="license_key"):
        pw.run(license_key="x")  # type: ignore[call-arg]


def test_debug_prints_changes_only_in_debug_runs(capsys: pytest.CaptureFixture[str]) -> None:
    table = pw.debug.table_from_markdown("""
      | a | s   | __time__ | __diff__
    1 | 1 | x   | 2        | 1
    1 | 1 | x   | 4        | -1
    """)
    assert table.debug("probe") is table
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert capsys.readouterr().out == ""
    pw.run(monitoring_level=pw.MonitoringLevel.NONE, debug=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[0][probe] @Timestamp(2) +1 id=^")
    assert lines[0].endswith(', a=Int(1), s=String("x")')
    assert lines[1].startswith("[0][probe] @Timestamp(4) -1 id=^")


def test_apply_without_arguments_is_refused_at_once() -> None:
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(AssertionError, match="give the function's arguments"):
        pw.apply(add)
    with pytest.raises(TypeError):  # also a TypeError, the natural type of a wrong call
        pw.apply_with_type(add, int)


def _picky(new: int, old: int) -> bool:
    if new == 4:
        raise ValueError("four")
    return new > old


def test_deduplicate_acceptor_failure_rejects_the_row() -> None:
    values = pw.debug.table_from_markdown("""
    a | __time__
    2 | 2
    4 | 4
    3 | 6
    5 | 8
    """)
    kept = values.deduplicate(value=pw.this.a, acceptor=_picky)
    sinks = pw.debug.capture(kept, pw.global_error_log(), terminate_on_error=False)
    changes = sorted(
        (time, row["a"], row["_diff"])
        for time, batch in sinks[0].batches
        for row in batch.iter_rows(named=True)
    )
    assert changes == [(2, 2, 1), (6, 2, -1), (6, 3, 1), (8, 3, -1), (8, 5, 1)]
    messages = [m for _, batch in sinks[1].batches for m in batch["message"].to_list()]
    assert messages == ["ValueError: four"]


def test_deduplicate_acceptor_failure_stops_a_terminating_run() -> None:
    values = pw.debug.table_from_markdown("""
    a
    2
    4
    """)
    with pytest.raises(ValueError, match="four"):
        pw.debug.table_to_dicts(values.deduplicate(value=pw.this.a, acceptor=_picky))


@pytest.mark.parametrize("rows", ["", "1"])
def test_output_to_a_missing_directory_fails_the_run(tmp_path: Any, rows: str) -> None:
    table = pw.debug.table_from_markdown("a\n" + rows) if rows else pw.Table.empty(a=int)
    missing = tmp_path / "missing"
    pw.io.csv.write(table, missing / "out.csv")  # defining the output is fine, as in Pathway
    with pytest.raises(OSError, match=f"{missing} does not exist"):
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)


class Stamps(pw.Schema):
    naive: pw.DateTimeNaive
    utc: pw.DateTimeUtc


def test_python_datetimes_of_the_wrong_kind_are_errors() -> None:
    import datetime

    aware = datetime.datetime(2025, 5, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    plain = datetime.datetime(2025, 5, 1, 12)

    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(naive=plain, utc=aware)
            self.next(naive=aware, utc=aware)  # a zone where none is expected
            self.next(naive=plain, utc=plain)  # no zone where one is needed

    table = pw.io.python.read(Subject(), schema=Stamps)
    rows = table.select(
        naive=pw.fill_error(pw.this.naive, None), utc=pw.fill_error(pw.this.utc, None)
    )
    _, columns = pw.debug.table_to_dicts(rows, terminate_on_error=False)
    pairs = sorted((str(columns["naive"][k]), str(columns["utc"][k])) for k in columns["naive"])
    assert pairs == [
        ("2025-05-01 12:00:00", "2025-05-01 10:00:00+00:00"),
        ("2025-05-01 12:00:00", "None"),
        ("None", "2025-05-01 10:00:00+00:00"),
    ]


def test_python_datetimes_of_the_wrong_kind_are_value_errors_in_the_log() -> None:
    import datetime

    east = datetime.timezone(datetime.timedelta(hours=3))

    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            naive, aware = datetime.datetime(2024, 1, 2), datetime.datetime(2024, 1, 2, tzinfo=east)
            self.next(naive=aware, utc=aware)
            self.next(naive=naive, utc=naive)
            self.next(naive="noon", utc=aware)  # not a datetime at all: a type error

    table = pw.io.python.read(Subject(), schema=Stamps)
    sinks = pw.debug.capture(table, pw.global_error_log(), terminate_on_error=False)
    reasons = sorted(
        message.split(": ", 1)[1].split(":", 1)[0]
        for _, batch in sinks[1].batches
        for message in batch["message"].to_list()
        if " does not fit field " in message
    )
    # a datetime whose zone does not fit is a ValueError (its type is right), as in Pathway
    assert reasons == ["TypeError", "ValueError", "ValueError"]
