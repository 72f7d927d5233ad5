"""Values coming into the debug tables (:mod:`deltaflow.debug`): the cells of a markdown
table, and the deltaflow types of Polars and pandas columns."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from deltaflow import _types as t


def _parse_cell(text: str) -> Any:
    if text == "None" or text == "":
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text in ("True", "False", "true", "false"):
        return text in ("True", "true")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value


def _cell_as(text: str, dtype: t.DType, column: str) -> Any:
    base = dtype.strip_optional()
    if text in ("None", "") and (dtype.is_optional or base == t.ANY):
        return None
    if base == t.STR:
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" else text
    value = _parse_cell(text)
    try:
        if base == t.INT:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError
            return value
        if base == t.FLOAT:
            return float(value)
        if base == t.BOOL:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if base in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC, t.DURATION):
            import pandas as pd

            return pd.Timedelta(text) if base == t.DURATION else pd.Timestamp(text)
        if base == t.JSON:
            return t.Json.parse(text)
        if base == t.BYTES:
            return text.encode()
    except (ValueError, TypeError):
        raise ValueError(
            f"table_from_markdown: value {text!r} in column {column!r} is not a valid {dtype!r}"
        ) from None
    return value


_POLARS_TO_DTYPE: list[tuple[Any, t.DType]] = [
    (pl.Int64, t.INT),
    (pl.Int32, t.INT),
    (pl.Int16, t.INT),
    (pl.Int8, t.INT),
    (pl.UInt32, t.INT),
    (pl.UInt16, t.INT),
    (pl.UInt8, t.INT),
    (pl.UInt64, t.INT),
    (pl.Float64, t.FLOAT),
    (pl.Float32, t.FLOAT),
    (pl.String, t.STR),
    (pl.Boolean, t.BOOL),
    (pl.Binary, t.BYTES),
    (pl.UInt128, t.POINTER),
]


def _dtype_of_series(series: pl.Series) -> t.DType:
    polars_type = series.dtype
    base: t.DType | None = None
    for candidate, dtype in _POLARS_TO_DTYPE:
        if polars_type == candidate:
            base = dtype
            break
    if base is None:
        if isinstance(polars_type, pl.Datetime):
            base = t.DATE_TIME_UTC if polars_type.time_zone else t.DATE_TIME_NAIVE
        elif isinstance(polars_type, pl.Duration):
            base = t.DURATION
        else:
            return t.infer_dtype(series.to_list())
    return t.optional(base) if series.null_count() else base


def _normalize_series(series: pl.Series, dtype: t.DType) -> pl.Series:
    target = dtype.to_polars()
    if target == pl.Object:
        return t.series_from_values(series.name, series.to_list(), dtype)
    if isinstance(target, pl.Datetime):
        converted = series.cast(pl.Datetime("ns", series.dtype.time_zone))  # type: ignore[attr-defined]
        return converted.dt.convert_time_zone("UTC") if target.time_zone else converted
    return series.cast(target)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))
    except Exception:  # noqa: BLE001
        return False
