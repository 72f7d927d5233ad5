"""Group state in NumPy columns for the streaming path of simple reductions.

A reduce whose reducers are all ``count``, ``sum``/``avg`` of int or float columns and
``min``/``max`` of int columns keeps, on its small-delta path, one slot per group with the
group's count and accumulators in NumPy arrays. A delta of a few hundred rows is then folded in
with a handful of array operations (``np.add.at``, ``np.maximum.at``) instead of Python code per
row and per group, and the changed group rows come out of the arrays as whole columns.

The slots are a write-back cache of the operator's group arrangement, as the tuple cache of the
row path is: a group is loaded from the arrangement the first time a delta touches it, changed
groups are written back (old row retracted, new one inserted) when anything else is about to
read the arrangement (:meth:`ColumnGroups.sync`), and the slots are dropped after a frame-path
step. Deltas this cannot fold exactly (deletions under ``min``/``max``) are left to the row
path, after a write-back. Int sums wrap around at 64 bits on every path, as Polars' sums and
Pathway's do: NumPy's int64 arithmetic wraps by itself, the Python fold of a few rows wraps its
exact totals (``wrap_int64``), and since wrapping commutes with addition, a running total
wrapped minibatch by minibatch equals the wrapped sum of the whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.ma  # noqa: F401 - np.unique imports it on its first call: not on a live update
import polars as pl

from deltaflow import _types as t
from deltaflow._arrays import grown
from deltaflow._float_sums import exact_sum, wrap_int64
from deltaflow._small_frames import (
    INT64,
    ListFrame,
    frame_of,
    series_of_array,
    series_of_values,
)
from deltaflow.engine.batch import DIFF

_START = 1024  # slots allocated at first; doubled as needed


def eligible(
    calls: Sequence[Any], key_types: Sequence[t.DType], has_id_key: bool, stateful: bool
) -> bool:
    """Whether a reduce can keep its streaming group state in NumPy columns."""
    if has_id_key or stateful or not key_types:
        return False
    for key in key_types:
        if key.strip_optional() not in (t.INT, t.STR, t.BOOL):  # float keys: NaN grouping
            return False
    for call in calls:
        name = call.reducer.name
        args = list(call.arg_types)
        if name == "count":
            continue
        if len(args) != 1 or args[0].is_optional:
            return False
        if name in ("sum", "avg") and args[0] in (t.INT, t.FLOAT):
            continue
        if name in ("min", "max") and args[0] == t.INT:
            continue
        return False
    return True


class ColumnGroups:
    """Slots of groups: key values, key hash, id, count, accumulators and extremes.

    ``layout`` describes a group row of the arrangement: ``(key hash, *keys, id, count,
    *accumulators, *reducer values)``; ``kinds`` gives each reducer's name, ``accumulated`` the
    reducers (by index) that keep an accumulator, ``floats`` whether each reducer's argument is
    a float column.
    """

    def __init__(self, kinds: list[str], accumulated: list[int], floats: list[bool]) -> None:
        self.kinds = kinds
        self.accumulated = accumulated
        self._acc_of = {i: n for n, i in enumerate(accumulated)}  # reducer -> its accumulator
        self.floats = floats
        self.slot: dict[tuple[Any, ...], int] = {}
        self.groups: list[tuple[Any, ...]] = []  # (key hash, *keys) per slot
        #: The key hash of each group's keys: a delta of known groups needs no hashing query.
        self.hash_of: dict[tuple[Any, ...], int] = {}
        self.ids: list[int] = []
        self.stored: list[tuple[Any, ...] | None] = []  # the arrangement's row, per slot
        self.dirty: set[int] = set()
        size = _START
        self.count = np.zeros(size, dtype=np.int64)
        self.accs = [
            np.zeros(size, dtype=np.float64 if floats[i] else np.int64) for i in accumulated
        ]
        self.extremes = {
            i: np.zeros(size, dtype=np.int64)
            for i, kind in enumerate(kinds)
            if kind in ("min", "max")
        }

    def __len__(self) -> int:
        return len(self.groups)

    def _grow(self, needed: int) -> None:
        size = self.count.shape[0]
        if needed <= size:
            return
        while size < needed:
            size *= 2

        self.count = grown(self.count, size, 0)
        self.accs = [grown(a, size, 0) for a in self.accs]
        self.extremes = {i: grown(a, size, 0) for i, a in self.extremes.items()}

    def add(
        self, group: tuple[Any, ...], row: tuple[Any, ...] | None, width: int, new_id: int | None
    ) -> int:
        """A slot for ``group``, filled from its arrangement row (None: a new group, whose id
        is ``new_id``)."""
        index = len(self.groups)
        self._grow(index + 1)
        self.slot[group] = index
        self.hash_of[group[1:]] = group[0]
        self.groups.append(group)
        self.stored.append(row)
        if row is None:
            assert new_id is not None
            self.ids.append(new_id)
            self.count[index] = 0
            for array in self.accs:
                array[index] = 0
            return index
        self.ids.append(row[width])
        self.count[index] = row[width + 1]
        for n, array in enumerate(self.accs):
            array[index] = row[width + 2 + n]
        first_value = width + 2 + len(self.accs)
        for i, array in self.extremes.items():
            array[index] = row[first_value + i]
        return index

    def values(self, slots: np.ndarray) -> list[np.ndarray]:
        """Each reducer's value for the given slots (count, sum, average, extreme)."""
        out: list[np.ndarray] = []
        counts = self.count[slots]
        for i, kind in enumerate(self.kinds):
            if kind == "count":
                out.append(counts)
            elif kind in ("min", "max"):
                out.append(self.extremes[i][slots])
            else:
                acc = self.accs[self._acc_of[i]][slots]
                if kind == "sum":
                    out.append(acc)
                else:
                    with np.errstate(divide="ignore", invalid="ignore"):  # empty groups
                        out.append(acc / counts)
        return out

    def snapshot(self, slots: np.ndarray) -> list[np.ndarray]:
        """Count, accumulators and values of the slots, in group row order (after the id)."""
        return [
            self.count[slots].copy(),
            *(a[slots].copy() for a in self.accs),
            *self.values(slots),
        ]

    def scalars(self, slot: int) -> list[Any]:
        """:meth:`snapshot` of one slot, as Python scalars (no array calls)."""
        count = self.count.item(slot)
        accs = [a.item(slot) for a in self.accs]
        out: list[Any] = [count, *accs]
        for i, kind in enumerate(self.kinds):
            if kind == "count":
                out.append(count)
            elif kind in ("min", "max"):
                out.append(self.extremes[i].item(slot))
            else:
                acc = accs[self._acc_of[i]]
                if kind == "sum":
                    out.append(acc)
                elif count:  # the average, divided as NumPy divides (both as float64)
                    out.append(float(acc) / float(count))
                else:
                    out.append(float("nan"))
        return out

    def row(self, slot: int) -> tuple[Any, ...]:
        """The group row of a slot, as the arrangement stores it (without the diff)."""
        return (*self.groups[slot], self.ids[slot], *self.scalars(slot))

    def sync(self, insert: Callable[[list[tuple[Any, ...]]], None]) -> None:
        """Write the changed groups back: ``insert`` gets the arrangement's rows to retract
        (diff -1) and the current ones (diff +1)."""
        if not self.dirty:
            return
        rows: list[tuple[Any, ...]] = []
        for slot in sorted(self.dirty):
            stored = self.stored[slot]
            current = self.row(slot) if self.count[slot] > 0 else None
            if stored is not None and current is not None and stored[:-1] == current:
                continue
            if stored is not None:
                rows.append((*stored[:-1], -1))
            if current is not None:
                rows.append((*current, 1))
            self.stored[slot] = None if current is None else (*current, 1)
        self.dirty.clear()
        if rows:
            insert(rows)


class Fold:
    """A delta folded into the state: the touched slots, whether each had a row before and
    has one after, and their count, accumulators and values before and after.

    ``weighted``: the delta is already aggregated per group (one row per slot, its count
    change as the diff and each accumulator's change as the argument)."""

    def __init__(
        self,
        state: ColumnGroups,
        slots: np.ndarray,
        diffs: np.ndarray,
        args: list[np.ndarray | None],
        *,
        weighted: bool = False,
    ) -> None:
        self.touched = touched = _distinct(slots, len(state))
        self.before = state.snapshot(touched)
        self.had = self.before[0] > 0
        np.add.at(state.count, slots, diffs)
        if state.accumulated:
            position = np.searchsorted(touched, slots)
            for n, i in enumerate(state.accumulated):
                column = args[i]
                assert column is not None
                # The minibatch's sum per group first, then one addition to the running
                # total: as the row path does (float sums of a minibatch are exact there).
                terms = column if weighted else column * diffs
                sums = np.zeros(touched.shape[0], dtype=terms.dtype)
                np.add.at(sums, position, terms)
                if state.floats[i] and not weighted:
                    _exact_group_sums(sums, position, terms)
                state.accs[n][touched] += sums
        fresh = touched[~self.had]
        for i, array in state.extremes.items():
            column = args[i]
            assert column is not None
            if state.kinds[i] == "max":
                array[fresh] = np.iinfo(np.int64).min
                np.maximum.at(array, slots, column)
            else:
                array[fresh] = np.iinfo(np.int64).max
                np.minimum.at(array, slots, column)
        self.after = state.snapshot(touched)
        self.has = self.after[0] > 0
        state.dirty.update(touched.tolist())

    def changed(self, value_floats: list[bool], values_from: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (in ``touched``) of the rows retracted and inserted: a group whose
        reducer values did not change keeps its output row."""
        same = self.had & self.has
        for old, new, is_float in zip(
            self.before[values_from:], self.after[values_from:], value_floats, strict=True
        ):
            equal = old == new
            if is_float:
                equal |= np.isnan(old) & np.isnan(new)
            same &= equal
        return np.flatnonzero(self.had & ~same), np.flatnonzero(self.has & ~same)


#: The distinct slots of a delta are counted (``np.bincount``) when the state has at most 16
#: groups per delta row plus this many; else sorted (``np.unique``, ~20x as slow: 0.24 against
#: 0.013 ms for 10,000 slots of 1,000 groups, but a count takes the state's size).
COUNT_SLOTS_SLACK = 4096


def _distinct(slots: np.ndarray, size: int) -> np.ndarray:
    """The distinct values of ``slots`` (slots of a state of ``size`` groups), in order."""
    if size <= 16 * len(slots) + COUNT_SLOTS_SLACK:
        return np.flatnonzero(np.bincount(slots))
    return np.unique(slots)


def _exact_group_sums(sums: np.ndarray, position: np.ndarray, terms: np.ndarray) -> None:
    """Replace the sums of the groups with several terms by their accurate sums."""
    counts = np.bincount(position, minlength=sums.shape[0])
    several = np.flatnonzero(counts > 1)
    if several.shape[0] == 0:
        return  # one term per group: its sum is exact
    order = np.argsort(position, kind="stable")
    ends = np.cumsum(counts)
    ordered = terms[order]
    for group in several.tolist():
        sums[group] = exact_sum(ordered[ends[group] - counts[group] : ends[group]].tolist())


def output_frame(
    state: ColumnGroups,
    fold: Fold,
    columns: list[tuple[str, pl.DataType]],
    read: list[int],
    width: int,
) -> pl.DataFrame | None:
    """The changed group rows (retractions first, then insertions) with the columns ``read``
    (positions in the group row layout) and the diff; None when no output row changes."""
    values_from = 2 + len(state.accs)  # in a snapshot: count, accumulators, then values
    value_floats = [
        columns[width + 1 + values_from - 1 + i][1] in (pl.Float32, pl.Float64)
        for i in range(len(state.kinds))
    ]
    gone, come = fold.changed(value_floats, values_from - 1)
    if gone.shape[0] == 0 and come.shape[0] == 0:
        return None
    slots = np.concatenate([fold.touched[gone], fold.touched[come]]).tolist()
    series: list[pl.Series] = []
    for at in read:
        name, dtype = columns[at]
        if at < width:  # key hash and keys
            values: Any = [state.groups[s][at] for s in slots]
        elif at == width:
            values = [state.ids[s] for s in slots]
        else:
            body = at - width - 1
            values = np.concatenate([fold.before[body][gone], fold.after[body][come]])
        series.append(_series(name, values, dtype))
    diffs = np.concatenate(
        [np.full(gone.shape[0], -1, dtype=np.int64), np.ones(come.shape[0], dtype=np.int64)]
    )
    series.append(series_of_array(DIFF, diffs))
    return frame_of(series)


#: Deltas of up to this many rows are folded by :func:`fold_few` in plain Python: the NumPy
#: fold's dozens of array calls cost more than a loop over a few rows.
FEW_ROWS = 8


def fold_few(
    state: ColumnGroups,
    slots: list[int],
    diffs: list[int],
    args: list[list[Any] | None],
    columns: list[tuple[str, pl.DataType]],
    outputs: list[tuple[str, int]],
    *,
    width: int,
) -> pl.DataFrame | None:
    """:class:`Fold` and :func:`output_frame` for a delta of a few rows, with Python scalars:
    the same state changes and the same output rows (retractions first, then insertions, each
    in slot order). ``args`` holds each reducer's argument values as a list (None: unread);
    ``outputs`` the columns to make, as (name, position in the group row layout)."""
    touched = sorted(set(slots))
    before = {slot: state.scalars(slot) for slot in touched}
    count = state.count
    for slot, diff in zip(slots, diffs, strict=True):
        count[slot] += diff
    for n, i in enumerate(state.accumulated):
        values = args[i]
        assert values is not None
        terms: dict[int, list[Any]] = {}
        for slot, diff, value in zip(slots, diffs, values, strict=True):
            terms.setdefault(slot, []).append(value * diff)
        accs = state.accs[n]
        for slot, group_terms in terms.items():
            # As the NumPy fold: the minibatch's sum per group (exact when several terms),
            # starting from a zero, then one addition to the running total.
            if state.floats[i]:
                accs[slot] += (
                    exact_sum(group_terms) if len(group_terms) > 1 else 0.0 + group_terms[0]
                )
            else:  # exact in Python, then wrapped as NumPy's int64 sums wrap
                accs[slot] = wrap_int64(int(accs[slot]) + sum(group_terms))
    for i, array in state.extremes.items():
        values = args[i]
        assert values is not None
        largest = state.kinds[i] == "max"
        for slot in touched:
            if before[slot][0] <= 0:  # a group with no rows before: its extreme starts anew
                array[slot] = np.iinfo(np.int64).min if largest else np.iinfo(np.int64).max
        for slot, value in zip(slots, values, strict=True):
            current = array[slot]
            if (value > current) if largest else (value < current):
                array[slot] = value
    after = {slot: state.scalars(slot) for slot in touched}
    state.dirty.update(touched)
    values_from = 1 + len(state.accs)  # in a snapshot: count, accumulators, then values
    gone: list[int] = []
    come: list[int] = []
    for slot in touched:
        had, has = before[slot][0] > 0, after[slot][0] > 0
        same = (
            had
            and has
            and all(
                old == new or (old != old and new != new)  # NaN == NaN here, as in Fold
                for old, new in zip(before[slot][values_from:], after[slot][values_from:])
            )
        )
        if had and not same:
            gone.append(slot)
        if has and not same:
            come.append(slot)
    if not gone and not come:
        return None
    rows = [before[slot] for slot in gone] + [after[slot] for slot in come]
    chosen = gone + come
    made: list[tuple[str, pl.DataType, list[Any]]] = []
    for name, at in outputs:
        if at < width:  # key hash and keys
            cells = [state.groups[slot][at] for slot in chosen]
        elif at == width:
            cells = [state.ids[slot] for slot in chosen]
        else:
            cells = [row[at - width - 1] for row in rows]
        made.append((name, columns[at][1], cells))
    made.append((DIFF, INT64, [-1] * len(gone) + [1] * len(come)))
    # The values as to_list() gives them: keys and ids as read from the arrangement or the
    # delta, counts and int sums as ints, float sums and averages as floats (scalars()).
    return ListFrame(made)


def _series(name: str, values: np.ndarray | list[Any], dtype: pl.DataType) -> pl.Series:
    if isinstance(values, list):
        return series_of_values(name, values, dtype)
    series = series_of_array(name, values)
    return series if series.dtype == dtype else series.cast(dtype)


__all__ = [
    "FEW_ROWS",
    "ColumnGroups",
    "Fold",
    "eligible",
    "fold_few",
    "output_frame",
]
