"""Exceptions leaving deltaflow name the line of the user's program they come from: the one
that called the public API (definition time) or that defined the failing operation (run
time), as a note printed with the traceback and as the trace attribute of the exception."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

import deltaflow as pw
from deltaflow.error_display import TRACE_ATTRIBUTE, trace_text


def _here() -> int:
    """The line number of the caller's line."""
    return sys._getframe(1).f_lineno


def _trace(error: BaseException) -> str:
    trace = getattr(error, TRACE_ATTRIBUTE, None)
    assert isinstance(trace, str), f"{type(error).__name__} carries no trace: {error!r}"
    return trace


def _names_line(error: BaseException, lineno: int, text: str) -> None:
    """The trace and the printed note both name this file at ``lineno``, whose source
    contains ``text``."""
    trace = _trace(error)
    assert trace == trace_text(__file__, lineno, trace.split("\n")[1].split("Line: ", 1)[1])
    assert text in trace.split("\n")[1]
    notes = "\n".join(getattr(error, "__notes__", []))
    assert f"{__file__}:{lineno}" in notes


def _table() -> pw.Table:
    return pw.debug.table_from_markdown(
        """
        a | b
        1 | 0
        2 | 1
        """
    )


def test_the_trace_layout_is_a_header_then_line_then_file() -> None:
    text = trace_text("/x/prog.py", 12, "t.select(a=1)")
    assert re.fullmatch(r"[^\n]+:\n    Line: t\.select\(a=1\)\n    File: /x/prog\.py:12", text)


def test_a_bad_argument_names_the_calling_line() -> None:
    table = _table()
    with pytest.raises(ValueError) as caught:
        line = _here() + 1
        table.select("a")
    _names_line(caught.value, line, 'table.select("a")')


def test_an_unknown_column_names_the_calling_line() -> None:
    table = _table()
    with pytest.raises(KeyError) as caught:
        line = _here() + 1
        table.select(pw.this.nothing_here)
    _names_line(caught.value, line, "pw.this.nothing_here")


def test_a_missing_attribute_names_the_line() -> None:
    table = _table()
    with pytest.raises(AttributeError) as caught:
        line = _here() + 1
        table.nothing_here  # noqa: B018
    _names_line(caught.value, line, "table.nothing_here")


def test_a_connector_called_without_its_arguments_names_the_line() -> None:
    with pytest.raises(TypeError) as caught:
        line = _here() + 1
        pw.io.csv.read()  # type: ignore[call-arg]
    _names_line(caught.value, line, "pw.io.csv.read()")


def test_expression_and_window_builders_name_the_line() -> None:
    with pytest.raises(TypeError) as caught:
        line = _here() + 1
        pw.if_else(pw.this.a > 1, 2)  # type: ignore[call-arg]
    _names_line(caught.value, line, "pw.if_else(")
    with pytest.raises(TypeError) as caught:
        line = _here() + 1
        pw.temporal.tumbling()  # type: ignore[call-arg]
    _names_line(caught.value, line, "pw.temporal.tumbling()")


def test_a_multi_line_call_is_named_by_its_first_line() -> None:
    table = _table()
    with pytest.raises(ValueError) as caught:
        line = _here() + 1
        table.groupby(pw.this.a).reduce(
            pw.this.a,
            "b",
        )
    _names_line(caught.value, line, "table.groupby(pw.this.a).reduce(")


def test_the_innermost_call_of_the_user_is_named() -> None:
    def body(iterated: pw.Table) -> pw.Table:
        body.line = _here() + 1  # type: ignore[attr-defined]
        return iterated.select(v=pw.declare_type(str, pw.this.v))

    table = pw.debug.table_from_markdown("v\n1\n2")
    with pytest.raises(TypeError) as caught:
        pw.iterate(body, iterated=table)
    _names_line(caught.value, body.line, "pw.declare_type(str, pw.this.v)")  # type: ignore[attr-defined]


def test_a_helper_of_the_user_is_named_rather_than_its_caller() -> None:
    def helper(table: pw.Table) -> pw.Table:
        helper.line = _here() + 1  # type: ignore[attr-defined]
        return table.with_columns(pw.this.nothing_here)

    with pytest.raises(KeyError) as caught:
        helper(_table())
    _names_line(caught.value, helper.line, "pw.this.nothing_here")  # type: ignore[attr-defined]


def test_calling_a_placeholder_is_a_type_error_naming_the_line() -> None:
    with pytest.raises(TypeError, match=r"pw\.this") as caught:
        line = _here() + 1
        pw.this()
    _names_line(caught.value, line, "pw.this()")
    assert isinstance(pw.this.a, pw.ColumnReference)  # columns still resolve


def test_a_run_time_failure_names_the_line_that_defined_the_operation() -> None:
    table = _table()
    line = _here() + 1
    table.select(q=pw.this.a // pw.this.b)
    with pytest.raises(ZeroDivisionError) as caught:
        pw.run_all(monitoring_level=pw.MonitoringLevel.NONE)
    _names_line(caught.value, line, "pw.this.a // pw.this.b")


def test_a_sink_failing_at_run_time_names_the_line_that_defined_it(tmp_path: Path) -> None:
    line = _here() + 1
    pw.io.csv.write(_table(), tmp_path / "missing_directory" / "out.csv")
    with pytest.raises(OSError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    _names_line(caught.value, line, "pw.io.csv.write(")


def test_a_failed_lookup_inside_deltaflow_leaves_no_trace() -> None:
    # getattr with a default: the AttributeError never reaches the user.
    table = _table()
    assert getattr(table, "nothing_here", None) is None
    assert hasattr(table, "a")


def test_wrapped_methods_keep_name_docstring_and_signature() -> None:
    assert pw.Table.select.__name__ == "select"
    assert pw.Table.select.__doc__
    assert "args" in inspect.signature(pw.Table.select).parameters
    assert next(iter(inspect.signature(pw.io.csv.read).parameters)) == "path"
    assert isinstance(pw.Table.empty(a=int), pw.Table)  # class methods stay class methods


def test_warnings_of_wrapped_functions_still_point_at_the_users_line() -> None:
    with pytest.warns(UserWarning) as record:
        line = _here() + 1
        pw.debug.table_from_markdown("a | __time__\n1 | 1")
    assert (record[0].filename, record[0].lineno) == (__file__, line)
