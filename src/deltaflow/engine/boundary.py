"""The engine's boundary: what an input source hands the engine and what a sink receives.

The I/O layer (``deltaflow.io``) builds its input and output sessions on these two classes; the
engine knows nothing else about connectors.

Batches crossing the boundary are *delta batches*: Polars DataFrames with a ``_id`` column
(``pl.UInt128``), the table's columns in schema order with the schema's Polars dtypes, and a
``_diff`` column (``pl.Int64``; +1 insertion, -1 deletion).
"""

from __future__ import annotations

import threading
import time as _time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import polars as pl

from deltaflow.engine.batch import mark_distinct_ids
from deltaflow.errors import ConnectorError, ConnectorOSError, connector_error  # noqa: F401


@dataclass
class ConnectorStats:
    """Counters every connector keeps; read by monitoring."""

    rows_read: int = 0
    rows_committed: int = 0
    rows_written: int = 0
    batches: int = 0
    last_commit_monotonic: float | None = None
    last_processed_monotonic: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: Commits of up to this many rows may be processed on the pushing thread when the engine is
#: idle (``SourceHandle.process_inline``): a bigger one is throughput, not latency, and the
#: engine's own thread processes it while the source prepares the next.
INLINE_MAX_ROWS = 1024


class Pushed(NamedTuple):
    """One push of a source, as the engine takes it (see :meth:`SourceHandle.push`)."""

    batch: pl.DataFrame
    time: int | None
    offsets: Any
    more: bool


class SourceHandle:
    """The engine-side end of one input source, given to :meth:`Source.start`.

    All methods are thread-safe; sources call them from their own threads.
    """

    def __init__(self, name: str, notify: Callable[[], None]) -> None:
        self.name = name
        self._notify = notify
        self._lock = threading.Condition()
        self._pending: list[Pushed] = []
        #: Set by the engine before the source starts: whether the parts of a time may be
        #: pushed separately (``push(..., more=True)``; see :meth:`push`).
        self.accepts_parts = False
        self._in_parts = False
        self._finished = False
        self._failure: BaseException | None = None
        self._backlog_rows = 0
        self.stats = ConnectorStats()
        #: Set by the engine when a push may be processed on the pushing thread while the
        #: engine is idle (see ``Runtime.process_inline``); returns whether it was.
        self.process_inline: Callable[[], bool] | None = None
        #: Set by the source: whether more of its commits are waiting to be pushed. Those are
        #: left to the engine's thread, which merges a backlog of commits into fewer times.
        self.backlogged: Callable[[], bool] | None = None

    # --- called by the source -----------------------------------------------------------
    def push(
        self,
        batch: pl.DataFrame,
        *,
        time: int | None = None,
        offsets: Any = None,
        consolidated: bool = False,
        more: bool = False,
    ) -> None:
        """Hand over one committed minibatch. All its rows enter the engine at one time.

        ``time`` pins the batch to a given (even) logical time; sources reading live data leave
        it None and the engine assigns the next time. ``offsets`` is the source's position after
        this batch, recorded for persistence.

        ``consolidated=True`` promises that no id occurs twice in ``batch`` (so no two rows can
        cancel or merge) and that no diff is 0 — true of insert-only batches whose ids are
        positions or distinct keys. The engine then skips its own uniqueness check of the ids,
        the largest cost of a big static input after reading it. A wrong promise gives
        unconsolidated deltas downstream, so leave it False when unsure.

        ``more=True`` pushes a *part* of a time: more rows of the same time follow, up to a
        push with ``more=False``. Only allowed when :attr:`accepts_parts` is set (the engine
        then streams each part to the outputs as it comes, so a big static file is written
        while it is still being parsed), only with ``consolidated=True`` and never with a
        pinned ``time``: the parts of a time together must hold no id twice.
        """
        if more and not (self.accepts_parts and consolidated and time is None):
            raise ValueError(
                f"{self.name}: a part of a time (more=True) needs "
                f"accepts_parts, consolidated=True and no pinned time"
            )
        if batch.height == 0 and offsets is None and not self._in_parts:
            return  # (an empty push still ends a time whose parts were pushed)
        if consolidated and batch.height:
            mark_distinct_ids(batch)
        with self._lock:
            self._pending.append(Pushed(batch, time, offsets, more))
            self._in_parts = more
            self._backlog_rows += batch.height
            self.stats.rows_committed += batch.height
            self.stats.batches += 1
            self.stats.last_commit_monotonic = _time.monotonic()
        if (
            self.process_inline is not None
            and not more
            and time is None
            and batch.height <= INLINE_MAX_ROWS
            and not (self.backlogged is not None and self.backlogged())
            and self.process_inline()
        ):
            return
        self._notify()

    def finish(self) -> None:
        """The source has no more data (static mode, or an exhausted stream)."""
        with self._lock:
            self._finished = True
        self._notify()

    def fail(self, error: BaseException) -> None:
        """Stop the run: the source cannot go on."""
        with self._lock:
            if self._failure is None:
                self._failure = error
            self._finished = True
        self._notify()

    @property
    def backlog_rows(self) -> int:
        """Rows pushed but not yet processed by the engine (for backpressure)."""
        return self._backlog_rows

    def wait_backlog_below(self, limit: int, timeout: float | None = None) -> bool:
        """Block until fewer than ``limit`` pushed rows await processing; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._backlog_rows < limit, timeout)

    # --- called by the engine -----------------------------------------------------------
    def take(self) -> list[Pushed]:
        with self._lock:
            pending, self._pending = self._pending, []
            return pending

    def has_pending(self) -> bool:
        return bool(self._pending)

    def mark_processed(self, rows: int) -> None:
        with self._lock:
            self._backlog_rows -= rows
            self.stats.last_processed_monotonic = _time.monotonic()
            self._lock.notify_all()

    @property
    def finished(self) -> bool:
        return self._finished and not self._pending

    @property
    def failure(self) -> BaseException | None:
        return self._failure


class Source(ABC):
    """An input of the dataflow. Subclasses run their own thread(s) and push minibatches."""

    name: str = "source"
    #: Whether the source reads a fixed input and then finishes (``mode="static"``). The
    #: first time of a run waits for the first commit of every such source, so that static
    #: inputs start together (an ``ix`` or join across two of them finds its rows at once).
    bounded: bool = False

    @abstractmethod
    def start(self, handle: SourceHandle) -> None:
        """Begin producing into ``handle``; must return promptly (do the work on a thread)."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """The run is over (or failed): stop threads and release resources."""


class Sink(ABC):
    """An output of the dataflow. The engine calls these methods from its own thread."""

    name: str = "sink"
    stats: ConnectorStats
    #: Whether ``on_batch`` may be called several times for one time (with parts that
    #: together are the time's consolidated changes), as when a big file streams through
    #: row-wise operators. Sinks that need the whole time in one call leave it False.
    accepts_parts: bool = False
    #: Whether the destination takes several writers at once (a Kafka topic): with several
    #: workers, each then writes the rows it holds (see ``engine.workers.placement``).
    #: Destinations that need one writer (a file, a SQLite database, a callback) leave it
    #: False and get every row on worker 0.
    several_writers: bool = False
    #: Whether the user chose ``name`` (``name=``): such names must be unique among the run's
    #: inputs and outputs, as in Pathway; default names may repeat.
    named: bool = False

    def start(self) -> None:  # noqa: B027 - optional hook
        """Called once before the first time is processed."""

    @abstractmethod
    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        """The consolidated changes of ``time`` (called once per time, only if any; several
        times, with parts of them, when :attr:`accepts_parts` is set)."""

    def on_time_end(self, time: int) -> None:  # noqa: B027 - optional hook
        """All changes of ``time`` were delivered: make them durable (flush)."""

    def on_end(self) -> None:  # noqa: B027 - optional hook
        """The run ended normally: flush whatever is left and release resources.

        Blocks until everything is written; raises if anything could not be.
        """

    def abort(self) -> None:  # noqa: B027 - optional hook
        """The run failed: release resources without waiting for pending writes."""

    def failure(self) -> BaseException | None:
        """A failure that happened asynchronously (on a writer thread), if any."""
        return None


class sink_errors:  # noqa: N801 - used as a function: ``with sink_errors(sink): ...``
    """Report an exception raised by a sink as a :class:`ConnectorError` naming it.

    A class rather than a generator-based context manager: it wraps every sink call of
    every time, where making a generator and its wrapper costs more than the rest."""

    __slots__ = ("_sink",)

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, ConnectorError):
            raise connector_error(self._sink.name, exc) from exc
