"""deltaflow types in PostgreSQL: the column type of each, and how values are encoded.

This is the one place that says how ``pw.io.postgres`` stores a value, so that the writer,
the reader (which decodes what the writer stored, see ``_decode.py``) and the docs agree.
The mapping follows what Pathway 0.33 does, checked by writing every type with it and
reading the table back:

=====================  ==============================  ========================================
deltaflow type         column type (``CREATE TABLE``)  stored value
=====================  ==============================  ========================================
``int``                ``BIGINT``                      the integer
``float``              ``DOUBLE PRECISION``            the double (``NaN``/``Infinity`` kept)
``bool``               ``BOOLEAN``                     the boolean
``str``                ``TEXT``                        the text (a NUL character cannot be stored)
``bytes``              ``BYTEA``                       the bytes
``DateTimeNaive``      ``TIMESTAMP``                   truncated to microseconds (toward zero)
``DateTimeUtc``        ``TIMESTAMPTZ``                 truncated to microseconds (toward zero)
``Duration``           ``BIGINT``                      microseconds, truncated toward zero
``Json``               ``JSONB``                       the JSON value
``Pointer``            ``TEXT``                        ``^`` and 26 base-32 digits
``list[T]``            ``T[]``                         an array; ``list[list[T]]`` a 2-d array
``tuple[T, T, ...]``   ``T[]``                         an array (all elements of one type)
``np.ndarray``         ``BIGINT[]``/``DOUBLE PRECISION[]``  an n-d array of the elements
``PyObjectWrapper``    ``BYTEA``                       the pickled object
=====================  ==============================  ========================================

``Optional[T]`` is stored as ``T`` in a nullable column (other columns are ``NOT NULL``);
``time`` is ``BIGINT`` and ``diff`` ``SMALLINT`` in ``stream_of_changes`` tables. Tuples with
elements of different types, lists of tuples and ``Any`` have no column type (as in Pathway,
where they fail when the run starts; deltaflow refuses them when the pipeline is defined).

Values are encoded column by column in Polars into PostgreSQL's *text input syntax*, which
the writer sends with ``COPY ... (FORMAT csv)``. A value that PostgreSQL cannot store as
given (a NUL character in text, a ragged nested list) is reported by :class:`Encoded`'s
``bad`` mask with a reason, never changed into another value.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._values import values_from_series

__all__ = [
    "TYPE_TABLE",
    "Encoded",
    "PgColumnType",
    "UnsupportedType",
    "column_type",
    "encode_text",
    "quote_ident",
]


class UnsupportedType(ValueError):
    """A deltaflow type that has no PostgreSQL column type."""


@dataclass(frozen=True)
class PgColumnType:
    """The PostgreSQL type a deltaflow type is stored as.

    ``sql`` is the type as written in ``CREATE TABLE``; ``typname`` its name in ``pg_type``
    (``int8``, ``_text`` for ``TEXT[]`` ...), used to check an existing table;
    ``dims`` is the number of array dimensions (0 for a scalar).
    """

    sql: str
    typname: str
    dims: int = 0

    @property
    def is_array(self) -> bool:
        return self.dims > 0


# Scalar types: deltaflow type name -> (CREATE TABLE type, pg_type.typname).
_SCALARS: dict[str, tuple[str, str]] = {
    "int": ("BIGINT", "int8"),
    "float": ("DOUBLE PRECISION", "float8"),
    "bool": ("BOOLEAN", "bool"),
    "str": ("TEXT", "text"),
    "bytes": ("BYTEA", "bytea"),
    "DateTimeNaive": ("TIMESTAMP", "timestamp"),
    "DateTimeUtc": ("TIMESTAMPTZ", "timestamptz"),
    "Duration": ("BIGINT", "int8"),
    "Json": ("JSONB", "jsonb"),
    "Pointer": ("TEXT", "text"),
    "PyObjectWrapper": ("BYTEA", "bytea"),
}

TYPE_TABLE: dict[str, tuple[str, str]] = {
    "int": ("BIGINT", "the integer"),
    "float": ("DOUBLE PRECISION", "the double; NaN and infinities are kept"),
    "bool": ("BOOLEAN", "the boolean"),
    "str": ("TEXT", "the text; a NUL character cannot be stored (the row is skipped)"),
    "bytes": ("BYTEA", "the bytes"),
    "DateTimeNaive": ("TIMESTAMP", "the timestamp, truncated to microseconds toward zero"),
    "DateTimeUtc": ("TIMESTAMPTZ", "the instant, truncated to microseconds toward zero"),
    "Duration": ("BIGINT", "the duration in microseconds, truncated toward zero"),
    "Json": ("JSONB", "the JSON value"),
    "Pointer": ("TEXT", "^ followed by 26 base-32 digits"),
    "list[T]": ("T[]", "an array; nested lists give a multi-dimensional array"),
    "tuple[T, ...]": ("T[]", "an array (homogeneous tuples only)"),
    "np.ndarray": (
        "DOUBLE PRECISION[] (BIGINT[] for int arrays)",
        "an n-dimensional array of the elements",
    ),
    "PyObjectWrapper": ("BYTEA", "the pickled object"),
    "Optional[T]": ("T, nullable", "NULL for None (other columns are NOT NULL)"),
}
"""The mapping as documentation: deltaflow type -> (column type, stored value)."""

TIME_COLUMN = PgColumnType("BIGINT", "int8")
DIFF_COLUMN = PgColumnType("SMALLINT", "int2")


def _array_element(dtype: t.DType) -> tuple[t.DType, int] | None:
    """The scalar element type and the number of dimensions of an array-stored type."""
    dims = 0
    base = dtype.strip_optional()
    while True:
        if isinstance(base, t.List):
            inner = base.arg
        elif isinstance(base, t.Tuple):
            args = base.args
            if not args or any(a != args[0] for a in args):
                return None
            inner = args[0]
        elif isinstance(base, t.Array):
            wrapped = base.wrapped.strip_optional() if base.wrapped is not None else t.FLOAT
            if wrapped not in (t.INT, t.FLOAT):
                return None
            return wrapped, dims + (base.n_dim or 1)
        else:
            return (base, dims) if dims else None
        dims += 1
        base = inner.strip_optional()
        if isinstance(base, t.Tuple) and dims:
            return None  # Pathway has no column type for lists of tuples


def column_type(dtype: t.DType) -> PgColumnType:
    """The PostgreSQL column type of ``dtype`` (:class:`UnsupportedType` if there is none)."""
    base = dtype.strip_optional()
    if isinstance(base, t.List | t.Tuple | t.Array):
        found = _array_element(base)
        if found is None or found[0].name not in _SCALARS or found[0] == t.PY_OBJECT_WRAPPER:
            raise UnsupportedType(f"type {t.describe(dtype)} has no PostgreSQL column type")
        element, dims = found
        sql, typname = _SCALARS[element.name]
        return PgColumnType(sql + "[]", "_" + typname, dims)
    scalar = _SCALARS.get(base.name)  # every pointer type is named Pointer
    if scalar is None:
        raise UnsupportedType(f"type {t.describe(dtype)} has no PostgreSQL column type")
    return PgColumnType(*scalar)


def quote_ident(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier (embedded double quotes doubled)."""
    if "\x00" in identifier:
        raise ValueError(f"identifier {identifier!r} contains a NUL character")
    return '"' + identifier.replace('"', '""') + '"'


# ==========================================================================================
# Encoding to PostgreSQL's text input syntax
# ==========================================================================================


@dataclass
class Encoded:
    """One column in text input syntax (or a numeric series PostgreSQL reads as is), and
    which rows could not be encoded (None when all could) with the reason of the first."""

    values: pl.Series
    bad: np.ndarray | None = None
    reason: str | None = None


_NAIVE_TEXT = "%Y-%m-%d %H:%M:%S%.6f"


def _micros_toward_zero(nanos: pl.Series) -> pl.Series:
    """Integer nanoseconds -> microseconds, truncated toward zero (as Pathway stores them)."""
    floor = nanos // 1000
    return floor + ((nanos < 0) & (floor * 1000 != nanos)).cast(pl.Int64)


def _datetime_text(series: pl.Series, utc: bool) -> pl.Series:
    nanos = series.dt.epoch("ns")
    micros = _micros_toward_zero(nanos)
    stamps = micros.cast(pl.Datetime("us"))
    text = stamps.dt.strftime(_NAIVE_TEXT)
    return text + "+00" if utc else text


def encode_text(series: pl.Series, dtype: t.DType) -> Encoded:
    """``series`` (a deltaflow column of type ``dtype``) in PostgreSQL text input syntax."""
    base = dtype.strip_optional()
    name = base.name
    if isinstance(base, t.List | t.Tuple | t.Array):
        return _encode_arrays(series, base)
    if name in ("int", "float"):
        return Encoded(series)
    if name == "bool":
        return Encoded(series.cast(pl.String))
    if name == "str":
        bad = series.str.contains("\x00", literal=True).fill_null(False)
        if bad.any():
            return Encoded(series, bad.to_numpy(), "text containing a NUL character")
        return Encoded(series)
    if name == "bytes":
        return Encoded(("\\x" + series.bin.encode("hex")).rename(series.name))
    if name == "DateTimeNaive":
        return Encoded(_datetime_text(series, utc=False))
    if name == "DateTimeUtc":
        return Encoded(_datetime_text(series, utc=True))
    if name == "Duration":
        return Encoded(_micros_toward_zero(series.cast(pl.Int64)))
    if name == "Pointer":
        values = values_from_series(series)
        return Encoded(
            pl.Series(series.name, [None if v is None else str(v) for v in values], dtype=pl.String)
        )
    if name == "Json":
        return _encode_objects(series, _json_text)
    if name == "PyObjectWrapper":
        return _encode_objects(series, _pickled_text)
    raise UnsupportedType(f"type {t.describe(dtype)} has no PostgreSQL column type")


class _BadValue(ValueError):
    pass


def _json_text(value: Any) -> str:
    raw = value.value if isinstance(value, t.Json) else value
    text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    if "\\u0000" in text or "\x00" in text:
        raise _BadValue("JSON holding a NUL character (jsonb cannot store it)")
    if "NaN" in text or "Infinity" in text:
        try:
            json.dumps(raw, allow_nan=False)
        except ValueError:
            raise _BadValue("JSON holding NaN or Infinity (not valid JSON)") from None
    return text


def _pickled_text(value: Any) -> str:
    inner = value.value if isinstance(value, t.PyObjectWrapper) else value
    serializer = getattr(value, "serializer", None)
    data = serializer.dumps(inner) if serializer is not None else pickle.dumps(inner)
    return "\\x" + data.hex()


def _encode_objects(series: pl.Series, encode: Any) -> Encoded:
    values = values_from_series(series)
    out: list[str | None] = []
    bad: np.ndarray | None = None
    reason = None
    for index, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(encode(value))
        except _BadValue as exc:
            if bad is None:
                bad = np.zeros(len(values), dtype=bool)
                reason = str(exc)
            bad[index] = True
            out.append(None)
    return Encoded(pl.Series(series.name, out, dtype=pl.String), bad, reason)


# --- arrays ---------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _element_text(value: Any, element: str) -> str:
    """One array element in array-literal syntax."""
    if value is None:
        return "NULL"
    if element == "int":
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise _BadValue(f"array element {value!r} is not an int")
        return str(int(value))
    if element == "float":
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return repr(number)
    if element == "bool":
        return "t" if value else "f"
    if element == "str":
        if "\x00" in value:
            raise _BadValue("text containing a NUL character")
        return _quoted(value)
    if element == "bytes":
        return _quoted("\\x" + bytes(value).hex())
    if element in ("DateTimeNaive", "DateTimeUtc"):
        frame = pl.Series(
            [value], dtype=pl.Datetime("ns", "UTC" if element == "DateTimeUtc" else None)
        )
        return _quoted(_datetime_text(frame, utc=element == "DateTimeUtc")[0])
    if element == "Duration":
        nanos = int(getattr(value, "value", 0)) if not isinstance(value, int) else value
        micros = abs(nanos) // 1000
        return str(micros if nanos >= 0 else -micros)
    if element == "Json":
        return _quoted(_json_text(value))
    if element == "Pointer":
        return _quoted(str(value))
    raise _BadValue(f"no array encoding for {element}")


def _shape(value: Any, dims: int) -> tuple[int, ...] | None:
    """The shape of a nested list of ``dims`` levels, None when it is ragged."""
    if dims == 0:
        return ()
    if not isinstance(value, list | tuple):
        return None
    inner = {_shape(item, dims - 1) for item in value}
    if not value:
        return (0,) + (0,) * (dims - 1)
    if len(inner) != 1 or None in inner:
        return None
    (sub,) = inner
    assert sub is not None
    return (len(value), *sub)


def _literal(value: Any, dims: int, element: str) -> str:
    if dims == 0:
        return _element_text(value, element)
    return "{" + ",".join(_literal(item, dims - 1, element) for item in value) + "}"


def _array_text(value: Any, dims: int, element: str) -> str:
    if isinstance(value, np.ndarray):
        if value.size and value.dtype.kind not in "iuf":
            raise _BadValue(f"array of dtype {value.dtype} (only int and float arrays)")
        if value.ndim == 0:
            raise _BadValue("a 0-dimensional array")
        kind = "int" if value.dtype.kind in "iu" else "float"
        return _literal(value.tolist(), value.ndim, kind)
    shape = _shape(value, dims)
    if shape is None:
        raise _BadValue("a ragged nested list (PostgreSQL arrays are rectangular)")
    if 0 in shape:
        return "{}"
    return _literal(value, dims, element)


def _encode_arrays(series: pl.Series, base: t.DType) -> Encoded:
    found = _array_element(base)
    if found is None:
        raise UnsupportedType(f"type {t.describe(base)} has no PostgreSQL column type")
    element, dims = found
    return _encode_objects(series, lambda v: _array_text(v, dims, element.name))


# ==========================================================================================
# Binary COPY, for tables whose columns are all fixed-width and never NULL
# ==========================================================================================

_BINARY_FIXED: dict[str, str] = {
    "int": "int8",
    "float": "float8",
    "bool": "bool",
    "Duration": "int8",
    "DateTimeNaive": "timestamp",
    "DateTimeUtc": "timestamptz",
}
"""deltaflow types with a fixed-width binary form -> the ``typname`` the column must have."""

_PG_EPOCH_MICROS = 946_684_800_000_000  # 2000-01-01, PostgreSQL's epoch, in Unix microseconds
# Keyed by dtype classes; frame dtypes (instances) compare and hash equal to them.
_BINARY_LAYOUT: dict[Any, str] = {
    pl.Int64: ">i8",
    pl.Float64: ">f8",
    pl.Boolean: "?",
    pl.Int16: ">i2",
}
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2


def binary_typname(dtype: t.DType) -> str | None:
    """The column ``typname`` a binary COPY of ``dtype`` needs (None: no binary form, e.g.
    an ``Optional`` or variable-width type)."""
    if dtype.is_optional:
        return None
    return _BINARY_FIXED.get(dtype.name)


def encode_binary(series: pl.Series, dtype: t.DType) -> pl.Series:
    """The values of a column with a binary form, as the fixed-width numbers COPY sends."""
    name = dtype.name
    if name in ("DateTimeNaive", "DateTimeUtc"):
        return _micros_toward_zero(series.dt.epoch("ns")) - _PG_EPOCH_MICROS
    if name == "Duration":
        return _micros_toward_zero(series.cast(pl.Int64))
    return series


def copy_binary(frame: pl.DataFrame) -> bytes:
    """``frame`` (columns of Int64, Float64, Boolean or Int16, no nulls) in the binary COPY
    format, built as one numpy record array: each row is the field count, then per field
    its length and big-endian value."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for index, dtype in enumerate(frame.dtypes):
        fields += [(f"l{index}", ">i4"), (f"v{index}", _BINARY_LAYOUT[dtype])]
    records = np.empty(frame.height, dtype=np.dtype(fields))
    records["count"] = frame.width
    for index, column in enumerate(frame.columns):
        records[f"l{index}"] = records.dtype[f"v{index}"].itemsize
        records[f"v{index}"] = frame[column].to_numpy()
    return _COPY_HEADER + records.tobytes() + b"\xff\xff"
