"""Wall-clock helpers: ``utc_now``, ``inactivity_detection``, ``add_update_timestamp_utc``.

Unlike the rest of :mod:`deltaflow.temporal`, which follows event time carried by the data,
these read the machine's UTC clock. ``utc_now`` is a live table that gains a row with the
current time every ``refresh_rate``; the two others use it as their clock (through the
module attribute, looked up when they are called, so that a test may replace it with a table
of fake ticks), and the time a row arrives comes from :func:`_get_now_timestamp_utc`, looked
up the same way. This module is also ``pw.temporal.time_utils``, as in Pathway.

A pipeline using them never finishes on its own (the clock never does): stop it from a sink
or from another thread (``deltaflow.engine.runtime.stop_all_runs``).
"""

from __future__ import annotations

import datetime
import threading
from typing import TYPE_CHECKING, Any

import pandas as pd

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.engine.stateful.wallclock import (
    InactivityNode,
    UpdateStampNode,
)
from deltaflow.expressions.base import ColumnExpression, wrap_value
from deltaflow.io import python as python_io
from deltaflow.schema import Schema

if TYPE_CHECKING:
    from deltaflow.table import Table

__all__ = [
    "TimestampSchema",
    "TimestampSubject",
    "add_update_timestamp_utc",
    "inactivity_detection",
    "utc_now",
]


class TimestampSchema(Schema):
    """The one column of :func:`utc_now`."""

    timestamp_utc: t.DateTimeUtc


class TimestampSubject(python_io.ConnectorSubject):
    """Sends the current UTC time every ``refresh_rate``, after ``initial_delay``."""

    def __init__(self, refresh_rate: datetime.timedelta, initial_delay: datetime.timedelta) -> None:
        super().__init__(datasource_name="utc_now")
        self._refresh_seconds = refresh_rate.total_seconds()
        self._delay_seconds = initial_delay.total_seconds()
        self._halt = threading.Event()
        self.ran = False

    @property
    def _deletions_enabled(self) -> bool:
        return False

    def run(self) -> None:
        self.ran = True
        if self._halt.wait(self._delay_seconds):
            return
        while True:
            self.next(timestamp_utc=datetime.datetime.now(tz=datetime.timezone.utc))
            self.commit()
            if self._halt.wait(self._refresh_seconds):
                return

    def on_stop(self) -> None:
        self._halt.set()


_CLOCKS: dict[tuple[datetime.timedelta, datetime.timedelta], tuple[Any, TimestampSubject]] = {}


def _duration(value: Any, function: str, parameter: str, *, positive: bool) -> pd.Timedelta:
    if isinstance(value, bool) or not isinstance(value, datetime.timedelta):
        raise TypeError(
            f"{function}(): {parameter} must be a datetime.timedelta or "
            f"pw.Duration, not {type(value).__name__} ({value!r})"
        )
    duration = pd.Timedelta(value)
    if duration < pd.Timedelta(0) or (positive and duration == pd.Timedelta(0)):
        raise ValueError(
            f"{function}(): {parameter} must be "
            f"{'greater than zero' if positive else 'zero or more'}, "
            f"got {value!r}"
        )
    return duration


def utc_now(
    refresh_rate: datetime.timedelta = datetime.timedelta(seconds=60),
    initial_delay: datetime.timedelta = datetime.timedelta(0),
) -> Table:
    """A live table (column ``timestamp_utc``, ``DateTimeUtc``) that gains a row with the
    current UTC time every ``refresh_rate``, the first after ``initial_delay``.

    Rows are only ever added. Calls with the same arguments give the same table until it has
    been run (a table can run once; the next call then makes a fresh clock).

    Parameters:
        refresh_rate: the time between two rows.
        initial_delay: the time before the first row.

    Examples:
        >>> import datetime, deltaflow as pw
        >>> clock = pw.temporal.utc_now(refresh_rate=datetime.timedelta(seconds=5))
        >>> clock.typehints()
        {'timestamp_utc': <class 'deltaflow._types.DateTimeUtc'>}
    """
    refresh = _duration(refresh_rate, "utc_now", "refresh_rate", positive=True)
    delay = _duration(initial_delay, "utc_now", "initial_delay", positive=False)
    key = (refresh.to_pytimedelta(), delay.to_pytimedelta())
    cached = _CLOCKS.get(key)
    if cached is not None and not cached[1].ran:
        return cached[0]
    subject = TimestampSubject(refresh_rate=key[0], initial_delay=key[1])
    table = python_io.read(subject, schema=TimestampSchema, name="utc_now")
    _CLOCKS[key] = (table, subject)
    return table


def _get_now_timestamp_utc(for_test_only: t.Pointer | None) -> pd.Timestamp:
    """The current UTC time; the argument (a row id, or None) lets tests fake it per row."""
    return pd.Timestamp(datetime.datetime.now(tz=datetime.timezone.utc))


def _activity_time(row_id: t.Pointer | None) -> pd.Timestamp:
    # Looked up at call time, so that replacing the module attribute takes effect.
    return _get_now_timestamp_utc(row_id)


def _now_without_ticks() -> pd.Timestamp:
    return pd.Timestamp(datetime.datetime.now(tz=datetime.timezone.utc))


def _clock_projection(clock: Table, function: str) -> Any:
    if "timestamp_utc" not in clock._columns:
        raise ValueError(f"{function}(): the clock table has no timestamp_utc column")
    return clock._project(function, [("__now", clock.timestamp_utc)])


def inactivity_detection(
    self: Table,
    allowed_inactivity_period: datetime.timedelta,
    refresh_rate: datetime.timedelta = pd.Timedelta(seconds=1),
    instance: ColumnExpression | None = None,
) -> Table:
    """Report the periods in which ``self`` got no new rows for longer than
    ``allowed_inactivity_period`` (checked against a ``utc_now`` clock ticking every
    ``refresh_rate``), per ``instance`` if given.

    Each row of the result is an inactivity: ``inactivity_timestamp_utc`` is the arrival time
    of the last row before it (or the time this function was called, when no row has come at
    all), ``resumed_activity_timestamp_utc`` the arrival time of the first row after it (None
    until one comes). With ``instance`` the result starts with an ``instance`` column. Only
    insertions count as activity.

    Parameters:
        self: the table watched (``table.inactivity_detection(...)`` is the same call).
        allowed_inactivity_period: the longest time without a new row that is not reported.
        refresh_rate: how often the clock checks.
        instance: check each value of this expression separately.

    Examples:
        >>> import datetime, deltaflow as pw
        >>> events = pw.Table.empty(user=str)
        >>> quiet = events.inactivity_detection(datetime.timedelta(minutes=5))
        >>> quiet.column_names()
        ['inactivity_timestamp_utc', 'resumed_activity_timestamp_utc']
    """
    from deltaflow.table import Table as TableClass

    function = "inactivity_detection"
    if not isinstance(self, TableClass):
        raise TypeError(
            f"{function}(): the first argument must be a Table, not {type(self).__name__}"
        )
    allowed = _duration(
        allowed_inactivity_period, function, "allowed_inactivity_period", positive=False
    )
    _duration(refresh_rate, function, "refresh_rate", positive=True)
    if instance is not None:
        data_pre = self._project(function, [("__inst", wrap_value(instance))])
        instance_type = data_pre.types["__inst"]
    else:
        data_pre = self._project(function, [])
        instance_type = t.ANY
    clock = utc_now(refresh_rate=refresh_rate)
    start = pd.Timestamp(_get_now_timestamp_utc(None))
    columns: dict[str, t.DType] = {}
    if instance is not None:
        columns["instance"] = t.optional(instance_type)
    columns["inactivity_timestamp_utc"] = t.DATE_TIME_UTC
    columns["resumed_activity_timestamp_utc"] = t.Optional(t.DATE_TIME_UTC)
    node = InactivityNode(
        columns=columns,
        inputs=(self._node, clock._node),
        label=function,
        data_pre=data_pre,
        clock_pre=_clock_projection(clock, function),
        allowed_ns=int(allowed.value),
        start_ns=int(start.value),
        has_instance=instance is not None,
        instance_type=instance_type,
        activity_time=_activity_time,
    )
    return TableClass(node, plan.Universe())


def add_update_timestamp_utc(
    self: Table,
    refresh_rate: datetime.timedelta = pd.Timedelta(seconds=1),
    update_timestamp_column_name: str = "updated_timestamp_utc",
) -> Table:
    """``self`` with one more column, ``update_timestamp_column_name``: the UTC time at which
    each row was last inserted or updated, as read from a ``utc_now`` clock ticking every
    ``refresh_rate`` (so precise to ``refresh_rate``; the machine clock before the first
    tick). Deleting a row retracts it with the time it was given.

    Parameters:
        self: the table (``table.add_update_timestamp_utc(...)`` is the same call).
        refresh_rate: how often the clock ticks (the precision of the times).
        update_timestamp_column_name: the name of the added column.

    Examples:
        >>> import deltaflow as pw
        >>> events = pw.Table.empty(user=str)
        >>> events.add_update_timestamp_utc(update_timestamp_column_name="seen").column_names()
        ['user', 'seen']
    """
    from deltaflow.table import Table as TableClass

    function = "add_update_timestamp_utc"
    if not isinstance(self, TableClass):
        raise TypeError(
            f"{function}(): the first argument must be a Table, not {type(self).__name__}"
        )
    _duration(refresh_rate, function, "refresh_rate", positive=True)
    if not isinstance(update_timestamp_column_name, str) or not update_timestamp_column_name:
        raise TypeError(
            f"{function}(): update_timestamp_column_name must be a non-empty "
            f"str, not {update_timestamp_column_name!r}"
        )
    name = update_timestamp_column_name
    clock = utc_now(refresh_rate=refresh_rate)
    node = UpdateStampNode(
        columns={name: t.DATE_TIME_UTC},
        inputs=(self._node, clock._node),
        label=function,
        clock_pre=_clock_projection(clock, function),
        column=name,
        fallback=_now_without_ticks,
    )
    stamps = TableClass(node, self._universe)
    return self.with_columns(**{name: stamps[name]})


# The originals of the names tests replace (``mock.patch`` on this module's ``utc_now`` and
# ``_get_now_timestamp_utc``).
_PATCHABLE = {"utc_now": utc_now, "_get_now_timestamp_utc": _get_now_timestamp_utc}


def __getattr__(name: str) -> Any:
    # A patcher that ends by deleting its replacement instead of putting the original back
    # (mock.patch does so when it reaches this module through a proxy object, which it cannot
    # tell owns the attribute) would leave the name undefined: bring the original back.
    if name in _PATCHABLE:
        globals()[name] = _PATCHABLE[name]
        return _PATCHABLE[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
