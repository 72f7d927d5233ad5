"""Constant date-time arguments of the ``.dt`` methods: durations and frequency strings, time
zone names, formats and timestamp units, and the DST-aware conversion of naive local times."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from typing import Any

import polars as pl

from deltaflow.expressions.base import ColumnExpression

_TIMESTAMP_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}

_TZ_DIRECTIVES = ("%z", "%:z", "%::z", "%:::z", "%#z", "%Z", "%+")


# Frequency units as pandas spelled them (old one-letter aliases included: Pathway takes them).
_FREQUENCY_UNITS_NS = {
    "w": 7 * 86_400 * 10**9,
    "d": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "min": 60 * 10**9,
    "t": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "l": 10**6,
    "us": 10**3,
    "u": 10**3,
    "ns": 1,
    "n": 1,
}
_FREQUENCY_RE = re.compile(r"(\d*)([a-zA-Z]+)")


def _frequency_ns(text: str) -> int | None:
    """Nanoseconds of a frequency string such as "D", "min", "2H3T" or "14L22ms14us"; None
    when it is not one."""
    parts = _FREQUENCY_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    total = 0
    for number, unit in parts:
        scale = _FREQUENCY_UNITS_NS.get(unit if unit in ("ms", "us", "ns", "min") else unit.lower())
        if scale is None:
            return None
        total += int(number or 1) * scale
    return total


def _duration_ns(value: Any, method: str) -> int | None:
    """Nanoseconds of a constant duration argument (Timedelta, a string like "1h", or a
    frequency such as "D", "min", "2H3T")."""
    import pandas as pd  # loaded on first use: only date-time methods need it

    if isinstance(value, str):
        frequency = _frequency_ns(value.strip())
        if frequency is not None:
            return frequency
        try:
            return pd.Timedelta(value).value
        except ValueError as exc:
            raise ValueError(f"{method}(): {value!r} is not a duration ({exc})") from None
    if isinstance(value, datetime.timedelta):
        return pd.Timedelta(value).value
    return None


def _check_timezone(name: Any, method: str) -> None:
    if not isinstance(name, str):
        if isinstance(name, ColumnExpression):
            raise TypeError(
                f"{method}(): the time zone must be a constant string in deltaflow, "
                f"not a column expression"
            )
        raise TypeError(f"{method}(): the time zone must be a string, got {name!r}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{method}(): unknown time zone {name!r} (use an IANA name such as 'Europe/Warsaw')"
        ) from None


def _constant_format(fmt: Any, method: str) -> str:
    if not isinstance(fmt, str):
        raise TypeError(
            f"{method}(): the format must be a string or a str column expression, got {fmt!r}"
        )
    return fmt


def _local_to_utc(local: pl.Series, zone: str) -> pl.Series:
    """Naive local times in ``zone`` to UTC instants, resolving DST like Pathway.

    Ambiguous times (clocks going back) take the later instant; times skipped when clocks go
    forward map to the instant of the change.
    """
    utc = local.dt.replace_time_zone(
        zone, ambiguous="latest", non_existent="null"
    ).dt.convert_time_zone("UTC")
    skipped = local.is_not_null() & utc.is_null()
    if not skipped.any():
        return utc
    nanos = utc.dt.epoch("ns").to_list()
    local_nanos = local.dt.epoch("ns").to_list()
    tz = zoneinfo.ZoneInfo(zone)
    for i in skipped.arg_true().to_list():
        nanos[i] = _transition_instant(local_nanos[i], tz)
    return pl.Series(nanos, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))


def _transition_instant(local_ns: int, tz: zoneinfo.ZoneInfo) -> int:
    """The UTC instant (ns) at which the clock jumped over the non-existent local time."""
    import pandas as pd

    stamp = pd.Timestamp(local_ns, unit="ns")
    before = stamp.to_pydatetime().replace(tzinfo=tz, fold=0).utcoffset()
    after = stamp.to_pydatetime().replace(tzinfo=tz, fold=1).utcoffset()
    assert before is not None and after is not None
    lo = (stamp - pd.Timedelta(max(before, after))).value  # still before the change
    hi = (stamp - pd.Timedelta(min(before, after))).value  # already after it
    first_offset = pd.Timestamp(lo, tz="UTC").tz_convert(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pd.Timestamp(mid, tz="UTC").tz_convert(tz).utcoffset() == first_offset:
            lo = mid
        else:
            hi = mid
    return hi


# The unit names ``dt.to_duration`` accepts (case matters), as nanoseconds.
_DURATION_UNITS_NS: dict[str, int] = {
    **dict.fromkeys(("W",), 7 * 86_400 * 10**9),
    **dict.fromkeys(("D", "day", "days"), 86_400 * 10**9),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 3_600 * 10**9),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60 * 10**9),
    **dict.fromkeys(("s", "sec", "second", "seconds"), 10**9),
    **dict.fromkeys(("ms", "millisecond", "milliseconds", "millis", "milli"), 10**6),
    **dict.fromkeys(("us", "microsecond", "microseconds", "micros", "micro"), 10**3),
    **dict.fromkeys(("ns", "nanosecond", "nanoseconds", "nanos", "nano"), 1),
}


def _duration_unit_ns(unit: str, method: str) -> int:
    """Nanoseconds in one ``unit`` of ``dt.to_duration``; ValueError for an unknown name."""
    try:
        return _DURATION_UNITS_NS[unit]
    except KeyError:
        raise ValueError(
            f"{method}(): unknown unit {unit!r} (one of W, D, h, m, s, ms, us, ns, or a "
            f"spelled-out name such as 'days' or 'millis')"
        ) from None


def _unit_factor(unit: Any, method: str) -> int:
    if unit not in _TIMESTAMP_UNITS:
        raise ValueError(f"{method}(): unit must be one of 's', 'ms', 'us', 'ns', got {unit!r}")
    return _TIMESTAMP_UNITS[unit]
