"""A sink calling Python callbacks on the engine thread (``pw.io.subscribe``,
``pw.io.python.write``).

Callbacks run synchronously, in time order, so that a callback sees a time's changes as soon as
the engine has computed them: deletions of a time come before its insertions unless
``sort_by`` orders the rows. An exception in a callback stops the run, naming the sink.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import polars as pl

from deltaflow import _types as t
from deltaflow._pointer import Pointer
from deltaflow._small_frames import column_values
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import ConnectorStats, Sink, connector_error

logger = logging.getLogger("deltaflow.io")


class OnChange(Protocol):
    """``on_change(key=..., row=..., time=..., is_addition=...)``: called with keywords, as
    Pathway calls it (so a callback may take ``**kwargs``)."""

    def __call__(
        self, *, key: t.Pointer, row: dict[str, Any], time: int, is_addition: bool
    ) -> Any: ...


class CallbackSink(Sink):
    """Calls ``on_change`` per row, ``on_time_end`` per time and ``on_end`` at the end."""

    accepts_parts = True  # on_change per row, whichever batch holds it

    def __init__(
        self,
        name: str,
        columns: Mapping[str, t.DType],
        *,
        on_change: OnChange | None = None,
        on_time_end: Callable[[int], Any] | None = None,
        on_end: Callable[[], Any] | None = None,
        sorted_by_user: bool = False,
        named: bool = False,
    ) -> None:
        self.name = name
        self.named = named
        self.stats = ConnectorStats()
        self._names = list(columns)
        self._on_change = on_change
        self._on_time_end = on_time_end
        self._on_end = on_end
        self._sorted_by_user = sorted_by_user

    def _call(self, what: str, function: Callable[..., Any], *args: Any) -> None:
        try:
            function(*args)
        except Exception as exc:
            raise connector_error(
                self.name, exc, f"the {what} callback raised {type(exc).__name__}: {exc}"
            ) from exc

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        self.stats.rows_written += batch.height
        self.stats.batches += 1
        on_change = self._on_change
        if on_change is None or batch.height == 0:
            return
        # Column-wise conversion to Python values, then one dict per row: the per-row work is
        # only the dict and the call.
        diffs = column_values(batch, DIFF)
        lowest, highest = min(diffs), max(diffs)
        mixed = lowest < 0 < highest
        keys = _keys(column_values(batch, ID), mixed)
        rows = t.row_dicts(batch, self._names)
        if mixed and not self._sorted_by_user and not _deletions_lead(diffs):
            # Deletions of a time come before its insertions (stable within each).
            order = [i for i, d in enumerate(diffs) if d < 0] + [
                i for i, d in enumerate(diffs) if d > 0
            ]
            keys, rows, diffs = (
                [keys[i] for i in order],
                [rows[i] for i in order],
                [diffs[i] for i in order],
            )
        try:
            ordered = not (mixed and self._sorted_by_user)  # deletions first
            if lowest >= -1 and highest <= 1 and ordered and 0 not in diffs:
                # Each row once (the common case): two loops, no test per row.
                first = diffs.index(1) if highest == 1 else len(diffs)
                # Keywords, as Pathway passes them (callbacks may take **kwargs).
                for key, row in zip(keys[:first], rows[:first]):
                    on_change(key=key, row=row, time=time, is_addition=False)
                for key, row in zip(keys[first:], rows[first:]):
                    on_change(key=key, row=row, time=time, is_addition=True)
                return
            for key, row, diff in zip(keys, rows, diffs):
                on_change(key=key, row=row, time=time, is_addition=diff > 0)
                for _ in range(abs(diff) - 1):  # a row present several times: once per copy
                    on_change(key=key, row=dict(row), time=time, is_addition=diff > 0)
        except Exception as exc:
            raise connector_error(
                self.name, exc, f"the on_change callback raised {type(exc).__name__}: {exc}"
            ) from exc

    def on_time_end(self, time: int) -> None:
        if self._on_time_end is not None:
            self._call("on_time_end", self._on_time_end, time)

    def on_end(self) -> None:
        if self._on_end is not None:
            self._call("on_end", self._on_end)


def _deletions_lead(diffs: list[int]) -> bool:
    """Whether every deletion comes before every insertion already (as reducers emit)."""
    if min(diffs) == -1 and max(diffs) == 1:  # each row once: scans in C
        return -1 not in diffs[diffs.index(1) :]
    first_insertion = next(i for i, d in enumerate(diffs) if d > 0)
    return all(d > 0 for d in diffs[first_insertion:])


def _keys(ids: list[int], pairs: bool) -> list[Pointer]:
    """The ``Pointer`` of each row id. With both deletions and insertions (``pairs``), a
    changed row is usually there twice, retracted and inserted: one Pointer serves both."""
    if pairs:
        distinct = dict.fromkeys(ids)
        if len(distinct) < len(ids):
            made = dict(zip(distinct, map(Pointer, distinct)))
            return list(map(made.__getitem__, ids))
    return list(map(Pointer, ids))
