"""``pw.DateTimeNaive``, ``pw.DateTimeUtc`` and ``pw.Duration``: annotations for date-time
columns that are also pandas classes (values of date-time columns are pandas objects, as in
Pathway), so calling one makes a checked value.

This module imports pandas (about half a second): :mod:`deltaflow._types` imports it on first
use of one of the names, and registers the classes as annotations then.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


class DateTimeNaive(pd.Timestamp):
    """Annotation for timezone-less timestamps (nanosecond precision). Calling it makes
    a pandas ``Timestamp`` and refuses (``ValueError``) one that has a timezone."""

    __module__ = "deltaflow._types"  # printed and pickled under the name users import

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        value = super().__new__(cls, *args, **kwargs)
        if value is not pd.NaT and value.tzinfo is not None:
            raise ValueError(
                f"pw.DateTimeNaive: {value} has a timezone ({value.tzinfo}); a naive "
                f"datetime has none (pw.DateTimeUtc is the type with a timezone)"
            )
        return value


class DateTimeUtc(pd.Timestamp):
    """Annotation for timezone-aware timestamps, stored in UTC (nanosecond precision).
    Calling it makes a pandas ``Timestamp`` and refuses (``ValueError``) one without a
    timezone."""

    __module__ = "deltaflow._types"  # printed and pickled under the name users import

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        value = super().__new__(cls, *args, **kwargs)
        if value is not pd.NaT and value.tzinfo is None:
            raise ValueError(
                f"pw.DateTimeUtc: {value} has no timezone; give one (e.g. a '+00:00' "
                f"suffix or tz='UTC'), or use pw.DateTimeNaive for naive datetimes"
            )
        return value


class Duration(pd.Timedelta):
    """Annotation for time differences (nanosecond precision)."""

    __module__ = "deltaflow._types"  # printed and pickled under the name users import
