"""``pw.stdlib.statistical``: filling gaps in series.

:func:`interpolate` (also ``Table.interpolate``) replaces each None of a value column by the
straight line between the nearest rows before and after it (in timestamp order) that hold a
value. Those rows come from an incremental neighbours operator whose *anchors* are the rows
with a value (:mod:`deltaflow.engine.stateful.neighbours`), and their values from ``ix``; the
arithmetic is vectorised.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from deltaflow import _types as t
from deltaflow.engine.stateful.neighbours import NeighbourMode
from deltaflow.expressions.base import ColumnExpression, ColumnReference
from deltaflow.expressions.functions import cast, coalesce, declare_type, if_else
from deltaflow.stdlib.ordered import neighbours

if TYPE_CHECKING:
    from deltaflow.table import Table

__all__ = ["InterpolateMode", "interpolate"]

_NUMERIC = ("int", "float")
_DATETIMES = ("DateTimeNaive", "DateTimeUtc")


class InterpolateMode(enum.Enum):
    """How :func:`interpolate` fills a gap; only straight lines for now."""

    LINEAR = 0


def _reference(value: Any, parameter: str) -> None:
    # Pathway reports a wrong kind of argument here with ValueError (not TypeError).
    if isinstance(value, ColumnReference):
        return
    hint = (
        f", found a string; did you mean pw.this.{value} instead of {value!r}?"
        if isinstance(value, str)
        else ""
    )
    raise ValueError(
        f"interpolate(): {parameter} must be a column reference such as pw.this.<name>{hint}"
    )


def interpolate(
    self: Table,
    timestamp: ColumnReference,
    *values: ColumnReference,
    mode: InterpolateMode = InterpolateMode.LINEAR,
) -> Table:
    """``self`` with every None in the ``values`` columns replaced by linear interpolation
    over ``timestamp``.

    A None between two values ``v0`` (at ``t0``) and ``v1`` (at ``t1``) becomes
    ``v0 + (t - t0) * (v1 - v0) / (t1 - t0)``; a None with a value on one side only takes
    that value; a column without any value stays None. Interpolated columns become ``float``
    (``Optional[float]`` when they were optional). Rows with equal timestamps are ordered by
    their ids. Datetime timestamps are interpolated over their nanoseconds.

    Parameters:
        timestamp: the column ordering the rows.
        *values: the columns whose None values are filled.
        mode: ``pw.statistical.InterpolateMode.LINEAR`` (the only mode).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... t | v
        ... 1 | 10
        ... 2 |
        ... 4 | 16
        ... ''')
        >>> pw.debug.compute_and_print(t.interpolate(t.t, t.v), include_id=False)
        t | v
        1 | 10.0
        2 | 12.0
        4 | 16.0
    """
    if mode != InterpolateMode.LINEAR:
        raise ValueError(
            f"interpolate(): mode must be InterpolateMode.LINEAR (the only mode "
            f"available), not {mode!r}"
        )
    _reference(timestamp, "timestamp")
    for value in values:
        _reference(value, "each value")
    timestamp = self[timestamp]
    time_type = self._columns[timestamp.name].strip_optional()
    if time_type.name not in (*_NUMERIC, *_DATETIMES):
        raise TypeError(
            f"interpolate() on {self._description}: the timestamp column "
            f"{timestamp.name!r} must be int, float or a datetime, not {time_type!r}"
        )
    replaced: dict[str, ColumnExpression] = {}
    for value in values:
        column = self[value]
        if column.name == timestamp.name:
            raise ValueError(
                f"interpolate(): the value column {column.name!r} is the timestamp column"
            )
        dtype = self._columns[column.name]
        if dtype.strip_optional().name not in _NUMERIC:
            raise TypeError(
                f"interpolate() on {self._description}: the value column "
                f"{column.name!r} must be int or float, not {dtype!r}"
            )
        if not isinstance(dtype, t.Optional):
            # Nothing to fill: the values only become floats, as in Pathway.
            replaced[column.name] = cast(float, column)
            continue
        replaced[column.name] = _filled(self, timestamp, column, time_type.name)
    return self.with_columns(**replaced)


def _filled(
    table: Table, timestamp: ColumnReference, column: ColumnReference, time_kind: str
) -> ColumnExpression:
    """The column with its Nones interpolated from the nearest values around them."""
    links = neighbours(
        table,
        timestamp,
        anchor=column.is_not_none(),
        mode=NeighbourMode.NEAREST_ANCHOR,
        operation="interpolate",
    )
    before = table.ix(links.prev, optional=True)
    after = table.ix(links.next, optional=True)

    def position(time: ColumnExpression) -> ColumnExpression:
        if time_kind in _DATETIMES:
            return time.dt.timestamp(unit="ns")
        return time

    here = position(timestamp)
    t0 = position(before[timestamp.name])
    t1 = position(after[timestamp.name])
    v0 = before[column.name]
    v1 = after[column.name]
    line = cast(float, v0) + (here - t0) * (v1 - v0) / (t1 - t0)
    gap = if_else(v0.is_none(), cast(float, v1), if_else(v1.is_none(), cast(float, v0), line))
    return declare_type(t.Optional(t.FLOAT), coalesce(cast(float, column), gap))
