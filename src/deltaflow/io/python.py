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

import collections
import inspect
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

from deltaflow import _types as t
from deltaflow.engine import runtime
from deltaflow.error_display import user_call
from deltaflow.io._core.async_callbacks import AsyncCallbackWriter
from deltaflow.io._core.base import (
    Commit,
    Data,
    DictsContext,
    Finished,
    ParsedBlock,
    ParseError,
    Parser,
    Reader,
    ReaderContext,
    ReadEvent,
)
from deltaflow.io._core.callback_sink import CallbackSink
from deltaflow.io._core.formats import TypedRowsFormatter, TypedRowsParser, column_specs
from deltaflow.io._core.json_text import load_json_line
from deltaflow.io._core.output_session import write_table
from deltaflow.io._core.read_table import (
    check_autocommit,
    check_backlog,
    check_extra_kwargs,
    check_schema,
    reader_table,
)
from deltaflow.schema import Schema, schema_from_types


class _Marker:
    """What a subject's buffer holds besides its messages (which are tuples)."""


_COMMIT = _Marker()
_END = _Marker()
_BLOCK_ROWS = 10_000
_BUFFER_LIMIT = 200_000  # messages a subject may send ahead of the session before it waits


class _Failure(_Marker):
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _session_kind(subject: ConnectorSubject, label: str = "pw.io.python.read") -> str:
    """The subject's session type as "native" or "upsert": a subclass's ``_session_type``
    property may also give an enum member named NATIVE or UPSERT (Pathway's spelling)."""
    value = subject._session_type
    kind = value if isinstance(value, str) else str(getattr(value, "name", value))
    kind = kind.lower()
    if kind not in ("native", "upsert"):
        raise ValueError(
            f"{label}: the subject's _session_type must be 'native' or 'upsert', got {value!r}"
        )
    return kind


class ConnectorSubject(ABC):
    """Subclass it and implement :meth:`run`, which sends rows with :meth:`next` & co."""

    #: Commits sent so far (see ``_SubjectReader.backlogged``); one writer, the subject's thread.
    _commits_sent = 0

    def __init__(
        self,
        datasource_name: str = "python",
        *,
        session_type: Literal["native", "upsert"] = "native",
    ) -> None:
        if session_type not in ("native", "upsert"):
            raise ValueError(
                f"ConnectorSubject: session_type must be 'native' or 'upsert', got {session_type!r}"
            )
        self._datasource_name = datasource_name
        self._session_type_setting = session_type
        self._buffer: collections.deque[Any] = collections.deque()
        self._ready = threading.Event()
        self._room = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False

    # --- to implement ----------------------------------------------------------------------
    @abstractmethod
    def run(self) -> None:
        """Produce the data (runs on its own thread); returning ends the input."""

    def on_stop(self) -> None:  # noqa: B027 - optional hook
        """The run is over: release resources."""

    # --- sending ---------------------------------------------------------------------------
    def next(self, **kwargs: Any) -> None:
        """Send one row given as column=value keywords."""
        # _put inlined: this is the per-row cost of every Python source. The keywords' dict
        # is buffered as it is (a plain insert): a dict of plain values is not tracked by the
        # cyclic garbage collector, where a tuple around it would be until its first
        # collection, and a full collection scanning a backlog of such tuples stalled every
        # thread for tens of milliseconds.
        buffer = self._buffer
        if len(buffer) >= _BUFFER_LIMIT:
            self._wait_for_room()
        buffer.append(kwargs)
        if not self._ready.is_set():
            self._ready.set()

    def delete(self, **kwargs: Any) -> None:
        """Delete the row given as column=value keywords (the row :meth:`next` sent with the
        same values, or with the same primary key)."""
        self._put(("delete", kwargs, None))

    def next_json(self, message: dict) -> None:
        """Send one row given as a dict (or a JSON text)."""
        self._put(("insert", message, None))

    def next_str(self, message: str) -> None:
        """Send a text message (a JSON document, or the ``data`` of a raw/binary input)."""
        self._put(("insert", message, None))

    def next_bytes(self, message: bytes) -> None:
        """Send a bytes message (a JSON document, or the ``data`` of a raw/binary input)."""
        self._put(("insert", message, None))

    def commit(self) -> None:
        """Commit the rows sent so far as one minibatch, now."""
        self._put(_COMMIT)
        self._commits_sent += 1

    def close(self) -> None:
        """No more rows will be sent (called automatically when :meth:`run` returns)."""
        self._put(_END)

    def _add(self, key: t.Pointer | None, message: Any, metadata: Any = None) -> None:
        """Insert a row with the given id (None: derived as usual)."""
        self._put(("insert", message, key))

    def _remove(self, key: t.Pointer | None, message: Any, metadata: Any = None) -> None:
        """Delete the row ``message`` (its id is ``key``, or derived from the message)."""
        self._put(("delete", message, key))

    @property
    def _deletions_enabled(self) -> bool:
        return True

    @property
    def _session_type(self) -> str:
        """``"native"`` or ``"upsert"`` (a subclass may override this property, as with
        Pathway, instead of passing ``session_type``)."""
        return self._session_type_setting

    def _put(self, item: Any) -> None:
        buffer = self._buffer
        if len(buffer) >= _BUFFER_LIMIT:
            self._wait_for_room()
        buffer.append(item)
        if not self._ready.is_set():
            self._ready.set()

    def _wait_for_room(self) -> None:
        """The session is behind (or paused by backpressure): wait instead of growing. The
        reader sets ``_room`` after taking a block; the timeout only guards a stop."""
        buffer = self._buffer
        while len(buffer) >= _BUFFER_LIMIT and not self._stopped.is_set():
            self._room.clear()
            if len(buffer) >= _BUFFER_LIMIT:
                self._room.wait(0.05)

    # --- run control -----------------------------------------------------------------------
    def _start(self) -> None:
        if self._started:
            raise RuntimeError(
                f"the ConnectorSubject {type(self).__name__} was already run; "
                f"create a new one for each run"
            )
        self._started = True
        self._thread = threading.Thread(
            target=self._run_thread, daemon=True, name=f"deltaflow-subject-{type(self).__name__}"
        )
        self._thread.start()

    def _run_thread(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the input session
            self._buffer.append(_Failure(exc))
            self._ready.set()
            return
        self.close()

    def _stop(self) -> None:
        self._stopped.set()
        self._room.set()
        self.on_stop()


_KIND, _MESSAGE, _KEY = itemgetter(0), itemgetter(1), itemgetter(2)


def _first_marker(items: list[Any], start: int) -> int:
    """The position of the first marker (a commit, the end, a failure) from ``start`` on, or
    ``len(items)``. Looks at a few items first, then at windows growing fourfold: a subject
    committing every few rows has a marker close by, and the block it was taken in may hold
    thousands of items that a scan of all of them per read would go over again and again."""
    end = len(items)
    window = 16
    while start < end:
        types = list(map(type, items[start : start + window]))
        cut = len(types)
        for marker in (_Marker, _Failure):
            if marker in types:
                cut = min(cut, types.index(marker))
        if cut < len(types):
            return start + cut
        start += len(types)
        window *= 4
    return end


class _SubjectReader(Reader):
    """Takes the subject's buffered messages in blocks."""

    def __init__(self, subject: ConnectorSubject) -> None:
        self.subject = subject
        self._after: ReadEvent | None = None
        self._taken: list[Any] = []  # taken from the subject's buffer ...
        self._at = 0  # ... and read up to here
        self._done = False
        self._sent = 0
        self._commits_read = 0
        # In an upsert session a plain message replaces the row with the same key.
        self._insert_kind = "upsert" if _session_kind(subject) == "upsert" else "insert"
        subject._start()

    def read(self) -> ReadEvent | None:
        if self._after is not None:
            event, self._after = self._after, None
            return event
        if self._done:
            return Finished()
        items = self._take()
        start = self._at
        if start == len(items):
            return None
        # Messages are dicts (plain inserts sent with next()) or (kind, message, key) tuples;
        # the first marker (a commit, the end, a failure) cuts the block. Found with C-level
        # scans: per message, the session does no Python work of its own.
        cut = _first_marker(items, start)
        merged = self._merged_commits(items, cut)
        if merged:  # whole commits behind a backlog go together (their markers dropped)
            end = merged[-1]
            messages = [m for m in items[start:end] if m is not _COMMIT]
            self._commits_read += len(merged) - 1
            cut = end
        else:
            messages = items[start:cut]
        self._at = cut
        if cut < len(items):
            self._at = cut + 1
            after = self._marker_event(items[cut])
            if not messages:
                return after
            self._after = after
        first = self._sent + 1
        self._sent += len(messages)
        if list(map(type, messages)).count(dict) == len(messages):
            return self._data(messages, self._insert_kind, None, first)
        messages = [("insert", m, None) if type(m) is dict else m for m in messages]
        rows = list(map(_MESSAGE, messages))
        keys = list(map(_KEY, messages))
        kinds = list(map(_KIND, messages))
        insert = self._insert_kind
        if kinds.count("insert") == len(kinds):
            same_kind: str | None = insert
        else:
            same_kind = kinds[0] if kinds.count(kinds[0]) == len(kinds) else None
            kinds = [insert if kind == "insert" else kind for kind in kinds]
        return self._data(
            rows, same_kind or kinds, None if keys.count(None) == len(keys) else keys, first
        )

    def _merged_commits(self, items: list[Any], cut: int) -> list[int]:
        """The positions of the commit markers from ``cut`` on that end commits to read as
        one, when the subject has sent more than ``MERGE_BACKLOG_ABOVE`` commits beyond the
        one ending at ``cut`` (as the engine merges a backlog of pushed commits, and for the
        same reason: commits faster than the pipeline would otherwise each pay a whole
        minibatch); empty when there is nothing to merge. Only commits: the end of the input
        and a failure still cut."""
        if cut == len(items) or items[cut] is not _COMMIT:
            return []
        limit = runtime.MERGE_BACKLOG_ABOVE
        waiting = self.subject._commits_sent - self._commits_read - 1  # beyond this one
        if waiting <= limit:
            return []
        ends = [cut]
        while waiting > limit and ends[-1] - ends[0] < _BLOCK_ROWS:
            following = _first_marker(items, ends[-1] + 1)
            if following == len(items) or items[following] is not _COMMIT:
                break  # the next commit is not all taken yet (or the input ends)
            ends.append(following)
            waiting -= 1
        return ends if len(ends) > 1 else []

    def _data(
        self, rows: list[Any], kinds: str | list[str], keys: list[Any] | None, first: int
    ) -> Data:
        return Data(
            DictsContext(
                rows, kinds=kinds, keys=keys, metadata={"path": "message", "first": first}
            ),
            offset=("messages", self._sent),
        )

    def _take(self) -> list[Any]:
        """The messages and markers taken from the subject, up to a block; those before
        ``_at`` were read already."""
        items = self._taken
        if self._at == len(items) and items:  # all read: start a new block
            items.clear()
            self._at = 0
        buffer = self.subject._buffer
        wanted = min(_BLOCK_ROWS - (len(items) - self._at), len(buffer))
        if wanted > 0:
            popleft = buffer.popleft  # only this thread takes: ``len`` items are there
            items.extend([popleft() for _ in range(wanted)])
            if len(buffer) < _BUFFER_LIMIT:
                self.subject._room.set()
        elif self._at == len(items):
            self.subject._ready.clear()
            if buffer:  # sent between the check and the clear
                self.subject._ready.set()
        return items

    def _marker_event(self, marker: Any) -> ReadEvent:
        if isinstance(marker, _Failure):
            raise marker.error  # the session names the subject (as Pathway, same type)
        if marker is _END:
            self._done = True
            return Finished()
        self._commits_read += 1
        return Commit()

    def backlogged(self) -> bool:
        return self.subject._commits_sent > self._commits_read

    def wait(self, timeout: float) -> None:
        self.subject._ready.wait(timeout)

    def close(self) -> None:
        self.subject._stop()


class _MessageParser(Parser):
    """Messages of a subject: dicts, or texts/bytes read per the input's ``format``."""

    def __init__(self, schema: type[Schema], fmt: str) -> None:
        self.format = fmt
        self._rows = TypedRowsParser(column_specs(schema))

    def parse(self, context: ReaderContext) -> ParsedBlock:
        assert isinstance(context, DictsContext)
        first = int((context.metadata or {}).get("first", 1))
        rows: list[Mapping[str, Any]] = []
        errors: list[ParseError] = []
        keep: Sequence[int]
        if set(map(type, context.rows)) == {dict}:  # rows sent with next(): nothing to parse
            rows = list(context.rows)
            keep = range(len(rows))
        else:
            kept: list[int] = []
            for index, message in enumerate(context.rows):
                row = self._row(message, index + first, errors)
                if row is not None:
                    rows.append(row)
                    kept.append(index)
            keep = kept
        kinds = (
            context.kinds if isinstance(context.kinds, str) else [context.kinds[i] for i in keep]
        )
        keys = None if context.keys is None else [context.keys[i] for i in keep]
        block = self._rows.parse(
            DictsContext(rows, kinds=kinds, keys=keys, metadata={"path": "message"})
        )
        if block.errors:
            for error in block.errors:  # renumber "message N" from the subject's start
                number = int(error.where.rsplit(" ", 1)[1])
                error.where = f"message {first + keep[number - 1]}"
        block.errors = sorted(errors + block.errors, key=lambda e: int(e.where.rsplit(" ", 1)[1]))
        return block

    def _row(self, message: Any, number: int, errors: list[ParseError]) -> Mapping[str, Any] | None:
        if self.format == "json":
            if isinstance(message, Mapping):
                return message
            try:
                # The file readers' line loader: a message nested too deep or holding a lone
                # surrogate is reported like a bad line, not a RecursionError ending the run.
                text = message.decode("utf-8") if isinstance(message, bytes) else message
                document, reason = load_json_line(text)
            except (TypeError, ValueError) as exc:
                errors.append(ParseError(f"message {number}", f"invalid JSON: {exc}"))
                return None
            if reason is not None:
                errors.append(ParseError(f"message {number}", reason))
                return None
            if not isinstance(document, dict):
                errors.append(ParseError(f"message {number}", "a JSON object was expected"))
                return None
            return document
        if isinstance(message, Mapping):
            return message
        if self.format == "binary":
            return {"data": message if isinstance(message, bytes) else str(message).encode()}
        if not isinstance(message, bytes):
            return {"data": str(message)}
        try:
            return {"data": message.decode("utf-8")}
        except UnicodeDecodeError as exc:  # reported, never read with replacement characters
            errors.append(
                ParseError(
                    f"message {number}",
                    f"the message is not valid UTF-8 (byte {message[exc.start]:02x} "
                    f"at offset {exc.start})",
                )
            )
            return None


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
