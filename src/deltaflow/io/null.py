"""``pw.io.null.write``: compute a table and throw the results away (benchmarks, tests)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from deltaflow.engine.boundary import ConnectorStats, Sink
from deltaflow.error_display import user_call


class NullSink(Sink):
    """Counts the rows it receives and keeps nothing."""

    accepts_parts = True  # only counts rows

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = ConnectorStats()

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        self.stats.rows_written += batch.height
        self.stats.batches += 1


@user_call
def write(table: Any, *, name: str | None = None, sort_by: Iterable[Any] | None = None) -> None:
    """Run ``table`` as an output whose changes go nowhere.

    Parameters:
        table: the table run.
        name: the output's name in logs and monitoring.
        sort_by: accepted for compatibility (nothing is written).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... a | b
        ... 1 | 0
        ... ''')
        >>> pw.io.null.write(t.select(q=t.a // t.b))
        >>> try:
        ...     pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        ... except ZeroDivisionError:
        ...     print("computed, and failed")
        computed, and failed
    """
    from deltaflow.table import add_output

    sink = NullSink(name or "null")
    sink.named = name is not None
    add_output(table, sink, sort_by=sort_by)
