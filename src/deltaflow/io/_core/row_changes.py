"""What an input's rows change: rows of each kind become the delta they make.

An input session parses rows and gives them ids; :class:`RowChanges` turns them into the
engine's delta (``_id``, the columns, ``_diff``). Inserts add rows, deletes retract them,
upserts replace the current row of their id, a truncate retracts every current row. Deletes
by key, upserts and truncates need the current row of every id: a session created with
``keep_row_state`` keeps them (:class:`~deltaflow._row_store.RowsById`). A live update's few
upserted rows take a path over their Python values (:meth:`RowChanges.upsert_few`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from deltaflow import _types as t
from deltaflow._id_table import load_hash_tables
from deltaflow._ids import key_ids_of_values
from deltaflow._row_store import RowsById
from deltaflow._small_frames import column_values, frame_of, series_of_array
from deltaflow.engine.batch import DIFF, ID, mark_consolidated, mark_distinct_ids, stack

__all__ = ["KINDS", "RowChanges", "ones", "with_column"]

KINDS = ("insert", "delete", "upsert", "truncate")
_ONES_KEPT = 4096  # a _diff column of ones is sliced from a kept one up to this many rows
_ONES = pl.Series(DIFF, [1] * _ONES_KEPT, dtype=pl.Int64)
_MINUS_ONES = -_ONES


def with_column(frame: pl.DataFrame, column: pl.Series) -> pl.DataFrame:
    """``frame`` with ``column`` added or replaced, without a query."""
    columns = [column if name == column.name else frame[name] for name in frame.columns]
    if column.name not in frame.columns:
        columns.append(column)
    return frame_of(columns)


def _marked(delta: pl.DataFrame, replaced_rows: int, exact: bool) -> pl.DataFrame:
    """An upsert delta (see ``RowsById.changes_of_few``) marked for the engine: its ids are
    distinct when it replaced nothing, and it is consolidated when equal rows were left
    out (when the commit holds just this delta: see ``InputSession._commit``)."""
    if not replaced_rows:
        return mark_distinct_ids(delta)
    return mark_consolidated(delta) if exact else delta


def ones(count: int, sign: int = 1) -> pl.Series:
    """A ``_diff`` column of ``count`` ones, or minus ones (a slice of a kept one for small
    commits)."""
    if count <= _ONES_KEPT:
        return (_ONES if sign > 0 else _MINUS_ONES).slice(0, count)
    # From NumPy: ``extend_constant`` is a Polars query, whose GIL hand-off can cost a few
    # milliseconds when other threads are busy.
    return series_of_array(DIFF, np.full(count, sign, dtype=np.int64))


class RowChanges:
    """The deltas of an input's rows: ``columns`` are its columns and their types,
    ``primary_key`` the columns its ids come from (empty: ids by position or given)."""

    def __init__(
        self, columns: Mapping[str, t.DType], primary_key: Sequence[str], keep_row_state: bool
    ) -> None:
        self.keep_row_state = keep_row_state
        self._names = [ID, *columns, DIFF]
        self._key_types = [(k, columns[k]) for k in primary_key]
        self._column_at = {name: i for i, name in enumerate(columns)}
        self._types = dict(columns)
        # Rows keyed by one int column: the store's id table is keyed by the ids' codes, and
        # serial keys keep it dense (no hashing).
        keys = [(name, dtype.strip_optional()) for name, dtype in self._key_types]
        self._int_key = keys[0][0] if len(keys) == 1 and keys[0][1] == t.INT else None
        self.state = self._new_state()
        if keep_row_state and self._int_key is None:
            # Its hash table will be needed: the import (~0.15 s, ~60 MB) is paid here, not
            # by the source's first row. With an int key it may never be (see _id_table).
            load_hash_tables()

    def _new_state(self) -> RowsById:
        columns = [(n, d.to_polars()) for n, d in self._types.items()]
        return RowsById(ID, columns, int_key=self._int_key)

    def reset(self) -> None:
        """Forget every current row (a new run)."""
        self.state = self._new_state()

    def apply_in_order(
        self, frame: pl.DataFrame, kinds: pl.Series, *, ids_from_key: bool = False
    ) -> list[pl.DataFrame | None]:
        """:meth:`apply_kind` of each run of rows of one kind (``kinds``), in order: when one
        key is upserted and then deleted, the order of the two decides."""
        runs = (kinds != kinds.shift(1)).fill_null(True).cum_sum()
        out: list[pl.DataFrame | None] = []
        for run in runs.unique(maintain_order=True).to_list():
            part = frame.filter(runs == run)
            out.append(self.apply_kind(part, part["_kind"][0], ids_from_key=ids_from_key))
        return out

    def apply_kind(
        self, frame: pl.DataFrame, kind: str, *, ids_from_key: bool = False
    ) -> pl.DataFrame | None:
        """The delta of ``frame``'s rows (with their ids), all of ``kind``; None when they
        change nothing. ``ids_from_key``: the ids were made from the primary key's values
        (not given by the source), which spares the row store some work. Frames are put
        together from their Series (no query: see ``InputSession._delta``)."""
        rows = frame_of([frame[name] for name in self._names[:-1]])
        if kind == "insert":
            if self.keep_row_state:
                self.remember(rows, ids_from_key=ids_from_key)
            return with_column(rows, ones(rows.height))
        if kind == "delete":
            if not self.keep_row_state:
                return with_column(rows, ones(rows.height, -1))
            return self._retractions(self.state.pop(rows[ID]))
        if kind == "truncate":  # the source was emptied: retract every current row
            if not self.keep_row_state:
                raise RuntimeError("truncate rows need a session created with keep_row_state=True")
            return self._retractions(self.state.take_all())
        if kind == "upsert":
            if not self.keep_row_state:
                raise RuntimeError("upsert rows need a session created with keep_row_state=True")
            # Left out: a row followed by another of its id in the batch, and (exact) a row
            # replacing an equal one; what is left is consolidated, and the engine need not
            # do it again (when the commit holds just this delta: see ``InputSession._commit``).
            few = self.state.changes_of_few(rows, DIFF)  # a live update: in Python
            if few is None:
                few = self._upsert_delta(rows, ids_from_key)
            return _marked(*few)
        raise ValueError(f"unknown row kind {kind!r}; expected one of {', '.join(KINDS)}")

    def upsert_few(self, frame: pl.DataFrame) -> pl.DataFrame | None:
        """The upsert delta of a few rows keyed by a primary key, from their Python values:
        ids and changes without the frames in between (a live update's cost is the number of
        such calls). None when a column's values have no exact Python form (the frame path
        takes them)."""
        values = [column_values(frame, name) for name in self._names[1:-1]]
        at = self._column_at
        ids = key_ids_of_values([(values[at[name]], dtype) for name, dtype in self._key_types])
        if ids is None:
            return None
        few = self.state.changes_of_values(ids, values, DIFF)
        return None if few is None else _marked(*few)

    def _upsert_delta(
        self, rows: pl.DataFrame, ids_from_key: bool
    ) -> tuple[pl.DataFrame, int, bool]:
        """:meth:`RowsById.changes_of_few` for any number of rows, by columns: the delta of
        storing ``rows``, how many rows it retracts, and whether equal rows were left out."""
        replaced = self.state.replace(rows, ids_from_key=ids_from_key)
        inserted = with_column(replaced.new, ones(replaced.new.height))
        retractions = self._retractions(replaced.old)
        if retractions is None:
            return inserted, 0, replaced.exact
        if retractions.dtypes == inserted.dtypes:  # same names, in order, by construction
            # One chunk: a two-chunk frame made every later step of a one-row upsert
            # (NumPy views, small-frame paths) copy it, ~0.1-0.3 ms a time. Column by
            # column: DataFrame.rechunk hands the columns to Polars' thread pool, a wait
            # of ~0.1 ms on a busy machine.
            delta = frame_of(
                [
                    old.append(new).rechunk()
                    for old, new in zip(
                        retractions.get_columns(), inserted.get_columns(), strict=True
                    )
                ]
            )
        else:
            delta = stack([retractions, inserted])
        return delta, retractions.height, replaced.exact

    def remember(self, rows: pl.DataFrame, *, ids_from_key: bool = False) -> None:
        """Store ``rows`` (the id and the columns) as the current rows of their ids
        (``ids_from_key``: see :meth:`apply_kind`)."""
        self.state.put(rows, ids_from_key=ids_from_key)

    @staticmethod
    def _retractions(rows: pl.DataFrame | None) -> pl.DataFrame | None:
        """``rows`` (the id and the columns) with a ``_diff`` of -1."""
        if rows is None:
            return None
        return frame_of([*rows.get_columns(), ones(rows.height, -1)])
