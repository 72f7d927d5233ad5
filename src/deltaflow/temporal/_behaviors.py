"""Behaviors for late data, and the operators acting on event time they are built from.

Event time is data, not the wall clock: each operator keeps the largest value of its time
column seen so far (its *frontier*) and compares each row's *threshold* with it.

- :func:`buffer_until` holds rows until the frontier reaches their threshold,
- :func:`freeze_after` drops rows arriving once the frontier is at or past their threshold,
- :func:`forget_after` retracts rows once the frontier is at or past their threshold.

``Table.buffer`` / ``ignore_late`` / ``forget`` use them with threshold = time + length;
windows and temporal joins use them with thresholds such as window end + cutoff. The exact
rules (which frontier, which comparison, when retractions come out) are described in
:mod:`deltaflow.engine.stateful.temporal_behavior`.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow import plan
from deltaflow.engine.stateful.temporal_behavior import ForgettingFilterNode, TimeGateNode
from deltaflow.expressions.base import ColumnExpression, wrap_value
from deltaflow.expressions.evaluate import CompiledProjection
from deltaflow.temporal._timetypes import time_kind

if TYPE_CHECKING:
    from deltaflow.table import Table

IntervalType = int | float | datetime.timedelta


class Behavior:
    """What a temporal operator does with late data and with results over time."""


@dataclasses.dataclass
class CommonBehavior(Behavior):
    """Hold results until event time passes window start + ``delay``; ignore rows arriving
    after window end + ``cutoff`` and let the state of such windows go; with
    ``keep_results=False`` also retract the results of windows that were let go."""

    delay: IntervalType | None
    cutoff: IntervalType | None
    keep_results: bool


@dataclasses.dataclass
class ExactlyOnceBehavior(Behavior):
    """Emit each window's result once, when event time passes its end + ``shift``, and
    ignore later rows of that window."""

    shift: IntervalType | None


def common_behavior(
    delay: IntervalType | None = None, cutoff: IntervalType | None = None, keep_results: bool = True
) -> CommonBehavior:
    """A :class:`CommonBehavior` (see there); the lengths are checked against the time
    column when the behavior is applied.

    Parameters:
        delay: hold a window's results until the time frontier passes its end by this much.
        cutoff: ignore rows coming after the frontier passes a window's end by this much.
        keep_results: whether results of windows past their cutoff stay (else they are removed).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t  | v  | __time__
        ... 1  | 10 | 2
        ... 12 | 20 | 4
        ... 3  | 5  | 6
        ... ''')
        >>> r = t.windowby(t.t, window=pw.temporal.tumbling(duration=5),
        ...                behavior=pw.temporal.common_behavior(cutoff=2)).reduce(
        ...     start=pw.this._pw_window_start, total=pw.reducers.sum(pw.this.v))
        >>> pw.debug.compute_and_print(r, include_id=False)
        start | total
        0     | 10
        10    | 20
    """
    return CommonBehavior(delay, cutoff, keep_results)


def exactly_once_behavior(shift: IntervalType | None = None) -> ExactlyOnceBehavior:
    """An :class:`ExactlyOnceBehavior` (see there).

    Parameters:
        shift: how long after a window's end its result is given (default: at its end).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t  | v  | __time__
        ... 1  | 10 | 2
        ... 3  | 5  | 4
        ... 12 | 20 | 6
        ... ''')
        >>> r = t.windowby(t.t, window=pw.temporal.tumbling(duration=5),
        ...                behavior=pw.temporal.exactly_once_behavior()).reduce(
        ...     start=pw.this._pw_window_start, total=pw.reducers.sum(pw.this.v))
        >>> pw.debug.compute_and_print_update_stream(r, include_id=False)
        start | total | __time__             | __diff__
        0     | 15    | 6                    | 1
        10    | 20    | 18446744073709551614 | 1
    """
    return ExactlyOnceBehavior(shift)


# ------------------------------------------------------------------------------------------
# The generic operators (also used by the temporal joins)
# ------------------------------------------------------------------------------------------


def _gate(
    table: Table,
    kind: str,
    threshold: Any,
    time: Any,
    instance: Any,
    operation: str,
    mark_forgetting_records: bool = False,
) -> Table:
    from deltaflow.table import Table

    outputs: list[tuple[str, ColumnExpression]] = [
        ("__thr", wrap_value(threshold)),
        ("__time", wrap_value(time)),
    ]
    if instance is not None:
        outputs.append(("__inst", wrap_value(instance)))
    projection = CompiledProjection(table._scope(operation), outputs)
    _check_comparable(table, operation, projection.types["__thr"], projection.types["__time"])
    node = TimeGateNode(
        columns=dict(table._columns),
        inputs=(table._node,),
        pre=projection,
        kind=kind,
        has_instance=instance is not None,
        mark_forgetting_records=mark_forgetting_records,
        label=operation,
    )
    return Table(node, plan.Universe(parent=table._universe), primary_key=table._primary_key)


def _check_comparable(table: Table, operation: str, threshold: t.DType, time: t.DType) -> None:
    """Thresholds are compared with event times: both numbers, or both datetimes of one
    kind."""
    a, b = threshold.strip_optional(), time.strip_optional()
    numeric = (t.INT, t.FLOAT)
    if (a in numeric and b in numeric) or (a == b and a in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC)):
        return
    raise TypeError(
        f"{operation} on {table._description}: the threshold ({threshold!r}) "
        f"cannot be compared with the time column ({time!r}); times must be int, "
        f"float, DateTimeNaive or DateTimeUtc, and a datetime threshold needs a "
        f"datetime time of the same kind"
    )


def buffer_until(table: Table, threshold: Any, time: Any, *, instance: Any = None) -> Table:
    """``table`` with each change held until the frontier (the largest ``time`` seen,
    including the current batch; per ``instance`` if given) reaches its ``threshold``."""
    return _gate(table, "buffer", threshold, time, instance, "buffer")


def freeze_after(table: Table, threshold: Any, time: Any, *, instance: Any = None) -> Table:
    """``table`` without the changes (insertions and deletions) arriving when the frontier of
    the earlier times is already at or past their ``threshold`` (late data)."""
    return _gate(table, "freeze", threshold, time, instance, "ignore_late")


def forget_after(
    table: Table,
    threshold: Any,
    time: Any,
    mark_forgetting_records: bool = False,
    *,
    instance: Any = None,
) -> Table:
    """``table`` whose rows are retracted once the frontier is at or past their
    ``threshold`` (so that state downstream is dropped). Late insertions never enter, and
    deletions of rows already forgotten are dropped. With ``mark_forgetting_records`` the
    retractions come at the odd time right after the time that caused them, where
    :func:`filter_out_results_of_forgetting` finds and removes their effects."""
    return _gate(
        table,
        "forget",
        threshold,
        time,
        instance,
        "forget",
        mark_forgetting_records=mark_forgetting_records,
    )


# ------------------------------------------------------------------------------------------
# Table methods
# ------------------------------------------------------------------------------------------


def _threshold(table: Table, time_column: Any, threshold: Any, operation: str) -> Any:
    time = wrap_value(time_column)
    dtype = table._scope(operation).dtype_of(time).strip_optional()
    time_kind(dtype, f"{operation} on {table._description}: time_column {time_column!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, datetime.timedelta)):
        raise TypeError(
            f"{operation} on {table._description}: threshold must be an int, a "
            f"float or a datetime.timedelta, got {threshold!r}"
        )
    is_length = isinstance(threshold, datetime.timedelta)
    if dtype in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC) and not is_length:
        raise TypeError(
            f"{operation} on {table._description}: the time column is {dtype!r}, "
            f"so threshold must be a datetime.timedelta, got {threshold!r}"
        )
    if dtype in (t.INT, t.FLOAT) and is_length:
        raise TypeError(
            f"{operation} on {table._description}: the time column is {dtype!r}, "
            f"so threshold must be a number, got {threshold!r}"
        )
    return time + threshold


def forget(
    table: Table, time_column: Any, threshold: IntervalType, mark_forgetting_records: bool = False
) -> Table:
    """Rows are retracted once the largest ``time_column`` value seen reaches their time +
    ``threshold`` (see :func:`forget_after`).

    Parameters:
        table: the table (``table.forget(...)`` is the same call).
        time_column: each row's event time.
        threshold: how long after its time a row is kept.
        mark_forgetting_records: mark the retractions so that ``filter_out_results_of_forgetting``
            can hide them downstream.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... at | v  | __time__
        ... 1  | a  | 2
        ... 9  | b  | 4
        ... 4  | c  | 6
        ... ''')
        >>> pw.debug.compute_and_print(t.forget(t.at, 5), include_id=False)
        at | v
        9  | b
    """
    limit = _threshold(table, time_column, threshold, "forget")
    return forget_after(table, limit, time_column, mark_forgetting_records)


def buffer(table: Table, time_column: Any, threshold: IntervalType) -> Table:
    """Rows are held until the largest ``time_column`` value seen reaches their time +
    ``threshold`` (see :func:`buffer_until`).

    Parameters:
        table: the table (``table.buffer(...)`` is the same call).
        time_column: each row's event time.
        threshold: how long after its time a row is held.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... at | v  | __time__
        ... 1  | a  | 2
        ... 9  | b  | 4
        ... 4  | c  | 6
        ... ''')
        >>> pw.debug.compute_and_print_update_stream(t.buffer(t.at, 5), include_id=False)
        at | v | __time__             | __diff__
        1  | a | 4                    | 1
        4  | c | 6                    | 1
        9  | b | 18446744073709551614 | 1
    """
    limit = _threshold(table, time_column, threshold, "buffer")
    return buffer_until(table, limit, time_column)


def ignore_late(table: Table, time_column: Any, threshold: IntervalType) -> Table:
    """Rows whose time + ``threshold`` is at or below the largest ``time_column`` value seen
    before them are dropped (see :func:`freeze_after`).

    Parameters:
        table: the table (``table.ignore_late(...)`` is the same call).
        time_column: each row's event time.
        threshold: how late (behind the largest time seen) a row may be.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... at | v  | __time__
        ... 1  | a  | 2
        ... 9  | b  | 4
        ... 4  | c  | 6
        ... ''')
        >>> pw.debug.compute_and_print(t.ignore_late(t.at, 3), include_id=False)
        at | v
        1  | a
        9  | b
    """
    limit = _threshold(table, time_column, threshold, "ignore_late")
    return freeze_after(table, limit, time_column)


def filter_out_results_of_forgetting(table: Table, ensure_consistency: bool = False) -> Table:
    """``table`` without the changes caused by marked forgetting (``forget(...,
    mark_forgetting_records=True)`` upstream): results keep what was forgotten.

    A row changed after forgetting was hidden is then retracted with the values the engine
    holds, not those last shown; with ``ensure_consistency`` the rows shown are kept (memory:
    one row per id) and each change retracts exactly what was shown.

    Parameters:
        table: a table computed from one that forgets with ``mark_forgetting_records=True``.
        ensure_consistency: keep the rows shown, so that each change retracts exactly them.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... at | v  | __time__
        ... 1  | a  | 2
        ... 9  | b  | 4
        ... 4  | c  | 6
        ... ''')
        >>> kept = t.forget(t.at, 5, mark_forgetting_records=True)
        >>> counted = kept.reduce(n=pw.reducers.count())
        >>> pw.debug.compute_and_print(counted.filter_out_results_of_forgetting(), include_id=False)
        n
        3
    """
    from deltaflow.table import Table

    node = ForgettingFilterNode(
        columns=dict(table._columns),
        inputs=(table._node,),
        ensure_consistency=ensure_consistency,
        label="filter_out_results_of_forgetting",
    )
    return Table(node, table._universe, primary_key=table._primary_key)
