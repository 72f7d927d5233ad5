"""A hash table from 128-bit ids to slot numbers, used a batch at a time.

The table is pandas' C hash table of 64-bit integers (khash, ``pandas._libs.hashtable``),
keyed by each id's low half. Ids are hashes, so their low halves are as good as distinct: the
table gives each low half a *label* (0, 1, 2, ... in order of first sight), and three NumPy
arrays by label hold the low half, the high half and the slot of the id that owns the label
(slot -1: the label is free, its id removed). An id whose low half is owned by another id goes
to a small dict of overflow ids: among n hashed ids some two share a low half with a chance of
about n^2 / 2^65, while ids a source gives may share them at will. A batch of ids costs one C
call for the labels of all of them and a few NumPy operations: ~0.1 us an id added to a table
of a million, ~6x less than the open addressing in vectorised NumPy rounds used before, in
about half the memory.

``pandas._libs.hashtable`` is not pandas' public API. What is used of it (``Int64HashTable``'s
``get_labels``, ``lookup``, ``get_item``, ``set_item`` and ``in``, and ``Int64Vector``) is the
same in pandas 2.0 and 3.1 (both checked), and ``tests/test_id_table.py`` holds the table to a
dict model. It is imported when a table first hashes an id, or by :func:`load_hash_tables`:
pandas takes ~0.15 s and ~60 MB to import, which a pipeline that never replaces rows by id,
or whose tables stay in dense mode (below), does not pay.

Labels are never given back to khash; a removed id leaves its label free for the next id with
the same low half. When free labels outnumber live ids (a source that keeps deleting ids and
adding new ones), the table is rebuilt from its live ids. Neither khash nor NumPy arrays are
traversed by the garbage collector, whatever their size.

**Dense mode.** While every id held has a high half of 0 and its low half lies in a window of
a few cells per id, the table is one array of slots indexed by the low half (less the
window's *base*), and khash is not used at all. Ids are never like that, but the *codes* of
serial int keys are (``RowsById`` keys its table by them for rows keyed by one int column):
adding a batch of new serial keys then costs a few NumPy passes (~0.01 us an id against
khash's ~0.1-0.2 us) and ~8 bytes an id instead of ~40. The window starts at 0, or at the
smallest low half of the first batch an empty table takes when that is at least
:data:`_DENSE_CELLS` (sequences need not start at 0); the array may grow to
:data:`_DENSE_CELLS` cells, or :data:`_DENSE_PER_ID` cells per id held, whichever is more.
The first id that does not fit moves every id to the hashed form for good (until
:meth:`IdTable.clear`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from deltaflow._arrays import enlarged

__all__ = ["IdTable", "load_hash_tables"]

_SIGN_64 = 1 << 63
_MIN_LABELS = 1024
#: Free labels beyond this many, and beyond the live ids, make a rebuild.
_REBUILD_FREE = 1 << 16
#: Dense mode's array may grow to this many cells, or to this many cells per id held.
_DENSE_CELLS = 1 << 16
_DENSE_PER_ID = 4


@functools.cache
def _khash_module() -> Any:
    """``pandas._libs.hashtable`` (see the module docstring; pandas' stubs do not cover it)."""
    return importlib.import_module("pandas._libs.hashtable")


def load_hash_tables() -> None:
    """Import pandas' hash tables now (~0.15 s), rather than when a table first stores an id:
    for a source known to keep its rows by id, before its first row rather than on it."""
    _khash_module()


def _new_khash() -> Any:
    return _khash_module().Int64HashTable()


def _new_labels_vector() -> Any:
    return _khash_module().Int64Vector()


def _keys(low: np.ndarray) -> np.ndarray:
    """Low halves as the table's keys: the same 64 bits, as signed integers."""
    return np.ascontiguousarray(low, dtype=np.uint64).view(np.int64)


class IdTable:
    """Slot numbers (non-negative ints) by id, an id given as its low and high 64 bits."""

    __slots__ = (
        "_base",
        "_dense",
        "_high_of",
        "_khash",
        "_labels",
        "_live",
        "_low_of",
        "_overflow",
        "_slot_of",
    )

    def __init__(self) -> None:
        self.clear()

    def __len__(self) -> int:
        return self._live

    def clear(self, *, dense: bool = True) -> None:
        """Forget every id; the table starts in dense mode unless ``dense`` is false."""
        #: Dense mode: slots by low half (-1: none); None in the hashed form.
        self._dense: np.ndarray | None = np.zeros(0, dtype=np.int64) if dense else None
        self._base = 0  # dense mode: the low half of cell 0
        self._khash: Any = None  # made when the first id is added
        self._labels = 0  # labels given so far
        self._live = 0  # ids held
        self._low_of = np.zeros(0, dtype=np.uint64)
        self._high_of = np.zeros(0, dtype=np.uint64)
        self._slot_of = np.zeros(0, dtype=np.int64)
        #: Ids whose low half is another id's label: (low, high) -> slot.
        self._overflow: dict[tuple[int, int], int] = {}

    # --- batches -------------------------------------------------------------------------
    def find(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """The slot of each id, -1 when absent."""
        if self._dense is not None:
            slots = np.full(len(low), -1, dtype=np.int64)
            offset = low - np.uint64(self._base)  # below the base it wraps to a huge number
            inside = np.flatnonzero((high == 0) & (offset < len(self._dense)))
            slots[inside] = self._dense[offset[inside].astype(np.intp)]
            return slots
        if not self._labels or not len(low):
            return np.full(len(low), -1, dtype=np.int64)
        labels, owned = self._owned_labels(low, high)
        slots = np.where(owned, self._slot_of[labels], -1)
        if self._overflow:
            found, given = self._in_overflow(np.flatnonzero(~owned), low, high)
            slots[found] = given
        return slots

    def _owned_labels(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The label of each id's low half (0 where there is none) and whether the id owns
        it (the label holds a slot, and the id's high half)."""
        labels = self._table().lookup(_keys(low))
        owned = labels >= 0
        labels = np.where(owned, labels, 0)
        owned &= (self._slot_of[labels] >= 0) & (self._high_of[labels] == high)
        return labels, owned

    def _table(self) -> Any:
        """The khash, made when first needed."""
        if self._khash is None:
            self._khash = _new_khash()
        return self._khash

    def find_or_add(
        self,
        low: np.ndarray,
        high: np.ndarray,
        new_slots: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The slot of each id, and whether the table held the id before.

        Ids not held are added: ``new_slots(positions)`` gives the slots of the ids first
        seen at those positions of ``low``/``high``. An id given twice is added once: its
        later occurrences get the same slot (and count as not held before).
        """
        count = len(low)
        if count == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        if self._dense is not None and self._fits_dense(low, high):
            return self._find_or_add_dense(self._cells(low), new_slots)
        before = self._labels
        added_lows = _new_labels_vector()
        labels = self._table().get_labels(_keys(low), added_lows, before, -1)
        added = len(added_lows)
        if added:
            self._add_labels(added_lows.to_array().view(np.uint64))
        if added == count:
            # Every id is new (a batch of fresh keys): each took the next label, in order.
            given = np.asarray(new_slots(np.arange(count)), dtype=np.int64)
            self._slot_of[before : before + count] = given
            self._high_of[before : before + count] = high
            self._live += count
            return given, np.zeros(count, dtype=bool)
        stored = self._slot_of[labels]  # -1: a label new or free
        match = (stored >= 0) & (self._high_of[labels] == high)
        slots = np.where(match, stored, -1)
        held = match.copy()
        if match.all():
            return slots, held
        rest = np.flatnonzero(~match)
        if self._overflow:
            found, given = self._in_overflow(rest, low, high)
            slots[found] = given
            held[found] = True
            rest = np.setdiff1d(rest, found, assume_unique=True)
        free = rest[stored[rest] < 0]
        clash: list[int] = rest[stored[rest] >= 0].tolist()  # another id owns the label
        if free.size:
            free_labels = labels[free]
            if free.size == added:
                # Every new label is among them: each once, and no free label given back
                # (the usual batch of new ids).
                claimers = free
                claimed = free_labels
            else:
                claimed, first = np.unique(free_labels, return_index=True)
                claimers = free[first]
            given = np.asarray(new_slots(claimers), dtype=np.int64)
            self._slot_of[claimed] = given
            self._high_of[claimed] = high[claimers]
            self._live += len(given)
            slots[claimers] = given
            if len(claimers) < len(free):  # more occurrences of the labels just claimed
                others = np.setdiff1d(free, claimers, assume_unique=True)
                owner = self._slot_of[labels[others]]
                same = self._high_of[labels[others]] == high[others]
                slots[others[same]] = owner[same]
                clash.extend(others[~same].tolist())
        if clash:
            self._add_to_overflow(sorted(clash), low, high, slots, new_slots)
        return slots, held

    def _fits_dense(self, low: np.ndarray, high: np.ndarray) -> bool:
        """Whether the ids (at least one) can stay in dense mode, its array grown to hold
        them; when they cannot, the table leaves dense mode."""
        assert self._dense is not None
        size = len(self._dense)
        if not high.any():
            bottom = int(low.min())
            if not self._live:  # empty: the window may start anywhere
                self._base = bottom if bottom >= _DENSE_CELLS else 0
            top = int(low.max()) - self._base
            limit = max(_DENSE_CELLS, _DENSE_PER_ID * (self._live + len(low)))
            if bottom >= self._base and top < max(size, limit):
                if top >= size:
                    self._dense = enlarged(self._dense, min(limit, max(top + 1, size * 3 // 2)), -1)
                return True
        self._to_hashed()
        return False

    def _cells(self, low: np.ndarray) -> np.ndarray:
        """Dense mode: the cells of ids that fit (see :meth:`_fits_dense`)."""
        if self._base:
            return (low - np.uint64(self._base)).astype(np.intp)
        return low.astype(np.intp)

    def _find_or_add_dense(
        self, cells: np.ndarray, new_slots: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`find_or_add` in dense mode; ``cells`` are the ids' cells."""
        dense = self._dense
        assert dense is not None
        slots = dense[cells]
        held = slots >= 0
        new = np.flatnonzero(~held)
        if not len(new):
            return slots, held
        new_cells = cells[new]
        # The first occurrence of each new id claims a slot. Each writes a mark of its
        # position (-2 - position) in its cell: when every mark reads back, no id repeats.
        marks = -2 - new
        dense[new_cells] = marks
        first = dense[new_cells] == marks
        if not first.all():
            dense[new_cells] = -2 - len(cells)  # below every mark: the largest mark wins
            np.maximum.at(dense, new_cells, marks)
            first = dense[new_cells] == marks
        claimers = new[first]
        given = np.asarray(new_slots(claimers), dtype=np.int64)
        dense[cells[claimers]] = given
        self._live += len(given)
        slots[new] = dense[new_cells]
        return slots, held

    def _to_hashed(self) -> None:
        """Leave dense mode: every id held moves to khash."""
        low, high, slots = self.entries()
        self.clear(dense=False)
        if len(slots):
            self.find_or_add(low, high, slots.__getitem__)

    def _add_labels(self, lows: np.ndarray) -> None:
        """Make room for the labels just given (free, with their low halves)."""
        start = self._labels
        end = start + len(lows)
        if end > len(self._slot_of):
            size = max(_MIN_LABELS, len(self._slot_of) * 3 // 2, end)
            self._low_of = enlarged(self._low_of, size)
            self._high_of = enlarged(self._high_of, size)
            self._slot_of = enlarged(self._slot_of, size)
        self._low_of[start:end] = lows
        self._slot_of[start:end] = -1
        self._labels = end

    def _in_overflow(
        self, positions: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Of the ids at ``positions``, the positions of those held as overflow ids and their
        slots. Only ids sharing a low half with an overflow id are looked up in Python."""
        overflow_lows = np.fromiter((lo for lo, _ in self._overflow), np.uint64)
        found: list[int] = []
        given: list[int] = []
        for position in positions[np.isin(low[positions], overflow_lows)].tolist():
            slot = self._overflow.get((int(low[position]), int(high[position])))
            if slot is not None:
                found.append(position)
                given.append(slot)
        return np.array(found, dtype=np.int64), np.array(given, dtype=np.int64)

    def _add_to_overflow(
        self,
        positions: list[int],
        low: np.ndarray,
        high: np.ndarray,
        slots: np.ndarray,
        new_slots: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        """Add the ids at ``positions`` (in order; not held before) as overflow ids."""
        for position in positions:
            key = (int(low[position]), int(high[position]))
            slot = self._overflow.get(key)  # added by an earlier occurrence
            if slot is None:
                slot = int(new_slots(np.array([position]))[0])
                self._overflow[key] = slot
                self._live += 1
            slots[position] = slot

    def remove(self, low: np.ndarray, high: np.ndarray) -> None:
        """Remove ids the table holds (distinct)."""
        if not len(low):
            return
        if self._dense is not None:
            self._dense[self._cells(low)] = -1
            self._live -= len(low)
            return
        labels, owned = self._owned_labels(low, high)
        self._slot_of[labels[owned]] = -1
        for position in np.flatnonzero(~owned).tolist():
            del self._overflow[(int(low[position]), int(high[position]))]
        self._live -= len(low)
        free = self._labels - (self._live - len(self._overflow))
        if free > max(self._live, _REBUILD_FREE):
            self._rebuild()

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The low halves, high halves and slots of every id held."""
        if self._dense is not None:
            cells = np.flatnonzero(self._dense >= 0)
            low = cells.astype(np.uint64) + np.uint64(self._base)
            return low, np.zeros(len(cells), np.uint64), self._dense[cells]
        owned = np.flatnonzero(self._slot_of[: self._labels] >= 0)
        low, high = self._low_of[owned], self._high_of[owned]
        slots = self._slot_of[owned]
        if self._overflow:
            keys = list(self._overflow)
            low = np.concatenate([low, np.array([lo for lo, _ in keys], dtype=np.uint64)])
            high = np.concatenate([high, np.array([hi for _, hi in keys], dtype=np.uint64)])
            slots = np.concatenate([slots, np.array(list(self._overflow.values()), np.int64)])
        return low, high, slots

    def _rebuild(self) -> None:
        """A table of the live ids only (free labels dropped)."""
        low, high, slots = self.entries()
        self.clear(dense=False)
        if len(slots):
            self.find_or_add(low, high, slots.__getitem__)

    # --- a few ids, in Python ------------------------------------------------------------
    def find_or_add_values(
        self, low: list[int], high: list[int], new_slot: Callable[[], int]
    ) -> tuple[list[int], list[bool]]:
        """:meth:`find_or_add` for a few distinct ids given as Python ints, in Python (for a
        few ids, cheaper than NumPy calls on tiny arrays); ``new_slot()`` gives the slot of
        each id added."""
        if not low:
            return [], []
        if self._dense is not None:
            base = self._base
            fits = not any(high) and min(low) >= base and max(low) - base < len(self._dense)
            if not fits and not self._fits_dense(
                np.array(low, dtype=np.uint64), np.array(high, dtype=np.uint64)
            ):
                return self.find_or_add_values(low, high, new_slot)
            return self._find_or_add_values_dense([lo - self._base for lo in low], new_slot)
        khash = self._table()
        slots: list[int] = []
        held: list[bool] = []
        for lo, hi in zip(low, high, strict=True):
            key = lo - (1 << 64) if lo & _SIGN_64 else lo
            if key in khash:
                label = khash.get_item(key)
                slot = int(self._slot_of[label])
                if slot >= 0 and int(self._high_of[label]) == hi:
                    slots.append(slot)
                    held.append(True)
                    continue
            else:
                label = self._labels
                self._add_labels(np.array([lo], dtype=np.uint64))
                khash.set_item(key, label)
                slot = -1
            known = self._overflow.get((lo, hi))
            if known is not None:
                slots.append(known)
                held.append(True)
                continue
            slot_added = new_slot()
            if slot < 0:  # the label is free: this id owns it now
                self._slot_of[label] = slot_added
                self._high_of[label] = hi
            else:
                self._overflow[(lo, hi)] = slot_added
            self._live += 1
            slots.append(slot_added)
            held.append(False)
        return slots, held

    def _find_or_add_values_dense(
        self, cells: list[int], new_slot: Callable[[], int]
    ) -> tuple[list[int], list[bool]]:
        """:meth:`find_or_add_values` in dense mode, given the ids' cells (they fit)."""
        dense = self._dense
        assert dense is not None
        slots: list[int] = []
        held: list[bool] = []
        for cell in cells:
            slot = int(dense[cell])
            held.append(slot >= 0)
            if slot < 0:
                slot = new_slot()
                dense[cell] = slot
                self._live += 1
            slots.append(slot)
        return slots, held
