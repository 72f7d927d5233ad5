"""The subject side of ``pw.io.python.read``: :class:`ConnectorSubject`, whose ``run`` sends
messages from its own thread, the reader the input session takes them with, and the parser of
the messages (also used by the HTTP client's reader).

Messages are buffered with one deque append each; the reader takes them in blocks and cuts
them at the markers (a commit, the end, a failure) with C-level scans.
"""

from __future__ import annotations

import collections
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

from deltaflow import _types as t
from deltaflow.engine import times
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
from deltaflow.io._core.formats import TypedRowsParser, column_specs
from deltaflow.io._core.json_text import load_json_line
from deltaflow.schema import Schema


class _Marker:
    """What a subject's buffer holds besides its messages (which are tuples)."""


_COMMIT = _Marker()
_END = _Marker()
_BLOCK_ROWS = 10_000
#: Behind a backlog, whole commits are read as one (see ``_merged_commits``) up to this many
#: messages: an upsert session slower than its subject then reads a backlog of 10,000-row
#: commits a few at a time, rather than paying a block and a minibatch for each.
_MERGE_ROWS = 50_000
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

    replays_from_start = True  # the subject runs again from its start after a restart

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
        limit = times.MERGE_BACKLOG_ABOVE
        waiting = self.subject._commits_sent - self._commits_read - 1  # beyond this one
        if waiting <= limit:
            return []
        ends = [cut]
        while waiting > limit and ends[-1] - ends[0] < _MERGE_ROWS:
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
        """The messages and markers taken from the subject, topped up to a block of unread
        ones; those before ``_at`` were read already."""
        items = self._taken
        backlog = self.subject._commits_sent - self._commits_read - 1
        block = _MERGE_ROWS if backlog > times.MERGE_BACKLOG_ABOVE else _BLOCK_ROWS
        if self._at == len(items) or self._at >= block // 2:
            # What was read goes: all of it, or half a block of it. Behind a backlog the block
            # is topped up before all of it is read; kept until then, it held every message
            # read since the backlog began.
            del items[: self._at]
            self._at = 0
        buffer = self.subject._buffer
        wanted = min(block - (len(items) - self._at), len(buffer))
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
        if isinstance(context.kinds, str) and context.keys is None:
            # Rows sent with next(), of one kind, exactly typed (a live update's): their
            # frame at once, with nothing to number, report or key.
            block = self._rows.exact_block(context.rows, context.kinds)
            if block is not None:
                return block
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
