"""A sink calling Python callbacks on the engine thread (``pw.io.subscribe``,
``pw.io.python.write``).

Callbacks run synchronously, in time order, so that a callback sees a time's changes as soon as
the engine has computed them: deletions of a time come before its insertions unless
``sort_by`` orders the rows. An exception in a callback stops the run, naming the sink.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF
from deltaflow.engine.boundary import ConnectorError, ConnectorStats, Sink
from deltaflow.io._core.formats import TypedRowsFormatter

logger = logging.getLogger("deltaflow.io")

OnChange = Callable[[t.Pointer, dict[str, Any], int, bool], Any]


class CallbackSink(Sink):
    """Calls ``on_change`` per row, ``on_time_end`` per time and ``on_end`` at the end."""

    def __init__(self, name: str, columns: Mapping[str, t.DType], *,
                 on_change: OnChange | None = None,
                 on_time_end: Callable[[int], Any] | None = None,
                 on_end: Callable[[], Any] | None = None, sorted_by_user: bool = False) -> None:
        self.name = name
        self.stats = ConnectorStats()
        self._formatter = TypedRowsFormatter(columns)
        self._on_change = on_change
        self._on_time_end = on_time_end
        self._on_end = on_end
        self._sorted_by_user = sorted_by_user

    def _call(self, what: str, function: Callable[..., Any], *args: Any) -> None:
        try:
            function(*args)
        except Exception as exc:
            raise ConnectorError(self.name, f"the {what} callback raised "
                                            f"{type(exc).__name__}: {exc}") from exc

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        self.stats.rows_written += batch.height
        self.stats.batches += 1
        if self._on_change is None:
            return
        if not self._sorted_by_user and (batch[DIFF] < 0).any():
            batch = batch.sort(DIFF, maintain_order=True)
        for key, row, row_time, diff in self._formatter.format(batch, time):
            for _ in range(abs(diff)):
                self._call("on_change", self._on_change, key, row, row_time, diff > 0)

    def on_time_end(self, time: int) -> None:
        if self._on_time_end is not None:
            self._call("on_time_end", self._on_time_end, time)

    def on_end(self) -> None:
        if self._on_end is not None:
            self._call("on_end", self._on_end)
