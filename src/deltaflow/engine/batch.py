"""Delta batches: Polars frames of changes with ``_id``, the columns and ``_diff``.

Batches leaving operators are consolidated (:func:`consolidate`). A batch in which no id
occurs twice is consolidated as it is; that is known without looking at big batches in the
common static cases — rows numbered by position (sources push them with
``consolidated=True``), one new row per group, pairs of such rows from a join, projections and
filters of such batches — and recorded with :func:`mark_distinct_ids`, which spares the
uniqueness check (a hash of every id) at every step of the pipeline.
"""

from __future__ import annotations

import functools
import operator
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._ids import ID_DTYPE
from deltaflow._small_frames import NUMBER_TYPES, column_values
from deltaflow._small_frames import extend as extend
from deltaflow._small_frames import project as project

ID = "_id"
DIFF = "_diff"
SMALL_BATCH = 1024  # batches up to this many rows are consolidated in Python
MEDIUM_BATCH = 8192  # up to this many rows, duplicates are found by row hash in Python
_SEED = 0xC0DE
STREAMING_ROWS = 50_000  # queries over at least this many rows run on Polars' streaming engine

_EXACT = frozenset(
    [
        *NUMBER_TYPES,
        pl.UInt128,
        pl.String,
        pl.Boolean,
        pl.Binary,
        pl.Object,
        pl.Null,
    ]
)
_NAN = ("nan",)


def python_exact(dtype: pl.DataType) -> bool:
    """Whether values of ``dtype`` survive a round trip through Python values unchanged.

    Datetimes and durations do not (``rows()`` gives microsecond ``datetime`` objects), nor do
    nested types; the Python fast paths are used only for exact columns.
    """
    return dtype in _EXACT


def row_key(
    row: Sequence[Any],
    positions: Sequence[int],
    objects: Sequence[int] = (),
    floats: Sequence[int] = (),
) -> tuple[Any, ...]:
    """What makes two rows equal: the values at ``positions``; Python objects compared by
    their canonical form, NaN equal to NaN (as in Polars' group_by)."""
    return row_key_function(positions, objects, floats)(row)


def row_key_function(
    positions: Sequence[int], objects: Sequence[int] = (), floats: Sequence[int] = ()
) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """:func:`row_key` for rows of one layout, as a fast function."""
    positions = list(positions)
    if len(positions) == 1:
        only = positions[0]

        def plain(row: Sequence[Any]) -> tuple[Any, ...]:
            return (row[only],)
    elif positions:
        getter = operator.itemgetter(*positions)
        plain = getter  # type: ignore[assignment]
    else:

        def plain(row: Sequence[Any]) -> tuple[Any, ...]:
            return ()

    if not objects and not floats:
        return plain
    object_set, float_set = set(objects), set(floats)

    def careful(row: Sequence[Any]) -> tuple[Any, ...]:
        if not any(row[i] != row[i] for i in float_set) and not object_set:
            return plain(row)
        values = []
        for i in positions:
            value = row[i]
            if i in object_set:
                value = t.canonical_key(value)
            elif i in float_set and value != value:
                value = _NAN
            values.append(value)
        return tuple(values)

    return careful


# Batches known to hold every id at most once, by object identity (weak: the entry goes with
# the frame). Polars frames are immutable for the engine (nothing here changes one in place),
# so the knowledge stays true for the frame's life.
_DISTINCT: dict[int, weakref.ref[pl.DataFrame]] = {}


def _forget(key: int, ref: weakref.ref[pl.DataFrame]) -> None:
    if _DISTINCT.get(key) is ref:
        del _DISTINCT[key]


def mark_distinct_ids(batch: pl.DataFrame) -> pl.DataFrame:
    """Record that no id occurs twice in ``batch`` (and return it).

    For batches that are so by construction (position ids, one row per group, pairs of
    distinct ids ...): :func:`consolidate` and the operators downstream then skip the
    uniqueness check, which costs a hash of every id.
    """
    key = id(batch)
    _DISTINCT[key] = weakref.ref(batch, functools.partial(_forget, key))
    return batch


def has_distinct_ids(batch: pl.DataFrame) -> bool:
    """Whether ``batch`` was marked by :func:`mark_distinct_ids`."""
    ref = _DISTINCT.get(id(batch))
    return ref is not None and ref() is batch


_CONSOLIDATED: dict[int, weakref.ref[pl.DataFrame]] = {}


def _forget_consolidated(key: int, ref: weakref.ref[pl.DataFrame]) -> None:
    if _CONSOLIDATED.get(key) is ref:
        del _CONSOLIDATED[key]


def mark_consolidated(batch: pl.DataFrame) -> pl.DataFrame:
    """Record that ``batch`` is consolidated although an id may occur in it twice (and return
    it): no (id, row) pair occurs twice and no diff is 0, e.g. the retraction of a row beside
    the different row replacing it. :func:`consolidate` then returns it as it is."""
    key = id(batch)
    _CONSOLIDATED[key] = weakref.ref(batch, functools.partial(_forget_consolidated, key))
    return batch


def is_marked_consolidated(batch: pl.DataFrame) -> bool:
    """Whether ``batch`` was marked by :func:`mark_consolidated`."""
    ref = _CONSOLIDATED.get(id(batch))
    return ref is not None and ref() is batch


def same_ids_as(source: pl.DataFrame, derived: pl.DataFrame) -> pl.DataFrame:
    """Mark ``derived`` (rows of ``source`` with the same ids, e.g. a projection or a filter)
    as having distinct ids when ``source`` has; return it."""
    if has_distinct_ids(source):
        mark_distinct_ids(derived)
    return derived


def empty_batch(columns: Mapping[str, t.DType]) -> pl.DataFrame:
    """A batch with no rows and the right column types."""
    schema: dict[str, pl.DataType] = {ID: ID_DTYPE}
    schema.update({name: dtype.to_polars() for name, dtype in columns.items()})
    schema[DIFF] = pl.Int64()
    return pl.DataFrame(schema=schema)


def stack(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The rows of frames with the same columns, one after the other.

    Frames of one stream nearly always have the same column types: a plain vertical concat
    is then two to three times cheaper than a relaxed one (which looks for common types), a
    difference that counts on the streaming path. When a type differs (an all-None column
    against typed ones, say), the relaxed concat takes over."""
    try:
        return pl.concat(frames, how="vertical")
    except pl.exceptions.SchemaError:
        return pl.concat(frames, how="vertical_relaxed")


def concat_batches(batches: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Stack batches of the same columns (not consolidated)."""
    batches = [b for b in batches if b.height]
    if len(batches) == 1:
        return batches[0]
    return stack(batches) if batches else batches  # type: ignore[return-value]


def consolidate(batch: pl.DataFrame) -> pl.DataFrame:
    """Sum the diffs of identical (id, row) pairs and drop the ones that cancel out.

    The common case, every id appearing once, costs one uniqueness check, or nothing for a
    batch marked by :func:`mark_distinct_ids`; a batch found to have distinct ids is marked.
    """
    if batch.height == 0:
        return batch
    distinct = has_distinct_ids(batch)
    if not distinct and is_marked_consolidated(batch):
        return batch
    if batch.height <= SMALL_BATCH and not distinct:
        small = _consolidate_small(batch)
        if small is not None:
            return small
    if distinct or batch.height == 1 or batch[ID].n_unique() == batch.height:
        if _has_zero_diff(batch):
            return mark_distinct_ids(batch.filter(pl.col(DIFF) != 0))
        return mark_distinct_ids(batch)
    if batch.height <= MEDIUM_BATCH:
        hashed = _consolidate_hashed(batch)
        if hashed is not None:
            return hashed
    names = [c for c in batch.columns if c != DIFF]
    object_columns = [c for c in names if batch.schema[c] == pl.Object]
    work = batch
    keys = list(names)
    if object_columns:
        # Python objects cannot be grouped by Polars: group by a canonical text of them.
        for column in object_columns:
            work = work.with_columns(
                pl.Series(
                    f"__key_{column}",
                    [repr(t.canonical_key(v)) for v in work[column].to_list()],
                    dtype=pl.String,
                )
            )
        keys = [c for c in names if c not in object_columns] + [
            f"__key_{c}" for c in object_columns
        ]
        summed = (
            work.with_row_index("__row")
            .group_by(keys, maintain_order=True)
            .agg(pl.col("__row").first(), pl.col(DIFF).sum())
        )
        summed = summed.filter(pl.col(DIFF) != 0)
        rows = (
            batch.drop(DIFF)[summed["__row"].to_list()]
            if summed.height
            else batch.drop(DIFF).head(0)
        )
        return rows.with_columns(summed[DIFF].alias(DIFF)).select(batch.columns)
    summed = work.group_by(keys, maintain_order=True).agg(pl.col(DIFF).sum())
    return summed.filter(pl.col(DIFF) != 0).select(batch.columns)


def _has_zero_diff(batch: pl.DataFrame) -> bool:
    """Whether a row of ``batch`` has diff 0; for a small batch in Python (a Polars
    comparison costs tens of microseconds whatever the size, the whole of a one-row step)."""
    if batch.height <= SMALL_BATCH:
        return 0 in column_values(batch, DIFF)
    return bool((batch.get_column(DIFF) == 0).any())


def _consolidate_small(batch: pl.DataFrame) -> pl.DataFrame | None:
    """:func:`consolidate` for up to ``SMALL_BATCH`` rows, in Python (a fraction of the
    Polars calls' fixed cost); None when a column does not convert exactly to Python values.

    Only rows sharing an id with another row can be equal to it (batches hold (id, row)
    pairs), so only those rows are compared: in a typical streaming delta (a group's old
    row retracted, its new row inserted) the pairs differ and the batch stays as it is."""
    diffs = batch[DIFF].to_list()
    ids = batch[ID].to_list()
    counts: dict[Any, int] = {}
    for value in ids:
        counts[value] = counts.get(value, 0) + 1
    if len(counts) == len(ids):
        return mark_distinct_ids(batch.filter(pl.col(DIFF) != 0) if 0 in diffs else batch)
    schema = batch.schema
    if not all(python_exact(dtype) for dtype in schema.values()):
        return None
    names = [name for name in schema if name != DIFF]
    repeated = [i for i, value in enumerate(ids) if counts[value] > 1]
    columns = [batch[name].to_list() for name in names]
    objects = [i for i, name in enumerate(names) if schema[name] == pl.Object]
    floats = [i for i, name in enumerate(names) if schema[name] in (pl.Float32, pl.Float64)]
    key_of = row_key_function(range(len(names)), objects, floats)
    totals = list(diffs)
    dropped: set[int] = {i for i, diff in enumerate(diffs) if diff == 0}
    pick = operator.itemgetter(*repeated)  # at least two rows share an id
    first: dict[Any, int] = {}
    for index, row in zip(repeated, zip(*(pick(column) for column in columns)), strict=True):
        key = key_of(row)
        slot = first.get(key)
        if slot is None:
            first[key] = index
        else:
            totals[slot] += totals[index]
            dropped.add(index)
    dropped.update(slot for slot in first.values() if totals[slot] == 0)
    if not dropped:
        return batch
    chosen = [i for i in range(len(ids)) if i not in dropped]
    return batch[chosen].with_columns(pl.Series(DIFF, [totals[i] for i in chosen], dtype=pl.Int64))


def sum_equal_rows(
    frame: pl.DataFrame,
    rows: Iterable[tuple[Any, ...]],
    key_of: Callable[[tuple[Any, ...]], Any],
    diffs: list[int],
) -> pl.DataFrame:
    """Consolidate ``frame`` in Python: rows with equal ``key_of(row)`` become their first
    occurrence with the summed diff, and rows summing to zero go (``rows`` are ``frame``'s rows,
    ``diffs`` its ``_diff`` values)."""
    slots: dict[Any, int] = {}
    keep: list[int] = []
    totals: list[int] = []
    for index, row in enumerate(rows):
        key = key_of(row)
        slot = slots.get(key)
        if slot is None:
            slots[key] = len(keep)
            keep.append(index)
            totals.append(diffs[index])
        else:
            totals[slot] += diffs[index]
    chosen = [i for i, total in zip(keep, totals, strict=True) if total != 0]
    if len(chosen) == frame.height:
        return frame
    sums = [total for total in totals if total != 0]
    return frame[chosen].with_columns(pl.Series(DIFF, sums, dtype=pl.Int64))


def value_hashes(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series | None:
    """One hash per row of its values in ``columns`` (equal values, equal hashes); None when
    there are no such columns or their values cannot be hashed (Python objects)."""
    if not columns or any(frame.schema[c] == pl.Object for c in columns):
        return None
    try:
        return frame.select(pl.struct(list(columns)).hash(_SEED)).to_series()
    except pl.exceptions.PolarsError:
        return None


def _consolidate_hashed(batch: pl.DataFrame) -> pl.DataFrame | None:
    """:func:`consolidate` for a few thousand rows: group rows by one Polars row hash in Python
    (cheaper than a multi-column group_by); rows sharing a hash are compared exactly. None when
    that is not possible (Python-object columns, or columns without exact Python values where
    hashes repeat)."""
    schema = batch.schema
    names = list(schema)
    diff_at = names.index(DIFF)
    hashes = value_hashes(batch, [n for n in names if n != DIFF])
    if hashes is None:
        return None
    diffs = batch[DIFF].to_list()
    slots: dict[int, int] = {}
    keep: list[int] = []
    totals: list[int] = []
    shared: dict[int, list[int]] = {}
    for index, (hashed, diff) in enumerate(zip(hashes.to_list(), diffs, strict=True)):
        slot = slots.get(hashed)
        if slot is None:
            slots[hashed] = len(keep)
            keep.append(index)
            totals.append(diff)
        else:
            totals[slot] += diff
            shared.setdefault(slot, [keep[slot]]).append(index)
    if shared:
        if not all(python_exact(dtype) for dtype in schema.values()):
            return None
        positions = [i for i in range(len(names)) if i != diff_at]
        floats = [i for i in positions if schema[names[i]] in (pl.Float32, pl.Float64)]
        members = sorted({i for group in shared.values() for i in group})
        rows = dict(zip(members, batch[members].rows(), strict=True))
        for slot, group in shared.items():
            # Equal hashes almost always mean equal rows; split the group if they do not.
            sums: dict[tuple[Any, ...], list[int]] = {}
            for index in group:
                entry = sums.setdefault(row_key(rows[index], positions, (), floats), [index, 0])
                entry[1] += diffs[index]
            first, *others = sums.values()
            totals[slot] = first[1]
            for index, total in others:
                keep.append(index)
                totals.append(total)
    chosen = sorted((i, total) for i, total in zip(keep, totals, strict=True) if total != 0)
    if len(chosen) == batch.height:
        return batch
    return batch[[i for i, _ in chosen]].with_columns(
        pl.Series(DIFF, [total for _, total in chosen], dtype=pl.Int64)
    )


def collect(query: pl.LazyFrame, rows: int) -> pl.DataFrame:
    """Run a query over about ``rows`` input rows.

    Big inputs go to Polars' streaming engine (its group_by and join are several times faster
    than the in-memory engine's on millions of rows), smaller ones to the in-memory engine,
    whose fixed cost is lower.
    """
    return query.collect(engine="streaming" if rows >= STREAMING_ROWS else "in-memory")


def with_diff(frame: pl.DataFrame, diff: int) -> pl.DataFrame:
    return frame.with_columns(pl.lit(diff, dtype=pl.Int64).alias(DIFF))


def negate(batch: pl.DataFrame) -> pl.DataFrame:
    return batch.with_columns((-pl.col(DIFF)).alias(DIFF))


def consolidate_rows(
    frame: pl.DataFrame, ignore: Sequence[str] = (), id_column: str = ID
) -> pl.DataFrame:
    """Sum the diffs of equal rows and drop the ones that cancel out.

    Columns in ``ignore`` (e.g. the insertion time) do not take part in equality; the smallest
    of their values is kept. ``id_column`` holds the rows' ids: when no id repeats, no rows
    are equal (one uniqueness check instead of grouping by every column).
    """
    if frame.height <= 1:
        return frame.filter(pl.col(DIFF) != 0) if frame.height else frame
    if id_column in frame.columns and frame[id_column].n_unique() == frame.height:
        return frame.filter(pl.col(DIFF) != 0)
    ignored = [c for c in ignore if c in frame.columns]
    if frame.height <= 64 and not ignored:
        return _consolidate_rows_small(frame)
    names = [c for c in frame.columns if c != DIFF and c not in ignored]
    objects = [c for c in names if frame.schema[c] == pl.Object]
    work = frame.with_row_index("__row")
    keys = [c for c in names if c not in objects]
    if objects:
        work = work.with_columns(
            [
                pl.Series(
                    f"__obj_{c}",
                    [repr(t.canonical_key(v)) for v in frame[c].to_list()],
                    dtype=pl.String,
                )
                for c in objects
            ]
        )
        keys += [f"__obj_{c}" for c in objects]
    aggs = [pl.col("__row").first(), pl.col(DIFF).sum()]
    aggs += [pl.col(c).min().alias(f"__min_{c}") for c in ignored]
    summed = work.group_by(keys, maintain_order=True).agg(aggs).filter(pl.col(DIFF) != 0)
    rows = frame.drop(DIFF)[summed["__row"]]
    rows = rows.with_columns(
        summed[DIFF].alias(DIFF), *[summed[f"__min_{c}"].alias(c) for c in ignored]
    )
    return rows.select(frame.columns)


def _consolidate_rows_small(frame: pl.DataFrame) -> pl.DataFrame:
    """``consolidate_rows`` for a few rows: in Python, saving several Polars calls."""
    objects = any(dtype == pl.Object for dtype in frame.schema.values())

    def key_of(row: tuple[Any, ...]) -> Any:
        return tuple(t.canonical_key(v) for v in row) if objects else row

    return sum_equal_rows(frame, frame.drop(DIFF).iter_rows(), key_of, frame[DIFF].to_list())
