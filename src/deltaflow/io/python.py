"""Python sources and sinks: ``pw.io.python.read`` with a :class:`ConnectorSubject`,
``pw.io.python.write`` with a :class:`ConnectorObserver` or :class:`AsyncConnectorObserver`.

A subject's ``run`` executes on its own thread and sends messages with ``next``/``next_json``/
``next_str``/``next_bytes``; they are buffered (cheaply: one deque append per message) and the
input session takes them in blocks. ``commit()`` commits the messages sent so far at once;
otherwise the session commits every ``autocommit_duration_ms``. When ``run`` returns the
subject is closed and the input finishes. In an ``upsert`` session a message replaces the row
with the same primary key; ``_remove`` deletes a row.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Literal

from deltaflow import _types as t
from deltaflow.error_display import user_call
from deltaflow.io._core.async_callbacks import AsyncCallbackWriter
from deltaflow.io._core.callback_sink import CallbackSink
from deltaflow.io._core.formats import TypedRowsFormatter
from deltaflow.io._core.output_session import write_table
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_backlog,
    check_extra_kwargs,
    check_schema,
    reader_table,
)
from deltaflow.io._python_subject import (
    ConnectorSubject,
    _MessageParser,
    _session_kind,
    _SubjectReader,
)
from deltaflow.schema import Schema, schema_from_types


@user_call
def read(
    subject: ConnectorSubject,
    *,
    schema: type[Schema] | None = None,
    format: Literal["json", "raw", "binary"] | None = None,  # noqa: A002
    autocommit_duration_ms: int | None = 1500,
    debug_data: Any = None,
    name: str | None = None,
    max_backlog_size: int | None = None,
    _stacklevel: int = 1,
    **kwargs: Any,
) -> Any:
    """A table fed by ``subject``'s :meth:`ConnectorSubject.run`.

    With a ``schema`` (format ``json``) messages are rows; with ``format='raw'`` (``data:
    str``) or ``'binary'`` (``data: bytes``) each message is one row. ``debug_data`` is
    accepted for compatibility and ignored. The input ends when ``run`` returns.

    Parameters:
        subject: a ``pw.io.python.ConnectorSubject`` whose ``run`` sends the rows (with
            ``next``, ``next_json``, ``next_str`` ...).
        schema: the columns of the rows (required unless ``format`` is ``raw``/``binary``).
        format: ``json`` (rows of ``schema``), ``raw`` (texts) or ``binary`` (bytes).
        autocommit_duration_ms: the longest time between two commits of rows sent.
        debug_data: accepted for Pathway programs; not used.
        name: the connector's name in logs and monitoring.
        max_backlog_size: the most rows sent ahead of the engine (``next`` then waits).

    Examples:
        >>> import deltaflow as pw
        >>> class Reading(pw.Schema):
        ...     sensor: str
        ...     value: int
        >>> class Readings(pw.io.python.ConnectorSubject):
        ...     def run(self):
        ...         for sensor, value in [("north", 7), ("south", 12)]:
        ...             self.next(sensor=sensor, value=value)
        >>> t = pw.io.python.read(Readings(), schema=Reading)
        >>> pw.debug.compute_and_print(t, include_id=False)
        sensor | value
        north  | 7
        south  | 12
    """
    label = "pw.io.python.read"
    if not isinstance(subject, ConnectorSubject):
        raise TypeError(
            f"{label}: subject must be a pw.io.python.ConnectorSubject, got {subject!r}"
        )
    if format not in (None, "json", "raw", "binary"):
        raise ValueError(f"{label}: format must be 'json', 'raw' or 'binary', got {format!r}")
    autocommit = check_autocommit(autocommit_duration_ms, label)
    backlog = check_backlog(max_backlog_size, label)
    check_extra_kwargs(kwargs, label)
    if format in ("raw", "binary"):
        if schema is not None:
            raise ValueError(
                f"{label}: format {format!r} produces one 'data' column; do not give a schema"
            )
        schema = schema_from_types(data=bytes if format == "binary" else str)
    else:
        format = "json"
        if schema is None:
            raise ValueError(f"{label}: give a schema (or format='raw' / 'binary')")
        # No columns is allowed, as in Pathway: a subject run for its side effects.
        check_schema(schema, label, may_be_empty=True)
    assert schema is not None
    upsert = _session_kind(subject, label) == "upsert"
    if upsert and not schema.primary_key_columns():
        raise ValueError(
            f"{label}: an upsert session needs a primary key in the schema "
            f"(pw.column_definition(primary_key=True))"
        )
    parser = _MessageParser(schema, format)
    return reader_table(
        schema=schema,
        reader_factory=lambda: _SubjectReader(subject),
        parser=parser,
        name=name or f"python:{type(subject).__name__}",
        named=name is not None,
        autocommit_duration_ms=autocommit,
        max_backlog_size=backlog,
        keep_row_state=upsert,
    )


class ConnectorObserver(ABC):
    """Receives a table's changes: subclass it and pass it to :func:`write`."""

    @abstractmethod
    def on_change(self, key: t.Pointer, row: dict[str, Any], time: int, is_addition: bool) -> None:
        """One row was added (``is_addition``) or removed at ``time``."""

    def on_time_end(self, time: int) -> None:  # noqa: B027 - optional hook
        """Every change of ``time`` was delivered."""

    def on_end(self) -> None:  # noqa: B027 - optional hook
        """The run ended."""


class AsyncConnectorObserver(ABC):
    """Like :class:`ConnectorObserver`, but ``on_change`` is a coroutine.

    The calls run on an event loop in the output's own thread. All calls of one time are
    started together (deletions first) and may overlap; ``on_time_end(time)`` runs once every
    one of them has completed, and the next time's calls start only after it. ``on_time_end``
    and ``on_end`` may be plain methods or coroutines. A subclass whose ``on_change`` is not an
    ``async def`` is rejected when it is defined.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not inspect.iscoroutinefunction(cls.on_change):
            raise TypeError(
                f"{cls.__name__}.on_change must be a coroutine function "
                f"('async def on_change(self, key, row, time, is_addition)') in "
                f"a pw.io.python.AsyncConnectorObserver; for a plain method "
                f"derive from pw.io.python.ConnectorObserver instead"
            )

    @abstractmethod
    async def on_change(
        self, key: t.Pointer, row: dict[str, Any], time: int, is_addition: bool
    ) -> None:
        """One row was added (``is_addition``) or removed at ``time``."""

    def on_time_end(self, time: int) -> None:  # noqa: B027 - optional hook
        """Every ``on_change`` call of ``time`` has completed."""

    def on_end(self) -> None:  # noqa: B027 - optional hook
        """The run ended and every call has completed."""


@user_call
def write(
    table: Any,
    observer: ConnectorObserver | AsyncConnectorObserver,
    *,
    name: str | None = None,
    sort_by: Iterable[Any] | None = None,
) -> None:
    """Send every change of ``table`` to ``observer``.

    A :class:`ConnectorObserver` is called on the engine's thread, in order. An observer whose
    ``on_change`` is a coroutine (an :class:`AsyncConnectorObserver`) gets its calls on an event
    loop of its own; ``sort_by`` does not apply to it, since its calls of a time overlap.

    Parameters:
        table: the table whose changes are sent.
        observer: a ``pw.io.python.ConnectorObserver`` (or ``AsyncConnectorObserver``)
            whose ``on_change``, ``on_time_end`` and ``on_end`` are called.
        name: the output's name in logs and monitoring.
        sort_by: columns ordering the changes of one time.

    Examples:
        >>> import deltaflow as pw
        >>> class Printer(pw.io.python.ConnectorObserver):
        ...     def on_change(self, key, row, time, is_addition):
        ...         print(time, "added" if is_addition else "removed", row)
        ...     def on_end(self):
        ...         print("end of the run")
        >>> stock = pw.debug.table_from_markdown('''
        ... item | __time__ | __diff__
        ... pen  | 2        | 1
        ... pen  | 4        | -1
        ... ink  | 4        | 1
        ... ''')
        >>> pw.io.python.write(stock, Printer(), sort_by=[stock.item])
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        2 added {'item': 'pen'}
        4 added {'item': 'ink'}
        4 removed {'item': 'pen'}
        end of the run
    """
    from deltaflow.table import add_output

    label = "pw.io.python.write"
    if not isinstance(observer, ConnectorObserver | AsyncConnectorObserver):
        raise TypeError(
            f"{label}: observer must be a pw.io.python.ConnectorObserver or "
            f"pw.io.python.AsyncConnectorObserver, got {observer!r}"
        )
    named = name is not None
    name = name or f"python:{type(observer).__name__}"
    sort_by = list(sort_by) if sort_by is not None else None
    if inspect.iscoroutinefunction(observer.on_change):
        if sort_by is not None:
            raise ValueError(
                f"{label}: sort_by cannot be used with an asynchronous observer "
                f"({type(observer).__name__}): its on_change calls of one time "
                f"run concurrently, so they have no order to sort"
            )
        writer = AsyncCallbackWriter(
            name, observer.on_change, on_time_end=observer.on_time_end, on_end=observer.on_end
        )
        write_table(table, writer, TypedRowsFormatter(table._columns), name=name, named=named)
        return
    sink = CallbackSink(
        name,
        table._columns,
        on_change=observer.on_change,
        on_time_end=observer.on_time_end,
        on_end=observer.on_end,
        sorted_by_user=bool(sort_by),
        named=named,
    )
    add_output(table, sink, sort_by=sort_by)
