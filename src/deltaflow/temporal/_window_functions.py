"""The window functions users call: ``tumbling``, ``sliding``, ``session`` and
``intervals_over`` check their arguments and make a :class:`~._window.Window`; ``windowby``
groups a table by one (the window kinds and how they assign rows live in :mod:`._window`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deltaflow.argument_errors import extra_arguments_refused
from deltaflow.error_display import user_call
from deltaflow.expressions.base import ColumnReference, wrap_value
from deltaflow.temporal import _behaviors as behaviors
from deltaflow.temporal._window import (
    IntervalType,
    TimeType,
    Window,
    _IntervalsOverWindow,
    _SessionWindow,
    _SlidingWindow,
)
from deltaflow.temporal._windowed_table import WindowedGroupedTable

if TYPE_CHECKING:
    from deltaflow.table import Table


@user_call
def tumbling(duration: IntervalType, origin: TimeType | None = None) -> Window:
    """Windows of length ``duration`` one after another, starting at ``origin`` (at 0, or
    the epoch for datetimes, and extending before it, when not given).

    Parameters:
        duration: the windows' length (an int or float for number times, a ``timedelta`` for
            datetimes).
        origin: where the first window starts.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t  | v
        ... 1  | 10
        ... 4  | 20
        ... 12 | 30
        ... ''')
        >>> r = t.windowby(t.t, window=pw.temporal.tumbling(duration=5)).reduce(
        ...     start=pw.this._pw_window_start, total=pw.reducers.sum(pw.this.v))
        >>> pw.debug.compute_and_print(r, include_id=False)
        start | total
        0     | 30
        10    | 30
    """
    return _SlidingWindow(hop=duration, duration=None, ratio=1, origin=origin)


@user_call
def sliding(
    hop: IntervalType,
    duration: IntervalType | None = None,
    ratio: int | None = None,
    origin: TimeType | None = None,
) -> Window:
    """Windows of length ``duration`` (or ``ratio * hop``) starting every ``hop``.

    Parameters:
        hop: the distance between the starts of two windows.
        duration: the windows' length.
        ratio: the length as a multiple of ``hop`` (instead of ``duration``).
        origin: a time at which a window starts.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t  | v
        ... 1  | 10
        ... 4  | 20
        ... 12 | 30
        ... ''')
        >>> r = t.windowby(t.t, window=pw.temporal.sliding(hop=5, duration=10)).reduce(
        ...     start=pw.this._pw_window_start, total=pw.reducers.sum(pw.this.v))
        >>> pw.debug.compute_and_print(r, include_id=False)
        start | total
        -5    | 30
        0     | 30
        5     | 30
        10    | 30
    """
    if duration is None and ratio is None:
        raise ValueError("sliding: give one of duration and ratio")
    if duration is not None and ratio is not None:
        raise ValueError("sliding: give either duration or ratio, not both")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, int) or ratio <= 0):
        raise ValueError(f"sliding: ratio must be a positive int, got {ratio!r}")
    return _SlidingWindow(hop=hop, duration=duration, ratio=ratio, origin=origin)


@user_call
def session(
    *, predicate: Callable[[Any, Any], bool] | None = None, max_gap: IntervalType | None = None
) -> Window:
    """Sessions: neighbouring rows (in time order) belong together when their gap is below
    ``max_gap``, or when ``predicate(earlier_time, later_time)`` is true.

    Parameters:
        predicate: ``predicate(earlier_time, later_time)``: whether two neighbouring rows are in one
            session.
        max_gap: neighbouring rows closer than this are in one session (instead of ``predicate``).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t  | v
        ... 1  | 10
        ... 4  | 20
        ... 12 | 30
        ... ''')
        >>> r = t.windowby(t.t, window=pw.temporal.session(max_gap=4)).reduce(
        ...     start=pw.this._pw_window_start, end=pw.this._pw_window_end,
        ...     total=pw.reducers.sum(pw.this.v))
        >>> pw.debug.compute_and_print(r, include_id=False)
        start | end | total
        1     | 4   | 30
        12    | 12  | 30
    """
    if predicate is None and max_gap is None:
        raise ValueError("session: give one of predicate and max_gap")
    if predicate is not None and max_gap is not None:
        raise ValueError("session: give either predicate or max_gap, not both")
    if predicate is not None and not callable(predicate):
        raise TypeError(f"session: predicate must be a function of two times, got {predicate!r}")
    return _SessionWindow(predicate=predicate, max_gap=max_gap)


@user_call
def intervals_over(
    *,
    at: ColumnReference,
    lower_bound: IntervalType,
    upper_bound: IntervalType,
    is_outer: bool = True,
) -> Window:
    """One window per row of ``at``'s table: the rows whose time is within
    [at + lower_bound, at + upper_bound]; with ``is_outer`` a point without rows still has
    its window.

    Parameters:
        at: a time column of another table: one window around each of its values.
        lower_bound, upper_bound: the window around a point ``p``: ``[p + lower_bound, p +
            upper_bound]``.
        is_outer: keep the windows that hold no row.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t  | v
        ... 1  | 10
        ... 4  | 20
        ... 12 | 30
        ... ''')
        >>> probes = pw.debug.table_from_markdown('''
        ... at
        ... 5
        ... 20
        ... ''')
        >>> r = t.windowby(t.t, window=pw.temporal.intervals_over(
        ...     at=probes.at, lower_bound=-4, upper_bound=0)).reduce(
        ...     at=pw.this._pw_window_location, values=pw.reducers.sorted_tuple(pw.this.v))
        >>> pw.debug.compute_and_print(r, include_id=False)
        at | values
        5  | (10, 20)
        20 | (None,)
    """
    if not isinstance(at, ColumnReference):
        raise TypeError(f"intervals_over: at must be a column reference, got {at!r}")
    return _IntervalsOverWindow(
        at=at, lower_bound=lower_bound, upper_bound=upper_bound, is_outer=is_outer
    )


@extra_arguments_refused(
    "windowby groups by one time expression; give the reducers to "
    "reduce(): windowby(...).reduce(**kwargs)"
)
def windowby(
    table: Table, time_expr: Any, *, window: Window, behavior: Any = None, instance: Any = None
) -> WindowedGroupedTable:
    """Group ``table`` by the windows of ``time_expr``; ``reduce`` then gives one row per
    window (and instance), with ``_pw_window``, ``_pw_window_start``, ``_pw_window_end`` and
    ``_pw_instance`` available next to the reducers.

    Parameters:
        table: the table grouped (``table.windowby(...)`` is the same call).
        time_expr: the time of each row (int, float or datetime).
        window: ``tumbling``, ``sliding``, ``session`` or ``intervals_over``.
        behavior: when results are given and kept, for late rows (``common_behavior`` ...).
        instance: windows are made separately per value of this expression.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t  | shop | v
        ... 1  | a    | 10
        ... 2  | b    | 20
        ... 3  | a    | 30
        ... ''')
        >>> r = pw.temporal.windowby(t, t.t, window=pw.temporal.tumbling(duration=10),
        ...                          instance=t.shop).reduce(pw.this._pw_instance,
        ...                                                  total=pw.reducers.sum(pw.this.v))
        >>> pw.debug.compute_and_print(r, include_id=False)
        _pw_instance | total
        a            | 40
        b            | 20
    """
    if not isinstance(window, Window):
        raise TypeError(
            f"windowby on {table._description}: window must be a window "
            f"(pw.temporal.tumbling, sliding, session, intervals_over), got "
            f"{window!r}"
        )
    if behavior is not None and not isinstance(behavior, behaviors.Behavior):
        raise TypeError(
            f"windowby on {table._description}: behavior must be made by "
            f"pw.temporal.common_behavior or exactly_once_behavior, got "
            f"{behavior!r}"
        )
    key = wrap_value(time_expr)
    inst = None if instance is None else wrap_value(instance)
    return window._apply(table, key, behavior, inst)
