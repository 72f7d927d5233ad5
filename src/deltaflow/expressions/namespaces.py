"""The ``.str``, ``.dt`` and ``.num`` method namespaces of column expressions.

Each method returns a node whose result type is worked out (and its arguments checked) when the
expression is used in a table operation, so a ``.str`` method on an int column fails where the
pipeline is defined. Methods Polars computes the same way Pathway does become
:class:`MethodCall` nodes (vectorised Polars expressions); methods whose exact semantics only
Python has (``title``, ``find`` on code points, ``round`` to decimals ...) run per row; parsing
methods run on whole columns and raise on the first value they cannot parse.

A None value in the column gives None (Pathway rejects Optional columns here; deltaflow
propagates None instead).
"""

from __future__ import annotations

import datetime
import functools
import re
import warnings
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Any, cast

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.base import (
    ColumnExpression,
    ColumnReference,
    ExpressionAttributeError,
    MethodCall,
    PythonMethodCall,
    Scope,
    wrap_value,
)

_NUMBERS = (t.INT, t.FLOAT)
_DATETIMES = (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC)
_TIMESTAMP_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}

TypeRule = Callable[[Scope, list[t.DType]], t.DType]


def _describe(expr: ColumnExpression) -> str:
    if isinstance(expr, ColumnReference):
        return f"column {expr.name!r}"
    return "the expression"


def _type_names(types: Sequence[t.DType]) -> str:
    return " or ".join(repr(x) for x in types)


class _Param:
    """One argument of a namespace method: its name, the types it accepts, whether None is ok."""

    def __init__(self, name: str, types: Sequence[t.DType], *, none_ok: bool = False) -> None:
        self.name = name
        self.types = tuple(types)
        self.none_ok = none_ok


def _rule(
    method: str,
    receiver: ColumnExpression,
    receiver_types: Sequence[t.DType],
    params: Sequence[_Param],
    result: t.DType | Callable[[list[t.DType]], t.DType],
    *,
    nullable_result: bool = True,
) -> TypeRule:
    """A type rule: check the receiver and each argument, then give the result type.

    The result is Optional when the receiver is (a None value gives None), unless
    ``nullable_result`` is False (methods such as ``fill_na`` that remove None).
    """

    def rule(scope: Scope, types: list[t.DType]) -> t.DType:
        own = types[0]
        if own.strip_optional() not in receiver_types:
            raise _no_such_method(
                scope,
                f"{method}() needs a {_type_names(receiver_types)} column, but "
                f"{_describe(receiver)} has type {own!r}",
            )
        for param, given in zip(params, types[1:], strict=True):
            if given == t.Optional(t.ANY) and param.none_ok:
                continue
            if given.strip_optional() not in param.types:
                raise _no_such_method(
                    scope,
                    f"{method}(): argument {param.name!r} must be {_type_names(param.types)}, "
                    f"got {given!r} (called on {_describe(receiver)})",
                )
            if given.is_optional and not param.none_ok:
                raise scope.fail(
                    f"{method}(): argument {param.name!r} may be None (type {given!r}); "
                    f"use pw.coalesce or pw.unwrap to give it a value"
                )
        out = result(types) if callable(result) else result
        return t.optional(out) if own.is_optional and nullable_result else out

    return rule


def _shows_arguments(method: Callable[..., ColumnExpression]) -> Callable[..., ColumnExpression]:
    """Make the node a namespace method returns print the arguments as the user gave
    them (``dt.round('D')``, not the Duration it became), as Pathway prints them."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> ColumnExpression:
        node = method(self, *args, **kwargs)
        node.shown_args = (*args, *kwargs.values())  # type: ignore[attr-defined]
        return node

    return wrapper


def _no_such_method(scope: Scope, message: str) -> ExpressionAttributeError:
    """A namespace method called on (or with) values of types it has no version for: an
    AttributeError, as in Pathway, that is also an ExpressionError (a TypeError)."""
    return ExpressionAttributeError(f"{scope.description}: {message}")


class SeriesMethodCall(PythonMethodCall):
    """A namespace method computed on whole columns that may reject values (parsing ...).

    ``fun(args)`` receives the receiver's and the arguments' columns as Polars series and
    returns the result column; it raises ``ValueError`` naming the first offending value.
    """

    def compute(self, args: list[pl.Series], size: int, dtype: t.DType) -> pl.Series:
        return self.fun(args).alias("value")


def _first_failure(source: pl.Series, result: pl.Series) -> Any:
    """The first source value that gave no result (None when every value converted)."""
    failed = source.is_not_null() & result.is_null()
    if not failed.any():
        return None
    return source.filter(failed)[0]


class _Namespace:
    def __init__(self, expression: ColumnExpression) -> None:
        self._expression = expression

    def _call(
        self,
        method: str,
        args: Sequence[Any],
        receiver_types: Sequence[t.DType],
        params: Sequence[_Param],
        result: t.DType | Callable[[list[t.DType]], t.DType],
        build: Callable[[list[pl.Expr], list[t.DType]], pl.Expr],
        *,
        nullable_result: bool = True,
    ) -> ColumnExpression:
        wrapped = (self._expression, *(wrap_value(a) for a in args))
        rule = _rule(
            method,
            self._expression,
            receiver_types,
            params,
            result,
            nullable_result=nullable_result,
        )
        return MethodCall(method, wrapped, rule, build)

    def _python(
        self,
        method: str,
        args: Sequence[Any],
        receiver_types: Sequence[t.DType],
        params: Sequence[_Param],
        result: t.DType | Callable[[list[t.DType]], t.DType],
        fun: Callable[..., Any],
    ) -> ColumnExpression:
        wrapped = (self._expression, *(wrap_value(a) for a in args))
        rule = _rule(method, self._expression, receiver_types, params, result)
        return PythonMethodCall(method, wrapped, rule, fun)

    def _series(
        self,
        method: str,
        args: Sequence[Any],
        receiver_types: Sequence[t.DType],
        params: Sequence[_Param],
        result: t.DType | Callable[[list[t.DType]], t.DType],
        fun: Callable[[list[pl.Series]], pl.Series],
    ) -> ColumnExpression:
        wrapped = (self._expression, *(wrap_value(a) for a in args))
        rule = _rule(method, self._expression, receiver_types, params, result)
        return SeriesMethodCall(method, wrapped, rule, fun)


# ------------------------------------------------------------------------------------------
# .str
# ------------------------------------------------------------------------------------------

_STR = (t.STR,)
_INT_PARAM = (t.INT,)
_INT_RE = r"^[+-]?[0-9]+$"
_FLOAT_RE = (
    r"(?i)^[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
    r"(?:e[+-]?[0-9]+)?)$"
)


def _py_slice(text: str, start: int, end: int) -> str:
    return text[start:end]


class StringNamespace(_Namespace):
    """String methods: ``t.name.str.lower()`` ...

    Positions and lengths count code points, as Python's ``str`` does.
    """

    default_true_values = ("on", "true", "yes", "1")
    default_false_values = ("off", "false", "no", "0")

    def lower(self) -> ColumnExpression:
        """The text in lower case."""
        return self._call("str.lower", (), _STR, (), t.STR, lambda a, _: a[0].str.to_lowercase())

    def upper(self) -> ColumnExpression:
        """The text in upper case."""
        return self._call("str.upper", (), _STR, (), t.STR, lambda a, _: a[0].str.to_uppercase())

    def title(self) -> ColumnExpression:
        """Every word capitalised (Python's ``str.title``)."""
        return self._python("str.title", (), _STR, (), t.STR, str.title)

    def swapcase(self) -> ColumnExpression:
        """Upper case letters lowered and lower case ones raised."""
        return self._python("str.swapcase", (), _STR, (), t.STR, str.swapcase)

    def strip(self, chars: Any = None) -> ColumnExpression:
        """The text without leading and trailing ``chars`` (whitespace when None)."""
        return self._call(
            "str.strip",
            (chars,),
            _STR,
            (_Param("chars", _STR, none_ok=True),),
            t.STR,
            lambda a, types: a[0].str.strip_chars(None if types[1] == t.Optional(t.ANY) else a[1]),
        )

    def len(self) -> ColumnExpression:
        """The number of characters (code points)."""
        return self._call(
            "str.len", (), _STR, (), t.INT, lambda a, _: a[0].str.len_chars().cast(pl.Int64)
        )

    def reversed(self) -> ColumnExpression:
        """The characters in reverse order."""
        return self._python("str.reversed", (), _STR, (), t.STR, lambda s: s[::-1])

    def slice(self, start: Any, end: Any, /) -> ColumnExpression:
        """``text[start:end]`` with Python's rules for negative and out-of-range bounds."""

        def build(a: list[pl.Expr], _: list[t.DType]) -> pl.Expr:
            text, lo, hi = a
            n = text.str.len_chars().cast(pl.Int64)
            first = (
                pl.when(lo < 0)
                .then(pl.max_horizontal(n + lo, 0))
                .otherwise(pl.min_horizontal(lo, n))
            )
            last = (
                pl.when(hi < 0)
                .then(pl.max_horizontal(n + hi, 0))
                .otherwise(pl.min_horizontal(hi, n))
            )
            length = pl.max_horizontal(last - first, 0)
            return text.str.slice(first, length)

        return self._call(
            "str.slice",
            (start, end),
            _STR,
            (_Param("start", _INT_PARAM), _Param("end", _INT_PARAM)),
            t.STR,
            build,
        )

    def startswith(self, prefix: Any) -> ColumnExpression:
        """Whether the text begins with ``prefix``."""
        return self._call(
            "str.startswith",
            (prefix,),
            _STR,
            (_Param("prefix", _STR),),
            t.BOOL,
            lambda a, _: a[0].str.starts_with(a[1]),
        )

    def endswith(self, suffix: Any) -> ColumnExpression:
        """Whether the text ends with ``suffix``."""
        return self._call(
            "str.endswith",
            (suffix,),
            _STR,
            (_Param("suffix", _STR),),
            t.BOOL,
            lambda a, _: a[0].str.ends_with(a[1]),
        )

    def _search(
        self, method: str, sub: Any, start: Any, end: Any, fun: Callable[..., int]
    ) -> ColumnExpression:
        params = (
            _Param("sub", _STR),
            _Param("start", _INT_PARAM, none_ok=True),
            _Param("end", _INT_PARAM, none_ok=True),
        )
        return self._python(method, (sub, start, end), _STR, params, t.INT, fun)

    def count(self, sub: Any, start: Any = None, end: Any = None) -> ColumnExpression:
        """The number of non-overlapping occurrences of ``sub`` in ``text[start:end]``."""
        if start is None and end is None and isinstance(sub, str):
            return self._call(
                "str.count",
                (sub,),
                _STR,
                (_Param("sub", _STR),),
                t.INT,
                lambda a, _: a[0].str.count_matches(sub, literal=True).cast(pl.Int64),
            )
        return self._search("str.count", sub, start, end, str.count)

    def find(self, sub: Any, start: Any = None, end: Any = None) -> ColumnExpression:
        """The lowest index of ``sub`` in ``text[start:end]``, or -1."""
        return self._search("str.find", sub, start, end, str.find)

    def rfind(self, sub: Any, start: Any = None, end: Any = None) -> ColumnExpression:
        """The highest index of ``sub`` in ``text[start:end]``, or -1."""
        return self._search("str.rfind", sub, start, end, str.rfind)

    def replace(self, old_value: Any, new_value: Any, count: Any = -1, /) -> ColumnExpression:
        """The text with ``old_value`` replaced by ``new_value`` (at most ``count`` times)."""
        params = (_Param("old_value", _STR), _Param("new_value", _STR), _Param("count", _INT_PARAM))
        constants = (
            all(isinstance(v, str) for v in (old_value, new_value))
            and isinstance(count, int)
            and not isinstance(count, bool)
        )
        if constants and old_value != "" and (count < 0 or count > 0):

            def build(a: list[pl.Expr], _: list[t.DType]) -> pl.Expr:
                if count < 0:
                    return a[0].str.replace_all(old_value, new_value, literal=True)
                return a[0].str.replace(old_value, new_value, literal=True, n=count)

            return self._call(
                "str.replace", (old_value, new_value, count), _STR, params, t.STR, build
            )
        return self._python(
            "str.replace",
            (old_value, new_value, count),
            _STR,
            params,
            t.STR,
            lambda s, o, n, c: s.replace(o, n, c),
        )

    def removeprefix(self, prefix: Any, /) -> ColumnExpression:
        """The text without ``prefix`` if it starts with it."""
        return self._call(
            "str.removeprefix",
            (prefix,),
            _STR,
            (_Param("prefix", _STR),),
            t.STR,
            lambda a, _: a[0].str.strip_prefix(a[1]),
        )

    def removesuffix(self, suffix: Any, /) -> ColumnExpression:
        """The text without ``suffix`` if it ends with it."""
        return self._call(
            "str.removesuffix",
            (suffix,),
            _STR,
            (_Param("suffix", _STR),),
            t.STR,
            lambda a, _: a[0].str.strip_suffix(a[1]),
        )

    def _parse(
        self,
        method: str,
        target: str,
        optional: bool,
        convert: Callable[[pl.Series], pl.Series],
        result: t.DType,
    ) -> ColumnExpression:
        def fun(args: list[pl.Series]) -> pl.Series:
            parsed = convert(args[0])
            if not optional:
                bad = _first_failure(args[0], parsed)
                if bad is not None:
                    # Worded as Pathway's message (it is also the error log's message when
                    # failures are values), with our hint.
                    reason = {
                        "int": "invalid digit found in string",
                        "float": "invalid float literal",
                    }.get(target)
                    if reason is None:
                        raise ValueError(
                            f"{method}(): cannot parse {bad!r} to {target}; use "
                            f"{method}(optional=True) to get None instead"
                        )
                    raise ValueError(f'parse error: cannot parse "{bad}" to {target}: {reason}')
            return parsed

        return self._series(method, (), _STR, (), t.Optional(result) if optional else result, fun)

    def parse_int(self, optional: bool = False) -> ColumnExpression:
        """The text as an int (surrounding whitespace ignored); None if ``optional``."""

        def convert(s: pl.Series) -> pl.Series:
            stripped = s.str.strip_chars()
            return pl.select(
                pl.when(stripped.str.contains(_INT_RE))
                .then(stripped.cast(pl.Int64, strict=False))
                .otherwise(None)
            ).to_series()

        return self._parse("str.parse_int", "int", optional, convert, t.INT)

    def parse_float(self, optional: bool = False) -> ColumnExpression:
        """The text as a float (``inf``/``nan`` accepted); None if unparsable and ``optional``."""

        def convert(s: pl.Series) -> pl.Series:
            stripped = s.str.strip_chars()
            return pl.select(
                pl.when(stripped.str.contains(_FLOAT_RE))
                .then(stripped.cast(pl.Float64, strict=False))
                .otherwise(None)
            ).to_series()

        return self._parse("str.parse_float", "float", optional, convert, t.FLOAT)

    def parse_bool(
        self,
        true_values: Any = default_true_values,
        false_values: Any = default_false_values,
        optional: bool = False,
    ) -> ColumnExpression:
        """True/False for the listed spellings (case and surrounding whitespace ignored)."""
        trues = [str(v).lower() for v in true_values]
        falses = [str(v).lower() for v in false_values]
        if set(trues) & set(falses):
            raise ValueError(
                f"str.parse_bool(): {sorted(set(trues) & set(falses))} are both "
                f"in true_values and in false_values"
            )

        def convert(s: pl.Series) -> pl.Series:
            key = s.str.strip_chars().str.to_lowercase()
            return pl.select(
                pl.when(key.is_in(trues))
                .then(True)
                .when(key.is_in(falses))
                .then(False)
                .otherwise(None)
            ).to_series()

        return self._parse("str.parse_bool", "bool", optional, convert, t.BOOL)


# ------------------------------------------------------------------------------------------
# .dt
# ------------------------------------------------------------------------------------------

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
            f"{method}(): the format must be a constant string in deltaflow, got {fmt!r}"
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
        """The datetime as text, with chrono's format codes (``%f`` is nanoseconds)."""
        fmt = _constant_format(fmt, "dt.strftime")
        receiver = self._expression

        def rule(scope: Scope, types: list[t.DType]) -> t.DType:
            base = types[0].strip_optional()
            if base == t.DATE_TIME_NAIVE and any(d in fmt for d in _TZ_DIRECTIVES):
                raise scope.fail(
                    f"dt.strftime(): format {fmt!r} prints a time zone, but "
                    f"{_describe(receiver)} holds naive datetimes"
                )
            if base in _DATETIMES:
                sample = pl.Series([0], dtype=pl.Int64).cast(base.to_polars())
                try:
                    sample.dt.to_string(fmt)
                except pl.exceptions.PolarsError as exc:
                    raise scope.fail(
                        f"dt.strftime(): invalid format {fmt!r}: {str(exc).splitlines()[0]}"
                    ) from None
            return _rule("dt.strftime", receiver, _DATETIMES, (), t.STR)(scope, types[:1])

        return MethodCall("dt.strftime", (receiver,), rule, lambda a, _: a[0].dt.to_string(fmt))

    @_shows_arguments
    def strptime(self, fmt: Any, contains_timezone: bool | None = None) -> ColumnExpression:
        """Parse text with a chrono format into a naive datetime, or a UTC one if the format
        has a time zone (``%z``) or ``contains_timezone`` is True.

        ``.%f`` reads a decimal fraction of a second (like ``%.f``).
        """
        fmt = _constant_format(fmt, "dt.strptime")
        has_tz = any(d in fmt for d in ("%z", "%:z", "%::z", "%:::z", "%#z", "%+"))
        if contains_timezone is None:
            contains_timezone = has_tz
        if contains_timezone and not has_tz:
            raise ValueError(
                f"dt.strptime(): contains_timezone=True but format {fmt!r} has no "
                f"time zone directive such as %z"
            )
        chrono_fmt = fmt.replace(".%f", "%.f")
        result = t.DATE_TIME_UTC if contains_timezone else t.DATE_TIME_NAIVE

        def fun(args: list[pl.Series]) -> pl.Series:
            if re.search(r"(?<![.%])%f", fmt):
                # Raised when run, as Pathway does: %f reads digits after a dot only.
                raise ValueError(
                    f'parse error: cannot use format "{fmt}": using "%f" '
                    f"without the leading dot is not supported"
                )
            text = args[0]
            target = pl.Datetime("ns", "UTC") if has_tz else pl.Datetime("ns")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = text.str.strptime(target, chrono_fmt, strict=False)
            bad = _first_failure(text, parsed)
            if bad is not None:
                raise ValueError(
                    f'dt.strptime(): parse error: cannot parse date "{bad}" '
                    f'using format "{chrono_fmt}"'
                )
            if has_tz and not contains_timezone:
                # Offsets are read but not kept (see docs/namespaces.md for the difference).
                parsed = parsed.dt.replace_time_zone(None)
            return parsed

        return self._series("dt.strptime", (), _STR, (), result, fun)

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
                .then(pl.lit(2**63 - 1, dtype=pl.Int64))
                .when(scaled < -(2.0**63))
                .then(pl.lit(-(2**63), dtype=pl.Int64))
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
        """Ints as durations of ``unit`` (a pandas unit: "W", "D", "h", "m", "s", "ms" ...)."""
        if not isinstance(unit, str):
            raise TypeError(f"dt.to_duration(): the unit must be a constant string, got {unit!r}")
        import pandas as pd

        try:
            # pandas checks the unit (ValueError below); its stubs list the accepted names.
            factor = pd.Timedelta(1, unit=cast(Any, unit)).value
        except ValueError:
            raise ValueError(f"dt.to_duration(): unknown unit {unit!r}") from None
        return self._call(
            "dt.to_duration",
            (),
            (t.INT,),
            (),
            t.DURATION,
            lambda a, _: (a[0] * factor).cast(pl.Duration("ns")),
        )


def _unit_factor(unit: Any, method: str) -> int:
    if unit not in _TIMESTAMP_UNITS:
        raise ValueError(f"{method}(): unit must be one of 's', 'ms', 'us', 'ns', got {unit!r}")
    return _TIMESTAMP_UNITS[unit]


# ------------------------------------------------------------------------------------------
# .num
# ------------------------------------------------------------------------------------------


class NumericalNamespace(_Namespace):
    """Numeric methods: ``t.x.num.abs()`` ..."""

    def abs(self) -> ColumnExpression:
        """The absolute value."""
        return self._call(
            "num.abs",
            (),
            _NUMBERS,
            (),
            lambda types: types[0].strip_optional(),
            lambda a, _: a[0].abs(),
        )

    def round(self, decimals: Any = 0) -> ColumnExpression:
        """Rounded to ``decimals`` digits, halves to even, exactly as Python's ``round``."""
        params = (_Param("decimals", _INT_PARAM),)

        def same(types: list[t.DType]) -> t.DType:
            return types[0].strip_optional()

        if isinstance(decimals, int) and decimals == 0:
            # Rounding to whole numbers is exact in Polars; to decimals it is not always the
            # correctly rounded result Python gives, so that case runs per row.
            return self._call(
                "num.round",
                (decimals,),
                _NUMBERS,
                params,
                same,
                lambda a, types: (
                    a[0]
                    if types[0].strip_optional() == t.INT
                    else a[0].round(0, mode="half_to_even")
                ),
            )
        return self._python(
            "num.round",
            (decimals,),
            _NUMBERS,
            params,
            same,
            lambda value, digits: round(value, digits),
        )

    def fill_na(self, default_value: Any) -> ColumnExpression:
        """The value, or ``default_value`` where it is None or NaN."""

        def result(types: list[t.DType]) -> t.DType:
            return types[0].strip_optional()

        def build(a: list[pl.Expr], types: list[t.DType]) -> pl.Expr:
            value, default = a
            if types[0].strip_optional() == t.FLOAT:
                value = value.fill_nan(None)
            else:
                default = default.cast(pl.Int64)
            return value.fill_null(default)

        return self._call(
            "num.fill_na",
            (default_value,),
            _NUMBERS,
            (_Param("default_value", _NUMBERS),),
            result,
            build,
            nullable_result=False,
        )
