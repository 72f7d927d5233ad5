"""Input sessions: a thread per input connector running Reader → Parser → minibatches.

The session is the engine's :class:`~deltaflow.engine.boundary.Source` for every reader-based
connector. Its thread asks the reader for events, parses ``Data`` events, gives rows their ids
(primary key, ids the source knows, or the source position), turns deletions and upserts into
retractions, and commits minibatches to the engine:

* every ``autocommit_duration_ms`` (None: only on explicit ``Commit`` events and at the end),
  but never inside a ``NewSource`` .. ``FinishedSource`` block; sooner, as soon as the engine
  has processed everything the input committed, for readers of independent records
  (``Reader.commits_when_idle``);
* when the rows waiting reach ``max_backlog_size``; a commit then waits until the engine's
  backlog leaves room for it, which pauses reading (backpressure).

Each pushed batch carries the reader's offset frontier. Bad records are logged once each and
skipped; a reader or parser exception stops the run with a :class:`ConnectorError`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time as _time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from deltaflow import _types as t
from deltaflow._ids import ID_DTYPE, hash_columns
from deltaflow._row_store import FEW_ROWS
from deltaflow._small_frames import INT64, ListFrame, frame_of, list_frame_of
from deltaflow.engine.batch import DIFF, ID, stack
from deltaflow.engine.boundary import Source, SourceHandle, connector_error
from deltaflow.io._core.bad_records import BadRecordLog, reporting_to
from deltaflow.io._core.base import (
    ENGINE_POLL_S,
    Commit,
    Data,
    Finished,
    FinishedSource,
    NewSource,
    OffsetAntichain,
    ParsedBlock,
    Parser,
    Reader,
)
from deltaflow.io._core.formats import METADATA_COLUMN
from deltaflow.io._core.offsets import OffsetFrontier
from deltaflow.io._core.position_ids import PositionIds
from deltaflow.io._core.row_changes import RowChanges, ones, with_column

if TYPE_CHECKING:
    from deltaflow.engine.workers.inputs import WorkerShare

logger = logging.getLogger("deltaflow.io")

_PART_ROWS = 100_000  # a block with this many rows ready may push them as a part of its time
_PART_BACKLOG_ROWS = 500_000  # a part waits while this many pushed rows are unprocessed


class _Stopped(Exception):
    """The run asked the session to stop."""


class InputSession(Source):
    """Runs one :class:`Reader` + :class:`Parser` pair on its own thread.

    ``reader_factory`` builds a fresh reader at every run. ``keep_row_state`` makes the session
    remember the current row of every id, which ``upsert`` rows and key-only deletions need.
    """

    def __init__(
        self,
        name: str,
        reader_factory: Callable[[], Reader],
        parser: Parser,
        *,
        columns: Mapping[str, t.DType],
        primary_key: Sequence[str] | None = None,
        autocommit_duration_ms: int | None = 1500,
        max_backlog_size: int | None = None,
        keep_row_state: bool = False,
        seek_to: OffsetAntichain | None = None,
        named: bool = True,
        splits: bool = False,
        static: bool = False,
    ) -> None:
        self.name = name
        self.named = named  # the user chose the name (SELECTIVE_PERSISTING keeps only those)
        self.reader_factory = reader_factory
        self.parser = parser
        self.columns = dict(columns)
        self.primary_key = list(primary_key or [])
        self.autocommit_s = (
            None if autocommit_duration_ms is None else autocommit_duration_ms / 1000.0
        )
        self.max_backlog_size = max_backlog_size
        self.keep_row_state = keep_row_state
        self.seek_to = seek_to
        # Set by persistence for one run (deltaflow.persistence.run): a queue receiving the
        # source part and row count of every frame made ready, the rows replayed from a
        # checkpoint per source part, and a check that the reader can resume.
        self.source_tags: collections.deque[tuple[Hashable | None, int]] | None = None
        self.restored: list[tuple[Hashable | None, pl.DataFrame]] | None = None
        self.reader_check: Callable[[Reader], None] | None = None
        self._names = [ID, *self.columns, DIFF]
        self._key_types = [(k, self.columns[k]) for k in self.primary_key]
        #: The deltas rows make, and the current row of every id (keep_row_state).
        self._changes = RowChanges(self.columns, self.primary_key, keep_row_state)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: SourceHandle | None = None
        self._reader: Reader | None = None
        self._progress: Callable[[], tuple[int, int] | None] = lambda: None
        self._bad_records = BadRecordLog(name)  # renewed at every run
        #: The io.synchronization group this session's table belongs to, if any.
        self.sync_group: Any = None
        #: Whether the reader can read a share of its input (files and objects by path, a
        #: topic by partition): with several workers, each then reads its own share (see
        #: ``Reader.keep_share``).
        self.splits = splits
        #: Whether the input is read once and then finishes (``mode="static"``).
        self.static = static
        self.bounded = static
        #: Set by a run on several workers before the session starts: the share of the
        #: input this worker reads (None: all of it).
        self.share: WorkerShare | None = None

    @property
    def current_handle(self) -> SourceHandle | None:
        """The handle of the run this session last started in."""
        return self._handle

    @property
    def progress(self) -> tuple[int, int] | None:
        """The reader's ``(bytes read, bytes to read)`` (static files), kept after it ends."""
        return self._progress()

    @property
    def is_reading(self) -> bool:
        """Whether the session's thread is running (started and not yet finished)."""
        return self._thread is not None and self._thread.is_alive()

    # --- Source ---------------------------------------------------------------------------
    def start(self, handle: SourceHandle) -> None:
        self._handle = handle
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"deltaflow-input-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def checkpointed(self, frontier: OffsetAntichain) -> None:
        """Persistence wrote a checkpoint holding this input up to ``frontier``."""
        reader = self._reader
        if reader is not None:
            reader.checkpointed(frontier)

    # --- the session thread ----------------------------------------------------------------
    def _run(self) -> None:
        handle = self._handle
        assert handle is not None
        reader: Reader | None = None
        self._bad_records = BadRecordLog(self.name)
        try:
            reader = self.reader_factory()
            reader.persisted = self.source_tags is not None  # persistence records this input
            reader.engine = handle
            handle.backlogged = reader.backlogged
            self._reader = reader
            self._progress = reader.progress
            if self.reader_check is not None:
                self.reader_check(reader)
            if self.share is not None:
                reader.keep_share(self.share)
            if self.seek_to:
                reader.seek(self.seek_to)
            with reporting_to(self._bad_records):  # bad values of the parser, rate-limited
                self._loop(reader, handle)
            handle.finish()
        except _Stopped:
            handle.finish()
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the engine
            # Reported once: the engine raises it out of pw.run(); logged here for debugging.
            logger.debug("input %s failed: %s: %s", self.name, type(exc).__name__, exc)
            handle.fail(connector_error(self.name, exc))
        finally:
            self._bad_records.flush()
            self._reader = None
            if reader is not None:
                try:
                    reader.close()
                except Exception:  # closing must not hide the run's outcome
                    logger.exception("input %s: closing the reader failed", self.name)

    def _loop(self, reader: Reader, handle: SourceHandle) -> None:
        self._changes.reset()  # the current row of every id (keep_row_state)
        self._by_source: dict[Hashable, list[pl.DataFrame]] = {}
        self._position_ids = PositionIds(self.name, self._stream_seed())
        self._retracting = reader.retracts_sources
        self._frontier = OffsetFrontier(self.seek_to)
        self._pushed_offsets: dict[Any, Any] | None = None
        self._ready: list[pl.DataFrame] = []  # rows that may be committed
        self._ready_rows = 0
        self._ready_distinct = True  # whether no id occurs twice in _ready (see _distinct)
        self._ready_spans: list[tuple[int, int]] = []  # _ready's rows of one file (sync groups)
        self._block: list[pl.DataFrame] | None = None  # rows of an open NewSource block
        self._block_distinct = True
        self._distinct = False  # whether the last delta's ids are positions (so, distinct)
        self._block_key: Hashable | None = None
        self._first_pending: float | None = None
        self._parts_open = False  # parts of the time being read were pushed (_push_part)
        if self.restored:
            self._restore(self.restored)
        stats = handle.stats
        idle_commits = reader.commits_when_idle and self.autocommit_s is not None
        while True:
            if self._stop.is_set():
                raise _Stopped
            event = reader.read()
            if event is None:
                if self._due():
                    self._commit(handle)
                elif idle_commits and self._ready_rows and self._block is None:
                    if reader.engine_idle():
                        self._commit(handle)  # the engine waits for nothing else
                        continue
                    # Wait for the engine to catch up (the commit then takes what came
                    # meanwhile), looking for new rows every few milliseconds.
                    reader.wait_for_engine(min(self._wait_time(), ENGINE_POLL_S))
                    continue
                reader.wait(self._wait_time())
                continue
            if isinstance(event, Data):
                delta = self._delta(event.context, stats)
                if event.offset is not None:
                    self._frontier.advance(*event.offset)
                if delta is not None:
                    self._add(delta, self._distinct)
                    self._push_part(handle)
            elif isinstance(event, NewSource):
                self._open_block(event)
            elif isinstance(event, FinishedSource):
                self._close_block()
                if not event.commit_possibility:
                    continue
                if self._parts_open:  # the time its parts opened ends with the source
                    self._commit(handle)
                    continue
            elif isinstance(event, Commit):
                if self._block is None:
                    self._commit(handle)
                continue
            elif isinstance(event, Finished):
                self._close_block()
                self._commit(handle)
                return
            else:
                raise TypeError(f"reader returned {event!r}, not a ReadEvent")
            if self._block is None and (
                self._due() or self._backlog_full() or (idle_commits and reader.engine_idle())
            ):
                self._commit(handle)

    def _wait_time(self) -> float:
        if self._first_pending is None or self.autocommit_s is None:
            return 0.05
        return max(0.0, min(0.05, self._first_pending + self.autocommit_s - _time.monotonic()))

    def _due(self) -> bool:
        return (
            self._ready_rows > 0
            and self.autocommit_s is not None
            and self._first_pending is not None
            and _time.monotonic() - self._first_pending >= self.autocommit_s
        )

    def _backlog_full(self) -> bool:
        return self.max_backlog_size is not None and self._ready_rows >= self.max_backlog_size

    # --- blocks ----------------------------------------------------------------------------
    def _open_block(self, event: NewSource) -> None:
        if self._block is not None:
            self._close_block()
        self._block = []
        self._block_distinct = True
        self._block_key = event.source_key
        if event.replaces:
            if not self._retracting:
                raise RuntimeError(
                    "the reader replaced a source but does not declare retracts_sources = True"
                )
            old = self._by_source.pop(self._block_key, [])
            self._position_ids.restart(self._block_key)
            if old:
                frame = stack(old)
                self._block.append(frame.with_columns((-pl.col(DIFF)).alias(DIFF)))
                # The new rows take the same positions, hence the same ids, again.
                self._block_distinct = False

    def _close_block(self) -> None:
        if self._block is None:
            return
        block, self._block = self._block, None
        first = self._ready_rows
        for frame in block:
            self._append_ready(frame, self._block_distinct)
        if self._ready_rows > first + 1 and not self.static:  # (static: see sync_group.admit)
            self._ready_spans.append((first, self._ready_rows))
        self._block_key = None

    def _add(self, delta: pl.DataFrame, distinct: bool) -> None:
        if self._block is not None:
            self._block.append(delta)
            self._block_distinct = self._block_distinct and distinct
            if self._retracting and self._block_key is not None:
                self._by_source.setdefault(self._block_key, []).append(delta)
        else:
            self._append_ready(delta, distinct)

    def _append_ready(self, frame: pl.DataFrame, distinct: bool) -> None:
        if frame.height == 0:
            return
        if self._first_pending is None:
            self._first_pending = _time.monotonic()
        self._ready.append(frame)
        if self.source_tags is not None:
            self.source_tags.append((self._block_key, frame.height))
        self._ready_rows += frame.height
        self._ready_distinct = self._ready_distinct and distinct

    def _commit(self, handle: SourceHandle) -> None:
        if self.sync_group is not None:  # even a source finishing empty must be known to it
            self.sync_group.seen(self, handle)
        offsets = self._frontier.snapshot() if self._frontier else None
        parts_open, self._parts_open = self._parts_open, False
        if not self._ready:
            if parts_open or (offsets and offsets != self._pushed_offsets):
                # Progress without rows (e.g. only bad records): persistence still needs it.
                # And a time whose parts were pushed ends only with a push without ``more``.
                self._pushed_offsets = offsets
                handle.push(self._empty(), offsets=offsets)
            return
        self._pushed_offsets = offsets
        # A single delta keeps the marks _delta gave it (mark_distinct_ids, mark_consolidated:
        # an upsert delta is consolidated by itself); stacked ones the engine consolidates.
        batch = stack(self._ready) if len(self._ready) > 1 else self._ready[0]
        distinct = self._ready_distinct
        spans = self._ready_spans
        self._ready = []
        self._ready_rows = 0
        self._ready_distinct = True
        self._ready_spans = []
        self._first_pending = None
        # A synchronization group lets the rows through in order, part by part, keeping this
        # thread (so the reader) waiting while it holds the rest back; offsets go last.
        parts = (
            [(batch, True)]
            if self.sync_group is None
            else self.sync_group.admit(self, handle, batch, self._stop, spans)
        )
        for part, last in parts:
            self._wait_for_room(handle, part.height)
            # Inserted rows numbered by position never share an id: the engine need not check.
            handle.push(part, offsets=offsets if last else None, consolidated=distinct)

    def _restore(self, parts: list[tuple[Hashable | None, pl.DataFrame]]) -> None:
        """Take back the state of the rows replayed from a checkpoint: which source part each
        came from (to retract them if the part changed), how many positions each part used,
        and the current row of every id (for upserts)."""
        for key, rows in parts:
            if key is not None and self._retracting:
                self._by_source[key] = [rows]
            self._position_ids.skip(key, rows.height)
            if self.keep_row_state:
                self._changes.remember(rows.select(self._names[:-1]))

    def _push_part(self, handle: SourceHandle) -> None:
        """Push what a big source block has produced so far as a part of the time it will be
        committed at, so that the engine and the outputs work on it while the rest is read
        and parsed (and its memory is freed sooner). Only for blocks of new, distinct rows:
        the parts of a time together must be consolidated."""
        if self.sync_group is not None:  # its rows must pass the group, in _commit
            return
        if (
            not handle.accepts_parts
            or self._block is None
            or not self._block_distinct
            or not self._ready_distinct
        ):
            return
        rows = self._ready_rows + sum(frame.height for frame in self._block)
        if rows < _PART_ROWS:
            return
        frames = [*self._ready, *self._block]
        self._ready, self._ready_rows, self._block = [], 0, []
        self._first_pending = None
        part = stack(frames) if len(frames) > 1 else frames[0]
        self._wait_for_room(handle, part.height)
        # Parts are pushed while reading goes on: at most a few of them wait in the engine,
        # so a big file's memory stays bounded whatever the speed of the outputs.
        while not handle.wait_backlog_below(_PART_BACKLOG_ROWS, timeout=0.1):
            if self._stop.is_set():
                raise _Stopped
        handle.push(part, consolidated=True, more=True)
        self._parts_open = True

    def _wait_for_room(self, handle: SourceHandle, rows: int) -> None:
        limit = self.max_backlog_size
        if limit is None:
            return
        # A batch larger than the limit is admitted only into an empty engine.
        threshold = max(1, limit - rows + 1)
        while not handle.wait_backlog_below(threshold, timeout=0.1):
            if self._stop.is_set():
                raise _Stopped

    def _empty(self) -> pl.DataFrame:
        from deltaflow.engine.batch import empty_batch

        return empty_batch(self.columns)

    # --- rows ------------------------------------------------------------------------------
    def _delta(self, context: Any, stats: Any) -> pl.DataFrame | None:
        """The delta of the rows in ``context``; sets ``_distinct`` when their ids are new
        positions of inserted rows (distinct from each other and from every earlier id of the
        source, until a replaced block restarts its positions)."""
        self._distinct = False
        block = self.parser.parse(context)
        if block.errors:
            skipped = stats.extra.get("rows_skipped", 0) + len(block.errors)
            stats.extra["rows_skipped"] = skipped
            self._bad_records.report(block.errors)  # rate-limited logging, error log rows
        frame = block.frame
        if frame.height == 0:
            return None
        stats.rows_read += frame.height
        if METADATA_COLUMN in self.columns and METADATA_COLUMN not in frame.columns:
            metadata = getattr(context, "metadata", None) or {}
            frame = frame.with_columns(
                pl.Series(METADATA_COLUMN, [t.Json(dict(metadata))] * frame.height, dtype=pl.Object)
            )
        changes = self._changes
        if (
            block.kind == "upsert"
            and frame.height <= FEW_ROWS
            and self.keep_row_state
            and self._key_types
            and block.keys is None
            and "_key" not in frame.columns
        ):
            few = changes.upsert_few(frame)
            if few is not None:
                return few
        ids = self._ids(frame, block)
        if block.kind == "insert" and not self.keep_row_state:
            self._distinct = (
                block.keys is None and not self._key_types and "_key" not in frame.columns
            )
            listed = list_frame_of(frame)
            if listed is not None:  # a live update's few rows: they stay Python lists
                assert listed.lists is not None
                return ListFrame(
                    [
                        (ID, ID_DTYPE, ids.to_list()),
                        *((n, listed.types[n], listed.lists[n]) for n in self._names[1:-1]),
                        (DIFF, INT64, [1] * frame.height),
                    ]
                )
            # The common case: the Series themselves, no query. A query releases the GIL,
            # and taking it back waits for the engine thread's switch interval (up to 5 ms
            # per call on a busy engine: the latency of every small commit).
            return frame_of(
                [ids.alias(ID), *(frame[n] for n in self._names[1:-1]), ones(frame.height)]
            )
        frame = with_column(frame, ids.alias(ID))
        # The ids are the primary key's own (see _ids): the row store may use the key.
        from_key = bool(self._key_types) and block.keys is None and "_key" not in frame.columns
        if block.kind == "column":
            kinds = frame["_kind"]
            if self.keep_row_state:
                # Order matters when one key is upserted and deleted: apply runs in order.
                parts = changes.apply_in_order(frame, kinds, ids_from_key=from_key)
            else:
                parts = [
                    changes.apply_kind(frame.filter(kinds == kind), kind)
                    for kind in kinds.unique(maintain_order=True).to_list()
                ]
            changed = [p for p in parts if p is not None and p.height]
            return stack(changed) if changed else None
        return changes.apply_kind(frame, block.kind, ids_from_key=from_key)

    def _ids(self, frame: pl.DataFrame, block: ParsedBlock) -> pl.Series:
        ids: pl.Series | None = None
        if block.keys is not None:
            ids = block.keys.cast(ID_DTYPE)
        elif self._key_types:
            ids = hash_columns(frame, self._key_types)
        if "_key" in frame.columns:  # some rows come with ids, the others get derived ones
            derived = (
                ids if ids is not None else self._position_ids.take(self._block_key, frame.height)
            )
            return frame["_key"].fill_null(derived).cast(ID_DTYPE)
        return ids if ids is not None else self._position_ids.take(self._block_key, frame.height)

    def _stream_seed(self) -> str:
        """What names the positions of this input's rows outside any part (a stream)."""
        if self.share is not None and self.share.index > 0:
            # Each worker counts the rows of its share of a stream (Kafka partitions) from 0:
            # its own seed keeps two workers' rows from sharing ids. Worker 0 keeps the plain
            # seed, the one a single worker (or a restart on one) uses.
            return f"{self.name}|worker {self.share.index}"
        return self.name
