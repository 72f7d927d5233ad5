"""Operators that read the wall clock: ``add_update_timestamp_utc`` and
``inactivity_detection`` (see :mod:`deltaflow.temporal._clock` for the user-facing functions).

Both take a *clock* input (a table of UTC ticks, normally ``pw.temporal.utc_now``) next to the
data. Within a time the clock's changes are applied first, so a row sees a tick of its own
time. Timestamps are kept as integer nanoseconds since the epoch.

The stamps these operators hand out depend on when rows are processed, so they are kept in the
state: a row's retraction carries exactly the stamp its insertion got.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import polars as pl

from deltaflow import _types as t
from deltaflow._ids import hash_columns
from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.runtime import register_operator
from deltaflow.plan import Node

NOW = "__now"
INSTANCE = "__inst"
STAMP_TYPE = pl.Datetime("ns", "UTC")


def _nanoseconds(value: Any) -> int:
    """Nanoseconds since the epoch of a UTC timestamp (``pd.Timestamp``/``datetime``)."""
    return int(pd.Timestamp(value).value)


def _latest_tick(delta: Delta, pre: Any) -> int | None:
    """The largest tick inserted by a clock delta (ticks only ever grow)."""
    if delta is None or delta.height == 0:
        return None
    ticks = pre.run(delta, keep=[DIFF]).filter(pl.col(DIFF) > 0)[NOW]
    if ticks.len() == 0 or ticks.null_count() == ticks.len():
        return None
    return int(ticks.dt.epoch("ns").max())


@dataclass(eq=False)
class UpdateStampNode(Node):
    """One column, the UTC time each row of the data input was last inserted (same ids)."""

    clock_pre: Any = None  # CompiledProjection over the clock: __now (DateTimeUtc)
    column: str = "updated_timestamp_utc"
    fallback: Callable[[], Any] | None = None  # the time when no tick has come yet


class UpdateStampOperator(Operator[UpdateStampNode]):
    def __init__(self, node: UpdateStampNode) -> None:
        super().__init__(node)
        self.node: UpdateStampNode = node
        self.now: int | None = None
        self.stamps: dict[int, int] = {}

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        data, clock = deltas
        tick = _latest_tick(clock, self.node.clock_pre)
        if tick is not None and (self.now is None or tick > self.now):
            self.now = tick
        if data is None or data.height == 0:
            return None
        ids: list[int] = []
        stamps: list[int] = []
        signs: list[int] = []
        rows = data.select(ID, DIFF).rows()
        # Deletions first: an update (delete + insert of one id) gets a fresh stamp.
        for row_id, diff in sorted(rows, key=lambda row: row[1] > 0):
            if diff < 0:
                stamp = self.stamps.pop(row_id, None)
                if stamp is None:
                    continue
            else:
                stamp = self.now if self.now is not None else _nanoseconds(self.node.fallback())  # type: ignore[misc]
                self.stamps[row_id] = stamp
            ids.append(row_id)
            stamps.append(stamp)
            signs.append(1 if diff > 0 else -1)
        if not ids:
            return None
        return consolidate(
            pl.DataFrame(
                {
                    ID: pl.Series(ids, dtype=pl.UInt128),
                    self.node.column: pl.Series(stamps, dtype=pl.Int64).cast(STAMP_TYPE),
                    DIFF: pl.Series(signs, dtype=pl.Int64),
                }
            )
        )


@dataclass(eq=False)
class InactivityNode(Node):
    """Periods without new rows, per instance (see ``pw.temporal.inactivity_detection``)."""

    data_pre: Any = None  # CompiledProjection over the data: __inst (None without instance)
    clock_pre: Any = None  # CompiledProjection over the clock: __now
    allowed_ns: int = 0
    start_ns: int = 0
    has_instance: bool = False
    instance_type: t.DType = t.ANY
    activity_time: Callable[[Any], Any] | None = None  # row id -> the row's UTC arrival time


class InactivityOperator(Operator[InactivityNode]):
    """Keeps the latest activity per instance and the inactivities reported so far.

    An inactivity ``(instance, last activity)`` is reported once the clock passes the last
    activity by more than the allowed period; it is never retracted, only completed with
    the first activity seen after it (``resumed_activity_timestamp_utc``). Before the first
    row ever, the instance-less start of the operator counts as the last activity.
    """

    def __init__(self, node: InactivityNode) -> None:
        super().__init__(node)
        self.node: InactivityNode = node
        self.now: int | None = None
        self.latest: dict[Any, tuple[Any, int]] = {}  # instance key -> (instance, latest)
        self.resumed: dict[tuple[Any, int], int | None] = {}  # reported -> resumed time
        self.open: dict[Any, tuple[Any, int]] = {}  # instance key -> its unresumed one

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        data, clock = deltas
        tick = _latest_tick(clock, self.node.clock_pre)
        if tick is not None and (self.now is None or tick > self.now):
            self.now = tick
        self._record_activities(data)
        out: list[tuple[Any, int, int | None, int]] = []
        if self.now is not None:
            last_seen = self.latest or {None: (None, self.node.start_ns)}
            for key, (instance, latest) in last_seen.items():
                if latest + self.node.allowed_ns < self.now and (key, latest) not in self.resumed:
                    self.resumed[(key, latest)] = None
                    self.open[key] = (instance, latest)
                    out.append((instance, latest, None, 1))
        for key, (instance, inactive_since) in list(self.open.items()):
            seen = self.latest.get(key)
            if seen is not None and inactive_since < seen[1]:
                self.resumed[(key, inactive_since)] = seen[1]
                del self.open[key]
                out.append((instance, inactive_since, None, -1))
                out.append((instance, inactive_since, seen[1], 1))
        return self._frame(out) if out else None

    def _record_activities(self, data: Delta) -> None:
        if data is None or data.height == 0:
            return
        inserted = self.node.data_pre.run(data, keep=[ID, DIFF]).filter(pl.col(DIFF) > 0)
        instances = (
            t.values_from_series(inserted[INSTANCE])
            if self.node.has_instance
            else [None] * inserted.height
        )
        activity_time = self.node.activity_time
        assert activity_time is not None
        for row_id, instance in zip(inserted[ID].to_list(), instances, strict=True):
            stamp = _nanoseconds(activity_time(t.Pointer(row_id)))
            key = t.canonical_key(instance)
            previous = self.latest.get(key)
            if previous is None or stamp >= previous[1]:
                self.latest[key] = (instance, stamp)

    def _frame(self, rows: list[tuple[Any, int, int | None, int]]) -> pl.DataFrame:
        columns: dict[str, pl.Series] = {}
        instance_type = t.optional(self.node.instance_type)
        if self.node.has_instance:
            columns["instance"] = t.series_from_values(
                "instance", [r[0] for r in rows], instance_type
            )
        columns["inactivity_timestamp_utc"] = pl.Series([r[1] for r in rows], dtype=pl.Int64).cast(
            STAMP_TYPE
        )
        columns["resumed_activity_timestamp_utc"] = pl.Series(
            [r[2] for r in rows], dtype=pl.Int64
        ).cast(STAMP_TYPE)
        frame = pl.DataFrame(columns)
        keys = pl.DataFrame(
            {
                "__inst": t.series_from_values("__inst", [r[0] for r in rows], instance_type),
                "__since": columns["inactivity_timestamp_utc"],
            }
        )
        ids = hash_columns(keys, [("__inst", instance_type), ("__since", t.DATE_TIME_UTC)])
        frame = frame.with_columns(
            ids.alias(ID), pl.Series(DIFF, [r[3] for r in rows], dtype=pl.Int64)
        )
        return consolidate(frame.select([ID, *columns, DIFF]))


register_operator(UpdateStampNode, UpdateStampOperator)
register_operator(InactivityNode, InactivityOperator)
