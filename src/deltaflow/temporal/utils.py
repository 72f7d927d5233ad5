"""``pw.temporal.utils`` (also ``pw.stdlib.temporal.utils``): the time and interval types of
the temporal functions and small helpers about them.

A time (``TimeEventType``) is an int, a float or a datetime; a length (``IntervalType``) an
int, a float or a timedelta. They go together as (int, int), (float, float) or (datetime,
timedelta); :func:`check_joint_types` enforces that on a set of parameters.
"""

from __future__ import annotations

import datetime
from typing import Any, Union

import pandas as pd

from deltaflow import _types as t
from deltaflow._values import infer_dtype
from deltaflow.expressions.base import ColumnExpression, ColumnReference

__all__ = [
    "IntervalType",
    "TimeEventType",
    "check_joint_types",
    "get_default_origin",
    "zero_length_interval",
]

TimeEventType = Union[int, float, datetime.datetime]
IntervalType = Union[int, float, datetime.timedelta]

# 1973-01-01 was a Monday: week-long windows then start on Mondays by default.
_ORIGINS: dict[str, TimeEventType] = {
    "int": 0,
    "float": 0.0,
    "DateTimeNaive": pd.Timestamp(year=1973, month=1, day=1),
    "DateTimeUtc": pd.Timestamp(year=1973, month=1, day=1, tz="UTC"),
}

# The allowed combinations, as (time type, length type) by position.
_TIME_TYPES = (t.INT, t.FLOAT, t.DATE_TIME_NAIVE, t.DATE_TIME_UTC)
_LENGTH_TYPES = (t.INT, t.FLOAT, t.DURATION, t.DURATION)


def get_default_origin(time_event_type: t.DType) -> TimeEventType:
    """Where windows over times of ``time_event_type`` start when no origin is given."""
    name = time_event_type.strip_optional().name
    if name not in _ORIGINS:
        raise KeyError(f"no default window origin for times of type {time_event_type!r}")
    return _ORIGINS[name]


def zero_length_interval(interval_type: type) -> IntervalType:
    """The zero length of a length type (``int``, ``float`` or ``timedelta``)."""
    if issubclass(interval_type, datetime.timedelta):
        return datetime.timedelta(0)
    if issubclass(interval_type, int):
        return 0
    if issubclass(interval_type, float):
        return 0.0
    raise TypeError(f"zero_length_interval: {interval_type!r} is not a length type")


def _dtype(value: Any) -> t.DType:
    if isinstance(value, ColumnReference):
        return value.table._scope("check_joint_types").dtype_of(value)
    if isinstance(value, ColumnExpression):
        raise TypeError(
            "check_joint_types: give column references or plain values, not expressions"
        )
    return infer_dtype([value])


def check_joint_types(parameters: dict[str, tuple[Any, Any]]) -> None:
    """A ``TypeError`` unless the parameters' types fit one allowed combination.

    ``parameters`` maps a name to ``(value or column, TimeEventType or IntervalType)``;
    parameters whose value is None are left out.
    """
    given = {name: pair for name, pair in parameters.items() if pair[0] is not None}
    types = {name: _dtype(value) for name, (value, _) in given.items()}
    for position in range(len(_TIME_TYPES)):
        wanted = {
            name: (_TIME_TYPES if kind is TimeEventType else _LENGTH_TYPES)[position]
            for name, (_, kind) in given.items()
        }
        if all(t.is_subtype(types[name], wanted[name]) for name in given):
            return
    found = ", ".join(f"{name}: {types[name]!r}" for name in given)
    raise TypeError(
        f"parameters ({', '.join(given)}) must be times and lengths of one kind: "
        f"int with int, float with float, or a datetime with durations; got {found}"
    )
