"""The DynamoDB type table and the serialization of values into attribute values.

:data:`TYPE_MAPPING` / :func:`dynamodb_type` say which DynamoDB attribute type each deltaflow
type becomes (the table printed in ``docs/dynamodb.md``); :func:`serialize_column` turns one
column of a batch into low-level attribute values (column-wise with Polars where the type
allows), their sizes and the rows DynamoDB cannot store.
"""

from __future__ import annotations

import datetime
import json
import math
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from deltaflow import _types as t

# --------------------------------------------------------------------------------------------
# The type-mapping table
# --------------------------------------------------------------------------------------------

TYPE_MAPPING: dict[str, str] = {
    "bool": "BOOL",
    "int": "N",
    "float": "N",
    "Pointer": "S",
    "str": "S",
    "bytes": "B",
    "DateTimeNaive": "S",
    "DateTimeUtc": "S",
    "Duration": "N",
    "Json": "S",
    "np.ndarray": "M",
    "tuple": "L",
    "list": "L",
    "PyObjectWrapper": "B",
    "None": "NULL",
}
"""deltaflow type name → DynamoDB attribute type. ``None`` (a missing optional value) is NULL."""

KEY_TYPES = ("S", "N", "B")
"""The attribute types DynamoDB accepts for partition and sort keys."""

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit (attribute names plus values)."""

_NULL: dict[str, Any] = {"NULL": True}
_NAIVE_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f"
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f%z"
# DynamoDB numbers: up to 38 significant digits, magnitudes in [1e-130, 1e126).
_MAX_DIGITS = 38
_MAX_MAGNITUDE = 1e126
_MIN_MAGNITUDE = 1e-130


def dynamodb_type(dtype: t.DType) -> str:
    """The DynamoDB attribute type that values of ``dtype`` are written as.

    Optional types map like the type they wrap (their missing values are written as NULL).
    Raises ``TypeError`` for ``Any``: without a declared type the mapping would depend on each
    value, so the column could not be relied on by readers of the table.
    """
    base = dtype.strip_optional()
    if isinstance(base, t.Array):
        return "M"
    if isinstance(base, t.Tuple | t.List):
        return "L"
    if base == t.ANY:
        raise TypeError("columns of type Any cannot be written to DynamoDB")
    return TYPE_MAPPING[base.name]


# --------------------------------------------------------------------------------------------
# Serialization of values
# --------------------------------------------------------------------------------------------


class _BadValue(ValueError):
    """A value DynamoDB cannot store; the message says why."""


def _number_text(value: int | float) -> str:
    """The N payload of a Python number, or _BadValue when DynamoDB cannot store it."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _BadValue(
                f"{value!r} is not a number DynamoDB can store (NaN and infinity are not allowed)"
            )
        magnitude = abs(value)
        if magnitude != 0 and not _MIN_MAGNITUDE <= magnitude < _MAX_MAGNITUDE:
            raise _BadValue(f"{value!r} is outside DynamoDB's number range (1e-130 to 1e126)")
        return repr(value)
    text = str(value)
    if len(text.lstrip("-").rstrip("0")) > _MAX_DIGITS:
        raise _BadValue(
            f"{text} has more than {_MAX_DIGITS} significant digits, more than a "
            f"DynamoDB number holds"
        )
    return text


def _timestamp_text(value: Any) -> str:
    import pandas as pd  # only for datetimes inside tuples/lists (columns use Polars)

    ts = pd.Timestamp(value)
    suffix = ""
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
        suffix = "+0000"
    fraction = ts.microsecond * 1000 + ts.nanosecond
    return f"{ts.strftime('%Y-%m-%dT%H:%M:%S')}.{fraction:09d}{suffix}"


def _json_default(value: Any) -> Any:
    if isinstance(value, t.Json):
        return value.value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_text(value: Any) -> str:
    """Compact JSON (no spaces), the way Pathway serializes Json values."""
    inner = value.value if isinstance(value, t.Json) else value
    return json.dumps(inner, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _pickled(wrapper: t.PyObjectWrapper) -> bytes:
    serializer = getattr(wrapper, "serializer", None)
    if serializer is not None:
        return bytes(serializer.dumps(wrapper.value))
    return pickle.dumps(wrapper.value, protocol=pickle.HIGHEST_PROTOCOL)


def _attribute(value: Any) -> tuple[dict[str, Any], int]:
    """The DynamoDB attribute value of one Python value and its size in bytes.

    Used for the values inside tuples, lists and arrays (whose element types are only known
    from the values) and for columns without a column-wise fast path.
    """
    if value is None:
        return _NULL, 1
    if isinstance(value, bool | np.bool_):
        return {"BOOL": bool(value)}, 1
    if isinstance(value, int | np.integer):
        text = _number_text(int(value))
        return {"N": text}, len(text)
    if isinstance(value, float | np.floating):
        text = _number_text(float(value))
        return {"N": text}, len(text)
    if isinstance(value, str):
        return {"S": value}, len(value.encode())
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return {"B": data}, len(data)
    if isinstance(value, t.Pointer):
        text = str(value)
        return {"S": text}, len(text)
    if isinstance(value, datetime.datetime | np.datetime64):
        text = _timestamp_text(value)
        return {"S": text}, len(text)
    if isinstance(value, datetime.timedelta | np.timedelta64):
        import pandas as pd

        text = str(pd.Timedelta(value).value)
        return {"N": text}, len(text)
    if isinstance(value, t.Json | dict):
        text = _json_text(value)
        return {"S": text}, len(text.encode())
    if isinstance(value, np.ndarray):
        shape, shape_size = _attribute(list(value.shape))
        elements, elements_size = _attribute(value.ravel().tolist())
        # 3 bytes of overhead per map and list, as DynamoDB counts them.
        size = 3 + len("shape") + shape_size + len("elements") + elements_size
        return {"M": {"shape": shape, "elements": elements}}, size
    if isinstance(value, tuple | list):
        parts = [_attribute(v) for v in value]
        return {"L": [p[0] for p in parts]}, 3 + sum(p[1] for p in parts)
    if isinstance(value, t.PyObjectWrapper):
        data = _pickled(value)
        return {"B": data}, len(data)
    raise _BadValue(f"a value of type {type(value).__name__} has no DynamoDB representation")


@dataclass
class _Column:
    """One column of a batch, serialized: attribute values, sizes and per-row problems."""

    values: list[dict[str, Any]]
    sizes: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)


def scalar_payloads(series: pl.Series, dtype: t.DType) -> tuple[str, pl.Series] | None:
    """For types written as S, N or B: the tag and the payloads as a String/Binary series.

    Computed column-wise with Polars where the type allows; None for other types.
    """
    base = dtype.strip_optional()
    if base in (t.INT, t.DURATION):
        return "N", series.cast(pl.Int64).cast(pl.String)
    if base == t.FLOAT:
        return "N", series.cast(pl.String)
    if base == t.STR:
        return "S", series
    if base == t.BYTES:
        return "B", series
    if base == t.DATE_TIME_NAIVE:
        return "S", series.dt.to_string(_NAIVE_FORMAT)
    if base == t.DATE_TIME_UTC:
        return "S", series.dt.convert_time_zone("UTC").dt.to_string(_UTC_FORMAT)
    if base == t.POINTER:
        texts = [None if v is None else str(t.Pointer(v)) for v in series.to_list()]
        return "S", pl.Series(series.name, texts, dtype=pl.String)
    if base == t.JSON:
        texts = [None if v is None else _json_text(v) for v in series.to_list()]
        return "S", pl.Series(series.name, texts, dtype=pl.String)
    if base == t.PY_OBJECT_WRAPPER:
        blobs = [None if v is None else _pickled(v) for v in series.to_list()]
        return "B", pl.Series(series.name, blobs, dtype=pl.Binary)
    return None


def _payload_sizes(tag: str, payloads: pl.Series) -> np.ndarray:
    if tag == "B":
        sizes = payloads.bin.size()
    elif tag == "S":
        sizes = payloads.str.len_bytes()
    else:
        sizes = payloads.str.len_chars()
    return sizes.fill_null(1).cast(pl.Int64).to_numpy()


def _float_problems(series: pl.Series) -> dict[int, str]:
    """Rows of a float column DynamoDB cannot store (checked column-wise)."""
    magnitude = series.abs()
    bad = (
        series.is_nan()
        | series.is_infinite()
        | ((magnitude != 0) & ((magnitude < _MIN_MAGNITUDE) | (magnitude >= _MAX_MAGNITUDE)))
    )
    bad = bad.fill_null(False)
    if not bad.any():
        return {}
    problems = {}
    values = series.to_list()
    for index in np.flatnonzero(bad.to_numpy()):
        try:
            _number_text(values[index])
        except _BadValue as exc:
            problems[int(index)] = str(exc)
    return problems


def serialize_column(series: pl.Series, dtype: t.DType) -> _Column:
    base = dtype.strip_optional()
    if base == t.BOOL:
        values = [_NULL if v is None else {"BOOL": v} for v in series.to_list()]
        return _Column(values, np.ones(len(values), dtype=np.int64))
    scalar = scalar_payloads(series, dtype)
    if scalar is not None:
        tag, payloads = scalar
        values = [_NULL if v is None else {tag: v} for v in payloads.to_list()]
        errors: dict[int, str] = _float_problems(series) if base == t.FLOAT else {}
        return _Column(values, _payload_sizes(tag, payloads), errors)
    values = []
    sizes = np.empty(series.len(), dtype=np.int64)
    errors = {}
    for index, value in enumerate(series.to_list()):
        try:
            attribute, size = _attribute(value)
        except _BadValue as exc:
            attribute, size = _NULL, 1
            errors[index] = str(exc)
        values.append(attribute)
        sizes[index] = size
    return _Column(values, sizes, errors)
