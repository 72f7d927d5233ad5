"""Which time columns go with which window lengths, shared by windows and temporal joins.

Numeric times (``int`` or ``float``) take ``int`` or ``float`` lengths (an ``int`` time with a
``float`` length gives ``float`` window bounds, as in Pathway), a
``DateTimeNaive``/``DateTimeUtc`` time ``datetime.timedelta``/``Duration`` lengths (and, for
origins, a ``datetime`` of the same kind). Mismatches are reported when the pipeline is defined.
"""

from __future__ import annotations

import datetime
from typing import Any

import pandas as pd

from deltaflow import _types as t

#: Value types a length (duration, hop, gap, bound, delay, cutoff) may have, by time type.
_LENGTHS: dict[str, tuple[type, ...]] = {
    "int": (int, float),
    "float": (int, float),
    "DateTimeNaive": (datetime.timedelta, pd.Timedelta),
    "DateTimeUtc": (datetime.timedelta, pd.Timedelta),
}


def time_kind(dtype: t.DType, what: str) -> str:
    """The name of a time column's type (``int``, ``float``, ``DateTimeNaive``,
    ``DateTimeUtc``); a ``TypeError`` naming ``what`` for any other type."""
    name = dtype.strip_optional().name
    if name not in _LENGTHS:
        raise TypeError(
            f"{what}: a time column must be int, float, DateTimeNaive or DateTimeUtc, not {dtype!r}"
        )
    return name


def is_length_value(value: Any, kind: str) -> bool:
    """Whether ``value`` is a valid length for a time of type ``kind``."""
    if isinstance(value, bool):
        return False
    return isinstance(value, _LENGTHS[kind])


def check_length(
    value: Any, kind: str, what: str, *, positive: bool = True, allow_none: bool = True
) -> None:
    """Check one length against the time type: its Python type, and (with ``positive``) that
    it is above zero. ``what`` names the parameter in messages."""
    if value is None:
        if allow_none:
            return
        raise ValueError(f"{what} must be given")
    if not is_length_value(value, kind):
        wanted = {"int": "an int or a float", "float": "an int or a float"}.get(
            kind, "a datetime.timedelta (or pw.Duration)"
        )
        raise TypeError(
            f"{what} is {value!r} ({type(value).__name__}), but the time column "
            f"is {kind}: it needs {wanted}"
        )
    if positive and not _above_zero(value):
        raise ValueError(f"{what} must be greater than zero, got {value!r}")


def check_origin(value: Any, kind: str, what: str) -> None:
    """Check a window origin: a number for numeric times, a datetime for datetime times
    (timezone-aware exactly when the time column is ``DateTimeUtc``)."""
    if value is None:
        return
    if kind in ("int", "float"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, datetime.datetime) and (
            (value.tzinfo is not None) == (kind == "DateTimeUtc")
        )
    if not ok:
        raise TypeError(
            f"{what} is {value!r} ({type(value).__name__}), which does not fit a {kind} time column"
        )


def _above_zero(value: Any) -> bool:
    if isinstance(value, (datetime.timedelta, pd.Timedelta)):
        return value > datetime.timedelta(0)
    return value > 0
