"""Python values <-> Polars series: how the values of each column type are stored.

Part of the type system (:mod:`deltaflow._types` re-exports every name here): the type of a
column given its Python values, the conversion of one value to what the column's Polars series
stores, and of whole columns both ways (ids become :class:`~deltaflow._pointer.Pointer`
values, date-times ``pd.Timestamp`` ...).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import polars as pl

from deltaflow._pointer import Pointer, PointerKey
from deltaflow._small_frames import list_frame_of
from deltaflow._types import (
    ANY,
    ARRAY,
    BOOL,
    BYTES,
    DATE_TIME_NAIVE,
    DATE_TIME_UTC,
    DURATION,
    FLOAT,
    INT,
    JSON,
    NONE,
    POINTER,
    PY_OBJECT_WRAPPER,
    STR,
    Array,
    DType,
    Json,
    List,
    Optional,
    PyObjectWrapper,
    Tuple,
    common_supertype,
    json_stored,
    optional,
)


def infer_dtype(values: Iterable[Any]) -> DType:
    """The type of a column given its Python values (as read from markdown or pandas)."""
    seen: DType | None = None
    has_none = False
    last_class: type | None = None
    for value in values:
        if value is None:
            has_none = True
            continue
        if value.__class__ is last_class:
            continue  # same Python class as the previous value: same type
        last_class = value.__class__ if not isinstance(value, tuple | np.ndarray) else None
        dtype = _dtype_of_value(value)
        if seen is None:
            seen = dtype
        elif seen != dtype:
            merged = common_supertype(seen, dtype)
            seen = merged if merged is not None else ANY
    if seen is None:
        return NONE if has_none else ANY
    return optional(seen) if has_none else seen


def _dtype_of_value(value: Any) -> DType:
    if isinstance(value, Pointer):
        return POINTER
    if isinstance(value, bool | np.bool_):
        return BOOL
    if isinstance(value, int | np.integer):
        return INT
    if isinstance(value, float | np.floating):
        return FLOAT
    if isinstance(value, str):
        return STR
    if isinstance(value, bytes):
        return BYTES
    # pd.Timestamp / pd.Timedelta are datetime / timedelta subclasses.
    if isinstance(value, datetime.datetime):
        return DATE_TIME_NAIVE if value.tzinfo is None else DATE_TIME_UTC
    if isinstance(value, datetime.timedelta):
        return DURATION
    if isinstance(value, Json | dict):
        return JSON
    if isinstance(value, np.ndarray):
        kind = {"i": INT, "u": INT, "f": FLOAT}.get(value.dtype.kind)
        return Array(value.ndim, kind) if kind is not None else ARRAY
    if isinstance(value, tuple):
        return Tuple(*(_dtype_of_value(v) if v is not None else Optional(ANY) for v in value))
    if isinstance(value, list):
        return List(ANY)
    if isinstance(value, PyObjectWrapper):
        return PY_OBJECT_WRAPPER
    return ANY


def to_storage(value: Any, dtype: DType) -> Any:
    """Convert one Python value to what the column's Polars series stores."""
    if value is None:
        return None
    base = dtype.strip_optional()
    if base == POINTER:
        return int(value)
    if base == JSON:
        return Json(json_stored(value.value if isinstance(value, Json) else value))
    if base == INT and isinstance(value, float) and value.is_integer():
        return int(value)
    if base == FLOAT and isinstance(value, int | np.integer) and not isinstance(value, bool):
        return float(value)
    if base in (DATE_TIME_NAIVE, DATE_TIME_UTC):
        import pandas as pd  # loaded on first use: `import deltaflow` stays light

        ts = pd.Timestamp(value)
        if base == DATE_TIME_UTC:
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.value  # nanoseconds since the epoch
    if base == DURATION:
        import pandas as pd

        return pd.Timedelta(value).value
    if isinstance(base, Tuple | List) and isinstance(value, list):
        return tuple(value)
    return value


_PLAIN = {"int", "float", "str", "bool", "bytes"}


def series_from_values(name: str, values: Sequence[Any], dtype: DType) -> pl.Series:
    """Build the Polars series storing ``values`` (Python objects) as ``dtype``."""
    polars_type = dtype.to_polars()
    base = dtype.strip_optional()
    if base.name in _PLAIN and base.name != "float":
        try:
            return pl.Series(name, values, dtype=polars_type, strict=True)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            pass  # mixed representations (e.g. 1.0 for an int): convert one by one
    stored = [to_storage(v, dtype) for v in values]
    if polars_type == pl.Object:
        return pl.Series(name, stored, dtype=pl.Object)
    if isinstance(polars_type, pl.Datetime):
        ints = pl.Series(name, stored, dtype=pl.Int64)
        return ints.cast(pl.Datetime("ns")).dt.replace_time_zone(polars_type.time_zone)
    if isinstance(polars_type, pl.Duration):
        return pl.Series(name, stored, dtype=pl.Int64).cast(pl.Duration("ns"))
    return pl.Series(name, stored, dtype=polars_type, strict=False)


def values_from_series(series: pl.Series, dtype: DType | None = None) -> list[Any]:
    """Python values of a column, as users see them (``Pointer``, ``pd.Timestamp`` ...)."""
    polars_type = series.dtype
    kind = type(polars_type)  # (a class test: a dtype's == runs Python code)
    if kind is not pl.UInt128 and kind is not pl.Datetime and kind is not pl.Duration:
        return series.to_list()
    if kind is pl.UInt128:
        return _pointers(series.to_list(), series.null_count() > 0)
    if isinstance(polars_type, pl.Datetime):
        import pandas as pd  # date-time values are pandas objects, as in Pathway

        tz = polars_type.time_zone
        nanos = series.dt.epoch("ns").to_list()
        return [None if v is None else pd.Timestamp(v, unit="ns", tz=tz) for v in nanos]
    if isinstance(polars_type, pl.Duration):
        import pandas as pd

        nanos = series.cast(pl.Int64).to_list()
        return [None if v is None else pd.Timedelta(v, unit="ns") for v in nanos]
    return series.to_list()


def _pointers(ids: list[Any], nulls: bool) -> list[Any]:
    """Row ids (ints) as the ``Pointer`` values users see, None staying None."""
    if nulls:
        return [None if v is None else Pointer(v) for v in ids]
    return list(map(Pointer, ids))


def column_for_users(frame: pl.DataFrame, name: str) -> list[Any]:
    """:func:`values_from_series` of ``frame``'s column ``name``; a :class:`ListFrame`'s
    column from its list (a new list for ids, the list itself otherwise: not to be changed)."""
    listed = list_frame_of(frame)
    if listed is not None:
        assert listed.lists is not None
        kind = type(listed.types[name])
        if kind is pl.UInt128:
            return _pointers(listed.lists[name], None in listed.lists[name])
        if kind is not pl.Datetime and kind is not pl.Duration:
            return listed.lists[name]
    return values_from_series(frame.get_column(name))


def row_dicts(batch: pl.DataFrame, names: Sequence[str]) -> list[dict[str, Any]]:
    """One ``{name: value}`` dict per row of ``batch``'s columns ``names``, holding the values
    as users see them (see :func:`values_from_series`): what callbacks and Python writers get."""
    if not names:
        return [{} for _ in range(batch.height)]
    columns = [column_for_users(batch, name) for name in names]
    return _dict_builder(tuple(names))(*columns)


@functools.lru_cache(maxsize=256)
def _dict_builder(names: tuple[str, ...]) -> Callable[..., list[dict[str, Any]]]:
    """A function of one value list per name making the rows' dicts with a dict display.

    Streaming outputs build a dict for every changed row of every time, and a display with
    the names written in (``{'k': v0, 'n': v1}``) costs a third of ``dict(zip(names, row))``.
    The names enter the generated source as ``repr`` literals, so any text is safe.
    """
    params = ", ".join(f"c{i}" for i in range(len(names)))
    items = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    values = "".join(f"v{i}, " for i in range(len(names)))
    builder: Callable[..., list[dict[str, Any]]] = eval(  # noqa: S307 - source built above
        f"lambda {params}: [{{{items}}} for {values}in zip({params})]", {"zip": zip}
    )
    return builder


def canonical_key(value: Any) -> Any:
    """A hashable stand-in for a stored value, equal exactly when the values are equal."""
    if value.__class__ is Pointer:
        return PointerKey(int(value))
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, Json):
        return ("json", value.dumps())
    if isinstance(value, tuple | list):
        return (type(value).__name__, tuple(canonical_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, canonical_key(v)) for k, v in value.items())))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return value


def type_mismatch(value: Any, type_name: str) -> str:
    """The error-log text of a Python value that a column of ``type_name`` cannot hold."""
    noun = type(value).__name__
    article = "an" if noun[:1].lower() in "aeiou" else "a"
    return f"TypeError: {article} {noun} is not a value of type {type_name}"
