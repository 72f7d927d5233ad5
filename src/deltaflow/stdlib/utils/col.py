"""Column helpers: unpack tuple or Json columns, apply a function to a whole column."""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from typing import Any

from deltaflow import reducers
from deltaflow._types import DateTimeNaive, DateTimeUtc, Duration, Pointer
from deltaflow.expressions import apply, apply_with_type, declare_type, make_tuple, unwrap
from deltaflow.schema import Schema


def unpack_col(column: Any, *unpacked_columns: Any, schema: type[Schema] | None = None) -> Any:
    """A table (same ids) with one column per element of the tuples in ``column``, named by
    ``unpacked_columns`` or by ``schema`` (whose types the columns then get)."""
    table = column.table
    if schema is not None:
        if unpacked_columns:
            raise ValueError("unpack_col: give either the column names or a schema, not both")
        names = schema.column_names()
        types = schema.typehints()
        return table.select(
            **{name: declare_type(types[name], column[i]) for i, name in enumerate(names)}
        )
    names = [c if isinstance(c, str) else c.name for c in unpacked_columns]
    if not names:
        raise ValueError("unpack_col: name the columns to unpack into (or give a schema)")
    return table.select(**{name: column[i] for i, name in enumerate(names)})


def unpack_col_dict(column: Any, schema: type[Schema]) -> Any:
    """A table (same ids) with one column per field of ``schema``, read from the Json
    objects in ``column`` and converted to the schema's types."""
    table = column.table
    return table.select(
        **{name: _json_as(column[name], dtype) for name, dtype in schema.typehints().items()}
    )


def _json_as(value: Any, dtype: Any) -> Any:
    """A Json field converted to ``dtype`` with the Json namespace's ``as_*`` methods;
    date-times are parsed from the ISO text and durations from the integer nanoseconds
    that a Json column stores for them."""
    arguments = [a for a in typing.get_args(dtype) if a is not type(None)]
    optional = len(arguments) == 1 and type(None) in typing.get_args(dtype)
    base = arguments[0] if optional else dtype
    # A plain (non-Optional) schema type promises the field is there: unwrap the None.
    present = (lambda e: e) if optional else unwrap
    converters = {int: "as_int", float: "as_float", str: "as_str", bool: "as_bool"}
    if base in converters:
        return present(getattr(value, converters[base])())
    if base in (DateTimeNaive, DateTimeUtc):
        text = present(value.as_str())
        return text.dt.strptime(_JSON_DATETIME + ("%z" if base is DateTimeUtc else ""))
    if base is Duration:
        return present(value.as_int()).dt.to_duration("ns")
    return value


_JSON_DATETIME = "%Y-%m-%dT%H:%M:%S.%f"  # how a Json column writes date-times


def apply_all_rows(*cols: Any, fun: Callable[..., Sequence[Any]], result_col_name: Any) -> Any:
    """Call ``fun`` once with the full lists of values of ``cols`` (all rows, in one
    order) and return a table (same ids) whose ``result_col_name`` column holds the values of
    the sequence it returned, position by position."""
    name = result_col_name if isinstance(result_col_name, str) else result_col_name.name
    return multiapply_all_rows(*cols, fun=lambda *columns: [fun(*columns)], result_col_names=[name])


def multiapply_all_rows(
    *cols: Any, fun: Callable[..., list[Sequence[Any]]], result_col_names: list[Any]
) -> Any:
    """Like :func:`apply_all_rows`, with ``fun`` returning several result sequences, one per
    name in ``result_col_names``."""
    if not cols:
        raise ValueError("multiapply_all_rows: give at least one column")
    table = cols[0].table
    names = [n if isinstance(n, str) else n.name for n in result_col_names]
    rows = table.select(__row=make_tuple(table.id, *cols))
    everything = rows.reduce(__rows=reducers.tuple(rows["__row"]))

    def compute(all_rows: tuple[Any, ...]) -> tuple[Any, ...]:
        ids = [row[0] for row in all_rows]
        columns = [[row[i + 1] for row in all_rows] for i in range(len(cols))]
        results = fun(*columns)
        return tuple(zip(ids, *results))

    pairs = everything.select(__pairs=apply(compute, everything["__rows"])).flatten("__pairs")
    out = pairs.select(
        __rid=apply_with_type(lambda pair: pair[0], Pointer, pairs["__pairs"]),
        **{name: pairs["__pairs"][i + 1] for i, name in enumerate(names)},
    )
    out = out.with_id(out["__rid"]).without("__rid")
    return out.with_universe_of(table)


def groupby_reduce_majority(column_group: Any, column_val: Any) -> Any:
    """Per value of ``column_group``, the most frequent value of ``column_val`` (in a column
    named ``majority``)."""
    table = column_group.table
    group, value = column_group.name, column_val.name
    counts = table.groupby(column_group, column_val).reduce(
        column_group, column_val, __count=reducers.count()
    )
    best = counts.groupby(counts[group]).reduce(
        counts[group], __best=reducers.argmax(counts["__count"])
    )
    return best.select(best[group], majority=counts.ix(best["__best"])[value])
