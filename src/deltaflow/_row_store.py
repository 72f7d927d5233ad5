"""The current row of every id, stored by column and kept out of the cyclic collector's sight.

An input session that takes upserts and key-only deletions must know the current row of every
id. Storing it costs little per row beyond what the insert path already pays when the rows
stay in columns: each id is split into its two 64-bit halves (for the whole batch at once), a
:class:`~deltaflow._id_table.IdTable` maps ids to slot numbers a batch at a time, and every
column keeps its values by slot (:mod:`deltaflow._stored_columns`: numbers in NumPy arrays,
text as Polars Series). A batch is then stored, and the rows it replaces are read back as a
frame, with one array access or gather per column: no Python object is made per row for
numbers or text, and no 128-bit id becomes a Python integer.

Garbage collection: a ``dict[id, tuple]`` of millions of rows stalls live updates (CPython
tracks such a dict again, in the youngest generation, as soon as a fresh tuple is stored in
it, so young collections walk every entry: ~45 ms at 2M rows). Here the ids and the values
sit in NumPy arrays and Polars Series, which the collector does not traverse. Freed slots
are reused.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from deltaflow._arrays import enlarged
from deltaflow._id_table import IdTable
from deltaflow._ids import (
    HALF_64,
    ID_DTYPE,
    LOW_64,
    ids_of_int_key_codes,
    int_key_code,
    int_key_codes,
)
from deltaflow._small_frames import INT64, ListFrame, frame_of, series_of_array
from deltaflow._stored_columns import stored_column

__all__ = ["Replaced", "RowsById", "id_halves", "ids_of_halves"]

_START = 1024  # slots allocated at first; grown by half as needed
#: Up to this many ids are split in Python: a Polars query costs more than that.
_PYTHON_IDS = 64
#: Up to this many rows, :meth:`RowsById.changes_of_few` works on Python values: a NumPy or
#: Polars call on a frame of one row costs more than the row's own work.
FEW_ROWS = 8


def id_halves(ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The low and the high 64 bits of each id (``UInt128``), as NumPy arrays."""
    if len(ids) <= _PYTHON_IDS:
        return _halves_of_ints(ids.to_list())
    low = ids.cast(pl.UInt64, wrap_numerical=True).to_numpy()
    high = (ids // HALF_64).cast(pl.UInt64).to_numpy()
    return low, high


def _halves_of_ints(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`id_halves` of a few 128-bit values given as Python ints."""
    low = np.array([v & LOW_64 for v in values], dtype=np.uint64)
    return low, np.array([v >> 64 for v in values], dtype=np.uint64)


def ids_of_halves(low: np.ndarray, high: np.ndarray, name: str) -> pl.Series:
    """The ids (``UInt128``) whose :func:`id_halves` are ``low`` and ``high``."""
    low_ = pl.lit(series_of_array("lo", np.ascontiguousarray(low))).cast(ID_DTYPE)
    high_ = pl.lit(series_of_array("hi", np.ascontiguousarray(high))).cast(ID_DTYPE)
    return pl.select((high_ * pl.lit(HALF_64, dtype=ID_DTYPE) + low_).alias(name)).to_series()


class Replaced(NamedTuple):
    """What :meth:`RowsById.replace` did."""

    #: The rows current before for ids of the frame (None: none), except those replaced by
    #: an equal row.
    old: pl.DataFrame | None
    #: The rows of the frame that changed something: without a row followed by another of
    #: its id (the later one is kept) and, when ``exact``, without a row equal to the one
    #: it replaced.
    new: pl.DataFrame
    #: Whether equal rows were left out; when not (columns of Python objects), ``old`` and
    #: ``new`` may hold such a pair, which consolidation cancels.
    exact: bool


class RowsById:
    """The current row of every id of an input: a batch at a time, by column.

    ``id_name`` names the id column (``UInt128``) of the frames given and returned; ``columns``
    the stored columns and their types. Frames returned hold the id column then ``columns``.

    ``int_key``: the column (among ``columns``) of an int primary key. The id table is then
    keyed by each id's :func:`~deltaflow._ids.int_key_code` (a bijection of ids; a key's own
    value for the id of an int key), so that serial keys keep the table in its dense mode (see
    :mod:`deltaflow._id_table`): no hashing, and ~8 bytes an id.
    """

    __slots__ = ("_columns", "_free", "_id_name", "_ids", "_int_key", "_next", "_size", "_stamp")

    def __init__(
        self,
        id_name: str,
        columns: Sequence[tuple[str, pl.DataType]],
        *,
        int_key: str | None = None,
    ) -> None:
        self._id_name = id_name
        self._columns = [stored_column(name, dtype) for name, dtype in columns]
        self._int_key = int_key
        self._ids = IdTable()  # id (or its code) -> slot
        self.clear()

    def __len__(self) -> int:
        return len(self._ids)

    def clear(self) -> None:
        self._ids.clear()
        self._next = 0  # slots below this have been used
        self._size = 0  # slots allocated
        self._free = array("q")  # slots freed, reused first
        self._stamp = np.empty(0, dtype=np.int64)  # scratch, by slot: see _last_of_each
        for column in self._columns:
            column.reset()

    def put(self, frame: pl.DataFrame, *, ids_from_key: bool = False) -> None:
        """Store the rows of ``frame`` (the id column and the stored columns) as the current
        rows of their ids; of two rows with one id, the later one. ``ids_from_key``: as for
        :meth:`replace`."""
        self.replace(frame, keep_replaced=False, ids_from_key=ids_from_key)

    def replace(
        self, frame: pl.DataFrame, *, keep_replaced: bool = True, ids_from_key: bool = False
    ) -> Replaced:
        """:meth:`put`, telling which rows were current before for the ids of ``frame``.

        ``ids_from_key``: the ids of ``frame`` are those of its ``int_key`` values, which are
        then their codes as they stand (saves undoing the hash of every id)."""
        if frame.height == 0:
            return Replaced(None, frame, True)
        key = frame[self._int_key] if ids_from_key and self._int_key is not None else None
        if key is not None and not key.null_count():
            low = key.cast(pl.Int64).to_numpy().view(np.uint64)  # the code: v as unsigned
            high = np.zeros(len(low), dtype=np.uint64)
        else:
            low, high = self._table_keys(frame[self._id_name])
        slots, present = self._ids.find_or_add(low, high, self._take_for)
        found = np.where(present, slots, -1)  # the slots of rows there before
        last = self._last_of_each(slots) if len(slots) > 1 else None
        if last is not None:  # an id twice: its last row is the one kept
            slots, found, present = slots[last], found[last], present[last]
            frame = frame[last]
        new = [column.values_of(frame[column.name]) for column in self._columns]
        replaced, stored, exact = None, frame, True
        if keep_replaced and present.any():
            old_slots = found[present]
            ids = frame[self._id_name]
            if len(old_slots) < len(found):
                ids = ids.filter(series_of_array("present", present))
            # A row replaced by an equal one is no change: left out of both.
            same = self._same(
                old_slots, [c.pick(v, present) for c, v in zip(self._columns, new, strict=True)]
            )
            if same is None:
                exact = False
            elif same.any():
                changed = ~same
                old_slots = old_slots[changed]
                ids = ids.filter(series_of_array("changed", changed))
                unchanged = np.zeros(len(found), dtype=bool)
                unchanged[np.flatnonzero(present)[same]] = True
                stored = frame.filter(series_of_array("kept", ~unchanged))
            replaced = self._read(old_slots, ids) if len(old_slots) else None
        for column, values in zip(self._columns, new, strict=True):
            column.write(slots, values)
        return Replaced(replaced, stored, exact)

    def changes_of_few(
        self, frame: pl.DataFrame, diff: str
    ) -> tuple[pl.DataFrame, int, bool] | None:
        """:meth:`replace` for a frame of at most :data:`FEW_ROWS` rows, in Python, and what
        it changes as one frame: the rows replaced (``diff`` -1) then the rows of ``frame``
        that changed something (+1); with how many rows were replaced and whether equal rows
        were left out (see :class:`Replaced`). None when the frame is larger or a column
        stores its values converted (dates, times): :meth:`replace` does that."""
        if frame.height > FEW_ROWS or not all(c.python_exact for c in self._columns):
            return None
        return self.changes_of_values(
            frame.get_column(self._id_name).to_list(),
            [frame.get_column(c.name).to_list() for c in self._columns],
            diff,
        )

    def changes_of_values(
        self, ids: list[int], values: list[list[Any]], diff: str
    ) -> tuple[pl.DataFrame, int, bool] | None:
        """:meth:`changes_of_few` of rows given as Python values: their ids and each stored
        column's values, in order (for a few rows; None when a column stores its values
        converted)."""
        columns = self._columns
        if not all(c.python_exact for c in columns):
            return None
        rows = list(zip(ids, *values, strict=True))
        if len(set(ids)) < len(ids):  # an id twice: its last row is the one kept, in order
            last = {row_id: position for position, row_id in enumerate(ids)}
            rows = [rows[position] for position in sorted(last.values())]
        coded = self._int_key is not None
        keys = [int_key_code(row[0]) for row in rows] if coded else [row[0] for row in rows]
        slots, held = self._ids.find_or_add_values(
            [key & LOW_64 for key in keys], [key >> 64 for key in keys], self._take_one
        )
        old_rows: list[tuple[Any, ...]] = []
        new_rows: list[tuple[Any, ...]] = []
        exact = True
        for row, slot, present in zip(rows, slots, held, strict=True):
            if present:
                old = (row[0], *(c.get(slot) for c in columns))
                same: bool | None = True
                for column, before, after in zip(columns, old[1:], row[1:], strict=True):
                    same = column.same_value(before, after)
                    if not same:
                        break
                if same is None:
                    exact = False
                if same is not True:
                    old_rows.append(old)
                    new_rows.append(row)
            else:
                new_rows.append(row)
            for column, value in zip(columns, row[1:], strict=True):
                column.set(slot, value)
        changed = old_rows + new_rows
        names = [(self._id_name, ID_DTYPE), *((c.name, c.dtype) for c in columns)]
        # Python values as to_list() gives them (python_exact columns): a ListFrame.
        delta = ListFrame(
            [
                *(
                    (name, dtype, [row[i] for row in changed])
                    for i, (name, dtype) in enumerate(names)
                ),
                (diff, INT64, [-1] * len(old_rows) + [1] * len(new_rows)),
            ]
        )
        return delta, len(old_rows), exact

    def _take_one(self) -> int:
        return int(self._take(1)[0])

    def _last_of_each(self, slots: np.ndarray) -> np.ndarray | None:
        """The positions of the last occurrence of each slot, in order (None: all distinct)."""
        positions = np.arange(len(slots))
        stamp = self._stamp
        stamp[slots] = positions  # with a slot twice, one of its positions stays
        if (stamp[slots] == positions).all():
            return None
        stamp[slots] = -1
        np.maximum.at(stamp, slots, positions)
        return np.flatnonzero(stamp[slots] == positions)

    def _same(self, slots: np.ndarray, new: list[Any]) -> np.ndarray | None:
        """Whether each stored row at ``slots`` equals its new values (None: not known)."""
        same = np.ones(len(slots), dtype=bool)
        for column, values in zip(self._columns, new, strict=True):
            equal = column.same(slots, values)
            if equal is None:
                return None
            same &= equal
        return same

    def pop(self, ids: pl.Series) -> pl.DataFrame | None:
        """Forget the rows of ``ids`` and return those there were (None when none)."""
        if len(ids) == 0:
            return None
        low, high = self._table_keys(ids)
        found = self._ids.find(low, high)
        present = found >= 0
        if not present.any():
            return None
        first = self._first_of_each(np.where(present, found, -1), present)
        slots = found[first]
        self._ids.remove(low[first], high[first])
        if len(first) < len(ids):
            keep = np.zeros(len(ids), dtype=bool)
            keep[first] = True
            ids = ids.filter(series_of_array("present", keep))
        rows = self._read(slots, ids)
        for column in self._columns:
            column.release(slots)
        self._free.extend(slots.tolist())
        return rows

    def _first_of_each(self, slots: np.ndarray, present: np.ndarray) -> np.ndarray:
        """The positions of the first occurrence of each present slot, in order."""
        at = np.flatnonzero(present)
        chosen = slots[at]
        stamp = self._stamp
        stamp[chosen] = at
        if (stamp[chosen] == at).all():
            return at
        stamp[chosen] = len(slots)
        np.minimum.at(stamp, chosen, at)
        return at[stamp[chosen] == at]

    def take_all(self) -> pl.DataFrame | None:
        """Every current row (None when there are none); the store is then empty."""
        if not len(self._ids):
            self.clear()
            return None
        low, high, slots = self._ids.entries()
        keys = ids_of_halves(low, high, self._id_name)
        coded = self._int_key is not None
        rows = self._read(slots, ids_of_int_key_codes(keys) if coded else keys)
        self.clear()
        return rows

    def _table_keys(self, ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """The id table's keys for ``ids`` (their codes with an ``int_key``), as halves."""
        if self._int_key is None:
            return id_halves(ids)
        if len(ids) <= _PYTHON_IDS:
            return _halves_of_ints([int_key_code(row_id) for row_id in ids.to_list()])
        return id_halves(int_key_codes(ids))

    def _read(self, slots: np.ndarray, ids: pl.Series) -> pl.DataFrame:
        return frame_of([ids.alias(self._id_name), *(c.read(slots) for c in self._columns)])

    def _take_for(self, positions: np.ndarray) -> np.ndarray:
        return self._take(len(positions))

    def _take(self, count: int) -> np.ndarray:
        """``count`` free slots: freed ones first, then never used ones (growing the arrays)."""
        reused = min(count, len(self._free))
        parts = []
        if reused:
            parts.append(np.array(self._free[len(self._free) - reused :], dtype=np.int64))
            del self._free[len(self._free) - reused :]
        start = self._next
        self._next += count - reused
        if self._next > self._size:
            self._size = max(self._next, self._size * 3 // 2, _START)
            for column in self._columns:
                column.grow(self._size)
            self._stamp = enlarged(self._stamp, self._size)
        parts.append(np.arange(start, self._next, dtype=np.int64))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
