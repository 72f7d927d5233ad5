"""The exception tree of ``deltaflow.errors``, failures reported once, and how a failed run
shows itself: a note naming the user's line and a traceback without deltaflow's frames."""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

import deltaflow as pw
from deltaflow import errors
from deltaflow.error_display import FULL_TRACEBACK_VARIABLE, is_internal_file

_PACKAGE = os.path.dirname(os.path.abspath(errors.__file__))


def _frames(tb: TracebackType | None) -> list[tuple[str, int, str]]:
    found = []
    while tb is not None:
        code = tb.tb_frame.f_code
        found.append((code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return found


def _internal(frames: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    return [f for f in frames if os.path.abspath(f[0]).startswith(_PACKAGE)]


def _one_row(value: int = 0) -> pw.Table:
    return pw.debug.table_from_markdown(f"""
    a
    {value}
    """)


# --- the tree --------------------------------------------------------------------------------


def _tree() -> list[tuple[type[BaseException], type[BaseException], tuple[type, ...]]]:
    """(class, its category, the builtin types it must also be)."""
    # pw.iterate and pw.sql are functions named like their modules: bind them first, as
    # importing the module would otherwise leave the package attribute on the module.
    assert callable(pw.iterate) and callable(pw.sql)
    from deltaflow._fork import ForkedAfterPolarsError
    from deltaflow.argument_errors import ArgumentError
    from deltaflow.iterate import MissingIteratedTable
    from deltaflow.persistence.checkpoints import CheckpointError
    from deltaflow.persistence.storage import StorageError
    from deltaflow.sql._parse import (
        CorrelatedSubqueryError,
        MissingFromError,
        UnsupportedSqlAssertion,
        UnsupportedSqlError,
    )

    return [
        (errors.NoArgumentsError, errors.DefinitionError, (AssertionError, TypeError)),
        (ArgumentError, errors.DefinitionError, (TypeError, ValueError)),
        (MissingIteratedTable, errors.DefinitionError, (AttributeError, KeyError)),
        (UnsupportedSqlError, errors.DefinitionError, (NotImplementedError,)),
        (UnsupportedSqlAssertion, errors.DefinitionError, (AssertionError,)),
        (MissingFromError, errors.DefinitionError, (KeyError,)),
        (CorrelatedSubqueryError, errors.DefinitionError, (SyntaxError,)),
        (errors.InconsistentDataError, errors.EngineError, (KeyError, RuntimeError)),
        (errors.UdfError, errors.EngineError, (RuntimeError,)),
        (errors.ExpressionError, errors.DefinitionError, (TypeError,)),
        (errors.ExpressionAttributeError, errors.DefinitionError, (TypeError, AttributeError)),
        (errors.ColumnNotFoundError, errors.DefinitionError, (KeyError, AttributeError)),
        (errors.ColumnArgumentError, errors.DefinitionError, (KeyError, ValueError)),
        (errors.ContextError, errors.DefinitionError, (TypeError, ValueError)),
        (errors.ConnectorOSError, errors.ConnectorError, (OSError, RuntimeError)),
        (CheckpointError, errors.PersistenceError, (RuntimeError,)),
        (StorageError, errors.PersistenceError, (OSError,)),
        (ForkedAfterPolarsError, errors.DeltaflowError, (RuntimeError,)),
    ]


@pytest.mark.parametrize("case", _tree(), ids=lambda case: case[0].__name__)
def test_each_error_is_under_the_root_and_keeps_its_builtin_type(case: Any) -> None:
    kind, category, builtins = case
    assert issubclass(kind, category)
    assert issubclass(category, errors.DeltaflowError)
    for builtin in builtins:
        assert issubclass(kind, builtin), (kind, builtin)


_CONNECTOR_ERRORS = [
    ("deltaflow.io.s3._settings", "S3ConnectorError", ()),
    ("deltaflow.io.dynamodb._writer", "DynamoDBWriteError", ()),
    ("deltaflow.io.postgres._connection", "PostgresConnectionError", (ConnectionError,)),
    ("deltaflow.io.postgres._writer", "PostgresInitError", (ValueError,)),
    ("deltaflow.io.kafka._reader", "KafkaSettingsError", (ValueError,)),
    ("deltaflow.io.deltalake._storage", "StoreUnreachable", ()),
    ("deltaflow.io.deltalake._writer", "ConnectorTypeError", (TypeError,)),
]


@pytest.mark.parametrize("case", _CONNECTOR_ERRORS, ids=lambda case: case[1])
def test_connectors_errors_are_connector_errors(case: tuple[str, str, tuple[type, ...]]) -> None:
    module_name, name, builtins = case
    try:
        module = __import__(module_name, fromlist=[name])
    except ModuleNotFoundError as missing:  # an extra that is not installed
        pytest.skip(str(missing))
    kind = getattr(module, name)
    assert issubclass(kind, errors.ConnectorError)
    for builtin in builtins:
        assert issubclass(kind, builtin)


def test_former_import_paths_still_work() -> None:
    from deltaflow.engine.boundary import ConnectorError, ConnectorOSError, connector_error
    from deltaflow.engine.runtime import EngineError
    from deltaflow.error_values import ERROR as VALUES_ERROR
    from deltaflow.errors import (
        ERROR,
        InconsistentDataError,
        NoArgumentsError,
        capture_origin,
        global_error_log,
        run_context,
    )

    assert ConnectorError is errors.ConnectorError is pw.ConnectorError
    assert ConnectorOSError is errors.ConnectorOSError
    assert connector_error is errors.connector_error
    assert EngineError is errors.EngineError
    assert ERROR is VALUES_ERROR and repr(ERROR) == "Error"
    assert issubclass(InconsistentDataError, KeyError)
    assert issubclass(NoArgumentsError, AssertionError)
    assert callable(capture_origin) and callable(run_context)
    assert global_error_log is pw.global_error_log
    assert errors.report is errors.report  # cached after the first lookup
    with pytest.raises(AttributeError):
        errors.no_such_name  # noqa: B018


def test_the_tree_members_defined_elsewhere_are_importable_from_errors() -> None:
    from deltaflow import argument_errors
    from deltaflow.expressions import base
    from deltaflow.persistence import checkpoints, storage

    assert errors.ArgumentError is argument_errors.ArgumentError
    assert errors.ContextError is argument_errors.ContextError
    assert errors.ExpressionError is base.ExpressionError
    assert errors.ColumnNotFoundError is base.ColumnNotFoundError
    assert errors.UdfError is base.UdfError
    assert errors.CheckpointError is checkpoints.CheckpointError
    assert errors.StorageError is storage.StorageError
    for name in errors.__all__:
        assert getattr(errors, name) is not None


def test_messages_are_not_quoted_by_key_error() -> None:
    assert str(errors.InconsistentDataError("row 5 deleted twice")) == "row 5 deleted twice"
    wrapped = errors.connector_error("csv:in", KeyError("k"))
    assert str(wrapped) == "connector 'csv:in': KeyError: 'k'"


def test_connector_error_keeps_the_builtin_type_and_the_cause() -> None:
    original = ValueError("bad header")
    wrapped = errors.connector_error("csv:in", original)
    assert isinstance(wrapped, errors.ConnectorError) and isinstance(wrapped, ValueError)
    assert type(wrapped).__name__ == "ConnectorError[ValueError]"
    assert wrapped.connector == "csv:in" and wrapped.__cause__ is original
    assert str(wrapped) == "connector 'csv:in': ValueError: bad header"
    # the same class every time, and an error that is a ConnectorError already is kept
    assert type(errors.connector_error("x", ValueError())) is type(wrapped)
    assert errors.connector_error("other", wrapped) is wrapped


def test_connector_error_of_an_os_error_keeps_errno() -> None:
    original = FileNotFoundError(errno.ENOENT, "No such file or directory", "/nowhere")
    wrapped = errors.connector_error("fs:out", original)
    assert isinstance(wrapped, FileNotFoundError) and isinstance(wrapped, errors.ConnectorOSError)
    assert wrapped.errno == errno.ENOENT and wrapped.filename == "/nowhere"
    assert str(wrapped).startswith("connector 'fs:out': FileNotFoundError:")


def test_connector_error_does_not_mix_in_library_classes_or_interrupts() -> None:
    class LibraryError(Exception):
        def __init__(self, code: int, text: str) -> None:
            super().__init__(text)
            self.code = code

    wrapped = errors.connector_error("db", LibraryError(3, "refused"))
    assert (
        type(wrapped) is errors.ConnectorError
        and str(wrapped) == "connector 'db': LibraryError: refused"
    )
    stop = errors.connector_error("db", KeyboardInterrupt())
    assert not isinstance(stop, KeyboardInterrupt)


def test_connector_error_of_a_library_value_error_is_a_value_error() -> None:
    class Marker:
        pass

    class LibraryValueError(Marker, ValueError):
        pass

    wrapped = errors.connector_error("db", LibraryValueError("bad date"))
    assert isinstance(wrapped, ValueError) and not isinstance(wrapped, LibraryValueError)
    assert type(wrapped).__name__ == "ConnectorError[ValueError]"
    gaierror = errors.connector_error("kafka", __import__("socket").gaierror(-2, "unknown"))
    assert isinstance(gaierror, OSError) and isinstance(gaierror, errors.ConnectorOSError)


def test_connector_error_takes_a_message_naming_the_connector() -> None:
    error = errors.ConnectorError("output s3://bucket/x: cannot write")
    assert str(error) == "output s3://bucket/x: cannot write" and error.connector == ""
    # the session reporting it gives it the connector's name (for the note of the run)
    assert errors.connector_error("s3:out", error) is error and error.connector == "s3:out"
    assert str(error) == "output s3://bucket/x: cannot write"
    # a plain message also survives pickling, as exceptions are pickled by their args
    import pickle

    assert str(pickle.loads(pickle.dumps(error))) == str(error)


# --- a failure is reported once --------------------------------------------------------------


class _Schema(pw.Schema):
    a: int


class _FailingSubject(pw.io.python.ConnectorSubject):
    def run(self) -> None:
        self.next(a=1)
        raise ValueError("the feed broke")


def test_a_failing_input_is_raised_once_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    table = pw.io.python.read(_FailingSubject(), schema=_Schema)
    pw.io.null.write(table)
    with (
        caplog.at_level(logging.DEBUG, logger="deltaflow"),
        pytest.raises(ValueError, match="the feed broke") as caught,
    ):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert isinstance(caught.value, errors.ConnectorError)  # Pathway: a ValueError
    assert isinstance(caught.value.__cause__, ValueError)
    reports = [r for r in caplog.records if "the feed broke" in r.getMessage()]
    assert reports, "the failure is still logged for debugging"
    assert all(r.levelno == logging.DEBUG for r in reports), [
        (r.levelname, r.getMessage()) for r in reports
    ]


def test_a_failing_output_is_raised_once_and_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pw.io.csv.write(_one_row(), str(tmp_path / "missing" / "out.csv"))
    line = sys._getframe().f_lineno - 1  # the statement above
    with caplog.at_level(logging.DEBUG, logger="deltaflow"), pytest.raises(OSError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert isinstance(caught.value, errors.ConnectorError)
    assert f"{__file__}:{line}" in "\n".join(getattr(caught.value, "__notes__", []))
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_failing_callback_keeps_its_type(caplog: pytest.LogCaptureFixture) -> None:
    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        raise KeyError("no such customer")

    pw.io.subscribe(_one_row(), on_change)
    with caplog.at_level(logging.DEBUG, logger="deltaflow"), pytest.raises(KeyError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert isinstance(caught.value, errors.ConnectorError)
    assert "no such customer" in str(caught.value)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- the user's line, and a short traceback ---------------------------------------------------


def _inverse(x: int) -> float:
    return 1 / x


def test_a_failing_udf_names_the_users_line_and_hides_engine_frames() -> None:
    t = _one_row(0)
    udf = pw.udf(_inverse)
    result = t.select(b=udf(t.a))
    line = sys._getframe().f_lineno - 1  # the statement above
    pw.io.null.write(result)
    with pytest.raises(ZeroDivisionError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    error = caught.value
    notes = "\n".join(getattr(error, "__notes__", []))
    assert f"{__file__}:{line}" in notes
    assert "result = t.select(b=udf(t.a))" in notes
    assert FULL_TRACEBACK_VARIABLE in notes
    assert _internal(_frames(error.__traceback__)) == []
    # the user's function is where the cause's traceback ends
    cause_frames = _frames(error.__cause__.__traceback__)
    assert cause_frames[-1][2] == "_inverse"
    assert _internal(cause_frames) == []
    printed = "".join(traceback.format_exception(error))
    assert "return 1 / x" in printed and "/deltaflow/engine/" not in printed


def test_the_full_traceback_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FULL_TRACEBACK_VARIABLE, "1")
    t = _one_row(0)
    pw.io.null.write(t.select(b=pw.udf(_inverse)(t.a)))
    with pytest.raises(ZeroDivisionError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    internal = _internal(_frames(caught.value.__traceback__))
    assert any(f[0].endswith(os.path.join("engine", "runtime.py")) for f in internal)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "defined at" in notes and FULL_TRACEBACK_VARIABLE not in notes


def test_an_expression_failure_in_a_debug_helper_names_the_line() -> None:
    t = _one_row(0)
    ratio = t.select(r=t.a // t.a)
    line = sys._getframe().f_lineno - 1  # the statement above
    with pytest.raises(ZeroDivisionError) as caught:
        pw.debug.compute_and_print(ratio)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert f"{__file__}:{line}" in notes
    # of deltaflow's frames, only the helper's own (above the run) and the line that raised
    frames = _internal(_frames(caught.value.__traceback__))
    helper = ("debug.py", "_debug_inputs.py", "_debug_outputs.py")  # pw.debug's modules
    assert len([f for f in frames if not f[0].endswith(helper)]) <= 1, frames


def test_a_failing_sink_names_the_line_that_defined_it() -> None:
    def on_change(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        raise RuntimeError("sink down")

    pw.io.subscribe(_one_row(), on_change)
    line = sys._getframe().f_lineno - 1  # the statement above
    with pytest.raises(errors.ConnectorError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert f"{__file__}:{line}" in notes and "subscribe" in notes


def test_an_input_failure_names_the_read_not_an_operation() -> None:
    table = pw.io.python.read(_FailingSubject(), schema=_Schema)
    line = sys._getframe().f_lineno - 1  # the statement above
    pw.io.null.write(table.select(b=table.a + 1))
    with pytest.raises(errors.ConnectorError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert f"{__file__}:{line}" in notes and "select" not in notes
    assert "python" in str(caught.value)  # the message names the connector


def test_connectors_sharing_a_name_are_not_named() -> None:
    first = pw.io.python.read(_FailingSubject(), schema=_Schema)
    second = pw.io.python.read(_FailingSubject(), schema=_Schema)
    pw.io.null.write(first.concat_reindex(second))
    with pytest.raises(errors.ConnectorError) as caught:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert "defined at" not in "\n".join(getattr(caught.value, "__notes__", []))


def test_a_deltaflow_error_keeps_no_internal_frame() -> None:
    """A DeltaflowError is raised on purpose: its message says what happened, so none of
    deltaflow's frames stays; another exception keeps the line that raised it."""
    try:
        with errors.run_context(True):
            raise errors.EngineError("stopped on purpose")
    except errors.EngineError as error:
        assert _internal(_frames(error.__traceback__)) == []
    try:
        with errors.run_context(True):
            _raise_from_deltaflow()
    except LookupError as error:
        assert len(_internal(_frames(error.__traceback__))) == 1


def _raise_from_deltaflow() -> None:
    # code compiled as if it were deltaflow's: its frame counts as internal
    fake = os.path.join(_PACKAGE, "engine", "_pretend.py")
    assert is_internal_file(fake)
    code = compile("def f():\n    raise LookupError('inside')\n", fake, "exec")
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    namespace["f"]()


def test_keyboard_interrupt_is_left_alone() -> None:
    interrupt = KeyboardInterrupt()
    try:
        with errors.run_context(True):
            raise interrupt
    except KeyboardInterrupt as error:
        assert not getattr(error, "__notes__", None)
        assert _frames(error.__traceback__)  # untouched


def test_docs_example_of_a_failed_run(tmp_path: Path) -> None:
    import runpy

    text = (Path(__file__).parent.parent / "docs" / "errors.md").read_text()
    section = text.split("## What a failed run shows", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    example = tmp_path / "example.py"  # a file, as a program is: its lines can be quoted
    example.write_text(block)
    runpy.run_path(str(example), run_name="__main__")
