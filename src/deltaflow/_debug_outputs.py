"""Computing tables on the spot for ``pw.debug``: capturing every change a table goes
through, its snapshot, and handing that over as pandas or Polars frames, dicts, a stream of
changes or a printed table (``compute_and_print``).

The public functions are imported from :mod:`deltaflow.debug`; the tables they read are
usually built by :mod:`deltaflow._debug_inputs`.
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._debug_inputs import DIFF_COLUMN, TIME_COLUMN
from deltaflow._debug_rendering import (
    _format_value,
    _render,
    _rows_of,
    _series_to_pandas,
    _sort_key,
)
from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.boundary import ConnectorStats, Sink
from deltaflow.engine.runtime import run_outputs
from deltaflow.plan import OutputNode
from deltaflow.table import Table

logger = logging.getLogger("deltaflow.debug")


# ------------------------------------------------------------------------------------------
# Capturing results
# ------------------------------------------------------------------------------------------


class CaptureSink(Sink):
    """Keeps every (time, batch) it receives, in memory."""

    accepts_parts = True  # keeps (time, batch) pairs; readers concatenate them
    keeps_errors = True  # shows error cells (compute_and_print prints them as Error)

    def __init__(self, name: str = "capture") -> None:
        self.name = name
        self.batches: list[tuple[int, pl.DataFrame]] = []
        self.stats = ConnectorStats()

    def on_batch(self, time: int, batch: pl.DataFrame) -> None:
        self.batches.append((time, batch))
        self.stats.rows_written += batch.height


def capture(
    *tables: Table, terminate_on_error: bool | None = None, **run_options: Any
) -> list[CaptureSink]:
    """Run the given tables (only them) and return what each produced (error cells
    included, when ``terminate_on_error=False``). ``persistence_config`` works as in
    ``pw.run``; other ``pw.run`` options are accepted and have no effect here."""
    _check_run_options(run_options)
    from deltaflow.persistence.run import make_persistence
    from deltaflow.udfs.context import udf_storage

    config = run_options.get("persistence_config")
    persistence = make_persistence(config, "pw.debug")
    sinks = [CaptureSink(f"capture{i}") for i in range(len(tables))]
    outputs = [
        OutputNode(columns=dict(tb._columns), inputs=(tb._node,), sink=s, label=s.name)
        for tb, s in zip(tables, sinks, strict=True)
    ]
    with udf_storage(config):
        run_outputs(outputs, terminate_on_error=terminate_on_error, persistence=persistence)
    return sinks


def _check_run_options(options: dict[str, Any]) -> None:
    import inspect

    from deltaflow.runner import run

    known = set(inspect.signature(run).parameters)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {', '.join(map(repr, unknown))}: "
            f"pw.debug helpers take the options of pw.run"
        )


def _stream_frame(sink: CaptureSink, columns: dict[str, t.DType]) -> pl.DataFrame:
    from deltaflow.engine.batch import empty_batch

    # The final time (rows held until the inputs end) does not fit an Int64.
    parts = [
        b.with_columns(pl.lit(time, dtype=pl.Int64 if time < 2**63 else pl.UInt64).alias("__time"))
        for time, b in sink.batches
    ]
    if not parts:
        return empty_batch(columns).with_columns(pl.lit(0, dtype=pl.Int64).alias("__time"))
    from deltaflow.errors import unify_object_columns

    return pl.concat(unify_object_columns(parts), how="vertical_relaxed")


def _snapshot(
    sink: CaptureSink, columns: dict[str, t.DType], terminate_on_error: bool | None = None
) -> pl.DataFrame:
    """The table a captured stream ends in; an id holding several rows raises, or with
    ``terminate_on_error=False`` becomes one row of Errors (``errors.squash_repeated_ids``)."""
    from deltaflow.engine.batch import empty_batch

    if not sink.batches:
        return empty_batch(columns)
    if len(sink.batches) == 1:
        state = sink.batches[0][1]  # what a sink receives is consolidated already
    else:
        from deltaflow.errors import unify_object_columns

        # A column holding error cells in some batches is stored as objects in all of them.
        state = consolidate(
            pl.concat(unify_object_columns([b for _, b in sink.batches]), how="vertical_relaxed")
        )
    negative = state.filter(pl.col(DIFF) < 0)
    if negative.height:
        logger.warning("%d rows were deleted more often than inserted", negative.height)
    state = state.filter(pl.col(DIFF) > 0)
    if (state[DIFF] > 1).any():
        repeat = state[DIFF].to_list()
        state = state[[i for i, n in enumerate(repeat) for _ in range(n)]]
    from deltaflow.errors import squash_repeated_ids

    return squash_repeated_ids(state, list(columns), terminate_on_error)


def table_to_polars(table: Table, *, include_id: bool = True) -> pl.DataFrame:
    """The table's final contents as a Polars frame (ids in an ``id`` column if asked).

    Parameters:
        table: the table to compute.
        include_id: add the row ids (as ``UInt128`` numbers) in an ``id`` column.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ''')
        >>> pw.debug.table_to_polars(t, include_id=False).to_dicts()
        [{'name': 'pen', 'qty': 2}]
    """
    (sink,) = capture(table)
    state = _snapshot(sink, table._columns)
    if include_id:
        return state.drop(DIFF).rename({ID: "id"})
    return state.drop(ID, DIFF)


def table_to_pandas(table: Table, *, include_id: bool = True) -> Any:
    """The table's final contents as a pandas DataFrame indexed by ``Pointer`` ids.

    Parameters:
        table: the table to compute.
        include_id: index the frame by the row ids (else by positions from 0).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  | 6
        ... ''')
        >>> pw.debug.table_to_pandas(t, include_id=False).sort_values("qty")
          name  qty
        0  pen    2
        1  ink    6
    """
    import pandas as pd

    (sink,) = capture(table)
    state = _snapshot(sink, table._columns)
    index = (
        pd.Index(t.values_from_series(state[ID]), dtype=object)
        if include_id
        else pd.RangeIndex(state.height)
    )
    data = {name: _series_to_pandas(state[name], index) for name in table._columns}
    return pd.DataFrame(data, index=index)


def table_to_dicts(
    table: Table, **kwargs: Any
) -> tuple[list[t.Pointer], dict[str, dict[t.Pointer, Any]]]:
    """The final contents as (ids, {column: {id: value}}) (``kwargs``: options of
    ``pw.run``).

    Parameters:
        table: the table to compute.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ''')
        >>> ids, columns = pw.debug.table_to_dicts(t)
        >>> [columns["name"][i] for i in ids], [columns["qty"][i] for i in ids]
        (['pen'], [2])
    """
    (sink,) = capture(table, **kwargs)
    state = _snapshot(sink, table._columns, kwargs.get("terminate_on_error"))
    keys = t.values_from_series(state[ID])
    columns = {
        name: dict(zip(keys, t.values_from_series(state[name]), strict=True))
        for name in table._columns
    }
    return keys, columns


# ------------------------------------------------------------------------------------------
# Printing
# ------------------------------------------------------------------------------------------


def _print_table(
    frame: pl.DataFrame,
    names: list[str],
    extra: list[str],
    include_id: bool,
    short_pointers: bool,
    n_rows: int | None,
    sort_prefix: list[str],
) -> None:
    rows = _rows_of(frame, [ID, *names, *extra])
    try:
        if sort_prefix:
            rows.sort(
                key=lambda r: (
                    _sort_key(r[len(names) + 1 :]),
                    _sort_key(r[1 : len(names) + 1]),
                    r[0],
                )
            )
        else:
            rows.sort(key=lambda r: (_sort_key(r[1:]), r[0]))
    except TypeError:
        pass  # values that cannot be ordered are printed in engine order
    if n_rows is not None:
        rows = rows[:n_rows]
    header = ([""] if include_id else []) + names + extra
    rendered = [
        [_format_value(v, short_pointers) for v in (row if include_id else row[1:])] for row in rows
    ]
    print(_render(header, rendered))


def compute_and_print(
    *tables: Table,
    include_id: bool = True,
    short_pointers: bool = True,
    n_rows: int | None = None,
    **kwargs: Any,
) -> None:
    """Run the tables and print their final contents (``kwargs``: options of ``pw.run``,
    e.g. ``terminate_on_error=False``).

    Parameters:
        *tables: the tables to print, one after the other.
        include_id: print the row ids as a first, unnamed column.
        short_pointers: print ids and pointers shortened to their first characters.
        n_rows: print at most this many rows of each table.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ...   | name | qty
        ... 1 | pen  | 2
        ... 2 | ink  | 6
        ... ''')
        >>> pw.debug.compute_and_print(t.filter(t.qty > 3), include_id=False)
        name | qty
        ink  | 6
    """
    sinks = capture(*tables, **kwargs)
    for table, sink in zip(tables, sinks, strict=True):
        state = _snapshot(sink, table._columns, kwargs.get("terminate_on_error"))
        _print_table(state, list(table._columns), [], include_id, short_pointers, n_rows, [])


def compute_and_print_update_stream(
    *tables: Table,
    include_id: bool = True,
    short_pointers: bool = True,
    n_rows: int | None = None,
    **kwargs: Any,
) -> None:
    """Run the tables and print every change with its ``__time__`` and ``__diff__``
    (``kwargs``: options of ``pw.run``).

    Parameters:
        *tables: the tables to print, one after the other.
        include_id: print the row ids as a first, unnamed column.
        short_pointers: print ids and pointers shortened to their first characters.
        n_rows: print at most this many changes of each table.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... item | qty | __time__ | __diff__
        ... pen  | 2   | 2        | 1
        ... pen  | 2   | 4        | -1
        ... pen  | 5   | 4        | 1
        ... ''')
        >>> pw.debug.compute_and_print_update_stream(t.reduce(total=pw.reducers.sum(t.qty)),
        ...                                          include_id=False)
        total | __time__ | __diff__
        2     | 2        | 1
        2     | 4        | -1
        5     | 4        | 1
    """
    sinks = capture(*tables, **kwargs)
    for table, sink in zip(tables, sinks, strict=True):
        frame = _stream_frame(sink, table._columns).rename(
            {"__time": TIME_COLUMN, DIFF: DIFF_COLUMN}
        )
        _print_table(
            frame,
            list(table._columns),
            [TIME_COLUMN, DIFF_COLUMN],
            include_id,
            short_pointers,
            n_rows,
            [TIME_COLUMN, DIFF_COLUMN],
        )


def table_to_stream(table: Table, **run_options: Any) -> list[tuple[int, dict[str, Any], int]]:
    """Every change the table went through: (time, row with ``id``, diff), in time order
    (``run_options``: options of ``pw.run``, e.g. ``terminate_on_error=False``)."""
    (sink,) = capture(table, **run_options)
    out: list[tuple[int, dict[str, Any], int]] = []
    names = list(table._columns)
    for time, batch in sink.batches:
        for row in _rows_of(batch, [ID, *names, DIFF]):
            out.append((time, {"id": row[0], **dict(zip(names, row[1:-1], strict=True))}, row[-1]))
    return out
