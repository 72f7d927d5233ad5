"""Errors as values: the ``Error`` cell value, the run-wide ``terminate_on_error`` setting and
the error log tables (``pw.global_error_log()``, ``pw.local_error_log()``).

The exception classes live in :mod:`deltaflow.errors`, which also re-exports every name of
this module (``from deltaflow import errors; errors.report(...)`` keeps working) and of
:mod:`deltaflow.error_cells`, where the helpers working on the error cells of batches are.

With ``terminate_on_error=True`` (the default) nothing here is used: the first failure raises.
With ``terminate_on_error=False`` a failing cell holds :data:`ERROR`. Batches keep their Polars
dtypes while no error occurs; a column holding an error cell travels as a ``pl.Object`` column
with the :data:`ERROR` object in the failed cells (see ``docs/errors.md``). Operators only look
for such columns once the run has produced an error (:func:`errors_seen`), so runs without
errors pay one flag test per operator step.

Every failure is reported once, by the operator where it happened: a row of the error log of
that operator (the global one, or the local one active when the operator's table was defined)
and an ``ERROR`` logging record.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import polars as pl

from deltaflow import _types as t

logger = logging.getLogger("deltaflow.errors")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_CONTEXTLIB = os.path.dirname(os.path.abspath(contextlib.__file__))


class ErrorValue:
    """The value of a cell whose computation failed (there is a single instance,
    :data:`ERROR`). It prints as ``Error``; only ``pw.fill_error`` and
    ``Table.remove_errors`` get rid of it."""

    __slots__ = ()
    _instance: ErrorValue | None = None

    def __new__(cls) -> ErrorValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Error"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ErrorValue, ())


ERROR = ErrorValue()

#: The columns of an error log table, as Pathway's ``ErrorLogSchema``.
ERROR_LOG_COLUMNS: dict[str, t.DType] = {"operator_id": t.INT, "message": t.STR, "trace": t.STR}


# ------------------------------------------------------------------------------------------
# Where a plan node was defined, and which log its errors go to
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeOrigin:
    """The user's line that defined a plan node (for the ``trace`` column) and the local error
    log active at that moment (None: the global log). ``location`` is ``file:line`` and
    ``line`` the source text there (both empty when no user frame was found)."""

    trace: str
    log: LocalErrorLog | None
    location: str = ""
    line: str = ""


class LocalErrorLog:
    """The identity of one ``pw.local_error_log()`` block."""

    _ids = itertools.count()

    def __init__(self) -> None:
        self.number = next(self._ids)

    def __repr__(self) -> str:
        return f"<local error log {self.number}>"


_GLOBAL_LOG = "global"
_local_logs = threading.local()


def _active_local_log() -> LocalErrorLog | None:
    stack = getattr(_local_logs, "stack", None)
    return stack[-1] if stack else None


def capture_origin() -> NodeOrigin:
    """The innermost frame outside deltaflow, as a trace, and the active local log."""
    frame = sys._getframe(1)
    while frame is not None:
        raw = frame.f_code.co_filename
        filename = os.path.abspath(raw)
        # Generated code (dataclass __init__, "<string>") and contextlib are not the user's.
        if (
            not raw.startswith("<")
            and not filename.startswith(_PACKAGE_DIR)
            and not filename.startswith(_CONTEXTLIB)
        ):
            break
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return NodeOrigin("", _active_local_log())
    import linecache

    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    location = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    trace = (
        f"Occurred here:\n \tLine: {line}\n \tFile: {location}\n \tFunction: {frame.f_code.co_name}"
    )
    return NodeOrigin(trace, _active_local_log(), location, line)


# ------------------------------------------------------------------------------------------
# The run-wide context
# ------------------------------------------------------------------------------------------


class ErrorContext:
    """The error handling of one run: whether to stop at the first error, whether an error
    value exists yet, the operator running now, and the log tables to fill."""

    def __init__(self, terminate_on_error: bool) -> None:
        self.terminate = terminate_on_error
        self.seen = False
        self.current: Any = None  # the plan node whose operator is running
        self.silent_nodes: set[int] = set()  # downstream of a log table: logging only
        self._handles: dict[Any, list[Any]] = {}
        self._pending: dict[Any, list[tuple[int, str, str]]] = {}
        self._next_row = 0  # log rows are numbered: distinct ids
        self._lock = threading.Lock()  # connectors report from their own threads
        self._connector_nodes: dict[str, Any] = {}

    # --- which plan node a failure belongs to --------------------------------------------
    def know_connectors(self, nodes: Sequence[Any]) -> None:
        """Remember the plan nodes of the run's connectors by name (their source's, their
        sink's and their own), so that a connector's failure can name the line that defined
        it. A name shared by several connectors names none of them."""
        owners: dict[str, Any] = {}
        shared: set[str] = set()
        for node in nodes:
            ends = [getattr(node, "source", None), getattr(node, "sink", None)]
            if all(end is None for end in ends):
                continue
            names = {getattr(end, "name", None) for end in ends} | {node.describe()}
            for name in names:
                if not isinstance(name, str) or not name:
                    continue
                if name in owners and owners[name] is not node:
                    shared.add(name)
                owners[name] = node
        self._connector_nodes = {k: v for k, v in owners.items() if k not in shared}

    def failing_node(self, error: BaseException) -> Any:
        """The plan node a failure leaving the run belongs to: the operator running when it
        was raised, or the connector that the error names; None when unknown."""
        if self.current is not None:
            return self.current
        return self._connector_nodes.get(getattr(error, "connector", None) or "")

    # --- error log tables ----------------------------------------------------------------
    def attach_log(self, key: Any, handle: Any) -> None:
        self._handles.setdefault(key, []).append(handle)

    @property
    def log_handles(self) -> list[Any]:
        return [h for handles in self._handles.values() for h in handles]

    def report(
        self,
        message: str,
        node: Any = None,
        *,
        count: int = 1,
        with_trace: bool = True,
        log: bool = True,
    ) -> None:
        """Record ``count`` failures with ``message`` in the operator ``node`` (default: the
        one running now): logged (unless the caller logs them itself: ``log=False``), and
        rows of its error log table."""
        if count <= 0:
            return
        node = node if node is not None else self.current
        origin: NodeOrigin | None = getattr(node, "origin", None)
        operator_id = getattr(node, "uid", -1)
        trace = origin.trace if origin is not None and with_trace else ""
        for _ in range(min(count, 1000) if log else 0):  # do not flood the log
            logger.error("%s in operator %s. %s", message, operator_id, trace)
        if log and count > 1000:
            logger.error("(%d more times: %s)", count - 1000, message)
        if node is not None and node.uid in self.silent_nodes:
            return  # an error about the error log itself: never fed back into it
        key = origin.log if origin is not None and origin.log is not None else _GLOBAL_LOG
        if key in self._handles:
            with self._lock:
                self._pending.setdefault(key, []).extend([(operator_id, message, trace)] * count)

    def flush(self) -> None:
        """Push the rows reported so far into the log tables (called between times)."""
        if not self._pending:
            return
        with self._lock:
            pending, self._pending = self._pending, {}
        for key, rows in pending.items():
            for handle in self._handles.get(key, []):
                from deltaflow._ids import sequence_ids

                start, self._next_row = self._next_row, self._next_row + len(rows)
                batch = pl.DataFrame(
                    {
                        "_id": sequence_ids("error-log", start, len(rows)),
                        "operator_id": pl.Series([r[0] for r in rows], dtype=pl.Int64),
                        "message": pl.Series([r[1] for r in rows], dtype=pl.String),
                        "trace": pl.Series([r[2] for r in rows], dtype=pl.String),
                        "_diff": pl.Series([1] * len(rows), dtype=pl.Int64),
                    }
                )
                handle.push(batch, consolidated=True)


# The error context of the run on this thread. A context variable rather than a thread
# local: the engine may process a time on a source's thread, inside the run's context (see
# ``Runtime.process_inline``), and sees the run's error context there too.
_CONTEXT: contextvars.ContextVar[ErrorContext | None] = contextvars.ContextVar(
    "deltaflow_error_context", default=None
)
# The contexts of the runs in progress, newest last: connectors' threads (which have no
# context of their own) use the newest.
_runs: list[ErrorContext] = []


def active() -> ErrorContext | None:
    """The error context of the run on this thread (or, on another thread such as a
    connector's, of the newest run), if any."""
    context = _CONTEXT.get()
    if context is None and _runs:
        return _runs[-1]
    return context


def errors_seen() -> bool:
    """Whether the run on this thread has produced an error value (then batches may hold
    error cells and operators must look for them)."""
    context = _CONTEXT.get()
    return context is not None and context.seen


def keeps_errors() -> bool:
    """Whether failures become error values (``terminate_on_error=False``) in this run."""
    context = _CONTEXT.get() or active()
    return context is not None and not context.terminate


def mark_seen() -> None:
    context = active()
    if context is not None:
        context.seen = True


def report_connector(message: str, *, log: bool = True) -> None:
    """A connector's bad value or row: logged (unless the connector rate-limits its own
    logging: ``log=False``) and a row of the global error log (it has no operator; its trace
    is empty)."""
    context = active()
    if context is None:
        if log:
            logger.error("%s", message)
        return
    context.report(message, _CONNECTOR, with_trace=False, log=log)


class _ConnectorOrigin:
    """Stands for the operator of failures found by connectors."""

    uid = -1
    origin = None


_CONNECTOR = _ConnectorOrigin()


def report(message: str, *, count: int = 1, node: Any = None, with_trace: bool = True) -> None:
    """Report failures in the operator running now (see :meth:`ErrorContext.report`)."""
    context = _CONTEXT.get()
    if context is not None:
        context.report(message, node, count=count, with_trace=with_trace)
    else:
        logger.error("%s", message)


def resolve_terminate(terminate_on_error: bool | None) -> bool:
    """``terminate_on_error`` as a run uses it: None means the ``PATHWAY_TERMINATE_ON_ERROR``
    environment variable (default true), as in Pathway."""
    if terminate_on_error is not None:
        return bool(terminate_on_error)
    setting = os.environ.get("PATHWAY_TERMINATE_ON_ERROR", "true").strip().lower()
    return setting not in ("false", "0", "no", "off")


class run_context:  # noqa: N801 - used as a function: ``with run_context(...) as context``
    """Make an error context current on this thread for the duration of a run
    (``terminate_on_error=None``: the ``PATHWAY_TERMINATE_ON_ERROR`` variable, default true).

    An exception leaving the run is prepared for the user on the way out (see
    :mod:`deltaflow.error_display`): a note naming where the operation that was running was
    defined, and deltaflow's frames trimmed. A class rather than a generator: ``contextlib``
    would put the original traceback back."""

    def __init__(self, terminate_on_error: bool | None) -> None:
        self.context = ErrorContext(resolve_terminate(terminate_on_error))
        self._token: contextvars.Token[ErrorContext | None] | None = None

    def __enter__(self) -> ErrorContext:
        self._token = _CONTEXT.set(self.context)
        _runs.append(self.context)
        return self.context

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if self._token is not None:
            _CONTEXT.reset(self._token)
        _runs.remove(self.context)
        if error is not None:
            from deltaflow.error_display import explain_failure

            explain_failure(error, self.context.failing_node(error))
        return False


def on_failure(message: str, error: BaseException | None = None) -> ErrorValue:
    """The one place where a per-row failure becomes a value: with ``terminate_on_error`` it
    raises (``error`` when given), otherwise it is reported and :data:`ERROR` is returned."""
    context = _CONTEXT.get()
    if context is None or context.terminate:
        if error is not None:
            raise error
        raise ValueError(message)
    context.seen = True
    context.report(message)
    return ERROR


def exception_message(error: BaseException) -> str:
    """How a Python exception raised by user code reads in the error log."""
    return f"{type(error).__name__}: {error}"


# ------------------------------------------------------------------------------------------
# The public log tables
# ------------------------------------------------------------------------------------------


def _log_table(key: Any) -> Any:
    from deltaflow import plan
    from deltaflow.table import Table

    source = ErrorLogSource(key)
    node = plan.InputNode(
        columns=dict(ERROR_LOG_COLUMNS),
        source=source,
        label="global_error_log" if key == _GLOBAL_LOG else "local_error_log",
    )
    return Table(node)


def global_error_log() -> Any:
    """A table of every failure of the run (``operator_id``, ``message``, ``trace``), except
    those of operators defined inside a ``pw.local_error_log()`` block."""
    return _log_table(_GLOBAL_LOG)


@contextlib.contextmanager
def local_error_log() -> Iterator[Any]:
    """A table of the failures of the operators defined inside the ``with`` block (they no
    longer go to the global log)."""
    log = LocalErrorLog()
    table = _log_table(log)
    stack = getattr(_local_logs, "stack", None)
    if stack is None:
        stack = _local_logs.stack = []
    stack.append(log)
    try:
        yield table
    finally:
        stack.remove(log)


def _source_base() -> type:
    from deltaflow.engine.boundary import Source

    return Source


class ErrorLogSource(_source_base()):  # type: ignore[misc]
    """The source of an error log table: the run pushes the reported rows into it, and
    finishes it when every other input has finished."""

    name = "error_log"

    def __init__(self, key: Any) -> None:
        self.key = key

    def start(self, handle: Any) -> None:
        """Nothing to start: the run attached ``handle`` to its error context already."""
