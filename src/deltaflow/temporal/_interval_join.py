"""Interval joins: pairs of rows with equal keys whose times satisfy
``self_time + lower_bound <= other_time <= self_time + upper_bound``.

``interval_join`` / ``interval_join_inner`` keep the pairs; the left/right/outer variants also
keep the rows without any partner (with None on the other side) and retract them when a
partner comes. How the operator finds pairs incrementally is described in
:mod:`deltaflow.engine.stateful.interval`.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Generic, TypeVar

from deltaflow import _types as t
from deltaflow.engine.stateful.interval import IntervalJoinNode
from deltaflow.table_stateful import JoinMode
from deltaflow.temporal._join_common import (
    TemporalJoinResult,
    apply_behavior,
    check_sides,
    engine_type_name,
    mode_name,
    project_sides,
    time_unit_value,
    value_type_name,
)

# A bound, not constraints: the two bounds may differ in type until the join checks them.
T = TypeVar("T", bound=int | float | datetime.timedelta)

_ACCEPTED = (
    "(INT, INT, INT, INT) or (FLOAT, FLOAT, FLOAT, FLOAT) or "
    "(DATE_TIME_NAIVE, DATE_TIME_NAIVE, DURATION, DURATION) or "
    "(DATE_TIME_UTC, DATE_TIME_UTC, DURATION, DURATION)"
)


@dataclasses.dataclass
class Interval(Generic[T]):
    """The bounds of an interval join, relative to the left row's time (both included)."""

    lower_bound: T
    upper_bound: T


def interval(
    lower_bound: int | float | datetime.timedelta, upper_bound: int | float | datetime.timedelta
) -> Interval:
    """The interval ``[lower_bound, upper_bound]`` around a left row's time; checked against
    the time columns when the join is defined.

    Parameters:
        lower_bound: the smallest ``other_time - self_time`` accepted.
        upper_bound: the largest one.

    Examples:
        >>> import deltaflow as pw
        >>> i = pw.temporal.interval(-2, 5)
        >>> i.lower_bound, i.upper_bound
        (-2, 5)
    """
    return Interval(lower_bound, upper_bound)


def _time_kind(left_type: t.DType, right_type: t.DType, bounds: Interval, description: str) -> str:
    """The common kind of the times and bounds (int with float counts as float, as in
    Pathway); a ``TypeError`` listing all four types otherwise."""
    names = [
        engine_type_name(left_type),
        engine_type_name(right_type),
        value_type_name(bounds.lower_bound),
        value_type_name(bounds.upper_bound),
    ]
    numeric = {"INT", "FLOAT"}
    if all(name in numeric for name in names):
        return "float" if "FLOAT" in names else "int"
    for kind, engine in (("DateTimeNaive", "DATE_TIME_NAIVE"), ("DateTimeUtc", "DATE_TIME_UTC")):
        if names == [engine, engine, "DURATION", "DURATION"]:
            return kind
    raise TypeError(
        f"{description}: Arguments (self_time_expression, other_time_expression, "
        f"lower_bound, upper_bound) have to be of types {_ACCEPTED} but are of "
        f"types ({', '.join(names)})."
    )


class IntervalJoinResult(TemporalJoinResult):
    """The result of an interval join before ``select`` (``pw.left``, ``pw.right``,
    ``pw.this`` and the joined tables' columns are available)."""

    def __init__(
        self,
        left_table: Any,
        right_table: Any,
        self_time: Any,
        other_time: Any,
        bounds: Any,
        on: tuple[Any, ...],
        behavior: Any,
        how: Any,
        left_instance: Any,
        right_instance: Any,
    ) -> None:
        operation = "interval_join"
        check_sides(left_table, right_table, operation)
        description = f"interval_join of {left_table._description} with {right_table._description}"
        mode = mode_name(how, operation)
        if not isinstance(bounds, Interval):
            raise TypeError(
                f"{description}: interval must be pw.temporal.interval(lower_bound, "
                f"upper_bound), got {bounds!r}"
            )
        kinds: list[str] = []

        def check_times(left_type: t.DType, right_type: t.DType) -> str:
            kinds.append(_time_kind(left_type, right_type, bounds, description))
            return kinds[-1]

        sides = project_sides(
            left_table,
            right_table,
            self_time,
            other_time,
            on,
            left_instance,
            right_instance,
            mode,
            description,
            time_types=check_times,
        )
        kind = kinds[0]
        lower = time_unit_value(bounds.lower_bound, kind)
        upper = time_unit_value(bounds.upper_bound, kind)
        if lower > upper:
            raise ValueError(
                f"{description}: the interval's lower_bound "
                f"({bounds.lower_bound!r}) is greater than its upper_bound "
                f"({bounds.upper_bound!r}); no pair could ever match"
            )
        left_input = apply_behavior(left_table, self_time, behavior, kind, description)
        right_input = apply_behavior(right_table, other_time, behavior, kind, description)
        if behavior is not None:
            sides = project_sides(
                left_table,
                right_table,
                self_time,
                other_time,
                on,
                left_instance,
                right_instance,
                mode,
                description,
                time_types=check_times,
                left_input=left_input,
                right_input=right_input,
            )
        self._init_result(
            left_table, right_table, sides.columns, mode, description, sides.coalesced
        )
        unit = "datetime" if kind in ("DateTimeNaive", "DateTimeUtc") else kind
        node = IntervalJoinNode(
            columns=sides.columns,
            inputs=(left_input._node, right_input._node),
            left_pre=sides.left_pre,
            right_pre=sides.right_pre,
            keys=sides.keys,
            key_types=sides.key_types,
            mode=mode,
            coalesced=sides.coalesced,
            left_columns=sides.left_columns,
            right_columns=sides.right_columns,
            lower=lower,
            upper=upper,
            time_unit=unit,
            label=f"interval_join_{mode}",
        )
        self._set_wide(
            node,
            filter_forgetting=behavior is not None
            and behavior.cutoff is not None
            and behavior.keep_results,
        )


def interval_join(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    interval: Interval,
    *on: Any,
    behavior: Any = None,
    how: JoinMode = JoinMode.INNER,
    left_instance: Any = None,
    right_instance: Any = None,
) -> IntervalJoinResult:
    """Pairs of rows of ``self`` and ``other`` with equal ``on`` keys whose times satisfy
    ``self_time + lower_bound <= other_time <= self_time + upper_bound``; ``how`` adds the
    rows without partners of one or both sides.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables (of one kind: numbers or
            datetimes).
        interval: ``pw.temporal.interval(lower_bound, upper_bound)``: where ``other_time`` may be,
            relative to ``self_time``.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        left_instance, right_instance: columns that must also match.
        how: ``pw.JoinMode.INNER``, ``LEFT``, ``RIGHT`` or ``OUTER``.

    Examples:
        >>> import deltaflow as pw
        >>> clicks = pw.debug.table_from_markdown('''
        ... user | t
        ... ann  | 3
        ... bob  | 9
        ... ''')
        >>> buys = pw.debug.table_from_markdown('''
        ... user | t  | amount
        ... ann  | 5  | 20
        ... ann  | 15 | 7
        ... cid  | 4  | 1
        ... ''')
        >>> r = clicks.interval_join(buys, clicks.t, buys.t, pw.temporal.interval(0, 5),
        ...                          clicks.user == buys.user, how=pw.JoinMode.LEFT).select(
        ...     clicks.user, buys.amount)
        >>> pw.debug.compute_and_print(r, include_id=False)
        user | amount
        ann  | 20
        bob  |
    """
    return IntervalJoinResult(
        self,
        other,
        self_time,
        other_time,
        interval,
        on,
        behavior,
        how,
        left_instance,
        right_instance,
    )


def interval_join_inner(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    interval: Interval,
    *on: Any,
    behavior: Any = None,
    left_instance: Any = None,
    right_instance: Any = None,
) -> IntervalJoinResult:
    """:func:`interval_join` keeping only the pairs.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables (of one kind: numbers or
            datetimes).
        interval: ``pw.temporal.interval(lower_bound, upper_bound)``: where ``other_time`` may be,
            relative to ``self_time``.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> clicks = pw.debug.table_from_markdown('''
        ... user | t
        ... ann  | 3
        ... bob  | 9
        ... ''')
        >>> buys = pw.debug.table_from_markdown('''
        ... user | t  | amount
        ... ann  | 5  | 20
        ... ann  | 15 | 7
        ... cid  | 4  | 1
        ... ''')
        >>> r = clicks.interval_join_inner(buys, clicks.t, buys.t, pw.temporal.interval(0, 5),
        ...                                clicks.user == buys.user).select(clicks.user,
        ...                                                                 buys.amount)
        >>> pw.debug.compute_and_print(r, include_id=False)
        user | amount
        ann  | 20
    """
    return IntervalJoinResult(
        self,
        other,
        self_time,
        other_time,
        interval,
        on,
        behavior,
        JoinMode.INNER,
        left_instance,
        right_instance,
    )


def interval_join_left(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    interval: Interval,
    *on: Any,
    behavior: Any = None,
    left_instance: Any = None,
    right_instance: Any = None,
) -> IntervalJoinResult:
    """:func:`interval_join` plus the rows of ``self`` without partners.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables (of one kind: numbers or
            datetimes).
        interval: ``pw.temporal.interval(lower_bound, upper_bound)``: where ``other_time`` may be,
            relative to ``self_time``.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> clicks = pw.debug.table_from_markdown('''
        ... user | t
        ... ann  | 3
        ... bob  | 9
        ... ''')
        >>> buys = pw.debug.table_from_markdown('''
        ... user | t  | amount
        ... ann  | 5  | 20
        ... ann  | 15 | 7
        ... cid  | 4  | 1
        ... ''')
        >>> r = clicks.interval_join_left(buys, clicks.t, buys.t, pw.temporal.interval(0, 5),
        ...                               clicks.user == buys.user).select(clicks.user, buys.amount)
        >>> pw.debug.compute_and_print(r, include_id=False)
        user | amount
        ann  | 20
        bob  |
    """
    return IntervalJoinResult(
        self,
        other,
        self_time,
        other_time,
        interval,
        on,
        behavior,
        JoinMode.LEFT,
        left_instance,
        right_instance,
    )


def interval_join_right(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    interval: Interval,
    *on: Any,
    behavior: Any = None,
    left_instance: Any = None,
    right_instance: Any = None,
) -> IntervalJoinResult:
    """:func:`interval_join` plus the rows of ``other`` without partners.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables (of one kind: numbers or
            datetimes).
        interval: ``pw.temporal.interval(lower_bound, upper_bound)``: where ``other_time`` may be,
            relative to ``self_time``.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> clicks = pw.debug.table_from_markdown('''
        ... user | t
        ... ann  | 3
        ... bob  | 9
        ... ''')
        >>> buys = pw.debug.table_from_markdown('''
        ... user | t  | amount
        ... ann  | 5  | 20
        ... ann  | 15 | 7
        ... cid  | 4  | 1
        ... ''')
        >>> r = clicks.interval_join_right(buys, clicks.t, buys.t, pw.temporal.interval(0, 5),
        ...                                clicks.user == buys.user).select(buys.user, buys.amount,
        ...                                                                 seen=clicks.t)
        >>> pw.debug.compute_and_print(r, include_id=False)
        user | amount | seen
        ann  | 7      |
        ann  | 20     | 3
        cid  | 1      |
    """
    return IntervalJoinResult(
        self,
        other,
        self_time,
        other_time,
        interval,
        on,
        behavior,
        JoinMode.RIGHT,
        left_instance,
        right_instance,
    )


def interval_join_outer(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    interval: Interval,
    *on: Any,
    behavior: Any = None,
    left_instance: Any = None,
    right_instance: Any = None,
) -> IntervalJoinResult:
    """:func:`interval_join` plus the rows of either table without partners.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables (of one kind: numbers or
            datetimes).
        interval: ``pw.temporal.interval(lower_bound, upper_bound)``: where ``other_time`` may be,
            relative to ``self_time``.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> clicks = pw.debug.table_from_markdown('''
        ... user | t
        ... ann  | 3
        ... bob  | 9
        ... ''')
        >>> buys = pw.debug.table_from_markdown('''
        ... user | t  | amount
        ... ann  | 5  | 20
        ... ann  | 15 | 7
        ... cid  | 4  | 1
        ... ''')
        >>> r = clicks.interval_join_outer(buys, clicks.t, buys.t, pw.temporal.interval(0, 5),
        ...                                clicks.user == buys.user).select(
        ...     who=pw.coalesce(clicks.user, buys.user), amount=buys.amount)
        >>> pw.debug.compute_and_print(r, include_id=False)
        who | amount
        ann | 7
        ann | 20
        bob |
        cid | 1
    """
    return IntervalJoinResult(
        self,
        other,
        self_time,
        other_time,
        interval,
        on,
        behavior,
        JoinMode.OUTER,
        left_instance,
        right_instance,
    )
