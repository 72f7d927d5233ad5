"""What persistence puts around a run's inputs and outputs.

* :class:`RecordingHandle`, an input's source handle, keeps each committed batch (and the
  source part, file or object, of every row) until the engine took it, for the checkpointer;
* :func:`check_reader` refuses readers that could not resume from a checkpoint;
* :class:`FlushWatch`, around an output session's writer, learns which times the writer made
  durable and where the output stood after each (what a checkpoint records).

:mod:`deltaflow.persistence.run` installs them; the several-worker checkpoints
(:mod:`deltaflow.engine.workers.checkpoints`) record through :class:`RecordingHandle` too.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable
from typing import Any

import polars as pl

from deltaflow.engine.boundary import ConnectorError, Pushed, SourceHandle
from deltaflow.io._core.base import FLUSHED as _FLUSHED
from deltaflow.io._core.base import Reader, Writer
from deltaflow.persistence.checkpoints import SOURCE, encode_key

__all__ = ["FlushWatch", "RecordingHandle", "check_reader"]


class RecordingHandle(SourceHandle):
    """A source handle that keeps every pushed batch, with the source part of each row, until
    the engine took it; :meth:`drain` then hands the taken batches to the checkpointer."""

    def __init__(
        self,
        name: str,
        notify: Callable[[], None],
        tags: collections.deque[tuple[Hashable | None, int]],
    ) -> None:
        super().__init__(name, notify)
        self._tags = tags
        self._sources: collections.deque[pl.Series | None] = collections.deque()
        self._taken: list[tuple[pl.DataFrame, pl.Series | None, Any]] = []

    def push(
        self,
        batch: pl.DataFrame,
        *,
        time: int | None = None,
        offsets: Any = None,
        consolidated: bool = False,
        more: bool = False,
    ) -> None:
        if batch.height == 0 and offsets is None:
            return
        with self._lock:  # a re-entrant lock: the push and its record are one step
            self.note_push(batch.height)
            super().push(batch, time=time, offsets=offsets, consolidated=consolidated, more=more)

    def take(self) -> list[Pushed]:
        with self._lock:
            pending = super().take()
            for pushed in pending:
                self.note_taken(pushed)
        return pending

    def note_push(self, rows: int) -> None:
        """Record the sources of the next push, of ``rows`` rows (before it is pushed)."""
        self._sources.append(self._source_column(rows))

    def note_taken(self, pushed: Pushed) -> None:
        """The engine took ``pushed``, the oldest push not yet taken."""
        self._taken.append((pushed.batch, self._sources.popleft(), pushed.offsets))

    def drain(self) -> list[tuple[pl.DataFrame, pl.Series | None, Any]]:
        """The batches taken by the engine since the last call (all processed by now)."""
        with self._lock:
            taken, self._taken = self._taken, []
        return taken

    def _source_column(self, rows: int) -> pl.Series | None:
        """The encoded source key of each of the next ``rows`` committed rows.

        The session appends one (key, row count) tag per frame it makes ready, in the order
        its commit concatenates them, so the tags are consumed by row counts.
        """
        parts: list[tuple[str | None, int]] = []
        remaining = rows
        while remaining > 0 and self._tags:
            key, count = self._tags[0]
            used = min(count, remaining)
            if used == count:
                self._tags.popleft()
            else:
                self._tags[0] = (key, count - used)
            parts.append((encode_key(key), used))
            remaining -= used
        if remaining:
            parts.append((None, remaining))
        if all(key is None for key, _ in parts):
            return None
        return pl.concat(
            [pl.repeat(key, count, dtype=pl.Utf8, eager=True) for key, count in parts]
        ).alias(SOURCE)


def check_reader(name: str, reader: Reader) -> None:
    """Fail clearly when ``reader`` cannot resume from a checkpoint.

    A reader that implements ``seek`` resumes after its frontier. The Python connector's
    subject has no offsets: as in Pathway, its snapshot is replayed and the subject runs again
    from its beginning (it must not resend rows). Any other reader would silently read
    everything again, so it is refused.
    """
    if type(reader).seek is not Reader.seek or reader.replays_from_start:
        return
    raise ConnectorError(
        name,
        f"persistence is not supported by this connector (its reader "
        f"{type(reader).__name__} cannot seek to a checkpointed "
        f"position); run without persistence_config, or read this "
        f"source through a connector that supports it",
    )


class FlushWatch(Writer):
    """Wraps an output session's writer to learn which times it made durable, and where the
    output stood after each of them (its *position*, see :meth:`Writer.position`)."""

    def __init__(self, inner: Writer, name: str) -> None:
        self.inner = inner
        inner.persisted = True
        # A writer run on the engine's thread stays there (the output session asks the
        # writer it holds, this one).
        self.inline = inner.inline
        self.name = name
        self.flushed: int | None = None
        self._lock = threading.Lock()
        # (time, position) after each flush not yet covered by a checkpoint, oldest first.
        self._positions: collections.deque[tuple[int, Any]] = collections.deque()
        self.checkpointed: Any = None  # the position the last checkpoint recorded
        self.resumed = False

    def write(self, payload: Any) -> None:
        self.inner.write(payload)

    def stream(self) -> Any:
        return self.inner.stream()

    def flush(self, time: int) -> None:
        self.inner.flush(time)
        position = self.inner.position()
        with self._lock:
            self._positions.append((time, position))
            self.flushed = time

    def durable_time(self) -> int | None:
        """The last time whose changes are all in the destination."""
        own = self.inner.durable_time()
        return self.flushed if own is _FLUSHED else own

    def position_at(self, time: int) -> Any:
        """The position after the last flush of a time at or before ``time`` (the one a
        checkpoint of ``time`` records); forgets the older ones."""
        with self._lock:
            while self._positions and self._positions[0][0] <= time:
                self.checkpointed = self._positions.popleft()[1]
        return self.inner.export_position(self.checkpointed)

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()

    def __getattr__(self, name: str) -> Any:  # writer-specific methods (e.g. open)
        return getattr(self.inner, name)
