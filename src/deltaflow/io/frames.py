"""``pw.io.subscribe_frames``: each time's changes of a table as one Polars DataFrame.

deltaflow's addition over Pathway's API: where ``pw.io.subscribe`` calls back once per changed
row with Python values, this calls back once per time with the engine's own columnar batch,
so a consumer that works on frames (Polars, Arrow, DuckDB, a model scoring a batch ...) pays
no per-row Python cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import ConnectorError, ConnectorStats, Sink

logger = logging.getLogger("deltaflow.io")

#: Names of the columns added to each frame (a table's columns may not use them).
FRAME_ID, FRAME_TIME, FRAME_DIFF = "id", "time", "diff"


class OnFrameCallback(Protocol):
    """``on_change(frame)``: the changes of one time, as a Polars DataFrame."""

    def __call__(self, frame: pl.DataFrame) -> Any: ...


class FrameSink(Sink):
    """Hands each time's consolidated changes to ``on_change`` as one DataFrame."""

    accepts_parts = False  # one call per time, with the whole time

    def __init__(
        self,
        name: str,
        columns: dict[str, t.DType],
        *,
        on_change: OnFrameCallback,
        on_end: Callable[[], Any] | None,
        include_id: bool,
    ) -> None:
        self.name = name
        self.stats = ConnectorStats()
        self._names = list(columns)
        self._on_change = on_change
        self._on_end = on_end
        self._include_id = include_id

    def frame(self, time: int, batch: pl.DataFrame) -> pl.DataFrame:
        """What ``on_change`` receives for ``batch`` at ``time``: the id (if included), the
        columns, ``time`` (UInt64: the final time does not fit an Int64) and ``diff``."""
        selected = ([pl.col(ID).alias(FRAME_ID)] if self._include_id else []) + [
            pl.col(name) for name in self._names
        ]
        return batch.select(
            *selected,
            pl.lit(time, dtype=pl.UInt64).alias(FRAME_TIME),
            pl.col(DIFF).alias(FRAME_DIFF),
        )

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        self.stats.rows_written += batch.height
        self.stats.batches += 1
        frame = self.frame(time, batch)
        try:
            self._on_change(frame)
        except Exception as exc:
            raise ConnectorError(
                self.name, f"the on_change callback raised {type(exc).__name__}: {exc}"
            ) from exc

    def on_end(self) -> None:
        if self._on_end is None:
            return
        try:
            self._on_end()
        except Exception as exc:
            raise ConnectorError(
                self.name, f"the on_end callback raised {type(exc).__name__}: {exc}"
            ) from exc


def subscribe_frames(
    table: Any,
    on_change: OnFrameCallback,
    on_end: Callable[[], Any] | None = None,
    *,
    name: str | None = None,
    include_id: bool = True,
) -> None:
    """Call ``on_change(frame)`` once per time at which ``table`` changed, and ``on_end()``
    when the run ends.

    ``frame`` is a Polars DataFrame holding that time's changes: an ``id`` column (the row
    ids, ``UInt128``; left out with ``include_id=False``), the table's columns with their
    Polars storage types, ``time`` (``UInt64``, the same for every row) and ``diff``
    (``Int64``: ``1`` for an insertion, ``-1`` for a deletion; an update is a deletion and an
    insertion of the same id). Callbacks run on the engine's thread, in time order; an
    ``async def`` callback is awaited. An exception in a callback stops the run.

    Parameters:
        table: the table to watch.
        on_change: called with each time's frame.
        on_end: called with no argument once the run ends.
        name: the output's name in logs and monitoring (default ``subscribe_frames``).
        include_id: whether frames carry the ``id`` column.

    Examples:
        >>> import deltaflow as pw
        >>> stock = pw.debug.table_from_markdown('''
        ...   | name | qty | __time__ | __diff__
        ... 1 | pen  | 2   | 2        | 1
        ... 1 | pen  | 2   | 4        | -1
        ... 1 | pen  | 5   | 4        | 1
        ... ''')
        >>> frames = []
        >>> pw.io.subscribe_frames(stock, frames.append, include_id=False)
        >>> pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        >>> [frame.sort("diff").rows() for frame in frames]
        [[('pen', 2, 2, 1)], [('pen', 2, 4, -1), ('pen', 5, 4, 1)]]
    """
    from deltaflow.io.subscribe import _AsyncRunner
    from deltaflow.table import Table, add_output

    where = "pw.io.subscribe_frames"
    if not isinstance(table, Table):
        raise TypeError(f"{where}: expected a table, got {table!r}")
    for label, callback in (("on_change", on_change), ("on_end", on_end)):
        if callback is not None and not callable(callback):
            raise TypeError(f"{where}: {label} must be callable, got {callback!r}")
    if on_change is None:
        raise TypeError(f"{where}: on_change must be callable, got None")
    if not isinstance(include_id, bool):
        raise TypeError(f"{where}: include_id must be a bool, got {include_id!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{where}: name must be a str, got {name!r}")
    reserved = ({FRAME_ID} if include_id else set()) | {FRAME_TIME, FRAME_DIFF}
    clashing = sorted(reserved & set(table._columns))
    if clashing:
        raise ValueError(
            f"{where}: the table has columns named {clashing}, which the frames "
            f"use for the changes' {' and '.join(clashing)}; rename them first "
            f"(table.rename(...))"
        )
    runner = _AsyncRunner()
    sink = FrameSink(
        name or "subscribe_frames",
        dict(table._columns),
        on_change=runner.wrap(on_change),
        on_end=runner.wrap(on_end),
        include_id=include_id,
    )
    add_output(table, sink)
