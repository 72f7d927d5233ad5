"""A hash table from 128-bit ids to slot numbers, kept in NumPy arrays and used a batch at a time.

A Python dict of millions of ids costs a few hundred nanoseconds per lookup or insertion on a
busy machine (each one a chain of dependent cache misses, with the interpreter in between), more
than everything else an upsert costs. Here an id is two 64-bit halves, the table is open
addressing with linear probing over three arrays (the halves, the slot), and a batch is looked
up or inserted with a few vectorised rounds: each round advances every unresolved id by one
cell, and with the table at most half full nearly all ids are resolved in the first two.

The cell of an id is a multiplicative hash of both halves, so that ids with equal low bits
(small integers, say) spread too. Removed ids leave a tombstone (lookups go on past it,
insertions reuse it); the table is rebuilt when live ids and tombstones fill half of it.
NumPy arrays are never traversed by the garbage collector, whatever their size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IdTable"]

# A cell is a row of three 64-bit numbers (one cache line fetch): the id's low and high
# halves, and a tag: empty, removed (a tombstone), or the slot plus 2.
_EMPTY = 0
_REMOVED = 1
_OFFSET = 2
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_MIN_BITS = 10


class IdTable:
    """Slot numbers (non-negative ints) by id, an id given as its low and high 64 bits."""

    __slots__ = ("_bits", "_cells_", "_live", "_used")

    def __init__(self) -> None:
        self.clear()

    def __len__(self) -> int:
        return self._live

    def clear(self) -> None:
        self._new_cells(_MIN_BITS)

    def _new_cells(self, bits: int) -> None:
        self._bits = bits
        self._cells_ = np.zeros((1 << bits, 3), dtype=np.uint64)
        self._live = 0  # ids held
        self._used = 0  # cells not empty: ids held and tombstones

    def _cells(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        mixed = np.multiply(low ^ high, _MULTIPLIER, dtype=np.uint64)
        return (mixed >> np.uint64(64 - self._bits)).astype(np.int64)

    def find(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The slot of each id (-1 when absent) and the cell holding it (-1 when absent)."""
        count = len(low)
        slots = np.full(count, -1, dtype=np.int64)
        cells = np.full(count, -1, dtype=np.int64)
        mask = (1 << self._bits) - 1
        pending = np.arange(count)
        cell = self._cells(low, high)
        while pending.size:
            seen = self._cells_[cell]
            tag = seen[:, 2]
            match = (tag >= _OFFSET) & (seen[:, 0] == low[pending]) & (seen[:, 1] == high[pending])
            slots[pending[match]] = tag[match].astype(np.int64) - _OFFSET
            cells[pending[match]] = cell[match]
            going = ~(match | (tag == _EMPTY))
            pending = pending[going]
            cell = (cell[going] + 1) & mask
        return slots, cells

    def add(self, low: np.ndarray, high: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Insert ids none of which is in the table, the i-th with slot ``slots[i]``; an id
        given twice is inserted once, with the slot of its first occurrence. Returns the slot
        each id got."""
        count = len(low)
        self._make_room(count)
        got = np.full(count, -1, dtype=np.int64)
        mask = (1 << self._bits) - 1
        pending = np.arange(count)
        cell = self._cells(low, high)
        table = self._cells_
        while pending.size:
            tag = table[cell, 2]
            free = np.flatnonzero(tag < _OFFSET)
            # Of the ids reaching one free cell, the first takes it.
            taken, first = np.unique(cell[free], return_index=True)
            winners = pending[free[first]]
            self._used += int((tag[free[first]] == _EMPTY).sum())
            self._live += len(winners)
            table[taken, 0] = low[winners]
            table[taken, 1] = high[winners]
            table[taken, 2] = slots[winners].astype(np.uint64) + np.uint64(_OFFSET)
            # Every id now meets its own (inserted just now, or earlier in this batch) or
            # another one, and then looks at the next cell.
            seen = table[cell]
            match = (seen[:, 0] == low[pending]) & (seen[:, 1] == high[pending])
            got[pending[match]] = seen[match, 2].astype(np.int64) - _OFFSET
            going = ~match
            pending = pending[going]
            cell = (cell[going] + 1) & mask
        return got

    def remove(self, cells: np.ndarray) -> None:
        """Remove the ids held in ``cells`` (as :meth:`find` gave them; distinct)."""
        self._cells_[cells, 2] = _REMOVED
        self._live -= len(cells)

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The low halves, high halves and slots of every id held."""
        held = self._cells_[self._cells_[:, 2] >= _OFFSET]
        return held[:, 0].copy(), held[:, 1].copy(), held[:, 2].astype(np.int64) - _OFFSET

    def _make_room(self, incoming: int) -> None:
        """Rebuild the table larger (or without tombstones) if ``incoming`` more ids could
        fill more than half of it."""
        if 2 * (self._used + incoming) <= len(self._cells_):
            return
        low, high, slots = self.entries()
        bits = _MIN_BITS
        while (1 << bits) < 4 * (self._live + incoming):
            bits += 1
        self._new_cells(bits)
        if len(slots):
            self.add(low, high, slots)
