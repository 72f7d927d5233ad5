"""The Delta Lake type mapping: deltaflow types <-> Delta (Arrow) types, both directions.

Writing turns each deltaflow column (a Polars series) into an Arrow array of the Delta type in
:data:`TYPE_TABLE`; reading turns an Arrow column of a data file back into a Polars series of
the schema's type, with a mask of the rows whose value does not fit (those rows are reported
and skipped by the reader, never turned into a plausible value).

Every column written also carries, in the Delta schema's field metadata under
:data:`COLUMN_METADATA_KEY`, a JSON description of its deltaflow column (type, primary key),
in the same layout as Pathway's, so ``pw.io.deltalake.read(uri)`` without a schema can rebuild
it (for tables written by deltaflow or by Pathway).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from deltaflow import _types as t
from deltaflow._values import series_from_values, values_from_series
from deltaflow.io._core.serialization import ConversionError, json_from_text, parse_pointer
from deltaflow.schema_export import dtype_to_json

COLUMN_METADATA_KEY = "pathway.column.metadata"
"""Field metadata key holding a column's description (the key Pathway 0.33 uses)."""

TYPE_TABLE: list[tuple[str, str, str]] = [
    ("bool", "boolean", "also read: nothing else"),
    ("int", "long (int64)", "also read: byte, short, integer, unsigned integers (if they fit)"),
    ("float", "double (float64)", "also read: float, half float, decimal (through float64)"),
    ("str", "string", "also read: decimal (as its exact text)"),
    ("bytes", "binary", ""),
    (
        "DateTimeNaive",
        "timestamp_ntz (microseconds)",
        "nanoseconds are truncated; also read: timestamp of any unit, date (at midnight)",
    ),
    (
        "DateTimeUtc",
        "timestamp (microseconds, UTC)",
        "nanoseconds are truncated; a timestamp without zone is read as UTC",
    ),
    ("Duration", "long: microseconds", "nanoseconds are truncated; also read: Arrow duration"),
    ("Pointer", "string: ^ and 26 base-32 digits", ""),
    ("Json", "string: the JSON text", "a text that is not JSON is a bad row"),
    ("tuple[...]", "struct with fields [0], [1], ...", ""),
    ("list[T]", "array of T", ""),
    (
        "np.ndarray",
        "struct {shape: array<long>, elements: array<long or double>}",
        "elements are double unless the element type is int",
    ),
    (
        "PyObjectWrapper",
        "binary: a pickle of the wrapped object",
        "not readable by Pathway (which uses its own encoding); unpickling runs code: read "
        "only tables you trust",
    ),
]
"""(deltaflow type, Delta type, notes). ``Optional[T]`` is ``T`` in a nullable field; other
fields are written non-nullable. ``Any`` has no mapping (rejected when the pipeline is
defined)."""


# ------------------------------------------------------------------------------------------
# Arrow types
# ------------------------------------------------------------------------------------------


def check_mappable(dtype: t.DType) -> str | None:
    """None if ``dtype`` can be stored, else why not."""
    base = dtype.strip_optional()
    if base == t.ANY or base == t.NONE:
        return f"type {dtype!r} has no Delta Lake type; convert the column first"
    if isinstance(base, t.Tuple):
        for arg in base.args:
            reason = check_mappable(arg)
            if reason:
                return reason
    if isinstance(base, t.List):
        return check_mappable(base.arg)
    return None


def arrow_type(dtype: t.DType) -> pa.DataType:
    """The Arrow type of the Delta column storing ``dtype``."""
    base = dtype.strip_optional()
    simple = {
        "bool": pa.bool_(),
        "int": pa.int64(),
        "float": pa.float64(),
        "str": pa.string(),
        "bytes": pa.binary(),
        "DateTimeNaive": pa.timestamp("us"),
        "DateTimeUtc": pa.timestamp("us", tz="UTC"),
        "Duration": pa.int64(),
        "Pointer": pa.string(),
        "Json": pa.string(),
        "PyObjectWrapper": pa.binary(),
    }
    if base.name in simple:
        return simple[base.name]
    if isinstance(base, t.Tuple):
        return pa.struct(
            [
                pa.field(f"[{i}]", arrow_type(arg), nullable=arg.is_optional)
                for i, arg in enumerate(base.args)
            ]
        )
    if isinstance(base, t.List):
        return pa.list_(pa.field("element", arrow_type(base.arg), nullable=True))
    if isinstance(base, t.Array):
        element = (
            pa.int64()
            if base.wrapped is not None and base.wrapped.strip_optional() == t.INT
            else pa.float64()
        )
        return pa.struct(
            [pa.field("shape", pa.list_(pa.int64())), pa.field("elements", pa.list_(element))]
        )
    raise TypeError(f"type {dtype!r} has no Delta Lake type")


# ------------------------------------------------------------------------------------------
# Column descriptions in field metadata (Pathway's layout)
# ------------------------------------------------------------------------------------------


def column_metadata(name: str, dtype: t.DType, primary_key: bool) -> dict[str, str]:
    description = {
        "dtype": dtype_to_json(dtype),
        "name": name,
        "primary_key": primary_key,
        "append_only": False,
        "description": None,
    }
    return {COLUMN_METADATA_KEY: json.dumps(description)}


# ------------------------------------------------------------------------------------------
# Writing: Polars series -> Arrow arrays
# ------------------------------------------------------------------------------------------


def _pointer_text(value: Any) -> str:
    return str(t.Pointer(value)) if not isinstance(value, t.Pointer) else str(value)


def _python_value(value: Any, dtype: t.DType) -> Any:
    """``value`` (as deltaflow stores it) in the shape pyarrow builds ``arrow_type`` from."""
    if value is None:
        return None
    base = dtype.strip_optional()
    name = base.name
    if name in ("bool", "int", "float", "str", "bytes"):
        return value
    if name in ("DateTimeNaive", "DateTimeUtc"):
        return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    if name == "Duration":
        return int(value.value // 1000) if hasattr(value, "value") else int(value)
    if name == "Pointer":
        return _pointer_text(value)
    if name == "Json":
        return json.dumps(
            value.value if isinstance(value, t.Json) else value,
            separators=(",", ":"),
            ensure_ascii=False,
        )
    if name == "PyObjectWrapper":
        return pickle.dumps(value.value if isinstance(value, t.PyObjectWrapper) else value)
    if isinstance(base, t.Tuple):
        return {
            f"[{i}]": _python_value(v, a)
            for i, (v, a) in enumerate(zip(value, base.args, strict=True))
        }
    if isinstance(base, t.List):
        return [_python_value(v, base.arg) for v in value]
    if isinstance(base, t.Array):
        array = np.asarray(value)
        return {"shape": list(array.shape), "elements": array.ravel().tolist()}
    raise TypeError(f"type {dtype!r} has no Delta Lake type")


def encode_column(series: pl.Series, dtype: t.DType) -> pa.Array:
    """The Arrow array storing ``series`` (a deltaflow column of type ``dtype``)."""
    base = dtype.strip_optional()
    target = arrow_type(dtype)
    name = base.name
    if name in ("bool", "int", "float", "str", "bytes"):
        return series.to_arrow().cast(target)
    if name == "DateTimeNaive":
        return series.dt.cast_time_unit("us").to_arrow().cast(target)
    if name == "DateTimeUtc":
        return series.dt.convert_time_zone("UTC").dt.cast_time_unit("us").to_arrow().cast(target)
    if name == "Duration":
        return series.dt.total_microseconds().to_arrow().cast(target)
    if name == "Pointer":
        texts = [None if v is None else _pointer_text(v) for v in series.to_list()]
        return pa.array(texts, type=target)
    values = values_from_series(series, dtype)
    return pa.array([_python_value(v, dtype) for v in values], type=target)


# ------------------------------------------------------------------------------------------
# Reading: Arrow arrays -> Polars series
# ------------------------------------------------------------------------------------------


class TypeMismatch(ValueError):
    """A Delta column's type cannot hold values of the schema's type."""


def _is_int(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind)


def _compatible(kind: pa.DataType, dtype: t.DType) -> bool:
    """Whether a Delta column of Arrow type ``kind`` may be read as ``dtype``."""
    base = dtype.strip_optional()
    name = base.name
    if pa.types.is_null(kind):
        return True
    if pa.types.is_dictionary(kind):
        return _compatible(kind.value_type, dtype)
    strings = (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )
    binary = (
        pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)
    )
    checks: dict[str, Callable[[], bool]] = {
        "bool": lambda: pa.types.is_boolean(kind),
        "int": lambda: _is_int(kind),
        "float": lambda: pa.types.is_floating(kind) or pa.types.is_decimal(kind),
        "str": lambda: strings or pa.types.is_decimal(kind),
        "bytes": lambda: binary,
        "DateTimeNaive": lambda: pa.types.is_timestamp(kind) or pa.types.is_date(kind),
        "DateTimeUtc": lambda: pa.types.is_timestamp(kind) or pa.types.is_date(kind),
        "Duration": lambda: _is_int(kind) or pa.types.is_duration(kind),
        "Pointer": lambda: strings,
        "Json": lambda: strings,
        "PyObjectWrapper": lambda: binary,
    }
    if name in checks:
        return checks[name]()
    if isinstance(base, t.Tuple):
        if not pa.types.is_struct(kind) or kind.num_fields != len(base.args):
            return False
        fields = {kind.field(i).name: kind.field(i).type for i in range(kind.num_fields)}
        return all(
            f"[{i}]" in fields and _compatible(fields[f"[{i}]"], arg)
            for i, arg in enumerate(base.args)
        )
    if isinstance(base, t.List):
        return (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and _compatible(
            kind.value_type, base.arg
        )
    if isinstance(base, t.Array):
        if not pa.types.is_struct(kind):
            return False
        names = {kind.field(i).name for i in range(kind.num_fields)}
        return {"shape", "elements"} <= names
    return False


def check_compatible(connector: str, column: str, kind: pa.DataType, dtype: t.DType) -> None:
    if not _compatible(kind, dtype):
        raise TypeMismatch(
            f"{connector}: column {column!r} is stored as Delta/Arrow type "
            f"{kind} in the table, which cannot be read as {dtype!r}"
        )


def _from_python(
    values: list[Any], dtype: t.DType, convert: Callable[[Any], Any]
) -> tuple[list[Any], list[bool]]:
    out: list[Any] = []
    bad: list[bool] = []
    for value in values:
        if value is None:
            out.append(None)
            bad.append(False)
            continue
        try:
            out.append(convert(value))
            bad.append(False)
        except (
            ConversionError,
            ValueError,
            TypeError,
            KeyError,
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
        ):
            out.append(None)
            bad.append(True)
    return out, bad


def _python_from_stored(value: Any, dtype: t.DType) -> Any:
    """The deltaflow value of a stored Python value (as pyarrow gives it)."""
    base = dtype.strip_optional()
    name = base.name
    if value is None:
        if not dtype.is_optional:
            raise ValueError("null in a non-Optional column")
        return None
    if name == "Pointer":
        return parse_pointer(value)
    if name == "Json":
        return t.Json(json_from_text(value))  # too deep a document is a bad value
    if name == "PyObjectWrapper":
        return t.PyObjectWrapper(pickle.loads(value))  # noqa: S301 - documented
    if isinstance(base, t.Tuple):
        return tuple(_python_from_stored(value[f"[{i}]"], arg) for i, arg in enumerate(base.args))
    if isinstance(base, t.List):
        return [_python_from_stored(v, base.arg) for v in value]
    if isinstance(base, t.Array):
        kind = (
            np.int64
            if base.wrapped is not None and base.wrapped.strip_optional() == t.INT
            else None
        )
        elements = value["elements"]
        array = np.array(elements, dtype=kind) if kind is not None else np.array(elements)
        return array.reshape(value["shape"])
    if name in ("DateTimeNaive", "DateTimeUtc", "Duration", "int", "float", "str", "bytes", "bool"):
        column, bad = decode_column(pa.array([value]), dtype)
        if bad is not None and bad[0]:
            raise ValueError(f"{value!r} does not fit {dtype!r}")
        return values_from_series(column, dtype)[0]
    raise ValueError(f"no conversion to {dtype!r}")


def decode_column(
    array: pa.Array | pa.ChunkedArray, dtype: t.DType
) -> tuple[pl.Series, pl.Series | None]:
    """The deltaflow column stored in ``array`` and a mask of rows that could not be read
    (None when every row could). A null in a non-Optional column is a bad row."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    base = dtype.strip_optional()
    name = base.name
    kind = array.type
    bad: pl.Series | None = None
    if name in ("Pointer", "Json", "PyObjectWrapper") or isinstance(
        base, t.Tuple | t.List | t.Array
    ):
        values, bad_list = _from_python(
            array.to_pylist(), dtype, lambda v: _python_from_stored(v, base)
        )
        series = series_from_values("v", values, dtype)
        bad = pl.Series(bad_list, dtype=pl.Boolean)
    else:
        if pa.types.is_decimal(kind):
            if name == "str":  # the exact text, with the column's scale ("0.0000", not "0E-4")
                array = pa.array(
                    [None if v is None else format(v, "f") for v in array.to_pylist()],
                    type=pa.string(),
                )
            else:
                array = pc.cast(array, pa.float64())
        elif pa.types.is_date(kind):
            array = pc.cast(pc.cast(array, pa.date32()), pa.timestamp("us"))
        raw = pl.from_arrow(array)
        assert isinstance(raw, pl.Series)
        if name == "int":
            series = raw.cast(pl.Int64, strict=False)
            bad = series.is_null() & raw.is_not_null()
        elif name == "Duration":
            if raw.dtype == pl.Duration or isinstance(raw.dtype, pl.Duration):
                series = raw.cast(pl.Duration("ns"))
            else:
                micros = raw.cast(pl.Int64, strict=False)
                bad = micros.is_null() & raw.is_not_null()
                series = (micros * 1000).cast(pl.Duration("ns"))
        elif name in ("DateTimeNaive", "DateTimeUtc"):
            zone = getattr(raw.dtype, "time_zone", None)
            series = (
                raw.cast(pl.Datetime(raw.dtype.time_unit, zone))
                if isinstance(raw.dtype, pl.Datetime)
                else raw
            )
            if name == "DateTimeUtc":
                series = (
                    series.dt.replace_time_zone("UTC")
                    if zone is None
                    else series.dt.convert_time_zone("UTC")
                )
            elif zone is not None:
                series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            series = series.dt.cast_time_unit("ns")
        else:
            series = raw.cast(dtype.to_polars())
    if not dtype.is_optional:
        nulls = series.is_null()
        if nulls.any():
            bad = nulls if bad is None else (bad | nulls)
    if bad is not None and not bad.any():
        bad = None
    return series, bad
