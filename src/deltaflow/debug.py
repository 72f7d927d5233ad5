"""Putting small data in and taking results out: markdown, pandas, Polars, printing.

These helpers run only the tables they are given (not every output of the program), on the
same engine as ``pw.run``.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._debug_parsing import (
    _cell_as,
    _dtype_of_series,
    _is_missing,
    _normalize_series,
    _parse_cell,
)
from deltaflow._debug_rendering import (
    _format_value,
    _render,
    _rows_of,
    _series_to_pandas,
    _sort_key,
)
from deltaflow._ids import hash_columns
from deltaflow.column_properties import declared_append_only
from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.boundary import ConnectorStats, Sink, Source, SourceHandle
from deltaflow.engine.runtime import run_outputs
from deltaflow.error_display import user_call, user_stacklevel
from deltaflow.plan import InputNode, OutputNode, Universe, on_clear_graph
from deltaflow.schema import Schema
from deltaflow.table import Table

logger = logging.getLogger("deltaflow.debug")

TIME_COLUMN = "__time__"
DIFF_COLUMN = "__diff__"
_SPECIAL = (TIME_COLUMN, DIFF_COLUMN, "__shard__")
#: How :class:`StreamGenerator` names the stream columns (``_worker`` picks a worker: one
#: process here, so it is read and ignored).
_GENERATOR_COLUMNS = {"_time": TIME_COLUMN, "_diff": DIFF_COLUMN, "_worker": "__shard__"}


# ------------------------------------------------------------------------------------------
# In-memory sources
# ------------------------------------------------------------------------------------------


class StaticSource(Source):
    """Pushes prepared batches, each pinned to its time, as soon as the run starts.

    ``consolidated``: no id occurs twice in a batch and no diff is 0 (rows numbered by
    position, inserted once), so the engine need not check.
    """

    def __init__(
        self, batches: Sequence[tuple[int, pl.DataFrame]], name: str, consolidated: bool = False
    ) -> None:
        self.batches = list(batches)
        self.name = name
        self.consolidated = consolidated

    @property
    def append_only(self) -> bool:
        """Whether the prepared data never deletes a row."""
        return all(bool((batch[DIFF] >= 0).all()) for _, batch in self.batches)

    def start(self, handle: SourceHandle) -> None:
        # Pushed synchronously so that every static time is known before the first is run.
        for time, batch in self.batches:
            handle.push(batch, time=time, consolidated=self.consolidated)
        handle.finish()


def _static_table(
    columns: dict[str, t.DType],
    batches: Sequence[tuple[int, pl.DataFrame]],
    *,
    label: str,
    primary_key: tuple[str, ...] | None = None,
    consolidated: bool = False,
    append_only_columns: frozenset[str] = frozenset(),
) -> Table:
    node = InputNode(
        columns=dict(columns),
        source=StaticSource(batches, label, consolidated=consolidated),
        primary_key=primary_key,
        label=label,
        append_only_columns=append_only_columns,
    )
    return Table(node, _universe_of_keys(batches), primary_key=primary_key)


# Static tables with exactly the same row ids share a universe (as in Pathway), so that the
# columns of one can be used with the other without a join. Forgotten with the graph.
_STATIC_UNIVERSES: dict[tuple[int, int, int], Universe] = {}
on_clear_graph(_STATIC_UNIVERSES.clear)


def _universe_of_keys(batches: Sequence[tuple[int, pl.DataFrame]]) -> Universe:
    frames = [batch.select(ID) for _, batch in batches if batch.height]
    if any(time != 0 or (batch[DIFF] < 0).any() for time, batch in batches if batch.height):
        # An update stream: its rows change over time, so no fixed id set describes them
        # (nor does one make it the same universe as another table, as in Pathway).
        return Universe()
    if not frames:
        # Empty static tables all have the same (empty) set of rows, as in Pathway.
        empty = _STATIC_UNIVERSES.setdefault((0, 0, 0), Universe())
        empty.static_ids = pl.Series(ID, [], dtype=pl.UInt128)
        return empty
    ids = pl.concat(frames)[ID].unique()
    # Order-independent fingerprint of the id set (two seeds: a clash needs both to clash).
    digest = (int(ids.hash(11).sum()), int(ids.hash(29).sum()))
    universe = _STATIC_UNIVERSES.setdefault((ids.len(), *digest), Universe())
    universe.static_ids = ids
    return universe


def _frame_to_batches(
    frame: pl.DataFrame,
    columns: dict[str, t.DType],
    ids: pl.Series,
    times: Sequence[int] | pl.Series | None,
    diffs: Sequence[int] | pl.Series | None,
) -> list[tuple[int, pl.DataFrame]]:
    diff = pl.lit(1, dtype=pl.Int64) if diffs is None else pl.Series(DIFF, diffs, dtype=pl.Int64)
    data = frame.select(ids.alias(ID), *columns, diff.alias(DIFF))
    if times is None:
        return [(0, data)] if data.height else []
    # Pathway's final time (rows held until the inputs end) does not fit an Int64.
    big = any(
        time >= 2**63 for time in (times.to_list() if isinstance(times, pl.Series) else times)
    )
    time_series = pl.Series("__t", times, dtype=pl.UInt64 if big else pl.Int64)
    if (time_series % 2 != 0).any():
        warnings.warn(
            "timestamps are required to be even; all timestamps will be doubled",
            stacklevel=user_stacklevel(),
        )
        time_series = time_series * 2
    data = data.with_columns(time_series)
    batches = []
    for time in sorted(set(time_series.to_list())):
        batches.append((time, data.filter(pl.col("__t") == time).drop("__t")))
    return batches


# ------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------


@user_call
def table_from_markdown(
    table_def: str,
    id_from: list[str] | None = None,
    unsafe_trusted_ids: bool = False,
    schema: type[Schema] | None = None,
    *,
    _stacklevel: int = 1,
    split_on_whitespace: bool = True,
    _new_universe: bool = False,
    _generator_columns: bool = False,
) -> Table:
    """A table from a markdown-like text: a header row of column names, then rows.

    A first column with an empty header gives row labels (ids); ``__time__`` and ``__diff__``
    columns describe an update stream. With ``split_on_whitespace`` cells are separated by
    whitespace as well as ``|``; pass False to keep strings with spaces. ``_stacklevel`` and
    ``_new_universe`` are accepted as Pathway's test helpers pass them: every table built here
    already has a universe of its own, and definition sites are found without a stack level.

    Parameters:
        table_def: the text: a header line, then one line per row.
        id_from: columns whose values give the row ids (instead of labels or positions).
        unsafe_trusted_ids: accepted for compatibility (ids are always checked).
        schema: the column types (else each column's type is guessed from its cells).
        split_on_whitespace: whether whitespace separates cells as well as ``|``.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty | price
        ... pen  | 2   | 1.5
        ... ink  |     | 4.0
        ... ''')
        >>> t.schema.typehints()
        {'name': <class 'str'>, 'qty': int | None, 'price': <class 'float'>}
        >>> pw.debug.compute_and_print(t, include_id=False)
        name | qty | price
        ink  |     | 4.0
        pen  | 2   | 1.5
    """
    _refuse_id_from_with_schema("table_from_markdown", id_from, schema)
    lines = [line for line in table_def.strip("\n").splitlines() if line.strip()]
    # Drop markdown separator rows (|---|:--|); a header of a lone "|" is a table without
    # columns, not a separator.
    lines = [line for line in lines if not re.fullmatch(r"[\s|:+]*-[\s|:\-+]*", line)]
    if not lines:
        raise ValueError("table_from_markdown: the table has no header row")
    github_style = all(
        line.strip().startswith("|") and line.strip().endswith("|") and line.strip() != "|"
        for line in lines
    )
    if github_style:
        lines = [line.strip()[1:-1] for line in lines]
    header_line = lines[0]
    has_ids = header_line.strip().startswith("|")

    def split(line: str) -> list[str]:
        line = line.strip()
        if has_ids and line.startswith("|"):
            line = " " + line  # an empty id cell
        pattern = r"\s*\|\s*|\s+" if split_on_whitespace else r"\s*\|\s*"
        cells = re.split(pattern, line)
        return [c.strip() for c in cells]

    header = split(header_line)
    if has_ids:
        header = header[1:]
    if header == [""]:
        header = []  # row labels only: a table with no columns
    if len(set(header)) != len(header):
        duplicated = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"table_from_markdown: duplicate column names {duplicated}")
    rows: list[list[str]] = []
    labels: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        cells = split(line)
        if not has_ids and len(cells) == len(header) + 1 and number == 2:
            has_ids = True  # rows carry a label the header has no (empty) cell for
        if has_ids:
            labels.append(cells[0])
            cells = cells[1:]
        if not header and cells == [""]:
            cells = []
        if len(cells) != len(header):
            raise ValueError(
                f"table_from_markdown: line {number} has {len(cells)} cells, the "
                f"header has {len(header)} ({', '.join(header)}): {line.strip()!r}"
            )
        rows.append(cells)
    if "id" in header and not has_ids:
        # An "id" column gives the row labels, as a first column with an empty header does.
        position = header.index("id")
        labels = [row.pop(position) for row in rows]
        header = header[:position] + header[position + 1 :]
        has_ids = True
    if _generator_columns:  # StreamGenerator's spelling of the stream columns
        header = [_GENERATOR_COLUMNS.get(h, h) for h in header]
    data_columns = [h for h in header if h not in _SPECIAL]
    if schema is not None:
        expected = schema.column_names()
        if set(expected) != set(data_columns):
            raise ValueError(
                f"table_from_markdown: the schema has columns {expected} but the table has "
                f"{data_columns}"
            )
        dtypes = schema.dtypes()
        values = {c: [_cell_as(r[header.index(c)], dtypes[c], c) for r in rows] for c in expected}
        data_columns = expected
        key = schema.primary_key_columns()
    else:
        values = {c: [_parse_cell(r[header.index(c)]) for r in rows] for c in data_columns}
        dtypes = {c: t.infer_dtype(values[c]) for c in data_columns}
        for c in data_columns:
            # Plain values of several kinds (`a`, `2`, `1.5`): a str column of the texts, as
            # in Pathway.
            if (
                dtypes[c].strip_optional() == t.ANY
                and values[c]
                and all(v is None or type(v) in (int, float, str, bool) for v in values[c])
            ):
                values[c] = [
                    None if v is None else r[header.index(c)]
                    for v, r in zip(values[c], rows, strict=True)
                ]
                dtypes[c] = t.optional(t.STR) if None in values[c] else t.STR
        key = None
    times = [int(r[header.index(TIME_COLUMN)]) for r in rows] if TIME_COLUMN in header else None
    diffs = [int(r[header.index(DIFF_COLUMN)]) for r in rows] if DIFF_COLUMN in header else None
    if diffs is not None and any(d not in (1, -1) for d in diffs):
        raise ValueError("table_from_markdown: __diff__ values must be 1 or -1")
    if _generator_columns:
        times = _generator_times(times, len(rows))
    frame = (
        pl.DataFrame([t.series_from_values(c, values[c], dtypes[c]) for c in data_columns])
        if data_columns
        else pl.DataFrame({"__empty": [0] * len(rows)})
    )
    if id_from:
        key = list(id_from)
    for column in key or ():
        if column not in dtypes:
            raise ValueError(f"table_from_markdown: id column {column!r} is not a column")
    if key:
        ids = hash_columns(frame, [(c, dtypes[c]) for c in key])
    elif has_ids:
        label_values = [_parse_cell(label) for label in labels]
        label_type = t.infer_dtype(label_values)
        label_frame = pl.DataFrame([t.series_from_values("label", label_values, label_type)])
        ids = hash_columns(label_frame, [("label", label_type)])
    else:
        ids = _position_ids(len(rows))
    batches = _frame_to_batches(frame, dtypes, ids, times, diffs)
    return _static_table(
        dtypes,
        batches,
        label="table_from_markdown",
        primary_key=tuple(key) if key else None,
        append_only_columns=declared_append_only(schema),
    )


parse_to_table = table_from_markdown


def _refuse_id_from_with_schema(caller: str, id_from: Any, schema: Any) -> None:
    """``id_from`` and ``schema`` cannot be combined (as in Pathway): the row ids come from
    ``id_from`` or from the schema's primary key."""
    if id_from is not None and schema is not None:
        raise ValueError(
            f"{caller}: give id_from or schema, not both (with a schema, its primary-key "
            "columns give the row ids)"
        )


def _position_ids(count: int, start: int = 0, step: int = 1) -> pl.Series:
    """Ids of unlabelled rows: the ids rows labelled 0, 1, 2 ... would get."""
    positions = pl.int_range(start, start + count * step, step, dtype=pl.Int64, eager=True)
    return hash_columns(pl.DataFrame({"p": positions}), [("p", t.INT)])


# ------------------------------------------------------------------------------------------
# pandas / Polars / rows
# ------------------------------------------------------------------------------------------


@user_call
def table_from_polars(
    df: pl.DataFrame,
    id_from: list[str] | None = None,
    unsafe_trusted_ids: bool = False,
    schema: type[Schema] | None = None,
) -> Table:
    """A table from a Polars DataFrame (``__time__``/``__diff__`` columns make a stream).

    Parameters:
        df: the data frame.
        id_from: columns whose values give the row ids (else the row positions do).
        unsafe_trusted_ids: accepted for compatibility (ids are always checked).
        schema: the column types (else they follow the frame's dtypes).

    Examples:
        >>> import deltaflow as pw, polars as pl
        >>> df = pl.DataFrame({"name": ["pen", "ink"], "qty": [2, 6]})
        >>> t = pw.debug.table_from_polars(df, id_from=["name"])
        >>> pw.debug.compute_and_print(t.select(t.qty), include_id=False)
        qty
        2
        6
    """
    data_columns = [c for c in df.columns if c not in _SPECIAL]
    if schema is not None:
        missing = [c for c in schema.column_names() if c not in data_columns]
        if missing:
            raise ValueError(f"table_from_polars: the frame lacks schema columns {missing}")
        dtypes = schema.dtypes()
        key = schema.primary_key_columns()
    else:
        dtypes = {c: _dtype_of_series(df[c]) for c in data_columns}
        key = None
    frame = (
        pl.DataFrame([_normalize_series(df[c], d) for c, d in dtypes.items()])
        if dtypes
        else pl.DataFrame({"__empty": [0] * df.height})
    )
    key = list(id_from) if id_from else key
    ids = hash_columns(frame, [(c, dtypes[c]) for c in key]) if key else _position_ids(df.height)
    times = df[TIME_COLUMN] if TIME_COLUMN in df.columns else None
    diffs = df[DIFF_COLUMN] if DIFF_COLUMN in df.columns else None
    batches = _frame_to_batches(frame, dtypes, ids, times, diffs)
    return _static_table(
        dtypes,
        batches,
        label="table_from_polars",
        primary_key=tuple(key) if key else None,
        consolidated=not key and diffs is None,
    )


@user_call
def table_from_pandas(
    df: Any,
    id_from: list[str] | None = None,
    unsafe_trusted_ids: bool = False,
    schema: type[Schema] | None = None,
    _stacklevel: int = 1,
    _new_universe: bool = False,
) -> Table:
    """A table from a pandas DataFrame; the index gives the ids (as markdown labels do).
    ``_stacklevel`` and ``_new_universe`` are accepted and change nothing (see
    :func:`table_from_markdown`).

    Parameters:
        df: the data frame; ``__time__``/``__diff__`` columns make an update stream.
        id_from: columns whose values give the row ids (instead of the index).
        unsafe_trusted_ids: accepted for compatibility (ids are always checked).
        schema: the column types (else they follow the frame's dtypes).

    Examples:
        >>> import deltaflow as pw, pandas as pd
        >>> df = pd.DataFrame({"name": ["pen", "ink"], "qty": [2, 6]})
        >>> t = pw.debug.table_from_pandas(df)
        >>> pw.debug.compute_and_print(t.select(t.name, double=t.qty * 2), include_id=False)
        name | double
        ink  | 12
        pen  | 4
    """
    import pandas as pd

    _refuse_id_from_with_schema("table_from_pandas", id_from, schema)
    columns: dict[str, pl.Series] = {}
    for name in df.columns:
        column = df[name]
        if column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype):
            values = [None if _is_missing(v) else v for v in column.tolist()]
            dtype = (
                schema.dtypes()[name]
                if schema is not None and name in schema
                else t.infer_dtype(values)
            )
            columns[str(name)] = t.series_from_values(str(name), values, dtype)
        else:
            if isinstance(column.dtype, pd.DatetimeTZDtype):
                # Fixed offsets (+01:30) are no time zone Polars knows; the instants are
                # what a DateTimeUtc column keeps.
                column = column.dt.tz_convert("UTC")
            series = pl.from_pandas(column, nan_to_null=True)
            columns[str(name)] = series.rename(str(name))
    frame = pl.DataFrame(list(columns.values())) if columns else pl.DataFrame()
    table_schema = schema
    if frame.width == 0:
        frame = pl.DataFrame({"__empty": [0] * len(df)})
    result_key = list(id_from) if id_from else (schema.primary_key_columns() if schema else None)
    if result_key:
        return table_from_polars(frame, id_from=result_key, schema=table_schema)
    positions = isinstance(df.index, pd.RangeIndex)  # distinct labels, hence distinct ids
    if positions:
        ids = _position_ids(len(df), df.index.start, df.index.step)
    else:
        if df.index.dtype.kind in "iu":
            index_series = pl.Series("i", df.index.to_numpy(), dtype=pl.Int64)
            index_type: t.DType = t.INT
        else:
            index_values = [v.item() if hasattr(v, "item") else v for v in df.index.tolist()]
            index_type = t.infer_dtype(index_values)
            index_series = t.series_from_values("i", index_values, index_type)
        ids = hash_columns(pl.DataFrame([index_series]), [("i", index_type)])
    data_columns = [c for c in frame.columns if c not in _SPECIAL and c != "__empty"]
    if table_schema is not None:
        dtypes = table_schema.dtypes()
    else:
        dtypes = {c: _dtype_of_series(frame[c]) for c in data_columns}
    data = (
        pl.DataFrame([_normalize_series(frame[c], d) for c, d in dtypes.items()])
        if dtypes
        else pl.DataFrame({"__empty": [0] * frame.height})
    )
    times = frame[TIME_COLUMN] if TIME_COLUMN in frame.columns else None
    diffs = frame[DIFF_COLUMN] if DIFF_COLUMN in frame.columns else None
    batches = _frame_to_batches(data, dtypes, ids, times, diffs)
    return _static_table(
        dtypes, batches, label="table_from_pandas", consolidated=positions and diffs is None
    )


@user_call
def table_from_rows(
    schema: type[Schema],
    rows: list[tuple],
    unsafe_trusted_ids: bool = False,
    is_stream: bool = False,
) -> Table:
    """A table from tuples of values in schema order (plus time and diff with ``is_stream``).

    Without ``is_stream``, rows may carry more values than the schema has columns, all rows
    equally many: the extra ones are left out, as Pathway does.

    Parameters:
        schema: the column names and types, in the order of the tuples' values.
        rows: the rows, each a tuple of values (then time and diff with ``is_stream``).
        unsafe_trusted_ids: accepted for compatibility (ids are always checked).
        is_stream: whether each tuple ends with the row's time and diff (+1 or -1).

    Examples:
        >>> import deltaflow as pw
        >>> class Stock(pw.Schema):
        ...     item: str
        ...     qty: int
        >>> t = pw.debug.table_from_rows(Stock, [("pen", 2, 2, 1), ("pen", 2, 4, -1)],
        ...                              is_stream=True)
        >>> pw.debug.compute_and_print_update_stream(t, include_id=False)
        item | qty | __time__ | __diff__
        pen  | 2   | 2        | 1
        pen  | 2   | 4        | -1
    """
    names = schema.column_names()
    dtypes = schema.dtypes()
    width = len(names) + (2 if is_stream else 0)
    lengths = {len(row) for row in rows}
    if not is_stream and len(lengths) > 1 and min(lengths) >= width:
        raise ValueError(
            f"table_from_rows: rows have different numbers of values "
            f"({sorted(lengths)}); give {width} per row ({', '.join(names)})"
        )
    for number, row in enumerate(rows):
        if len(row) < width or (is_stream and len(row) != width):
            raise ValueError(
                f"table_from_rows: row {number} has {len(row)} values, expected "
                f"{width} ({', '.join(names)}{', time, diff' if is_stream else ''})"
            )
    frame = (
        pl.DataFrame(
            [t.series_from_values(n, [r[i] for r in rows], dtypes[n]) for i, n in enumerate(names)]
        )
        if names
        else pl.DataFrame({"__empty": [0] * len(rows)})
    )
    key = schema.primary_key_columns()
    ids = hash_columns(frame, [(c, dtypes[c]) for c in key]) if key else _position_ids(len(rows))
    times = [r[-2] for r in rows] if is_stream else None
    diffs = [r[-1] for r in rows] if is_stream else None
    batches = _frame_to_batches(frame, dtypes, ids, times, diffs)
    return _static_table(
        dtypes,
        batches,
        label="table_from_rows",
        primary_key=tuple(key) if key else None,
        consolidated=not key and not is_stream,
    )


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


def _generator_times(times: list[int] | None, count: int) -> list[int]:
    """The times of a :class:`StreamGenerator` table: rows without a ``_time`` all come at
    the first time, 2; times must be even (odd ones are engine-internal), so when any is
    odd every time is doubled, with a warning, as Pathway does."""
    if times is None:
        return [2] * count
    if any(time % 2 for time in times):
        warnings.warn(
            "StreamGenerator: a _time value is odd, and the times of a stream are even; "
            "every _time of this table is doubled",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return [2 * time for time in times]
    return times


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
