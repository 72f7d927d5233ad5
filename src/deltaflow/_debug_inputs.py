"""Tables built from data written in the program, for ``pw.debug``: markdown, pandas and
Polars frames, lists of rows, each turned into a static source whose batches are pinned to
their times.

The public functions are imported from :mod:`deltaflow.debug`; they are here, apart from the
functions that compute tables and print or return their contents
(:mod:`deltaflow._debug_outputs`), because building an input and reading an output share
nothing but the table in between.
"""

from __future__ import annotations

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
from deltaflow._ids import hash_columns
from deltaflow.column_properties import declared_append_only
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.boundary import Source, SourceHandle
from deltaflow.error_display import user_call, user_stacklevel
from deltaflow.plan import InputNode, Universe, on_clear_graph
from deltaflow.schema import Schema
from deltaflow.table import Table

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
            handle.stats.rows_read += batch.height  # read from the program's own data
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
