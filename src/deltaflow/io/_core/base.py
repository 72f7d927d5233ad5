"""The connector contract: what a Reader, Parser, Formatter and Writer must do.

A connector for a new system implements a :class:`Reader` and/or a :class:`Writer` (plus, if
its data is not already covered, a :class:`Parser`/:class:`Formatter`). Everything else —
threads, queues, minibatching, backpressure, offsets, statistics, error reporting — comes from
the input and output sessions (:mod:`deltaflow.io._core.input_session`,
:mod:`deltaflow.io._core.output_session`).

Per-row Python calls are costly, so a ``Data`` event may carry a whole block of records and a
formatter receives a whole delta batch (a Polars frame) at once.
"""

from __future__ import annotations

import io
import time as _time
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import polars as pl

if TYPE_CHECKING:
    from deltaflow.engine.workers.inputs import WorkerShare

# ------------------------------------------------------------------------------------------
# Offsets
# ------------------------------------------------------------------------------------------

OffsetKey = Hashable
"""Which part of a source an offset is about (a file path, a partition, "rowid" ...)."""

OffsetValue = Any
"""A position within that part; must be comparable with ``<`` for merging frontiers."""

OffsetAntichain = Mapping[OffsetKey, OffsetValue]
"""The frontier of a source: for each part, the position up to which data was read."""


# ------------------------------------------------------------------------------------------
# Reader contexts: what a reader hands a parser
# ------------------------------------------------------------------------------------------


class ReaderContext:
    """Base of what a ``Data`` event carries."""


@dataclass
class RawContext(ReaderContext):
    """Raw records: each is ``bytes`` or ``str`` (a line, a message, a whole object ...).

    ``metadata`` describes where they came from (path, size, modification time ...) and is
    what ``with_metadata=True`` exposes as the ``_metadata`` column. ``first_line`` numbers the
    first record, for error messages.
    """

    records: list[bytes] | list[str]
    metadata: Mapping[str, Any] | None = None
    first_line: int = 1
    #: A big document may come in pieces of whole lines, one context each with a single
    #: record: ``continues`` says it goes on from the previous context's record,
    #: ``continued`` that the next context goes on with it (so a CSV header is in the first
    #: piece only). Parsers that care keep what they need from one piece to the next.
    continues: bool = False
    continued: bool = False


@dataclass
class KeyValueContext(ReaderContext):
    """Key/value messages (queues, object stores keyed by name)."""

    keys: list[Any]
    values: list[bytes | str | None]
    metadata: Mapping[str, Any] | None = None


@dataclass
class RowsContext(ReaderContext):
    """Already structured rows: a frame with the schema's columns as stored by the source.

    ``kind`` says what the rows are: ``"insert"``, ``"delete"``, ``"upsert"`` (replace the row
    with the same key, or insert it) — or ``"column"``, in which case the frame has a
    ``_kind`` column holding one of those words per row. ``keys``, if given, are the row ids
    (``pl.UInt128``) the source already knows (e.g. from a primary key or a rowid).
    """

    frame: pl.DataFrame
    kind: str = "insert"
    keys: pl.Series | None = None
    metadata: Mapping[str, Any] | None = None


@dataclass
class DictsContext(ReaderContext):
    """Rows as Python mappings of column name to value (Python connectors, JSON documents).

    ``kinds`` is one word for all rows (as in :class:`RowsContext`) or one word per row;
    ``keys``, if given, are row ids (``Pointer``/int, None to derive it) per row.
    """

    rows: list[Mapping[str, Any]]
    kinds: str | list[str] = "insert"
    keys: list[Any] | None = None
    metadata: Mapping[str, Any] | None = None


# ------------------------------------------------------------------------------------------
# Reader events
# ------------------------------------------------------------------------------------------


class ReadEvent:
    """Base of what :meth:`Reader.read` returns."""


@dataclass
class Data(ReadEvent):
    """Records, and the reader's offset after the last of them."""

    context: ReaderContext
    offset: tuple[OffsetKey, OffsetValue] | None = None


@dataclass
class NewSource(ReadEvent):
    """A new part of the source begins (a file, an object ...). Rows until the matching
    ``FinishedSource`` form a block that an autocommit never splits.

    ``key`` names the part (defaults to ``metadata["path"]``); rows read inside the block are
    attributed to it. ``replaces=True`` means the part was read before and changed (or
    vanished): the session retracts every row it read from that part earlier, in the same
    transaction as the block's new rows. Only readers whose ``retracts_sources`` is True may
    set it (the session then remembers each part's rows).
    """

    metadata: Mapping[str, Any] = field(default_factory=dict)
    key: Hashable | None = None
    replaces: bool = False

    @property
    def source_key(self) -> Hashable | None:
        return self.key if self.key is not None else self.metadata.get("path")


@dataclass
class FinishedSource(ReadEvent):
    """The current part ended. ``commit_possibility``: the session may commit right here."""

    commit_possibility: bool = True


@dataclass
class Finished(ReadEvent):
    """The reader has nothing more, ever (static mode, or an exhausted source)."""


@dataclass
class Commit(ReadEvent):
    """Commit the rows read so far now (an explicit commit requested by the source).

    Ignored inside an open ``NewSource`` block: the block is committed when it finishes.
    """


# ------------------------------------------------------------------------------------------
# The four roles
# ------------------------------------------------------------------------------------------


#: How often rows kept for a busy engine look whether it has caught up (readers that commit
#: when the engine is idle; see :attr:`Reader.commits_when_idle`).
ENGINE_POLL_S = 0.002


class EngineBacklog(Protocol):
    """How far the engine is behind one input (the session's engine handle offers it)."""

    @property
    def backlog_rows(self) -> int:
        """Rows the input committed that the engine has not processed yet."""
        ...

    def wait_backlog_below(self, limit: int, timeout: float | None = None) -> bool:
        """Block until fewer than ``limit`` such rows remain; False on timeout."""
        ...


class Reader(ABC):
    """Talks to the source system and yields :class:`ReadEvent` s.

    ``read`` is called repeatedly from the input session's thread. It returns the next event,
    or None when nothing is available right now (the session then waits ``poll_interval_s``
    and asks again, committing pending rows if the autocommit duration elapsed).
    """

    poll_interval_s: float = 0.05
    retracts_sources: bool = False
    """True if the reader emits ``NewSource(replaces=True)`` (the session then keeps rows)."""
    replays_from_start: bool = False
    """True if, after a restart, the source sends its rows again from its beginning (a Python
    subject runs again): persistence then replays its snapshot instead of seeking."""
    persisted: bool = False
    """Set by the input session, before ``seek``, when persistence records this input."""
    engine: EngineBacklog | None = None
    """Set by the input session before the first read: readers that commit on their own
    clock (a REST endpoint) commit at once when the engine has caught up with them."""
    commits_when_idle: bool = False
    """True for sources of independent records (queue messages): when ``read`` has nothing
    more right now and the engine has processed everything this input committed, the session
    commits the rows read so far at once instead of waiting for ``autocommit_duration_ms``
    (which stays the longest wait). Rows read while the engine is busy go together."""

    @abstractmethod
    def read(self) -> ReadEvent | None: ...

    def engine_idle(self) -> bool:
        """Whether the engine has processed every row this input committed (False without
        an engine: a reader used on its own)."""
        return self.engine is not None and self.engine.backlog_rows == 0

    def backlogged(self) -> bool:
        """Whether the source has already committed more than the reader has read (then the
        engine's thread processes this input's commits and may merge a backlog of them, see
        ``SourceHandle.backlogged``). Readers that cannot tell say False."""
        return False

    def wait_for_engine(self, timeout: float) -> None:
        """Block until the engine has caught up with this input, at most ``timeout`` seconds."""
        if self.engine is None:
            _time.sleep(timeout)
        else:
            self.engine.wait_backlog_below(1, timeout)

    def wait(self, timeout: float) -> None:
        """Block until data may be available, at most ``timeout`` seconds.

        The default sleeps; readers fed by another thread override it to wake up at once.
        """
        _time.sleep(min(timeout, self.poll_interval_s))

    def seek(self, frontier: OffsetAntichain) -> None:  # noqa: B027 - optional
        """Position the reader just after ``frontier`` (persistence)."""

    def progress(self) -> tuple[int, int] | None:
        """``(bytes read, bytes to read)`` when the reader knows how much there is (static
        files); None otherwise. Called from the monitor's thread: only read counters."""
        return None

    def keep_share(self, share: WorkerShare) -> None:
        """Read only this worker's ``share`` of the input (the files or objects of its
        paths, the partitions of a topic): with several workers, each reads its own. Only
        readers whose session was built with ``splits=True`` are asked."""
        raise NotImplementedError(f"{type(self).__name__} cannot read a share of its input")

    def checkpointed(self, frontier: OffsetAntichain) -> None:  # noqa: B027 - optional
        """A checkpoint now holds everything read up to ``frontier``.

        Called on the engine's thread: only record it. A source that must be told what it
        may forget (a replication slot) acts on it on the reader's own thread."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections and files."""


class Parser(ABC):
    """Turns reader contexts into rows of the table's schema."""

    @abstractmethod
    def parse(self, context: ReaderContext) -> ParsedBlock: ...


@dataclass
class ParseError:
    """One record that could not be parsed: where it was and why."""

    where: str
    reason: str


@dataclass
class ParsedBlock:
    """Rows produced by a parser.

    ``frame`` holds the schema's columns with their Polars dtypes. ``kind`` is as in
    :class:`RowsContext` (``"column"`` means a ``_kind`` column). ``keys`` are row ids when
    known; otherwise the session derives them from the primary key or the source position.
    ``errors`` lists records that were skipped.
    """

    frame: pl.DataFrame
    kind: str = "insert"
    keys: pl.Series | None = None
    errors: list[ParseError] = field(default_factory=list)


class Formatter(ABC):
    """Turns a delta batch (``_id``, columns, ``_diff``) of one time into a writer payload."""

    @abstractmethod
    def format(self, batch: pl.DataFrame, time: int) -> Any: ...


class BytesFormatter(Formatter):
    """A formatter whose payloads are bytes and which can write them into a binary stream.

    Formatting straight into the destination (see :meth:`Writer.stream`) spares building the
    whole payload in memory and copying it again: for a batch of millions of rows that is
    hundreds of megabytes, and Polars can then encode and write at the same time.
    """

    @abstractmethod
    def format_into(self, batch: pl.DataFrame, time: int, stream: BinaryIO) -> None:
        """Write the payload of ``batch`` into ``stream`` (the bytes :meth:`format` returns)."""

    def format(self, batch: pl.DataFrame, time: int) -> bytes:
        buffer = io.BytesIO()
        self.format_into(batch, time, buffer)
        return buffer.getvalue()


FLUSHED: Any = object()
"""What :meth:`Writer.durable_time` returns when flushed times are durable."""


class Writer(ABC):
    """Talks to the destination system.

    ``write`` receives each formatter payload; ``flush`` is called once per time, after all
    of that time's payloads, and must leave them durable in the destination — or keep them
    buffered on purpose without losing them. ``close`` ends the run: write what is left.
    """

    several_writers: bool = False
    """Whether several writers (one per worker) may write to the destination at once."""

    inline: bool = False
    """Whether ``write`` and ``flush`` only hand the payload to a client that sends it in
    the background (a Kafka producer's queue) and never wait on the destination: the output
    session then runs them in the engine's thread, saving a thread hand-off per time."""

    persisted: bool = False
    """Set by persistence, before anything is written, when it records this output: it will
    then ask for :meth:`position` and :meth:`durable_time` (a writer may track less without)."""

    shared_replay: bool = False
    """Set by persistence, before :meth:`resume`, when every worker writes this output
    (``several_writers``) in a persisted run: what a crashed run wrote after the checkpoint
    is then settled by worker 0 for all of them (see ``engine/workers/checkpoints.py``)."""

    @abstractmethod
    def write(self, payload: Any) -> None: ...

    def flush(self, time: int) -> None:  # noqa: B027 - optional
        """Make everything written so far durable (called once per time)."""

    def stream(self) -> BinaryIO | None:
        """A binary stream a :class:`BytesFormatter` may write payloads into directly, or None.

        Bytes written there count as if passed to :meth:`write`; ``flush``/``close`` follow as
        usual. The default (None) means payloads only arrive through :meth:`write`.
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional
        """Flush what is left and release resources (the run ended normally)."""

    def abort(self) -> None:  # noqa: B027 - optional
        """Release resources without writing more (the run failed)."""

    # --- persistence (docs/persistence.md, "Exactly once") ------------------------------
    def position(self) -> Any:
        """Where the destination stands after the last ``flush`` (a JSON value: a file's
        length, the last time stored ...), recorded in the checkpoint of that time; None when
        the writer cannot undo what it wrote after a checkpoint (at-least-once)."""
        return None

    def export_position(self, position: Any) -> Any:
        """The JSON form of a :meth:`position` when a checkpoint records it (called on the
        engine thread once the position is durable)."""
        return position

    def merge_positions(self, positions: list[Any], time: int) -> Any:
        """One position for the checkpoint of ``time`` of an output written on several
        workers (``several_writers``), from each worker's :meth:`export_position` (None: it
        has none yet). The default keeps the first one given; a writer taking several writers
        in a persisted run must say how its positions combine (Kafka's: ``kafka/_replay.py``)."""
        return next((p for p in positions if p is not None), None)

    def durable_time(self) -> Any:
        """The last time whose payloads are all in the destination; :data:`FLUSHED` (the
        default) means "the last time flushed". A writer that keeps rows after ``flush``
        (to upload them later) returns an earlier time, so that no checkpoint covers them."""
        return FLUSHED

    def resume(self, position: Any) -> None:  # noqa: B027 - optional
        """The run restarts from a checkpoint that recorded ``position`` for this output
        (called before anything is written): remove what was written after it, so that the
        changes the restarted run writes again are not doubled."""
