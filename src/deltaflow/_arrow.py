"""Tables to and from Apache Arrow (``pw.debug.table_to_arrow`` / ``table_from_arrow``).

deltaflow's addition over Pathway's API (which has no Arrow functions). Columns whose Polars
storage Arrow knows (numbers, text, bytes, booleans, date-times, durations) go through Polars'
zero-copy export; the others are converted value by value:

============================  =========================================================
deltaflow type                Arrow type
============================  =========================================================
``int`` / ``float``           ``int64`` / ``double``
``str`` / ``bytes``           ``large_string`` / ``large_binary``
``bool``                      ``bool``
``DateTimeNaive``             ``timestamp[ns]``
``DateTimeUtc``               ``timestamp[ns, tz=UTC]``
``Duration``                  ``duration[ns]``
``Pointer`` (and ``id``)      ``string``: ``^`` and 26 base-32 digits (as printed)
``Json``                      ``string``: the JSON text
``tuple[A, B, ...]``          ``struct`` with fields ``"0"``, ``"1"`` ...
``list[T]``                   ``large_list`` of T
``np.ndarray``                nested ``large_list`` (one level per dimension)
``Any``, ``PyObjectWrapper``  not convertible: a ``TypeError`` naming the column
============================  =========================================================

Every field written carries its deltaflow type in the field metadata (key
:data:`DTYPE_METADATA_KEY`, the JSON form of :mod:`deltaflow.schema_export`), so that
``table_from_arrow(table_to_arrow(t))`` gives back the same types, values and ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._pointer import _POINTER_ALPHABET
from deltaflow.engine.batch import ID

if TYPE_CHECKING:
    import pyarrow as pa

DTYPE_METADATA_KEY = b"deltaflow.dtype"
"""Arrow field metadata key holding the column's deltaflow type (JSON)."""

ID_COLUMN = "id"
STREAM_COLUMNS = ("__time__", "__diff__")  # an update stream's times and diffs


# ------------------------------------------------------------------------------------------
# deltaflow -> Arrow
# ------------------------------------------------------------------------------------------


def arrow_type(dtype: t.DType, column: str, *, nested: bool = False) -> pa.DataType | None:
    """The Arrow type a column of ``dtype`` is written as (``TypeError`` if there is none);
    None for an ``np.ndarray`` column of undeclared shape, whose nested lists' type is then
    inferred from the values (``nested``: inside a tuple or list, where it cannot be)."""
    import pyarrow as pa

    base = dtype.strip_optional()
    simple = {
        t.INT: pa.int64(),
        t.FLOAT: pa.float64(),
        t.STR: pa.large_string(),
        t.BYTES: pa.large_binary(),
        t.BOOL: pa.bool_(),
        t.DATE_TIME_NAIVE: pa.timestamp("ns"),
        t.DATE_TIME_UTC: pa.timestamp("ns", "UTC"),
        t.DURATION: pa.duration("ns"),
        t.POINTER: pa.string(),
        t.JSON: pa.string(),
    }
    if isinstance(base, t.Tuple):
        return pa.struct(
            [
                pa.field(str(i), arrow_type(arg, column, nested=True))
                for i, arg in enumerate(base.args)
            ]
        )
    if isinstance(base, t.List):
        return pa.large_list(arrow_type(base.arg, column, nested=True))
    if isinstance(base, t.Array):
        wrapped = base.wrapped
        if base.n_dim is None or wrapped is None or wrapped not in (t.INT, t.FLOAT):
            if not nested:
                return None
            raise TypeError(
                f"column {column!r}: an np.ndarray inside a tuple or list "
                f"converts to Arrow only when its shape and element type are "
                f"known; this one is {base.name}"
            )
        element = arrow_type(wrapped, column)
        for _ in range(base.n_dim):
            element = pa.large_list(element)
        return element
    for known, kind in simple.items():
        if base == known:
            return kind
    raise TypeError(
        f"column {column!r} of type {dtype.name} has no Arrow form (Python objects); "
        f"convert it first, e.g. with .select(...) and a typed expression"
    )


def _to_arrow_value(value: Any, dtype: t.DType) -> Any:
    """One Python value as ``pa.array`` takes it for ``arrow_type(dtype)``."""
    if value is None:
        return None
    base = dtype.strip_optional()
    if base == t.POINTER:
        return str(t.Pointer(int(value)))
    if base == t.JSON:
        return value.dumps() if isinstance(value, t.Json) else t.Json(value).dumps()
    if isinstance(base, t.Tuple):
        return {
            str(i): _to_arrow_value(item, arg)
            for i, (item, arg) in enumerate(zip(value, base.args, strict=True))
        }
    if isinstance(base, t.List):
        return [_to_arrow_value(item, base.arg) for item in value]
    if isinstance(base, t.Array):
        return np.asarray(value).tolist()
    if base in (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC, t.DURATION):
        return t.to_storage(value, base)  # integer nanoseconds: no loss
    return value


def series_to_arrow(series: pl.Series, dtype: t.DType, column: str) -> pa.Array:
    """A stored column (a Polars series of ``dtype``) as an Arrow array."""
    import pyarrow as pa

    kind = arrow_type(dtype, column)  # checks convertibility first
    if kind is None:  # arrays of undeclared shape: nested lists, their type inferred
        try:
            return pa.array([_to_arrow_value(v, dtype) for v in series.to_list()])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise TypeError(
                f"column {column!r}: its arrays do not convert to one Arrow type "
                f"(different numbers of dimensions?): {exc}"
            ) from exc
    if series.dtype == pl.UInt128:
        return pa.array(
            [None if v is None else str(t.Pointer(v)) for v in series.to_list()], type=kind
        )
    if series.dtype == pl.Object:
        return pa.array([_to_arrow_value(v, dtype) for v in series.to_list()], type=kind)
    return series.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(kind)


def frame_to_arrow(
    frame: pl.DataFrame, columns: dict[str, t.DType], *, include_id: bool
) -> pa.Table:
    """A captured frame (``_id``, the columns, ``_diff``) as an Arrow table, with each
    field's deltaflow type in its metadata; the id column is ``id`` when included."""
    import pyarrow as pa

    from deltaflow.schema_export import dtype_to_json

    selected = ([(ID_COLUMN, ID, t.POINTER)] if include_id else []) + [
        (name, name, dtype) for name, dtype in columns.items()
    ]
    arrays = [series_to_arrow(frame[stored], dtype, name) for name, stored, dtype in selected]
    fields = [
        pa.field(
            name,
            array.type,
            nullable=dtype.is_optional or dtype == t.ANY,
            metadata={DTYPE_METADATA_KEY: json.dumps(dtype_to_json(dtype))},
        )
        for (name, _, dtype), array in zip(selected, arrays, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# ------------------------------------------------------------------------------------------
# Arrow -> deltaflow
# ------------------------------------------------------------------------------------------


def parse_pointer_text(text: str) -> t.Pointer:
    """The pointer ``str(pointer)`` wrote (``^`` and base-32 digits); ``ValueError`` if
    ``text`` is not one."""
    body = text[1:] if text.startswith("^") else text
    value = 0
    for char in body.upper():
        digit = _POINTER_DIGITS.get(char)
        if digit is None or not body or len(body) > 26:
            raise ValueError(f"{text!r} is not a pointer")
        value = value * 32 + digit
    return t.Pointer(value)


_POINTER_DIGITS = {char: digit for digit, char in enumerate(_POINTER_ALPHABET)}


def _from_arrow_value(value: Any, dtype: t.DType) -> Any:
    """The Python value of a column of ``dtype`` for one value of its Arrow form."""
    if value is None:
        return None
    base = dtype.strip_optional()
    if base == t.POINTER:
        return value if isinstance(value, t.Pointer) else parse_pointer_text(value)
    if base == t.JSON:
        return t.Json(json.loads(value)) if isinstance(value, str) else t.Json(value)
    if isinstance(base, t.Tuple):
        items = (
            [value[str(i)] for i in range(len(base.args))]
            if isinstance(value, dict)
            else list(value)
        )
        return tuple(
            _from_arrow_value(item, arg) for item, arg in zip(items, base.args, strict=True)
        )
    if isinstance(base, t.List):
        return tuple(_from_arrow_value(item, base.arg) for item in value)
    if isinstance(base, t.Array):
        return np.asarray(value)
    return value


def _declared_dtype(field: pa.Field) -> t.DType | None:
    """The deltaflow type written in a field's metadata, if any."""
    from deltaflow.schema_export import dtype_from_json

    text = (field.metadata or {}).get(DTYPE_METADATA_KEY)
    return None if text is None else dtype_from_json(json.loads(text))


def _needs_values(dtype: t.DType) -> bool:
    """Whether a column of ``dtype`` is rebuilt value by value (no Arrow-native storage)."""
    return dtype.stored_as_object or dtype.strip_optional() == t.POINTER


@dataclass
class ArrowColumns:
    """An Arrow table read for ``pw.debug.table_from_arrow``.

    ``series`` holds the data columns: those of a declared type with no Arrow-native storage
    (pointers, Json, tuples ...) already converted to it, the others as Polars reads them.
    ``dtypes`` has each column's declared type (from the schema, else from the field
    metadata), or None where the type is to be inferred.
    """

    series: list[pl.Series]
    dtypes: dict[str, t.DType | None]
    ids: pl.Series | None  # from an ``id`` column (as table_to_arrow writes it)
    times: pl.Series | None
    diffs: pl.Series | None
    rows: int


def read_arrow(data: Any, schema_dtypes: dict[str, t.DType] | None) -> ArrowColumns:
    """Read a ``pyarrow.Table`` or ``RecordBatch`` (``schema_dtypes``: the columns to keep
    and their types, when a schema is given)."""
    import pyarrow as pa

    where = "pw.debug.table_from_arrow"
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        raise TypeError(
            f"{where}: expected a pyarrow Table or RecordBatch, got {type(data).__name__}"
        )
    names = [n for n in data.column_names if n not in (ID_COLUMN, *STREAM_COLUMNS)]
    dtypes: dict[str, t.DType | None]
    if schema_dtypes is not None:
        missing = [c for c in schema_dtypes if c not in names]
        if missing:
            raise ValueError(f"{where}: the Arrow table lacks the schema's columns {missing}")
        dtypes = dict(schema_dtypes)
    else:
        dtypes = {n: _declared_dtype(data.schema.field(n)) for n in names}
    series = []
    for name, dtype in dtypes.items():
        column = data.column(name)
        if dtype is not None and _needs_values(dtype):
            values = [_from_arrow_value(v, dtype) for v in column.to_pylist()]
            series.append(t.series_from_values(name, values, dtype))
        else:
            series.append(pl.Series(name, column))
    ids = None
    if ID_COLUMN in data.column_names:
        ids = pl.Series(
            ID,
            [int(_from_arrow_value(v, t.POINTER)) for v in data.column(ID_COLUMN).to_pylist()],
            dtype=pl.UInt128,
        )
    time_column, diff_column = STREAM_COLUMNS
    times = pl.Series(data.column(time_column)) if time_column in data.column_names else None
    diffs = pl.Series(data.column(diff_column)) if diff_column in data.column_names else None
    return ArrowColumns(series, dtypes, ids, times, diffs, data.num_rows)
