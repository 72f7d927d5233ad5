"""The one-method reader: a :class:`PollingSource` answers ``poll(offset)``, the framework does
the rest.

Many sources are read by asking again and again "what is new since X?" (rows of a table with
an id above the last one seen, a REST endpoint with a cursor, a directory listing). For them
the full :class:`~deltaflow.io._core.base.Reader` contract is more than needed: a
:class:`PollingSource` implements :meth:`PollingSource.poll`, and :func:`read_polling` wraps it
in a reader run by an ordinary input session, which supplies the thread, minibatches,
backpressure, row ids, the parsing of rows into the schema's types with bad rows reported and
skipped, and persistence: the offset a poll returns is checkpointed with the rows, and after a
restart the first poll receives it again.
"""

from __future__ import annotations

import logging
import time as _time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import polars as pl

from deltaflow.io._core.arguments import ReadOptions, check_read_options, input_table
from deltaflow.io._core.base import (
    Data,
    DictsContext,
    Finished,
    OffsetAntichain,
    Reader,
    ReaderContext,
    ReadEvent,
    RowsContext,
)
from deltaflow.io._core.formats import TypedRowsParser, column_specs

if TYPE_CHECKING:
    from deltaflow.table import Table

logger = logging.getLogger("deltaflow.io")

#: The one part of a polled source's offset frontier.
OFFSET_KEY = "poll"
_KINDS = ("insert", "delete", "upsert")


@dataclass
class Polled:
    """What a poll found: ``rows`` (mappings of column to value, tuples in the schema's
    column order, or a Polars frame with the schema's columns), the source's ``offset`` after
    them (None: unchanged), what the rows are (``kind``: ``"insert"``, ``"delete"`` or, for a
    source with ``upserts = True``, ``"upsert"``) and whether the source has nothing more,
    ever (``finished``)."""

    rows: Iterable[Any] | pl.DataFrame = ()
    offset: Any = None
    kind: str = "insert"
    finished: bool = False


PollResult = Union[Polled, Iterable[Any], pl.DataFrame, None]
"""What :meth:`PollingSource.poll` may return: a :class:`Polled`, or just the rows (a list,
any other iterable or a frame: new insertions, offset unchanged), or None when nothing is
new."""


class PollingSource(ABC):
    """A source read by polling: implement :meth:`poll`.

    ``poll`` runs on the input's own thread, every ``poll_interval_s`` seconds while it finds
    nothing and again at once after it found rows; it should return promptly (a run stops
    between two polls). The framework remembers the offset and
    passes it to each call, so the object itself needs no read position: the same instance
    may serve several runs. In ``mode="static"`` the input ends at the first poll that finds
    no rows and leaves the offset where it was. ``upserts = True`` lets polls return
    ``kind="upsert"`` (replace the row with the same primary key) and deletions by key; the
    framework then keeps each key's current row.
    """

    poll_interval_s: float = 1.0
    upserts: bool = False

    @abstractmethod
    def poll(self, offset: Any) -> PollResult:
        """What is new after ``offset`` (None at the very start, else the last offset a poll
        returned, restored from a checkpoint after a restart)."""

    def close(self) -> None:  # noqa: B027 - optional
        """The run ended: release connections (the next run polls again)."""


def storable_offset(value: Any) -> bool:
    """Whether ``value`` can be stored in a checkpoint: None, a bool, int, float, str or
    bytes, or a tuple or list of such values."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return True
    if isinstance(value, tuple | list):
        return all(storable_offset(item) for item in value)
    return False


class PollingReader(Reader):
    """Runs a :class:`PollingSource` as a :class:`Reader` (one per run)."""

    def __init__(self, source: PollingSource, options: ReadOptions) -> None:
        self.source = source
        self.label = options.label
        self.static = not options.streaming
        self.columns = list(options.schema.columns()) if options.schema is not None else []
        self.poll_interval_s = source.poll_interval_s
        self.offset: Any = None
        self._next_poll = 0.0
        self._polls = 0
        self._done = False
        self._warned_offsetless = False

    def seek(self, frontier: OffsetAntichain) -> None:
        self.offset = frontier.get(OFFSET_KEY)

    def read(self) -> ReadEvent | None:
        if self._done:
            return Finished()
        now = _time.monotonic()
        if now < self._next_poll:
            return None
        self._polls += 1
        polled = self._as_polled(self.source.poll(self.offset))
        moved = polled.offset is not None and polled.offset != self.offset
        if moved:
            if not storable_offset(polled.offset):
                raise TypeError(
                    f"{self.label}: poll returned the offset {polled.offset!r}; "
                    "an offset must be None, a bool, int, float, str or bytes, "
                    "or a tuple or list of those (it is stored in checkpoints)"
                )
            self.offset = polled.offset
        context = self._context(polled)
        self._done = polled.finished or (self.static and context is None and not moved)
        if context is None:
            self._next_poll = now + self.poll_interval_s
            if not moved:
                return Finished() if self._done else None
            context = DictsContext([])  # the offset moved without rows: record it
        elif self.persisted and self.offset is None and not self._warned_offsetless:
            self._warned_offsetless = True
            logger.warning(
                "%s: poll returns rows without an offset; after a restart it is "
                "polled from the start again (offset None), so it must not return "
                "the rows of earlier runs again",
                self.label,
            )
        offset = None if self.offset is None else (OFFSET_KEY, self.offset)
        return Data(context, offset=offset)

    def close(self) -> None:
        self.source.close()

    def _as_polled(self, result: PollResult) -> Polled:
        if result is None:
            return Polled()
        if isinstance(result, Polled):
            if result.kind not in _KINDS:
                raise ValueError(
                    f"{self.label}: Polled.kind must be one of "
                    f"{', '.join(_KINDS)}, got {result.kind!r}"
                )
            if result.kind == "upsert" and not self.source.upserts:
                raise ValueError(
                    f"{self.label}: poll returned upserts; set upserts = True "
                    f"on {type(self.source).__name__} (its schema needs a "
                    "primary key)"
                )
            return result
        if isinstance(result, pl.DataFrame):
            return Polled(result)
        if isinstance(result, Iterable) and not isinstance(result, str | bytes | Mapping):
            return Polled(list(result))
        raise TypeError(
            f"{self.label}: poll must return rows, a Polled or None, got {type(result).__name__}"
        )

    def _context(self, polled: Polled) -> ReaderContext | None:
        rows = polled.rows
        if isinstance(rows, pl.DataFrame):
            return RowsContext(rows, kind=polled.kind) if rows.height else None
        if not isinstance(rows, list):
            rows = list(rows)
        if not rows:
            return None
        names = self.columns
        # Tuples in column order become mappings; one of the wrong length stays as it is
        # and is reported as a bad row, never filled up or cut short (so: Any, not Mapping).
        as_dicts: list[Any] = [
            row
            if isinstance(row, Mapping)
            or not isinstance(row, tuple | list)
            or len(row) != len(names)
            else dict(zip(names, row))
            for row in rows
        ]
        where = f"{self.label} poll {self._polls}, row"
        return DictsContext(as_dicts, kinds=polled.kind, metadata={"path": where})


def read_polling(
    source: PollingSource, *, schema: Any, label: str | None = None, **options: Any
) -> Table:
    """The table of the rows ``source`` finds, polling it (see :class:`PollingSource`).

    ``options`` are the common reader arguments (``mode``, ``autocommit_duration_ms``,
    ``max_backlog_size``, ``name`` ...), checked now; ``label`` names the connector in
    messages (default: the source's class name) and is the input's name unless ``name`` is
    given.
    """
    if not isinstance(source, PollingSource):
        raise TypeError(f"the source to poll must be a PollingSource, got {type(source).__name__}")
    label = label or type(source).__name__
    checked = check_read_options(label, default_name=label, schema=schema, **options)
    assert checked.schema is not None
    if source.upserts and not checked.schema.primary_key_columns():
        raise ValueError(
            f"{label}: a source with upserts needs a primary key in its schema "
            "(pw.column_definition(primary_key=True))"
        )
    interval = source.poll_interval_s
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
        raise ValueError(
            f"{label}: poll_interval_s must be a non-negative number of seconds, got {interval!r}"
        )
    return input_table(
        checked,
        lambda: PollingReader(source, checked),
        TypedRowsParser(column_specs(checked.schema)),
        keep_row_state=source.upserts,
    )
