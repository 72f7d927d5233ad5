"""Values going out of the debug helpers (:mod:`deltaflow.debug`): rows rendered as an
aligned text table, and columns as pandas Series with the dtypes Pathway gives them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from deltaflow import _types as t


def _series_to_pandas(series: pl.Series, index: Any) -> Any:
    """One column as a pandas Series with the dtype Pathway gives it."""
    import pandas as pd

    polars_type = series.dtype
    if polars_type in (pl.Object, pl.UInt128, pl.Binary):
        return pd.Series(t.values_from_series(series), index=index, dtype=object)
    if isinstance(polars_type, pl.Datetime):
        # datetime64 values; the stubs cannot tell from an untyped array (they pick float)
        values: pd.Series[Any] = pd.Series(
            series.dt.replace_time_zone(None).to_numpy(), index=index
        )
        return values.dt.tz_localize(polars_type.time_zone) if polars_type.time_zone else values
    if polars_type == pl.String:
        values = series.to_pandas()  # through Arrow: no Python string per value
        values.index = index
        return values
    if polars_type == pl.Boolean and series.null_count():
        return pd.Series(series.to_list(), index=index, dtype=object)
    if polars_type.is_integer() and series.null_count():
        # Optional ints stay ints (pandas' nullable Int64), not floats with NaN.
        return pd.Series(series.to_list(), index=index, dtype="Int64")
    return pd.Series(series.to_numpy(), index=index)


def _format_value(value: Any, short_pointers: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, t.Pointer):
        return value.short() if short_pointers else str(value)
    if isinstance(value, t.Json):
        return value.dumps()
    if isinstance(value, bytes):
        return repr(value)
    return str(value)


def _sort_key(values: Iterable[Any]) -> tuple:
    return tuple((0, 0) if v is None else (1, v) for v in values)


def _rows_of(frame: pl.DataFrame, names: list[str]) -> list[list[Any]]:
    columns = [t.values_from_series(frame[n]) for n in names]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _render(header: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        lines.append(" | ".join(cells).rstrip())
    return "\n".join(lines)
