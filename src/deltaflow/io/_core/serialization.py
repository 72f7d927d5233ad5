"""The one place converting column values to and from text and JSON.

Every connector goes through these functions, so a type is written and read back the same way
whatever the system. Conversions are vectorised with Polars where the type allows it; the rest
(Json, tuples, pointers ...) are converted value by value.

Text (CSV) conventions, matching Pathway's output: booleans ``True``/``False``, None as
``None``, naive datetimes ``2024-01-02T03:04:05.123456000``, UTC datetimes with ``+0000``,
durations as integer nanoseconds, pointers ``^...``, Json/tuples/lists/arrays as compact JSON,
bytes as base64, PyObjectWrappers as base64 of the serialized object (readable back by the
column's type alone). JSON conventions: the same, except that values keep their JSON type
(numbers, booleans, null, nested JSON).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import pickle
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._small_frames import series_of_array, series_of_values
from deltaflow.io._core.json_text import load_json_line

if TYPE_CHECKING:
    import pandas as pd

_NAIVE_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f"
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.9f%z"
_TRUE = ("true", "t", "1", "yes", "on")
_FALSE = ("false", "f", "0", "no", "off")
_POINTER_DIGITS = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}


class ConversionError(ValueError):
    """A value that does not fit its column's type."""


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, t.Json):
        return value.value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, t.Pointer):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    # pandas is imported on first use (pd.Timestamp / pd.Timedelta subclass these).
    if isinstance(value, datetime.datetime):
        import pandas as pd

        return _timestamp_text(pd.Timestamp(value))
    if isinstance(value, datetime.timedelta):
        import pandas as pd

        return pd.Timedelta(value).value
    if isinstance(value, t.PyObjectWrapper):
        return py_object_text(value)
    return str(value)


def _timestamp_text(value: pd.Timestamp) -> str:
    text = value.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.microsecond:06d}{value.nanosecond:03d}"
    return text + ("+0000" if value.tzinfo is not None else "")


# A wrapped object in text and JSON: base64 of this tag and a pickle of the serializer's loads
# and dumps functions with the bytes the object was serialized to (as Pathway, an output holds
# the object itself, so that reading it back needs only the column's type).
_PY_OBJECT_TAG = b"deltaflow.PyObjectWrapper/1:"


def py_object_text(wrapper: t.PyObjectWrapper) -> str:
    """The text a ``PyObjectWrapper`` is written as (see :func:`py_object_from_text`). The
    wrapper's serializer (``pickle`` when it has none) must be able to serialize the object."""
    serializer = wrapper.serializer if wrapper.serializer is not None else pickle
    try:
        blob = pickle.dumps((serializer.loads, serializer.dumps, serializer.dumps(wrapper.value)))
    except Exception as exc:  # any failure of a user's serializer
        raise ValueError(
            f"cannot write PyObjectWrapper({_shorten(repr(wrapper.value))}): its serializer "
            f"({getattr(serializer, '__name__', type(serializer).__name__)}) failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return base64.b64encode(_PY_OBJECT_TAG + blob).decode("ascii")


def py_object_from_text(text: str) -> t.PyObjectWrapper | None:
    """The wrapper :func:`py_object_text` wrote as ``text``; None if ``text`` is not of that
    form. Like any unpickling, this runs code named by the data: read trusted files only."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_PY_OBJECT_TAG):
        return None
    try:
        loads, dumps, payload = pickle.loads(raw[len(_PY_OBJECT_TAG) :])  # noqa: S301
        value = loads(payload)
    except Exception as exc:  # a damaged value is a bad value, not a crash
        raise ConversionError(
            f"a PyObjectWrapper value could not be restored: {type(exc).__name__}: {exc}"
        ) from exc
    return t.PyObjectWrapper(value, serializer=types.SimpleNamespace(loads=loads, dumps=dumps))


def parse_pointer(text: str) -> t.Pointer:
    """The inverse of ``repr(Pointer)``: ``^`` and 26 base32 digits."""
    body = text[1:] if text.startswith("^") else text
    if not body or len(body) > 26:
        raise ConversionError(f"{text!r} is not a pointer")
    value = 0
    for char in body.upper():
        digit = _POINTER_DIGITS.get(char)
        if digit is None:
            raise ConversionError(f"{text!r} is not a pointer")
        value = value * 32 + digit
    return t.Pointer(value)


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


def text_column(series: pl.Series, dtype: t.DType) -> pl.Series:
    """The CSV text of a stored column (None becomes ``None``)."""
    return _text_or_null(series, dtype).fill_null("None")


def _text_or_null(series: pl.Series, dtype: t.DType) -> pl.Series:
    base = dtype.strip_optional()
    name = series.name
    if base in (t.INT, t.STR):
        out = series.cast(pl.String)
    elif base == t.FLOAT:
        # Pathway writes 1e20 where Polars writes 1e+20.
        out = series.cast(pl.String).str.replace("e+", "e", literal=True)
    elif base == t.BOOL:
        out = (
            pl.Series(name, ["False", "True"]).gather(series.cast(pl.UInt32))
            if series.null_count() == 0
            else series.replace_strict(
                {True: "True", False: "False"}, default=None, return_dtype=pl.String
            )
        )
    elif base == t.DATE_TIME_NAIVE:
        out = series.dt.to_string(_NAIVE_FORMAT)
    elif base == t.DATE_TIME_UTC:
        out = series.dt.convert_time_zone("UTC").dt.to_string(_UTC_FORMAT)
    elif base == t.DURATION:
        out = series.dt.total_nanoseconds().cast(pl.String)
    elif base == t.BYTES:  # base64, as Pathway writes bytes (any bytes, not only UTF-8)
        out = series.bin.encode("base64")
    else:
        out = pl.Series(
            name,
            [None if v is None else _object_text(v, base) for v in t.values_from_series(series)],
            dtype=pl.String,
        )
    return out.alias(name)


def _object_text(value: Any, base: t.DType) -> str:
    if isinstance(value, t.Pointer):
        return str(value)
    if isinstance(value, t.PyObjectWrapper):
        return py_object_text(value)
    if isinstance(value, str):
        return value
    if isinstance(value, t.Json):
        return _compact(value.value)
    if isinstance(value, tuple | list | np.ndarray):
        return _compact(file_json_value(value))
    if isinstance(value, dict):
        return _compact(value)
    if isinstance(value, bool | int | float):
        return str(value)
    return str(value)


def json_value(value: Any) -> Any:
    """A stored value as a JSON-ready Python value (see the module's conventions)."""
    if isinstance(value, t.Pointer):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, t.Json):
        return value.value
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return _json_default(value)


def file_json_value(value: Any) -> Any:
    """:func:`json_value`, with arrays in the form Pathway's file and message outputs use:
    ``{"shape": [...], "elements": [...]}`` (elements row-major), also inside tuples."""
    if isinstance(value, np.ndarray):
        return {"shape": list(value.shape), "elements": json_value(value.ravel())}
    if isinstance(value, tuple | list):
        return [file_json_value(v) for v in value]
    return json_value(value)


def json_ready_column(series: pl.Series, dtype: t.DType) -> pl.Series | list[Any]:
    """A column Polars can write as JSON natively, or a list of JSON-ready values."""
    base = dtype.strip_optional()
    if base in (t.INT, t.FLOAT, t.BOOL, t.STR):
        return series
    if base in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC):
        return _text_or_null(series, dtype)
    if base == t.DURATION:
        return series.dt.total_nanoseconds()
    if base == t.POINTER:
        return [None if v is None else str(v) for v in t.values_from_series(series)]
    if base == t.BYTES:
        return [None if v is None else base64.b64encode(v).decode() for v in series.to_list()]
    return [file_json_value(v) for v in t.values_from_series(series)]


# ------------------------------------------------------------------------------------------
# Reading text
# ------------------------------------------------------------------------------------------


def parse_text_column(series: pl.Series, dtype: t.DType) -> tuple[pl.Series, pl.Series]:
    """Parse a String column as ``dtype``; returns the values and a mask of unparsable cells.

    An empty cell (or ``None``) is None for optional non-string columns; for a non-optional
    column other than ``str`` it is unparsable.
    """
    name = series.name
    base = dtype.strip_optional()
    raw = series
    if raw.dtype != pl.String:  # already parsed by the CSV reader (ints, floats)
        wanted = dtype.to_polars()
        values = raw if raw.dtype == wanted else raw.cast(wanted)
        if dtype.is_optional or not values.null_count():  # (is_null is a query: skipped)
            return values.alias(name), _none_failed(name, raw.len())
        return values.alias(name), values.is_null().alias(name)
    if base == t.STR:
        values = raw
        if dtype.is_optional:
            values = raw.replace("", None) if raw.len() else raw
        return values.alias(name), _none_failed(name, raw.len())
    stripped = raw.str.strip_chars()
    missing = stripped.is_null() | stripped.is_in(["", "None"])
    if base == t.INT:
        values = stripped.str.to_integer(strict=False)
    elif base == t.FLOAT:
        values = stripped.cast(pl.Float64, strict=False)
    elif base == t.BOOL:
        lowered = stripped.str.to_lowercase()
        values = lowered.replace_strict(
            {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)},
            default=None,
            return_dtype=pl.Boolean,
        )
    elif base == t.BYTES:  # base64 text, as written (by Pathway too); anything else is bad
        values = stripped.str.decode("base64", strict=False)
        missing = stripped.is_null() | (stripped == "None")  # "" is base64 of b""
    elif base == t.DURATION:
        values = stripped.str.to_integer(strict=False).cast(pl.Duration("ns"))
    elif base in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC):
        values = _parse_datetimes(stripped, base)
    else:
        converted: list[Any] = []
        bad: list[bool] = []
        for text, is_missing in zip(stripped.to_list(), missing.to_list(), strict=True):
            if is_missing:
                converted.append(None)
                bad.append(False)
                continue
            try:
                converted.append(_object_from_text(text, base))
                bad.append(False)
            except (ValueError, TypeError):
                converted.append(None)
                bad.append(True)
        values = t.series_from_values(name, converted, dtype)
        bad_mask = pl.Series(name, bad, dtype=pl.Boolean)
        if not dtype.is_optional and base != t.ANY:
            bad_mask = bad_mask | missing
        return values, bad_mask
    values = values.alias(name)
    failed = values.is_null() & ~missing
    if not dtype.is_optional:
        failed = failed | missing
    values = (
        values.to_frame()
        .select(pl.when(missing).then(None).otherwise(pl.col(name)).alias(name))
        .to_series()
        if missing.any()
        else values
    )
    return values.cast(dtype.to_polars()), failed.fill_null(True).alias(name)


def _none_failed(name: str, length: int) -> pl.Series:
    """A mask of no failures (from NumPy: ``pl.repeat`` is a query, ~0.1 ms a call)."""
    return series_of_array(name, np.zeros(length, dtype=np.bool_))


def _parse_datetimes(text: pl.Series, base: t.DType) -> pl.Series:
    if base == t.DATE_TIME_UTC:
        parsed = text.str.to_datetime(_UTC_FORMAT, time_unit="ns", strict=False)
        if parsed.null_count() > text.null_count():
            other = text.str.to_datetime(time_unit="ns", strict=False, time_zone="UTC")
            parsed = parsed.fill_null(other) if other.dtype == parsed.dtype else parsed
        return parsed.dt.convert_time_zone("UTC")
    parsed = text.str.to_datetime(_NAIVE_FORMAT, time_unit="ns", strict=False)
    if parsed.null_count() > text.null_count():
        for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            parsed = parsed.fill_null(text.str.to_datetime(fmt, time_unit="ns", strict=False))
    return parsed


def json_from_text(text: str) -> Any:
    """The JSON document a stored text holds, with the checks of the JSON lines reader: a
    document nested deeper than it accepts, or holding a lone surrogate, is a
    :class:`ConversionError` (a bad value), never a RecursionError ending the run."""
    document, reason = load_json_line(text)
    if reason is not None:
        raise ConversionError(reason)
    return document


def _object_from_text(text: str, base: t.DType) -> Any:
    if base == t.POINTER:
        return parse_pointer(text)
    if base == t.JSON:
        return t.Json(json_from_text(text))
    if base == t.ANY:
        return text
    if base == t.PY_OBJECT_WRAPPER:
        wrapper = py_object_from_text(text)
        if wrapper is not None:
            return wrapper
    return convert_value(json_from_text(text), base)


# ------------------------------------------------------------------------------------------
# Reading Python / JSON values
# ------------------------------------------------------------------------------------------


def convert_value(value: Any, dtype: t.DType) -> Any:
    """Check and convert one Python or JSON value for a column of ``dtype``.

    Accepts the value itself (``int`` for INT, ``pd.Timestamp`` for datetimes ...) or its JSON
    representation (strings for datetimes and pointers, integer nanoseconds for durations,
    base64 for bytes, lists for tuples and arrays). Raises :class:`ConversionError`.
    """
    if value is None:
        if dtype.is_optional or dtype.strip_optional() in (t.ANY, t.JSON):
            return t.Json(None) if dtype == t.JSON else None
        raise ConversionError("null for a non-optional column")
    base = dtype.strip_optional()
    if base == t.INT:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConversionError(f"{value!r} is not an int")
        if not t.INT64_MIN <= value <= t.INT64_MAX:
            raise ConversionError(f"{value!r} does not fit in a 64-bit int")
        return int(value)
    if base == t.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ConversionError(f"{value!r} is not a float")
        return float(value)
    if base == t.BOOL:
        if not isinstance(value, bool | np.bool_):
            raise ConversionError(f"{value!r} is not a bool")
        return bool(value)
    if base == t.STR:
        if not isinstance(value, str):
            raise ConversionError(f"{value!r} is not a str")
        return value
    if base == t.BYTES:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):  # bytes travel as base64 text in JSON (as in Pathway)
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ConversionError(f"{_shorten(value)!r} is not base64 text of bytes") from None
        if isinstance(value, list):
            return bytes(value)
        raise ConversionError(f"{value!r} is not bytes")
    if base in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC):
        return _convert_timestamp(value, base)
    if base == t.DURATION:
        import pandas as pd

        if isinstance(value, datetime.timedelta):
            return pd.Timedelta(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return pd.Timedelta(value, unit="ns")
        raise ConversionError(f"{value!r} is not a duration")
    if base == t.POINTER:
        if isinstance(value, t.Pointer):
            return value
        if isinstance(value, str):
            return parse_pointer(value)
        raise ConversionError(f"{value!r} is not a pointer")
    if base == t.JSON:
        return value if isinstance(value, t.Json) else t.Json(value)
    if isinstance(base, t.Tuple):
        if not isinstance(value, tuple | list) or len(value) != len(base.args):
            raise ConversionError(f"{value!r} is not a tuple of {len(base.args)} values")
        return tuple(convert_value(v, d) for v, d in zip(value, base.args, strict=True))
    if isinstance(base, t.List):
        if not isinstance(value, tuple | list):
            raise ConversionError(f"{value!r} is not a list")
        return tuple(convert_value(v, base.arg) for v in value)
    if isinstance(base, t.Array):
        return _array_from_json(value)
    if base == t.PY_OBJECT_WRAPPER:
        if isinstance(value, t.PyObjectWrapper):
            return value
        # The text form outputs write (a JSON string); anything else is wrapped as it is.
        wrapper = py_object_from_text(value) if isinstance(value, str) else None
        return wrapper if wrapper is not None else t.PyObjectWrapper(value)
    return value


def _array_from_json(value: Any) -> np.ndarray:
    """An array from its JSON form: ``{"shape": [...], "elements": [...]}`` (row-major, as
    Pathway and deltaflow write arrays), or nested lists; anything else is refused."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, dict):
        shape, elements = value.get("shape"), value.get("elements")
        if (
            set(value) != {"shape", "elements"}
            or not isinstance(shape, list)
            or not isinstance(elements, list)
        ):
            raise ConversionError(
                f"{_shorten(repr(value))} is not an array (expected {{'shape': [...], "
                "'elements': [...]}} or nested lists)"
            )
        try:
            return np.asarray(elements).reshape(shape)
        except (ValueError, TypeError) as exc:
            raise ConversionError(f"{_shorten(repr(value))} is not an array: {exc}") from None
    if not isinstance(value, list | tuple):
        raise ConversionError(f"{value!r} is not an array")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ConversionError(f"{_shorten(repr(value))} is not an array") from exc
    if array.dtype == object:  # ragged lists or values that are not numbers
        raise ConversionError(f"{_shorten(repr(value))} is not an array of numbers")
    return array


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _convert_timestamp(value: Any, base: t.DType) -> pd.Timestamp:
    import pandas as pd

    try:
        if isinstance(value, str | datetime.datetime | np.datetime64):
            stamp = pd.Timestamp(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            stamp = pd.Timestamp(value, unit="ns")
        else:
            raise ConversionError(f"{value!r} is not a datetime")
    except (ValueError, TypeError) as exc:
        raise ConversionError(f"{value!r} is not a datetime") from exc
    if base == t.DATE_TIME_UTC:
        if stamp.tzinfo is None and isinstance(value, datetime.datetime):
            # A naive datetime object says nothing of its zone; reading it as UTC would be a
            # plausible wrong value (Pathway refuses it too). Text is read as UTC.
            raise ConversionError(
                f"{value!r} has no time zone; the column is DateTimeUtc "
                f"(give a datetime with tzinfo, or make the column naive)"
            )
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if stamp.tzinfo is not None:
        raise ConversionError(f"{value!r} has a time zone; the column is naive")
    return stamp


#: Columns whose values may be stored as they are: per type, its Polars type and the Python
#: types of such values (a bool is not an int here).
_EXACT: dict[t.DType, tuple[type[pl.DataType], frozenset[type]]] = {
    t.INT: (pl.Int64, frozenset([int])),
    t.FLOAT: (pl.Float64, frozenset([float])),
    t.BOOL: (pl.Boolean, frozenset([bool])),
    t.STR: (pl.String, frozenset([str])),
}


def exact_column(dtype: t.DType) -> tuple[type[pl.DataType], frozenset[type]] | None:
    """For a column of int, float, bool or str (optional or not): its Polars type and the
    Python types its values may have to be stored without a conversion (None for others)."""
    exact = _EXACT.get(dtype.strip_optional())
    if exact is None or not dtype.is_optional:
        return exact
    return exact[0], exact[1] | {type(None)}


def exact_series(
    name: str, values: Sequence[Any], exact: tuple[type[pl.DataType], frozenset[type]]
) -> pl.Series | None:
    """``values`` as a column of :func:`exact_column`'s type ``exact`` when each is exactly
    of one of its Python types, and in range; None when they need a conversion (or a report).
    Raises UnicodeEncodeError for a text no UTF-8 holds (a lone surrogate)."""
    # set(map(type, ...)) runs at C speed: this runs for every value of a block.
    if not set(map(type, values)) <= exact[1]:
        return None
    try:  # strict: a value the type cannot hold (an int past 64 bits) raises
        return series_of_values(name, list(values), exact[0])
    except (TypeError, OverflowError):
        return None


def column_from_values(
    name: str, values: Sequence[Any], dtype: t.DType
) -> tuple[pl.Series, dict[int, str]]:
    """A column from Python/JSON values; also the positions of unusable values and why."""
    exact = exact_column(dtype)
    series = None if exact is None else exact_series(name, values, exact)
    if series is not None:
        return series, {}
    # The converting path: it reports each value it cannot convert.
    converted: list[Any] = []
    errors: dict[int, str] = {}
    for index, value in enumerate(values):
        try:
            converted.append(convert_value(value, dtype))
        except ConversionError as exc:
            converted.append(None)
            errors[index] = f"column {name!r}: {exc}"
    return t.series_from_values(name, converted, dtype), errors
