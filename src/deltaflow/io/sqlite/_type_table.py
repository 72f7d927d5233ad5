"""The SQLite type table: how each deltaflow type is stored, with its encoders and decoders.

It follows Pathway 0.33's storage classes and text encodings so that databases written by
either system read correctly in the other. Also here: SQLite's column affinity rules, used to
check that an existing column keeps the stored values unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow.io._core.serialization import (
    ConversionError,
    convert_value,
    json_from_text,
    json_value,
    parse_pointer,
)


@dataclass(frozen=True)
class SqliteType:
    """How values of one deltaflow type are stored in SQLite.

    ``declared`` is the column type used by ``CREATE TABLE`` (it gives the column its type
    affinity), ``storage`` the storage class of the stored values, ``encoding`` a description
    of the stored value, and ``raw`` the Polars dtype the stored values are read into.
    """

    declared: str
    storage: str
    encoding: str
    raw: pl.DataType


TYPE_MAPPING: dict[str, SqliteType] = {
    "int": SqliteType("INTEGER", "INTEGER", "the 64-bit integer", pl.Int64()),
    "float": SqliteType("REAL", "REAL", "the IEEE double; NaN is stored as NULL", pl.Float64()),
    "bool": SqliteType("INTEGER", "INTEGER", "1 for True, 0 for False", pl.Int64()),
    "str": SqliteType("TEXT", "TEXT", "the UTF-8 text", pl.String()),
    "bytes": SqliteType("BLOB", "BLOB", "the bytes", pl.Binary()),
    "DateTimeNaive": SqliteType("TEXT", "TEXT", "YYYY-MM-DDTHH:MM:SS.fffffffff", pl.String()),
    "DateTimeUtc": SqliteType("TEXT", "TEXT", "YYYY-MM-DDTHH:MM:SS.fffffffff+0000", pl.String()),
    "Duration": SqliteType("INTEGER", "INTEGER", "nanoseconds", pl.Int64()),
    "Pointer": SqliteType("TEXT", "TEXT", "^ followed by 26 base-32 digits", pl.String()),
    "Json": SqliteType("TEXT", "TEXT", "compact JSON text", pl.String()),
    "tuple": SqliteType("TEXT", "TEXT", "JSON array of the elements", pl.String()),
    "list": SqliteType("TEXT", "TEXT", "JSON array of the elements", pl.String()),
    "np.ndarray": SqliteType(
        "TEXT", "TEXT", '{"shape":[...],"elements":[...]} (row-major)', pl.String()
    ),
}
"""deltaflow type → SQLite storage. ``Optional[T]`` is stored as ``T``, with NULL for None.
``Any`` and ``PyObjectWrapper`` have no mapping (they are rejected when the pipeline is defined).

Elements inside JSON arrays use the shared JSON conventions of ``io/_core/serialization``:
bytes as base64 strings, datetimes as the texts above, durations as integer nanoseconds,
pointers as strings.
"""

_AFFINITY_OF_STORAGE = {"INTEGER": "INTEGER", "REAL": "REAL", "TEXT": "TEXT", "BLOB": "BLOB"}


def mapping_key(dtype: t.DType) -> str | None:
    """The :data:`TYPE_MAPPING` key of ``dtype`` (None when the type cannot be stored)."""
    base = dtype.strip_optional()
    if isinstance(base, t.Tuple):
        return "tuple"
    if isinstance(base, t.List):
        return "list"
    if isinstance(base, t.Array):
        return "np.ndarray"
    name = base.name  # the same for every pointer type: Pointer
    return name if name in TYPE_MAPPING else None


def _sqlite_type(dtype: t.DType) -> SqliteType:
    key = mapping_key(dtype)
    if key is None:  # checked when the pipeline is defined; kept as a guard
        raise TypeError(f"type {dtype!r} has no SQLite mapping")
    return TYPE_MAPPING[key]


def _check_mappable(connector: str, columns: dict[str, t.DType]) -> None:
    bad = {name: dtype for name, dtype in columns.items() if mapping_key(dtype) is None}
    if bad:
        listed = ", ".join(f"{name!r} ({dtype!r})" for name, dtype in bad.items())
        supported = ", ".join(TYPE_MAPPING)
        raise TypeError(
            f"{connector}: column(s) {listed} have a type with no SQLite mapping; "
            f"supported types are {supported} (and Optional of them). Convert "
            "such columns, e.g. to str or pw.Json, before using the connector."
        )


# --- encoding: deltaflow values -> SQLite values ----------------------------------------------

_NAIVE_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f"
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f%z"


def _array_json(value: np.ndarray) -> dict[str, Any]:
    return {"shape": list(value.shape), "elements": value.ravel().tolist()}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _encode_object(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if key == "Json":
        return _dumps(value.value if isinstance(value, t.Json) else value)
    if key == "np.ndarray":
        return _dumps(_array_json(np.asarray(value)))
    return _dumps(json_value(value))


def encode_column(series: pl.Series, dtype: t.DType) -> pl.Series:
    """The SQLite values of a column (a series of Int64, Float64, String or Binary)."""
    key = mapping_key(dtype)
    if key in ("int", "float", "str", "bytes"):
        return series
    if key == "bool":
        return series.cast(pl.Int64)
    if key == "Duration":
        return series.cast(pl.Int64)
    if key == "DateTimeNaive":
        return series.dt.strftime(_NAIVE_FORMAT)
    if key == "DateTimeUtc":
        return series.dt.convert_time_zone("UTC").dt.strftime(_UTC_FORMAT)
    if key == "Pointer":
        return pl.Series(
            series.name,
            [None if v is None else json_value(t.Pointer(v)) for v in series.to_list()],
            dtype=pl.String,
        )
    assert key is not None
    return pl.Series(
        series.name, [_encode_object(v, key) for v in series.to_list()], dtype=pl.String
    )


# --- decoding: SQLite values -> deltaflow values ----------------------------------------------


def _array_from_json(value: Any) -> np.ndarray:
    if isinstance(value, dict) and "shape" in value and "elements" in value:
        elements = value["elements"]
        kind = (
            np.int64
            if all(isinstance(e, int) and not isinstance(e, bool) for e in elements) and elements
            else np.float64
        )
        return np.array(elements, dtype=kind).reshape(value["shape"])
    if isinstance(value, list):
        return np.array(value)
    raise ConversionError(f"{value!r} is not an array (expected shape and elements)")


def _decode_object(text: str, dtype: t.DType, key: str) -> Any:
    if key == "Pointer":
        return parse_pointer(text)
    try:
        parsed = json_from_text(text)  # too deep a document is a bad value, not a crash
    except ValueError as exc:
        raise ConversionError(f"{text[:80]!r} is not JSON: {exc}") from None
    if key == "np.ndarray":
        return _array_from_json(parsed)
    if key == "Json":
        return t.Json(parsed)
    return convert_value(parsed, dtype.strip_optional())


def decode_column(raw: pl.Series, dtype: t.DType) -> tuple[pl.Series, pl.Series | None]:
    """The deltaflow column stored as ``raw``, and a mask of rows that could not be decoded."""
    key = mapping_key(dtype)
    name = raw.name
    if key in ("int", "float", "str", "bytes"):
        return raw.cast(dtype.to_polars()), None
    if key == "bool":
        return raw != 0, None
    if key == "Duration":
        return raw.cast(pl.Duration("ns")), None
    if key in ("DateTimeNaive", "DateTimeUtc"):
        text = raw.str.replace(" ", "T", literal=True, n=1)
        fmt = "%Y-%m-%dT%H:%M:%S%.f" + ("%z" if key == "DateTimeUtc" else "")
        parsed = text.str.to_datetime(fmt, time_unit="ns", strict=False)
        if key == "DateTimeUtc":
            parsed = parsed.dt.convert_time_zone("UTC")
        bad = parsed.is_null() & raw.is_not_null()
        return parsed.rename(name), bad if bad.any() else None
    assert key is not None
    values: list[Any] = []
    bad_rows: list[bool] = []
    for text in raw.to_list():
        if text is None:
            values.append(None)
            bad_rows.append(False)
            continue
        try:
            values.append(_decode_object(text, dtype, key))
            bad_rows.append(False)
        except (ConversionError, ValueError, TypeError):
            values.append(None)
            bad_rows.append(True)
    series = t.series_from_values(name, values, dtype)
    mask = pl.Series(name, bad_rows, dtype=pl.Boolean)
    return series, mask if mask.any() else None


# --- column affinity ----------------------------------------------------------------------


def _affinity(declared: str) -> str:
    """SQLite's column affinity of a declared type (the rules of section 3.1 of its docs)."""
    upper = (declared or "").upper()
    if "INT" in upper:
        return "INTEGER"
    if "CHAR" in upper or "CLOB" in upper or "TEXT" in upper:
        return "TEXT"
    if "BLOB" in upper or upper == "":
        return "BLOB"
    if "REAL" in upper or "FLOA" in upper or "DOUB" in upper:
        return "REAL"
    return "NUMERIC"


def _affinity_fits(column_affinity: str, storage: str) -> bool:
    # BLOB ("none") affinity keeps any value as given; NUMERIC keeps integers and reals as
    # numbers. TEXT must not go into a numeric column (SQLite would turn "12" into 12).
    if column_affinity == "BLOB":
        return True
    if storage in ("INTEGER", "REAL"):
        return column_affinity in ("INTEGER", "REAL", "NUMERIC")
    return column_affinity == _AFFINITY_OF_STORAGE[storage]
