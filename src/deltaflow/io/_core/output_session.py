"""Output sessions: a thread and a queue per output connector.

The engine hands a session each time's delta batch and then "time ended". The session's
thread formats the batch, passes it to the writer and calls ``writer.flush(time)`` once all of
that time's rows were written. When the formatter produces bytes and the writer offers a
stream (a file), the formatter writes straight into it, without an intermediate payload. A writer failure is remembered and stops the run (the engine
polls :meth:`OutputSession.failure`); ``on_end`` waits until everything queued is written.

A writer that only queues payloads for a client sending them in the background
(:attr:`Writer.inline`, e.g. Kafka's producer) gets no thread: the engine's thread formats and
writes, which saves a hand-off and a wake-up per time on the latency path.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any

import polars as pl

from deltaflow.engine.boundary import ConnectorError, ConnectorStats, Sink, connector_error
from deltaflow.io._core.base import BytesFormatter, Formatter, Writer

logger = logging.getLogger("deltaflow.io")

_END = object()


class OutputSession(Sink):
    """Runs a :class:`Formatter` + :class:`Writer` pair on its own thread."""

    accepts_parts = True  # each batch is formatted and written as it comes

    def __init__(
        self,
        name: str,
        writer: Writer,
        formatter: Formatter | None = None,
        *,
        max_queue: int = 64,
        max_queued_rows: int = 1_000_000,
        named: bool = False,
    ) -> None:
        self.name = name
        self.named = named
        self.writer = writer
        self.formatter = formatter
        self.stats = ConnectorStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        # Rows waiting in the queue: the engine waits while there are more than this (the
        # parts of a big file would otherwise pile up here when writing is the slow stage).
        self._max_queued_rows = max_queued_rows
        self._queued_rows = 0
        self._drained = threading.Condition()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def several_writers(self) -> bool:  # type: ignore[override]
        """The writer's own answer: whether one writer per worker may write at once."""
        return self.writer.several_writers

    # --- engine side -------------------------------------------------------------------
    def start(self) -> None:
        if self.writer.inline:
            return  # written in the engine's thread (see the module docstring)
        self._thread = threading.Thread(
            target=self._work, name=f"deltaflow-output-{self.name}", daemon=True
        )
        self._thread.start()

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        if self.writer.inline:
            self._inline(self._write, batch, time)
            self.stats.rows_written += batch.height
            self.stats.batches += 1
            return
        with self._drained:
            while (
                self._queued_rows > 0
                and self._queued_rows + batch.height > self._max_queued_rows
                and self._failure is None
            ):
                self._drained.wait(0.1)
            self._queued_rows += batch.height
        self._put(("batch", time, batch))

    def on_time_end(self, time: int) -> None:
        if self.writer.inline:
            self._inline(self.writer.flush, time)
            return
        self._put(("flush", time, None))

    def on_end(self) -> None:
        if self.writer.inline:
            self._inline(self.writer.close)
            return
        self._put(_END)
        if self._thread is not None:
            self._thread.join()
        if self._failure is not None:
            raise self._as_connector_error(self._failure)

    def abort(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._failure = self._failure or RuntimeError("run aborted")
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_END)
            self._thread.join(timeout=5)
        try:
            self.writer.abort()
        except Exception:  # aborting must not hide the run's error
            logger.exception("output %s: abort failed", self.name)

    def failure(self) -> BaseException | None:
        return None if self._failure is None else self._as_connector_error(self._failure)

    def _inline(self, step: Any, *args: Any) -> None:
        """Run one writer step in the engine's thread; a failure stops the run as a thread's
        would (remembered, and raised as this connector's error)."""
        if self._failure is not None:
            raise self._as_connector_error(self._failure)
        try:
            step(*args)
        except Exception as exc:  # noqa: BLE001 - any writer failure stops the run as its error
            self._failure = exc
            raise self._as_connector_error(exc) from None

    def _put(self, item: Any) -> None:
        while True:
            if self._failure is not None:
                raise self._as_connector_error(self._failure)
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _as_connector_error(self, error: BaseException) -> ConnectorError:
        if isinstance(error, ConnectorError):
            return error
        return connector_error(self.name, error)

    # --- writer thread -----------------------------------------------------------------
    def _work(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    if self._failure is None:
                        self.writer.close()
                    return
                if self._failure is not None:
                    continue  # drain after a failure; the engine will stop the run
                kind, time, batch = item
                if kind == "batch":
                    self._write(batch, time)
                    self.stats.rows_written += batch.height
                    self.stats.batches += 1
                    with self._drained:
                        self._queued_rows -= batch.height
                        self._drained.notify_all()
                else:
                    self.writer.flush(time)
        except BaseException as exc:  # noqa: BLE001 - reported to the engine
            # Reported once: the engine raises it out of pw.run(); logged here for debugging.
            logger.debug("output %s failed: %s", self.name, exc)
            self._failure = exc

    def _write(self, batch: pl.DataFrame, time: int) -> None:
        formatter = self.formatter
        if formatter is None:
            self.writer.write(batch)
            return
        if isinstance(formatter, BytesFormatter):
            stream = self.writer.stream()
            if stream is not None:
                formatter.format_into(batch, time, stream)
                return
        self.writer.write(formatter.format(batch, time))


def write_table(
    table: Any,
    writer: Writer,
    formatter: Formatter | None,
    *,
    name: str,
    sort_by: Any = None,
    named: bool = False,
) -> OutputSession:
    """Register an output of ``table`` through ``writer`` (the common end of every ``write``);
    ``named``: the user chose ``name``."""
    from deltaflow.table import add_output

    session = OutputSession(name, writer, formatter, named=named)
    add_output(table, session, sort_by=sort_by)
    return session
