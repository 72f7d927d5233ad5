"""The ``.dt`` namespace: ``t.when.dt.year()`` ..."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.base import ColumnExpression, MethodCall, Scope
from deltaflow.expressions.namespaces._common import (
    _DATETIMES,
    _NUMBERS,
    _STR,
    _describe,
    _first_failure,
    _Namespace,
    _Param,
    _rule,
    _shows_arguments,
)
from deltaflow.expressions.namespaces._time_values import (
    _TZ_DIRECTIVES,
    _check_timezone,
    _constant_format,
    _duration_ns,
    _duration_unit_ns,
    _local_to_utc,
    _unit_factor,
)


class DateTimeNamespace(_Namespace):
    """Date and time methods: ``t.when.dt.year()`` ...

    Naive and UTC datetimes have nanosecond precision; parts of UTC datetimes are taken in UTC.
    """

    def _part(self, method: str, extract: Callable[[pl.Expr], pl.Expr]) -> ColumnExpression:
        return self._call(
            f"dt.{method}", (), _DATETIMES, (), t.INT, lambda a, _: extract(a[0]).cast(pl.Int64)
        )

    def nanosecond(self) -> ColumnExpression:
        """Nanoseconds within the second (0 to 999 999 999)."""
        return self._part("nanosecond", lambda e: e.dt.nanosecond())

    def microsecond(self) -> ColumnExpression:
        """Microseconds within the second (0 to 999 999)."""
        return self._part("microsecond", lambda e: e.dt.microsecond())

    def millisecond(self) -> ColumnExpression:
        """Milliseconds within the second (0 to 999)."""
        return self._part("millisecond", lambda e: e.dt.millisecond())

    def second(self) -> ColumnExpression:
        return self._part("second", lambda e: e.dt.second())

    def minute(self) -> ColumnExpression:
        return self._part("minute", lambda e: e.dt.minute())

    def hour(self) -> ColumnExpression:
        return self._part("hour", lambda e: e.dt.hour())

    def day(self) -> ColumnExpression:
        return self._part("day", lambda e: e.dt.day())

    def month(self) -> ColumnExpression:
        return self._part("month", lambda e: e.dt.month())

    def year(self) -> ColumnExpression:
        return self._part("year", lambda e: e.dt.year())

    def weekday(self) -> ColumnExpression:
        """Day of the week: Monday is 0, Sunday is 6."""
        return self._part("weekday", lambda e: e.dt.weekday() - 1)

    # --- durations -------------------------------------------------------------------------
    def _total(self, method: str, unit_ns: int) -> ColumnExpression:
        def build(a: list[pl.Expr], _: list[t.DType]) -> pl.Expr:
            ns = a[0].dt.total_nanoseconds().cast(pl.Int64)
            # Whole units, truncated toward zero as Pathway does for negative durations.
            return (ns.abs() // unit_ns) * ns.sign()

        return self._call(f"dt.{method}", (), (t.DURATION,), (), t.INT, build)

    def weeks(self) -> ColumnExpression:
        """Whole weeks in the duration (truncated toward zero)."""
        return self._total("weeks", 7 * 86_400_000_000_000)

    def days(self) -> ColumnExpression:
        """Whole days in the duration (truncated toward zero)."""
        return self._total("days", 86_400_000_000_000)

    def hours(self) -> ColumnExpression:
        return self._total("hours", 3_600_000_000_000)

    def minutes(self) -> ColumnExpression:
        return self._total("minutes", 60_000_000_000)

    def seconds(self) -> ColumnExpression:
        return self._total("seconds", 1_000_000_000)

    def milliseconds(self) -> ColumnExpression:
        return self._total("milliseconds", 1_000_000)

    def microseconds(self) -> ColumnExpression:
        return self._total("microseconds", 1_000)

    def nanoseconds(self) -> ColumnExpression:
        return self._total("nanoseconds", 1)

    # --- formatting and parsing -------------------------------------------------------------
    @_shows_arguments
    def strftime(self, fmt: Any) -> ColumnExpression:
        """The datetime as text, with chrono's format codes (``%f`` is nanoseconds).

        ``fmt`` is a string or a str column expression (each row then has its own format,
        checked when the pipeline runs)."""
        if isinstance(fmt, ColumnExpression):
            return self._series(
                "dt.strftime",
                (fmt,),
                _DATETIMES,
                (_Param("fmt", _STR),),
                t.STR,
                lambda a: _per_format(a[0], a[1], pl.String(), _format_datetimes),
            )
        fmt = _constant_format(fmt, "dt.strftime")
        receiver = self._expression

        def rule(scope: Scope, types: list[t.DType]) -> t.DType:
            base = types[0].strip_optional()
            if base in _DATETIMES:
                try:
                    _check_strftime_format(fmt, base, _describe(receiver))
                except ValueError as exc:
                    raise scope.fail(str(exc)) from None
            return _rule("dt.strftime", receiver, _DATETIMES, (), t.STR)(scope, types[:1])

        return MethodCall("dt.strftime", (receiver,), rule, lambda a, _: a[0].dt.to_string(fmt))

    @_shows_arguments
    def strptime(self, fmt: Any, contains_timezone: bool | None = None) -> ColumnExpression:
        """Parse text with a chrono format into a naive datetime, or a UTC one if the format
        has a time zone (``%z``) or ``contains_timezone`` is True.

        ``.%f`` reads a decimal fraction of a second (like ``%.f``). ``fmt`` may be a str
        column expression (a format per row); ``contains_timezone`` must then be given, since
        the result type cannot be read from the formats before they are known.
        """
        if isinstance(fmt, ColumnExpression):
            if contains_timezone is None:
                raise ValueError(
                    "dt.strptime(): with a format taken from a column, pass "
                    "contains_timezone=True (UTC datetimes) or False (naive ones)"
                )
            utc = bool(contains_timezone)
            return self._series(
                "dt.strptime",
                (fmt,),
                _STR,
                (_Param("fmt", _STR),),
                t.DATE_TIME_UTC if utc else t.DATE_TIME_NAIVE,
                lambda a: _per_format(
                    a[0],
                    a[1],
                    pl.Datetime("ns", "UTC") if utc else pl.Datetime("ns"),
                    lambda text, f: _parse_datetimes(text, f, utc, checked=True),
                ),
            )
        fmt = _constant_format(fmt, "dt.strptime")
        if contains_timezone is None:
            contains_timezone = _has_offset(fmt)
        if contains_timezone and not _has_offset(fmt):
            raise ValueError(
                f"dt.strptime(): contains_timezone=True but format {fmt!r} has no "
                f"time zone directive such as %z"
            )
        utc = contains_timezone
        return self._series(
            "dt.strptime",
            (),
            _STR,
            (),
            t.DATE_TIME_UTC if utc else t.DATE_TIME_NAIVE,
            lambda a: _parse_datetimes(a[0], fmt, utc, checked=False),
        )

    # --- time zones -------------------------------------------------------------------------
    def to_utc(self, from_timezone: Any) -> ColumnExpression:
        """Naive local times of ``from_timezone`` as UTC datetimes."""
        _check_timezone(from_timezone, "dt.to_utc")
        return self._series(
            "dt.to_utc",
            (),
            (t.DATE_TIME_NAIVE,),
            (),
            t.DATE_TIME_UTC,
            lambda a: _local_to_utc(a[0], from_timezone),
        )

    def to_naive_in_timezone(self, timezone: Any) -> ColumnExpression:
        """UTC datetimes as naive local times of ``timezone``."""
        _check_timezone(timezone, "dt.to_naive_in_timezone")
        return self._call(
            "dt.to_naive_in_timezone",
            (),
            (t.DATE_TIME_UTC,),
            (),
            t.DATE_TIME_NAIVE,
            lambda a, _: a[0].dt.convert_time_zone(timezone).dt.replace_time_zone(None),
        )

    def _shift_in_timezone(
        self, method: str, duration: Any, timezone: Any, sign: int
    ) -> ColumnExpression:
        _check_timezone(timezone, method)
        if isinstance(duration, str):
            nanos = _duration_ns(duration, method)  # a number for any string (or it raises)
            if nanos is not None:
                import pandas as pd

                duration = pd.Timedelta(nanos)

        def fun(args: list[pl.Series]) -> pl.Series:
            utc = _local_to_utc(args[0], timezone)
            moved = utc + args[1] if sign > 0 else utc - args[1]
            return moved.dt.convert_time_zone(timezone).dt.replace_time_zone(None)

        return self._series(
            method,
            (duration,),
            (t.DATE_TIME_NAIVE,),
            (_Param("duration", (t.DURATION,)),),
            t.DATE_TIME_NAIVE,
            fun,
        )

    def add_duration_in_timezone(self, duration: Any, timezone: Any) -> ColumnExpression:
        """Add ``duration`` to naive local times of ``timezone``, following its DST changes."""
        return self._shift_in_timezone("dt.add_duration_in_timezone", duration, timezone, 1)

    def subtract_duration_in_timezone(self, duration: Any, timezone: Any) -> ColumnExpression:
        """Subtract ``duration`` from naive local times of ``timezone`` (DST aware)."""
        return self._shift_in_timezone("dt.subtract_duration_in_timezone", duration, timezone, -1)

    def subtract_date_time_in_timezone(self, date_time: Any, timezone: Any) -> ColumnExpression:
        """The real time elapsed between two naive local times of ``timezone``."""
        _check_timezone(timezone, "dt.subtract_date_time_in_timezone")

        def fun(args: list[pl.Series]) -> pl.Series:
            return _local_to_utc(args[0], timezone) - _local_to_utc(args[1], timezone)

        return self._series(
            "dt.subtract_date_time_in_timezone",
            (date_time,),
            (t.DATE_TIME_NAIVE,),
            (_Param("date_time", (t.DATE_TIME_NAIVE,)),),
            t.DURATION,
            fun,
        )

    # --- rounding ---------------------------------------------------------------------------
    def _align(self, method: str, duration: Any, up_half: bool) -> ColumnExpression:
        constant = _duration_ns(duration, method)
        if constant is not None:
            if constant <= 0:
                raise ValueError(f"{method}(): the duration must be positive, got {duration!r}")
            import pandas as pd

            duration = pd.Timedelta(constant)

        def build(a: list[pl.Expr], types: list[t.DType]) -> pl.Expr:
            ns = a[0].dt.epoch("ns")
            step = a[1].dt.total_nanoseconds().cast(pl.Int64)
            if up_half:
                ns = ns + step // 2
            # Floor division aligns to multiples of the step counted from the epoch.
            return ((ns // step) * step).cast(types[0].to_polars())

        return self._call(
            method,
            (duration,),
            _DATETIMES,
            (_Param("duration", (t.DURATION,)),),
            lambda types: types[0].strip_optional(),
            build,
        )

    @_shows_arguments
    def floor(self, duration: Any) -> ColumnExpression:
        """The datetime rounded down to a multiple of ``duration`` counted from the epoch."""
        return self._align("dt.floor", duration, up_half=False)

    @_shows_arguments
    def round(self, duration: Any) -> ColumnExpression:
        """The datetime rounded to the nearest multiple of ``duration`` (halves go up)."""
        return self._align("dt.round", duration, up_half=True)

    # --- timestamps -------------------------------------------------------------------------
    @_shows_arguments
    def timestamp(self, unit: str | None = None) -> ColumnExpression:
        """Time since 1970-01-01 (UTC for UTC datetimes) as a float in ``unit``
        (s, ms, us, ns); without a unit, an int of nanoseconds (deprecated)."""
        if unit is None:
            warnings.warn(
                "dt.timestamp() without a unit is deprecated and gives nanoseconds; "
                "pass unit='s', 'ms', 'us' or 'ns'",
                DeprecationWarning,
                stacklevel=3,
            )  # the user's line: past _shows_arguments' wrapper
            return self._call(
                "dt.timestamp", (), _DATETIMES, (), t.INT, lambda a, _: a[0].dt.epoch("ns")
            )
        factor = _unit_factor(unit, "dt.timestamp")

        def divide(series: pl.Series) -> pl.Series:
            # Polars divides a column by a constant through its reciprocal, which is off by
            # one unit in the last place for some values; numpy divides exactly like Pathway.
            return pl.Series(series.cast(pl.Float64).to_numpy() / factor, dtype=pl.Float64)

        return self._call(
            "dt.timestamp",
            (),
            _DATETIMES,
            (),
            t.FLOAT,
            lambda a, _: a[0].dt.epoch("ns").map_batches(divide, return_dtype=pl.Float64),
        )

    def _from_timestamp(self, method: str, unit: str, target: t.DType) -> ColumnExpression:
        factor = _unit_factor(unit, method)

        def build(a: list[pl.Expr], types: list[t.DType]) -> pl.Expr:
            if types[0].strip_optional() == t.INT:
                return (a[0] * factor).cast(target.to_polars())
            # Out-of-range floats saturate and NaN gives the epoch, as Rust's ``as`` does.
            scaled = (a[0] * float(factor)).fill_nan(0.0)
            ns = (
                pl.when(scaled >= 2.0**63)
                .then(pl.lit(t.INT64_MAX, dtype=pl.Int64))
                .when(scaled < -(2.0**63))
                .then(pl.lit(t.INT64_MIN, dtype=pl.Int64))
                .otherwise(scaled.cast(pl.Int64, strict=False))
            )
            return ns.cast(target.to_polars())

        return self._call(method, (), _NUMBERS, (), target, build)

    @_shows_arguments
    def from_timestamp(self, unit: str) -> ColumnExpression:
        """Numbers of ``unit`` since 1970-01-01 as naive datetimes."""
        return self._from_timestamp("dt.from_timestamp", unit, t.DATE_TIME_NAIVE)

    @_shows_arguments
    def utc_from_timestamp(self, unit: str) -> ColumnExpression:
        """Numbers of ``unit`` since 1970-01-01 UTC as UTC datetimes."""
        return self._from_timestamp("dt.utc_from_timestamp", unit, t.DATE_TIME_UTC)

    def to_duration(self, unit: Any) -> ColumnExpression:
        """Ints as durations of ``unit`` ("W", "D", "h", "m", "s", "ms", "us", "ns" or a
        spelled-out name such as "days"); ``unit`` may be a str column expression."""
        if isinstance(unit, ColumnExpression):

            def scale(ints: pl.Series, units: pl.Series) -> pl.Series:
                table = {
                    u: _duration_unit_ns(u, "dt.to_duration")
                    for u in units.unique().drop_nulls().to_list()
                }
                factor = units.replace_strict(table, default=None, return_dtype=pl.Int64)
                return (ints * factor).cast(pl.Duration("ns"))

            return self._series(
                "dt.to_duration",
                (unit,),
                (t.INT,),
                (_Param("unit", _STR),),
                t.DURATION,
                lambda a: scale(a[0], a[1]),
            )
        if not isinstance(unit, str):
            raise TypeError(f"dt.to_duration(): the unit must be a string, got {unit!r}")
        factor = _duration_unit_ns(unit, "dt.to_duration")
        return self._call(
            "dt.to_duration",
            (),
            (t.INT,),
            (),
            t.DURATION,
            lambda a, _: (a[0] * factor).cast(pl.Duration("ns")),
        )


# --- helpers of the formatting and parsing methods ---------------------------------------------

_OFFSET_DIRECTIVES = ("%z", "%:z", "%::z", "%:::z", "%#z", "%+")


def _has_offset(fmt: str) -> bool:
    return any(d in fmt for d in _OFFSET_DIRECTIVES)


def _check_strftime_format(fmt: str, dtype: t.DType, what: str = "the column") -> None:
    """ValueError when ``fmt`` cannot print the datetimes of ``dtype`` that ``what`` holds."""
    if dtype == t.DATE_TIME_NAIVE and any(d in fmt for d in _TZ_DIRECTIVES):
        raise ValueError(
            f"dt.strftime(): format {fmt!r} prints a time zone, but {what} holds naive datetimes"
        )
    sample = pl.Series([0], dtype=pl.Int64).cast(dtype.to_polars())
    try:
        sample.dt.to_string(fmt)
    except pl.exceptions.PolarsError as exc:
        raise ValueError(
            f"dt.strftime(): invalid format {fmt!r}: {str(exc).splitlines()[0]}"
        ) from None


def _format_datetimes(values: pl.Series, fmt: str) -> pl.Series:
    """``values`` (datetimes) printed with ``fmt``, checked first (a format read from data)."""
    dtype = t.DATE_TIME_UTC if getattr(values.dtype, "time_zone", None) else t.DATE_TIME_NAIVE
    _check_strftime_format(fmt, dtype)
    return values.dt.to_string(fmt)


def _per_format(
    values: pl.Series,
    formats: pl.Series,
    dtype: pl.DataType,
    convert: Callable[[pl.Series, str], pl.Series],
) -> pl.Series:
    """``convert(rows, fmt)`` applied to the rows of each distinct format of ``formats``."""
    out = pl.Series("value", [None] * len(values), dtype=dtype)
    for fmt in formats.unique(maintain_order=True).drop_nulls().to_list():
        rows = (formats == fmt).fill_null(False)
        out = out.scatter(rows.arg_true(), convert(values.filter(rows), fmt).cast(dtype))
    return out


def _parse_datetimes(text: pl.Series, fmt: str, utc: bool, *, checked: bool) -> pl.Series:
    """``text`` parsed with the chrono format ``fmt`` into UTC (``utc``) or naive datetimes.

    ``checked``: a format read from data, whose agreement with ``utc`` was not checked when
    the method was called. ValueError names the first value that does not parse.
    """
    has_tz = _has_offset(fmt)
    if checked and utc and not has_tz and text.drop_nulls().len():
        raise ValueError(
            f'dt.strptime(): parse error: format "{fmt}" has no time zone directive such as '
            f"%z, so its values are not instants (contains_timezone=True)"
        )
    if re.search(r"(?<![.%])%f", fmt):
        # Raised when run, as Pathway does: %f reads digits after a dot only.
        raise ValueError(
            f'parse error: cannot use format "{fmt}": using "%f" '
            f"without the leading dot is not supported"
        )
    chrono_fmt = shown_fmt = fmt.replace(".%f", "%.f")  # shown: without an added date
    # A format without a date part reads times of day: the date is 1900-01-01, as with
    # Python's strptime (Polars alone would not parse these into datetimes).
    # (With a time zone, a time of day alone is no instant: refused when run, as Pathway.)
    dateless = re.search(r"%[-_0^#]?[YyCmbBhdejDFxcGgUWVuwaAs+]", fmt) is None
    if dateless and not has_tz:
        chrono_fmt = "%Y-%m-%d " + chrono_fmt
    if dateless and has_tz and text.drop_nulls().len():
        raise ValueError(
            f'dt.strptime(): parse error: format "{fmt}" reads a time zone but no date, '
            f"so its values are not instants; add the date to the text and the format"
        )
    target = pl.Datetime("ns", "UTC") if has_tz else pl.Datetime("ns")
    dated = ("1900-01-01 " + text) if dateless and not has_tz else text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = dated.str.strptime(target, chrono_fmt, strict=False)
    bad = _first_failure(text, parsed)
    if bad is not None:
        raise ValueError(f'dt.strptime(): "{bad}" does not match the format "{shown_fmt}"')
    if has_tz and not utc:
        # Offsets are read but not kept (see docs/namespaces.md for the difference).
        parsed = parsed.dt.replace_time_zone(None)
    return parsed
