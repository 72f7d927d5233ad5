"""Asof joins: each row paired with the closest row of the other side in time (``pw.temporal.
asof_join`` and the ``Table.asof_join*`` methods).

A left join gives one row per left row, a right join one per right row and an outer join
both; the other side's columns are None (or the ``defaults=`` given) where nothing matches.
The matching itself, with its rules for equal times, is described in
:mod:`deltaflow.engine.stateful.asof`.
"""

from __future__ import annotations

import enum
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.stateful.asof import AsofJoinNode
from deltaflow.table_stateful import JoinMode
from deltaflow.temporal._join_common import (
    TemporalJoinResult,
    apply_behavior,
    check_sides,
    engine_type_name,
    mode_name,
    project_sides,
)
from deltaflow.temporal._timetypes import time_kind


class Direction(enum.Enum):
    """Where an asof join looks for a row's match: the latest row at or before it
    (``BACKWARD``), the earliest at or after it (``FORWARD``) or the closer of the two
    (``NEAREST``)."""

    BACKWARD = 0
    FORWARD = 1
    NEAREST = 2


_NUMERIC = ("int", "float")
_ACCEPTED = (
    "(INT, INT) or (FLOAT, FLOAT) or (DATE_TIME_NAIVE, DATE_TIME_NAIVE) or "
    "(DATE_TIME_UTC, DATE_TIME_UTC)"
)


def _time_kind(left_type: t.DType, right_type: t.DType, description: str) -> str:
    """The time kind both time columns share (int with float counts as float); a
    ``TypeError`` naming both types otherwise."""
    try:
        kinds = [time_kind(left_type, "self_time"), time_kind(right_type, "other_time")]
    except TypeError:
        kinds = []
    if len(kinds) == 2:
        if kinds[0] == kinds[1]:
            return kinds[0]
        if kinds[0] in _NUMERIC and kinds[1] in _NUMERIC:
            return "float"
    raise TypeError(
        f"{description}: Arguments (t_left, t_right) have to be of types "
        f"{_ACCEPTED} but are of types ({engine_type_name(left_type)}, "
        f"{engine_type_name(right_type)})."
    )


def time_cast_needed(sides: Any) -> bool:
    """Whether one time is int and the other float (both are then compared as floats)."""
    types = {sides.left_time_type.strip_optional(), sides.right_time_type.strip_optional()}
    return types == {t.INT, t.FLOAT}


class AsofJoinResult(TemporalJoinResult):
    """The result of an asof join, before ``select`` (``pw.left``, ``pw.right`` and the joined
    tables' columns are available; ``filter`` and ``groupby`` work as on a join result)."""

    def __init__(
        self,
        left_table: Any,
        right_table: Any,
        self_time: Any,
        other_time: Any,
        on: tuple[Any, ...],
        how: Any,
        behavior: Any,
        defaults: dict[Any, Any],
        direction: Any,
        left_instance: Any,
        right_instance: Any,
    ) -> None:
        operation = "asof_join"
        check_sides(left_table, right_table, operation)
        description = f"asof_join of {left_table._description} with {right_table._description}"
        mode = mode_name(how, operation)
        if mode == "inner":
            raise ValueError(
                f"{description}: how=pw.JoinMode.INNER is not an asof join mode; "
                f"use LEFT (a row per left row), RIGHT (a row per right row) or "
                f"OUTER (both). An inner asof join would drop the rows that have "
                f"nothing before/after them, which LEFT plus a filter on "
                f"pw.right.id.is_not_none() expresses explicitly"
            )
        if not isinstance(direction, Direction):
            raise TypeError(
                f"{description}: direction= must be a pw.temporal.Direction, got {direction!r}"
            )
        if not isinstance(defaults, dict):
            raise TypeError(f"{description}: defaults= must be a dict from columns to values")
        kinds: list[str] = []

        def check_times(left_type: t.DType, right_type: t.DType) -> str:
            kinds.append(_time_kind(left_type, right_type, description))
            return kinds[-1]

        # Check the times before gating the sides, so that type errors name the join.
        probe = project_sides(
            left_table,
            right_table,
            self_time,
            other_time,
            on,
            left_instance,
            right_instance,
            mode,
            description,
            coalesce=False,
            time_types=check_times,
        )
        left_input = apply_behavior(left_table, self_time, behavior, kinds[0], description)
        right_input = apply_behavior(right_table, other_time, behavior, kinds[0], description)
        sides = (
            probe
            if behavior is None
            else project_sides(
                left_table,
                right_table,
                self_time,
                other_time,
                on,
                left_instance,
                right_instance,
                mode,
                description,
                coalesce=False,
                time_types=check_times,
                left_input=left_input,
                right_input=right_input,
            )
        )
        # pw.this.t is the row's own time, pw.this.side its side (False: left, True: right),
        # pw.this.instance its join key (as in Pathway).
        own = {
            "__t__t": t.FLOAT if time_cast_needed(sides) else sides.left_time_type.strip_optional(),
            "__t__side": t.BOOL,
        }
        if len(sides.keys) == 1:
            own["__t__instance"] = sides.key_types[0]
        sides.columns.update(own)
        self._init_result(
            left_table,
            right_table,
            dict(sides.columns),
            mode,
            description,
            {name: ("", "") for name in own},
        )
        wide_defaults: dict[str, Any] = {}
        for column, value in defaults.items():
            name = self._wide_column(column, f"{description}: defaults=")
            wide_defaults[name] = value
            dtype = sides.columns[name]
            value_type = t.infer_dtype([value]) if value is not None else t.optional(dtype)
            common = t.common_supertype(dtype.strip_optional(), value_type)
            if common is None:
                raise TypeError(
                    f"{description}: the default {value!r} for {column!r} does not "
                    f"fit its type {dtype.strip_optional()!r}"
                )
            sides.columns[name] = common if value is not None else dtype
        time_cast = pl.Float64 if time_cast_needed(sides) else None
        node = AsofJoinNode(
            columns=sides.columns,
            inputs=(left_input._node, right_input._node),
            left_pre=sides.left_pre,
            right_pre=sides.right_pre,
            keys=sides.keys,
            key_types=sides.key_types,
            mode=mode,
            coalesced={},
            left_columns=sides.left_columns,
            right_columns=sides.right_columns,
            direction=direction.name.lower(),
            defaults=wide_defaults,
            time_cast=time_cast,
            label=f"asof_join_{mode}",
        )
        self._set_wide(
            node,
            filter_forgetting=behavior is not None
            and behavior.cutoff is not None
            and behavior.keep_results,
        )


def asof_join(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    *on: Any,
    how: JoinMode,
    behavior: Any = None,
    defaults: dict[Any, Any] | None = None,
    direction: Direction = Direction.BACKWARD,
    left_instance: Any = None,
    right_instance: Any = None,
) -> AsofJoinResult:
    """Pair rows of ``self`` and ``other`` with equal ``on`` keys by closest time
    (``direction``); ``how`` says whose rows the result has (LEFT, RIGHT or OUTER).

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        defaults: values for the columns of a side without a match (``{column: value}``).
        direction: ``Direction.BACKWARD`` (latest row at or before), ``FORWARD`` or ``NEAREST``.
        left_instance, right_instance: columns that must also match.
        how: ``pw.JoinMode.LEFT``, ``RIGHT`` or ``OUTER``.

    Examples:
        >>> import deltaflow as pw
        >>> trades = pw.debug.table_from_markdown('''
        ... sym | t | qty
        ... X   | 3 | 10
        ... X   | 8 | 5
        ... ''')
        >>> quotes = pw.debug.table_from_markdown('''
        ... sym | t | price
        ... X   | 1 | 100
        ... X   | 6 | 101
        ... Y   | 2 | 50
        ... ''')
        >>> r = trades.asof_join(quotes, trades.t, quotes.t, trades.sym == quotes.sym,
        ...                      how=pw.JoinMode.LEFT).select(trades.t, trades.qty, quotes.price)
        >>> pw.debug.compute_and_print(r, include_id=False)
        t | qty | price
        3 | 10  | 100
        8 | 5   | 101
    """
    return AsofJoinResult(
        self,
        other,
        self_time,
        other_time,
        on,
        how,
        behavior,
        defaults or {},
        direction,
        left_instance,
        right_instance,
    )


def asof_join_left(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    *on: Any,
    behavior: Any = None,
    defaults: dict[Any, Any] | None = None,
    direction: Direction = Direction.BACKWARD,
    left_instance: Any = None,
    right_instance: Any = None,
) -> AsofJoinResult:
    """:func:`asof_join` with ``how=LEFT``: one row per row of ``self``.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        defaults: values for the columns of a side without a match (``{column: value}``).
        direction: ``Direction.BACKWARD`` (latest row at or before), ``FORWARD`` or ``NEAREST``.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> trades = pw.debug.table_from_markdown('''
        ... sym | t | qty
        ... X   | 3 | 10
        ... X   | 8 | 5
        ... ''')
        >>> quotes = pw.debug.table_from_markdown('''
        ... sym | t | price
        ... X   | 1 | 100
        ... X   | 6 | 101
        ... Y   | 2 | 50
        ... ''')
        >>> r = trades.asof_join_left(quotes, trades.t, quotes.t, trades.sym == quotes.sym,
        ...                           direction=pw.temporal.Direction.FORWARD).select(
        ...     trades.t, quotes.price)
        >>> pw.debug.compute_and_print(r, include_id=False)
        t | price
        3 | 101
        8 |
    """
    return asof_join(
        self,
        other,
        self_time,
        other_time,
        *on,
        how=JoinMode.LEFT,
        behavior=behavior,
        defaults=defaults,
        direction=direction,
        left_instance=left_instance,
        right_instance=right_instance,
    )


def asof_join_right(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    *on: Any,
    behavior: Any = None,
    defaults: dict[Any, Any] | None = None,
    direction: Direction = Direction.BACKWARD,
    left_instance: Any = None,
    right_instance: Any = None,
) -> AsofJoinResult:
    """:func:`asof_join` with ``how=RIGHT``: one row per row of ``other``.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        defaults: values for the columns of a side without a match (``{column: value}``).
        direction: ``Direction.BACKWARD`` (latest row at or before), ``FORWARD`` or ``NEAREST``.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> trades = pw.debug.table_from_markdown('''
        ... sym | t | qty
        ... X   | 3 | 10
        ... X   | 8 | 5
        ... ''')
        >>> quotes = pw.debug.table_from_markdown('''
        ... sym | t | price
        ... X   | 1 | 100
        ... X   | 6 | 101
        ... Y   | 2 | 50
        ... ''')
        >>> r = trades.asof_join_right(quotes, trades.t, quotes.t, trades.sym == quotes.sym,
        ...                            defaults={trades.qty: 0}).select(quotes.t, trades.qty)
        >>> pw.debug.compute_and_print(r, include_id=False)
        t | qty
        1 | 0
        2 | 0
        6 | 10
    """
    return asof_join(
        self,
        other,
        self_time,
        other_time,
        *on,
        how=JoinMode.RIGHT,
        behavior=behavior,
        defaults=defaults,
        direction=direction,
        left_instance=left_instance,
        right_instance=right_instance,
    )


def asof_join_outer(
    self: Any,
    other: Any,
    self_time: Any,
    other_time: Any,
    *on: Any,
    behavior: Any = None,
    defaults: dict[Any, Any] | None = None,
    direction: Direction = Direction.BACKWARD,
    left_instance: Any = None,
    right_instance: Any = None,
) -> AsofJoinResult:
    """:func:`asof_join` with ``how=OUTER``: one row per row of either table.

    Parameters:
        other: the table joined with.
        self_time, other_time: the time columns of the two tables.
        *on: equality conditions ``left_column == right_column``.
        behavior: ``common_behavior(...)`` for late rows.
        defaults: values for the columns of a side without a match (``{column: value}``).
        direction: ``Direction.BACKWARD`` (latest row at or before), ``FORWARD`` or ``NEAREST``.
        left_instance, right_instance: columns that must also match.

    Examples:
        >>> import deltaflow as pw
        >>> trades = pw.debug.table_from_markdown('''
        ... sym | t | qty
        ... X   | 3 | 10
        ... X   | 8 | 5
        ... ''')
        >>> quotes = pw.debug.table_from_markdown('''
        ... sym | t | price
        ... X   | 1 | 100
        ... X   | 6 | 101
        ... Y   | 2 | 50
        ... ''')
        >>> r = trades.asof_join_outer(quotes, trades.t, quotes.t, trades.sym == quotes.sym).select(
        ...     left_t=trades.t, right_t=quotes.t)
        >>> pw.debug.compute_and_print(r, include_id=False)
        left_t | right_t
               | 1
               | 2
        3      | 1
        3      | 6
        8      | 6
    """
    return asof_join(
        self,
        other,
        self_time,
        other_time,
        *on,
        how=JoinMode.OUTER,
        behavior=behavior,
        defaults=defaults,
        direction=direction,
        left_instance=left_instance,
        right_instance=right_instance,
    )
