"""PostgreSQL text values -> deltaflow values, for ``pw.io.postgres.read``.

Both paths of the reader see values in PostgreSQL's *text output format*: the snapshot
selects every column cast to ``text`` and ``pgoutput`` sends tuples as text. The connection
fixes the settings that output depends on (``DateStyle=ISO``, ``TimeZone=UTC``,
``IntervalStyle=iso_8601``, ``extra_float_digits=3``), so one decoder per (PostgreSQL type,
schema type) pair serves both, and a snapshot row and the same row seen by change data
capture decode to the same values.

:func:`decoder_for` says whether a column type can fill a schema type (checked when the run
starts, before anything is read) and returns the function converting one text value. A value
it cannot convert exactly raises :class:`BadValue`; the reader then reports the row and skips
it, never storing a value the source did not hold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow.io._core.json_text import load_json_line

__all__ = ["TYPE_TABLE", "BadValue", "PgType", "decode_fast", "decoder_for", "parse_array"]


class BadValue(ValueError):
    """A text value that cannot be represented exactly in the schema's type."""


@dataclass(frozen=True)
class PgType:
    """What the reader knows about a column type from ``pg_type``.

    ``name`` is ``typname`` (``int4``, ``_text`` for ``text[]``, ``geometry`` ...),
    ``category`` ``typcategory`` (``A`` arrays, ``S`` strings, ``U`` user-defined, ``E``
    enums ...), ``element`` the element type of an array.
    """

    name: str
    category: str
    element: PgType | None = None

    def describe(self) -> str:
        if self.element is not None:
            return f"{self.element.describe()}[]"
        return self.name


Decoder = Callable[[str], Any]

_INTS = {"int2", "int4", "int8", "oid"}
_FLOATS = {"float4", "float8", "numeric"}
_TEXTS = {
    "text",
    "varchar",
    "bpchar",
    "name",
    "char",
    "citext",
    "uuid",
    "xml",
    "json",
    "jsonb",
    "inet",
    "cidr",
    "macaddr",
    "macaddr8",
}
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)

TYPE_TABLE: list[tuple[str, str, str]] = [
    ("int", "smallint, integer, bigint, oid", "the integer"),
    (
        "float",
        "real, double precision, numeric (and the integer types)",
        "the number as a double; NaN and ±Infinity kept",
    ),
    ("bool", "boolean", "True/False"),
    (
        "str",
        "text, varchar, char, name, citext, uuid, json, jsonb, xml, inet, cidr, "
        "macaddr, enums, extension types (PostGIS geometry: hex EWKB)",
        "the text PostgreSQL prints for the value",
    ),
    ("bytes", "bytea", "the bytes"),
    ("DateTimeNaive", "timestamp, date (midnight)", "microsecond precision"),
    ("DateTimeUtc", "timestamptz", "the instant, in UTC"),
    (
        "Duration",
        "interval (without months or years), bigint (microseconds)",
        "microsecond precision",
    ),
    ("Json", "json, jsonb", "the parsed document"),
    ("Pointer", "text, varchar", "^ and 26 base-32 digits, as pw.io.postgres.write stores it"),
    (
        "list[T], tuple[...]",
        "arrays (any number of dimensions; tuples: of that length)",
        "nested lists/tuples of the elements, NULL elements only for Optional elements",
    ),
    ("np.ndarray", "arrays of integer or floating point types", "an int64/float64 array"),
]
"""Which PostgreSQL column types each schema type reads from (the docs page shows it)."""


def decoder_for(pg_type: PgType, dtype: t.DType) -> Decoder | None:
    """The decoder of non-NULL text values of ``pg_type`` into ``dtype`` (its Optional
    wrapper stripped), or None when the column cannot fill the type."""
    base = dtype.strip_optional()
    name = pg_type.name
    if pg_type.element is not None:
        return _array_decoder(pg_type.element, base)
    key = base.name
    if key == "int":
        return _int if name in _INTS else None
    if key == "float":
        if name in _FLOATS:
            return _float
        return _int_as_float if name in _INTS else None
    if key == "bool":
        return _bool if name == "bool" else None
    if key == "str":
        if name in _TEXTS or pg_type.category in ("S", "U", "E", "I"):
            return str
        return None
    if key == "bytes":
        return _bytea if name == "bytea" else None
    if key == "DateTimeNaive":
        return _timestamp if name in ("timestamp", "date") else None
    if key == "DateTimeUtc":
        return _timestamptz if name == "timestamptz" else None
    if key == "Duration":
        if name == "interval":
            return _interval
        return _micros if name == "int8" else None
    if key == "Json":
        return _json if name in ("json", "jsonb") else None
    if key == "Pointer":
        return _pointer if name in ("text", "varchar", "bpchar") else None
    return None


# --- scalars ----------------------------------------------------------------------------------
def _int(text: str) -> int:
    return int(text)


def _float(text: str) -> float:
    value = float(text)  # accepts NaN, Infinity, -Infinity as PostgreSQL prints them
    if math.isinf(value) and text.strip().lstrip("+-").lower() not in ("infinity", "inf"):
        raise BadValue(f"{text!r} does not fit a double")
    return value


def _int_as_float(text: str) -> float:
    value = int(text)
    result = float(value)
    if int(result) != value:
        raise BadValue(f"the integer {text} has no exact double")
    return result


def _bool(text: str) -> bool:
    # 't'/'f' from the output function (pgoutput), 'true'/'false' from a ::text cast
    if text in ("t", "true"):
        return True
    if text in ("f", "false"):
        return False
    raise BadValue(f"{text!r} is not a boolean")


def _bytea(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise BadValue("bytea not in hex format")
    return bytes.fromhex(text[2:])


def _nanos(delta: timedelta) -> int:
    value = (delta // _MICRO) * 1000
    if not t.INT64_MIN <= value <= t.INT64_MAX:
        raise BadValue("outside the range of nanosecond timestamps (years 1678-2262)")
    return value


def _timestamp(text: str) -> int:
    if text in ("infinity", "-infinity") or text.endswith(" BC"):
        raise BadValue(f"{text!r} has no DateTimeNaive")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        raise BadValue(f"{text!r} has a time zone")
    return _nanos(parsed - _EPOCH_NAIVE)


def _timestamptz(text: str) -> int:
    if text in ("infinity", "-infinity") or text.endswith(" BC"):
        raise BadValue(f"{text!r} has no DateTimeUtc")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise BadValue(f"{text!r} has no time zone")
    return _nanos(parsed - _EPOCH_UTC)


_ISO_INTERVAL = re.compile(
    r"^P(?:(?P<years>-?\d+)Y)?(?:(?P<months>-?\d+)M)?(?:(?P<days>-?\d+)D)?"
    r"(?:T(?:(?P<hours>-?\d+)H)?(?:(?P<minutes>-?\d+)M)?(?:(?P<seconds>-?\d+(?:\.\d+)?)S)?)?$"
)


def _interval(text: str) -> int:
    """An ``iso_8601`` interval (``P1DT2H3M4.5S``, fields may be negative) in nanoseconds.
    Months and years have no fixed length, so intervals using them are refused."""
    match = _ISO_INTERVAL.match(text)
    if match is None or text in ("P", "PT"):
        raise BadValue(f"{text!r} is not an ISO 8601 interval")
    fields = match.groupdict()
    if int(fields["years"] or 0) or int(fields["months"] or 0):
        raise BadValue(
            f"the interval {text!r} counts months or years, which have no fixed duration"
        )
    seconds = fields["seconds"] or "0"
    negative = seconds.startswith("-")
    whole, _, fraction = seconds.lstrip("-").partition(".")
    micros = int(whole) * 1_000_000 + int((fraction + "000000")[:6])
    if negative:
        micros = -micros
    micros += (
        (int(fields["days"] or 0) * 24 + int(fields["hours"] or 0)) * 60
        + int(fields["minutes"] or 0)
    ) * 60_000_000
    value = micros * 1000
    if not t.INT64_MIN <= value <= t.INT64_MAX:
        raise BadValue(f"the interval {text!r} is too long")
    return value


def _micros(text: str) -> int:
    value = int(text) * 1000
    if not t.INT64_MIN <= value <= t.INT64_MAX:
        raise BadValue(f"{text} microseconds is too long a Duration")
    return value


def _json(text: str) -> t.Json:
    # The file readers' loader: a value nested deeper than they accept (PostgreSQL takes
    # thousands of levels) is a bad value, not a RecursionError that would end the run.
    document, reason = load_json_line(text)
    if reason is not None:
        raise BadValue(reason)
    return t.Json(document)


def _pointer(text: str) -> Any:
    from deltaflow.io._core.serialization import ConversionError, parse_pointer

    try:
        return parse_pointer(text)
    except ConversionError as exc:
        raise BadValue(str(exc)) from None


# --- arrays -----------------------------------------------------------------------------------
def parse_array(text: str) -> Any:
    """The nested lists of an array literal as PostgreSQL prints it (``{1,NULL,"a b"}``,
    ``{{1,2},{3,4}}``, ``[0:1]={1,2}``); elements are strings or None."""
    if text.startswith("["):  # explicit bounds: [lo:hi]={...}
        _, sep, rest = text.partition("=")
        if not sep:
            raise BadValue(f"malformed array {text!r}")
        text = rest
    value, end = _parse_array_at(text, 0)
    if end != len(text):
        raise BadValue(f"malformed array {text!r}")
    return value


def _parse_array_at(text: str, position: int) -> tuple[list[Any], int]:
    if position >= len(text) or text[position] != "{":
        raise BadValue(f"malformed array {text!r}")
    position += 1
    items: list[Any] = []
    if position < len(text) and text[position] == "}":
        return items, position + 1
    while True:
        if position >= len(text):
            raise BadValue(f"malformed array {text!r}")
        char = text[position]
        if char == "{":
            item, position = _parse_array_at(text, position)
            items.append(item)
        elif char == '"':
            position += 1
            parts = []
            while True:
                if position >= len(text):
                    raise BadValue(f"malformed array {text!r}")
                char = text[position]
                if char == "\\":
                    parts.append(text[position + 1 : position + 2])
                    position += 2
                elif char == '"':
                    position += 1
                    break
                else:
                    parts.append(char)
                    position += 1
            items.append("".join(parts))
        else:
            end = position
            while end < len(text) and text[end] not in ",}":
                end += 1
            raw = text[position:end].strip()
            items.append(None if raw == "NULL" else raw)
            position = end
        if position >= len(text):
            raise BadValue(f"malformed array {text!r}")
        if text[position] == ",":
            position += 1
            continue
        if text[position] == "}":
            return items, position + 1
        raise BadValue(f"malformed array {text!r}")


def _array_decoder(element: PgType, base: t.DType) -> Decoder | None:
    if isinstance(base, t.Array):
        if element.name in _INTS:
            kind: Any = np.int64
        elif element.name in ("float4", "float8", "numeric"):
            kind = np.float64
        else:
            return None
        scalar = _int if kind is np.int64 else _float

        def to_ndarray(text: str) -> np.ndarray:
            nested = _map_leaves(parse_array(text), scalar, optional=False)
            array = np.array(nested, dtype=kind)
            if array.dtype == object:
                raise BadValue("ragged array")
            if base.n_dim is not None and nested and array.ndim != base.n_dim:
                raise BadValue(f"{array.ndim} dimensions, the schema says {base.n_dim}")
            return array

        return to_ndarray
    if isinstance(base, t.List):
        return _nested_decoder(element, base)
    if isinstance(base, t.Tuple):
        if not base.args:
            return None
        leaves = [decoder_for(element, arg) for arg in base.args]
        if any(leaf is None for leaf in leaves):
            return None

        def to_tuple(text: str) -> tuple[Any, ...]:
            items = parse_array(text)
            if len(items) != len(base.args):
                raise BadValue(f"{len(items)} elements, the tuple type has {len(base.args)}")
            return tuple(
                _leaf(item, leaf, arg.is_optional)  # type: ignore[arg-type]
                for item, leaf, arg in zip(items, leaves, base.args, strict=True)
            )

        return to_tuple
    return None


def _nested_decoder(element: PgType, base: t.List) -> Decoder | None:
    """Lists (of lists ...) of scalars: one array dimension per list level."""
    depth = 0
    inner: t.DType = base
    while isinstance(inner.strip_optional(), t.List):
        inner = inner.strip_optional().arg  # type: ignore[attr-defined]
        depth += 1
    if isinstance(inner.strip_optional(), t.Tuple | t.Array):
        return None
    leaf = decoder_for(element, inner)
    if leaf is None:
        return None
    optional = inner.is_optional

    def convert(items: Any, level: int) -> Any:
        if level == depth:
            if isinstance(items, list):
                raise BadValue("more array dimensions than the list type has")
            return _leaf(items, leaf, optional)
        if not isinstance(items, list):
            raise BadValue("fewer array dimensions than the list type has")
        return tuple(convert(item, level + 1) for item in items)

    return lambda text: convert(parse_array(text), 0)


def _leaf(item: Any, leaf: Decoder, optional: bool) -> Any:
    if item is None:
        if not optional:
            raise BadValue("a NULL element where the schema's element type is not Optional")
        return None
    if isinstance(item, list):
        raise BadValue("a nested array where the schema expects a scalar")
    return leaf(item)


def _map_leaves(items: Any, leaf: Decoder, *, optional: bool) -> Any:
    if isinstance(items, list):
        return [_map_leaves(item, leaf, optional=optional) for item in items]
    return _leaf(items, leaf, optional)


# --- whole columns at once ------------------------------------------------------------------
def _years_in_range(raw: pl.Series) -> bool:
    """Whether every timestamp text starts with a year nanosecond timestamps can hold (Polars
    would wrap the others around silently)."""
    years = raw.str.slice(0, 4).cast(pl.Int32, strict=False)
    fits = years.is_between(1678, 2261) & (raw.str.slice(4, 1) == "-")
    return bool(fits.fill_null(False).sum() == raw.len() - raw.null_count())


def _fast_int(raw: pl.Series) -> pl.Series | None:
    return raw.cast(pl.Int64, strict=False)


def _fast_float(raw: pl.Series) -> pl.Series | None:
    out = raw.cast(pl.Float64, strict=False)
    if out.is_infinite().any():  # 'Infinity' or an overflow: let the exact decoder tell
        return None
    return out


def _fast_str(raw: pl.Series) -> pl.Series | None:
    return raw


def _fast_bool(raw: pl.Series) -> pl.Series | None:
    if not raw.drop_nulls().is_in(["t", "f", "true", "false"]).all():
        return None
    frame = pl.DataFrame([raw.rename("v")])
    return frame.select(
        pl.when(pl.col("v").is_null()).then(None).otherwise(pl.col("v").is_in(["t", "true"]))
    ).to_series()


def _fast_timestamp(raw: pl.Series) -> pl.Series | None:
    if not _years_in_range(raw):
        return None
    return raw.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="ns", strict=False)


def _fast_timestamptz(raw: pl.Series) -> pl.Series | None:
    if not _years_in_range(raw):
        return None
    return raw.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_unit="ns", strict=False)


_FAST: dict[Any, Callable[[pl.Series], pl.Series | None]] = {
    _int: _fast_int,
    _float: _fast_float,
    str: _fast_str,
    _bool: _fast_bool,
    _timestamp: _fast_timestamp,
    _timestamptz: _fast_timestamptz,
}


def decode_fast(name: str, texts: list[Any], decoder: Decoder, dtype: t.DType) -> pl.Series | None:
    """The column of ``texts`` (str or None) decoded in Polars, or None when there is no
    such path for ``decoder`` or some value needs the exact one (it then decodes and reports
    value by value). Never a different value than the exact decoder's."""
    fast = _FAST.get(decoder)
    if fast is None:
        return None
    try:
        raw = pl.Series(name, texts, dtype=pl.String, strict=True)
    except (TypeError, pl.exceptions.PolarsError):
        return None  # e.g. UNCHANGED markers
    out = fast(raw)
    if out is None or (out.null_count() != raw.null_count()):
        return None
    wanted = dtype.to_polars()
    return out.rename(name) if out.dtype == wanted else None
