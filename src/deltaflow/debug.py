"""Putting small data in and taking results out: markdown, pandas, Polars, printing.

These helpers run only the tables they are given (not every output of the program), on the
same engine as ``pw.run``. This module is ``pw.debug``: the tables built from data are made in
:mod:`deltaflow._debug_inputs`, the computed contents are taken out in
:mod:`deltaflow._debug_outputs`; the Parquet and Arrow helpers and :class:`StreamGenerator`,
which use both, are here.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from deltaflow import _types as t

# The functions of pw.debug defined in the modules beside this one (and the private names
# tests and other modules import from here).
from deltaflow._debug_inputs import DIFF_COLUMN as DIFF_COLUMN
from deltaflow._debug_inputs import TIME_COLUMN as TIME_COLUMN
from deltaflow._debug_inputs import StaticSource as StaticSource
from deltaflow._debug_inputs import _frame_to_batches as _frame_to_batches
from deltaflow._debug_inputs import _generator_times as _generator_times
from deltaflow._debug_inputs import _position_ids as _position_ids
from deltaflow._debug_inputs import _static_table as _static_table
from deltaflow._debug_inputs import parse_to_table as parse_to_table
from deltaflow._debug_inputs import table_from_markdown as table_from_markdown
from deltaflow._debug_inputs import table_from_pandas as table_from_pandas
from deltaflow._debug_inputs import table_from_polars as table_from_polars
from deltaflow._debug_inputs import table_from_rows as table_from_rows
from deltaflow._debug_outputs import CaptureSink as CaptureSink
from deltaflow._debug_outputs import _snapshot as _snapshot
from deltaflow._debug_outputs import capture as capture
from deltaflow._debug_outputs import compute_and_print as compute_and_print
from deltaflow._debug_outputs import (
    compute_and_print_update_stream as compute_and_print_update_stream,
)
from deltaflow._debug_outputs import table_to_dicts as table_to_dicts
from deltaflow._debug_outputs import table_to_pandas as table_to_pandas
from deltaflow._debug_outputs import table_to_polars as table_to_polars
from deltaflow._debug_outputs import table_to_stream as table_to_stream
from deltaflow._debug_parsing import _dtype_of_series, _normalize_series
from deltaflow._ids import hash_columns
from deltaflow.engine.batch import DIFF
from deltaflow.error_display import user_call
from deltaflow.schema import Schema
from deltaflow.table import Table

# ------------------------------------------------------------------------------------------
# Parquet and generated streams
# ------------------------------------------------------------------------------------------


@user_call
def table_from_parquet(
    path: Any, id_from: list[str] | None = None, unsafe_trusted_ids: bool = False
) -> Table:
    """A table from a Parquet file (rows get position ids unless ``id_from`` names keys).

    Parameters:
        path: the file.
        id_from: columns whose values give the row ids.
        unsafe_trusted_ids: accepted for compatibility (ids are always checked).

    Examples:
        >>> import deltaflow as pw, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "stock.parquet"
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ''')
        >>> pw.debug.table_to_parquet(t, path)
        >>> pw.debug.compute_and_print(pw.debug.table_from_parquet(path), include_id=False)
        name | qty
        pen  | 2
    """
    return table_from_polars(pl.read_parquet(path), id_from=id_from)


def table_to_parquet(table: Table, filename: Any) -> None:
    """Write the table's final contents (without ids) to a Parquet file.

    Parameters:
        table: the table to compute.
        filename: the file written (replaced if it exists).

    Examples:
        >>> import deltaflow as pw, pathlib, polars as pl, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "stock.parquet"
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ''')
        >>> pw.debug.table_to_parquet(t, path)
        >>> pl.read_parquet(path).to_dicts()
        [{'name': 'pen', 'qty': 2}]
    """
    objects = [n for n, d in table._columns.items() if d.stored_as_object]
    if objects:
        raise TypeError(
            f"table_to_parquet: columns {objects} hold Python objects, which "
            f"Parquet cannot store; select or convert them first"
        )
    table_to_polars(table, include_id=False).write_parquet(filename)


# Arrow in and out: deltaflow's addition (Pathway has no Arrow functions); the conversions
# live in deltaflow._arrow, which imports pyarrow only when called.


def table_to_arrow(table: Table, *, include_id: bool = True) -> Any:
    """The table's final contents as a ``pyarrow.Table`` (deltaflow's addition).

    Each field's metadata holds the column's deltaflow type, so :func:`table_from_arrow`
    rebuilds the same table; pointers (and the ``id`` column, unless ``include_id=False``)
    are written as their ``^...`` text. A column of Python objects (``Any``,
    ``PyObjectWrapper``) has no Arrow form: a ``TypeError`` before anything runs.

    Parameters:
        table: the table to compute.
        include_id: add the row ids in an ``id`` column.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ''')
        >>> pw.debug.table_to_arrow(t, include_id=False).to_pylist()
        [{'name': 'pen', 'qty': 2}]
    """
    from deltaflow._arrow import arrow_type, frame_to_arrow

    columns = dict(table._columns)
    for name, dtype in columns.items():
        arrow_type(dtype, name)  # an unconvertible column fails before the run
    (sink,) = capture(table)
    state = _snapshot(sink, columns)
    return frame_to_arrow(state.drop(DIFF), columns, include_id=include_id)


@user_call
def table_from_arrow(
    data: Any,
    id_from: list[str] | None = None,
    unsafe_trusted_ids: bool = False,
    schema: type[Schema] | None = None,
) -> Table:
    """A table from a ``pyarrow.Table`` or ``RecordBatch`` (deltaflow's addition).

    Column types come from ``schema``, else from the field metadata
    :func:`table_to_arrow` writes, else from the Arrow types. Row ids come from ``id_from``
    (or the schema's primary key), else from an ``id`` column written by
    :func:`table_to_arrow`, else from the row positions. ``__time__``/``__diff__`` columns
    make an update stream, as in :func:`table_from_markdown`.

    Parameters:
        data: a ``pyarrow.Table`` or ``pyarrow.RecordBatch``.
        id_from: columns whose values give the row ids.
        unsafe_trusted_ids: accepted for compatibility (ids are always checked).
        schema: the schema of the table (column names and types).

    Examples:
        >>> import deltaflow as pw, pyarrow as pa
        >>> t = pw.debug.table_from_arrow(pa.table({"name": ["pen"], "qty": [2]}))
        >>> pw.debug.compute_and_print(t, include_id=False)
        name | qty
        pen  | 2
    """
    from deltaflow._arrow import read_arrow

    read = read_arrow(data, dict(schema.dtypes()) if schema is not None else None)
    key = list(id_from) if id_from else (schema.primary_key_columns() if schema else None)
    unknown = [c for c in key or () if c not in read.dtypes]
    if unknown:
        raise ValueError(
            f"pw.debug.table_from_arrow: id_from names columns {unknown} that "
            f"the table does not have"
        )
    dtypes: dict[str, t.DType] = {}
    series = []
    for column in read.series:
        declared = read.dtypes[column.name]
        dtype = declared if declared is not None else _dtype_of_series(column)
        if declared is None and dtype.stored_as_object:  # nested data: Python values
            column = t.series_from_values(column.name, column.to_list(), dtype)
        elif not dtype.stored_as_object and column.dtype != dtype.to_polars():
            column = _normalize_series(column, dtype)
        dtypes[column.name] = dtype
        series.append(column)
    frame = pl.DataFrame(series) if series else pl.DataFrame({"__empty": [0] * read.rows})
    if key:
        ids = hash_columns(frame, [(c, dtypes[c]) for c in key])
    else:  # the ids table_to_arrow wrote, else positions
        ids = read.ids if read.ids is not None else _position_ids(read.rows)
    batches = _frame_to_batches(frame, dtypes, ids, read.times, read.diffs)
    return _static_table(
        dtypes,
        batches,
        label="table_from_arrow",
        primary_key=tuple(key) if key else None,
        consolidated=not key and read.ids is None and read.diffs is None,
    )


class StreamGenerator:
    """Builds tables that change over time from lists of batches (one batch per time), or
    from markdown or pandas data with ``_time`` (and ``_diff``) columns."""

    def persistence_config(self) -> Any:
        """The persistence configuration to run the generated tables with: None, since
        they are replayed by the engine without persistence (Pathway returns a config of
        its own for the same purpose; passing either to ``pw.run`` works)."""
        return None

    def table_from_markdown(
        self,
        table: str,
        id_from: list[str] | None = None,
        unsafe_trusted_ids: bool = False,
        schema: type[Schema] | None = None,
        _stacklevel: int = 1,
    ) -> Table:
        """A table from markdown (see :func:`table_from_markdown`) whose ``_time`` column
        gives each row's time and ``_diff`` (1 or -1) whether it is inserted or deleted."""
        return table_from_markdown(
            table,
            id_from=id_from,
            unsafe_trusted_ids=unsafe_trusted_ids,
            schema=schema,
            _generator_columns=True,
        )

    def table_from_pandas(
        self,
        df: Any,
        id_from: list[str] | None = None,
        unsafe_trusted_ids: bool = False,
        schema: type[Schema] | None = None,
        _stacklevel: int = 1,
    ) -> Table:
        """A table from a pandas DataFrame whose ``_time`` column gives each row's time and
        ``_diff`` (1 or -1) whether it is inserted or deleted."""
        frame = df.copy()
        times = list(frame["_time"]) if "_time" in frame.columns else None
        frame[TIME_COLUMN] = _generator_times(
            None if times is None else [int(time) for time in times], len(frame)
        )
        renames = {"_diff": DIFF_COLUMN}
        frame = frame.rename(columns=renames).drop(
            columns=[c for c in ("_time", "_worker") if c in frame.columns]
        )
        return table_from_pandas(
            frame, id_from=id_from, unsafe_trusted_ids=unsafe_trusted_ids, schema=schema
        )

    def table_from_list_of_batches(
        self, batches: list[list[dict[str, Any]]], schema: type[Schema], _stacklevel: int = 1
    ) -> Table:
        """Batch ``i`` (a list of rows as dicts) is inserted at time ``2 * (i + 1)``."""
        return self.table_from_list_of_batches_by_workers([{0: b} for b in batches], schema)

    def table_from_list_of_batches_by_workers(
        self,
        batches: list[dict[int, list[dict[str, Any]]]],
        schema: type[Schema],
        _stacklevel: int = 1,
    ) -> Table:
        """Like :meth:`table_from_list_of_batches`, with each batch split by worker (the
        split does not matter on one process)."""
        names = schema.column_names()
        rows: list[tuple] = []
        for index, by_worker in enumerate(batches):
            for worker_rows in by_worker.values():
                for row in worker_rows:
                    unknown = set(row) - set(names)
                    if unknown:
                        raise ValueError(
                            f"StreamGenerator: batch {index} has a row with "
                            f"columns {sorted(unknown)} not in the schema"
                        )
                    defaults = schema.default_values()
                    try:
                        values = [row[n] if n in row else defaults[n] for n in names]
                    except KeyError as exc:
                        raise ValueError(
                            f"StreamGenerator: batch {index} has a row without "
                            f"column {exc.args[0]!r}"
                        ) from None
                    rows.append((*values, 2 * (index + 1), 1))
        return table_from_rows(schema, rows, is_stream=True)
