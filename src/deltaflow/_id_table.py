"""A hash table from 128-bit ids to slot numbers, kept in NumPy arrays and used a batch at a time.

A Python dict of millions of ids costs a few hundred nanoseconds per lookup or insertion on a
busy machine (each one a chain of dependent cache misses, with the interpreter in between), more
than everything else an upsert costs. Here an id is two 64-bit halves, the table is open
addressing with quadratic probing (the k-th probe of an id is k cells past its previous one,
which reaches every cell of a power-of-two table and does not let runs of used cells grow
together) over rows of three numbers (the halves, the slot), and a batch is looked up or
inserted with a few vectorised rounds: each round moves every unresolved id to its next cell,
and with the table at most half full nearly all ids are resolved in the first two.

The cell of an id is a multiplicative hash of both halves, so that ids with equal low bits
(small integers, say) spread too. Removed ids leave a tombstone: lookups go on past it, and the
cell stays used until the table is rebuilt, which happens when live ids and tombstones would
fill half of it.
NumPy arrays are never traversed by the garbage collector, whatever their size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["IdTable"]

# A cell is a row of three 64-bit numbers (one cache line fetch): the id's low and high
# halves, and a tag: empty, removed (a tombstone), or the slot plus 2.
_EMPTY = 0
_REMOVED = 1
_OFFSET = 2
_MULTIPLIER_INT = 0x9E3779B97F4A7C15
_MULTIPLIER = np.uint64(_MULTIPLIER_INT)
_LOW_64 = (1 << 64) - 1
_MIN_BITS = 10
_FEW = 8  # batches up to this many ids are looked up in Python


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
        probe = 0
        while pending.size:
            seen = self._cells_[cell]
            tag = seen[:, 2]
            match = (tag >= _OFFSET) & (seen[:, 0] == low[pending]) & (seen[:, 1] == high[pending])
            slots[pending[match]] = tag[match].astype(np.int64) - _OFFSET
            cells[pending[match]] = cell[match]
            going = ~(match | (tag == _EMPTY))
            pending = pending[going]
            probe += 1
            cell = (cell[going] + probe) & mask
        return slots, cells

    def find_or_add(
        self,
        low: np.ndarray,
        high: np.ndarray,
        new_slots: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The slot of each id, and whether the table held the id before.

        Ids not held are added, in one pass with the lookup: ``new_slots(positions)`` gives
        the slots of the ids at those positions of ``low``/``high`` (called once per round
        with the ids that took a cell). An id given twice is added once: its later
        occurrences get the same slot (and count as not held before).
        """
        count = len(low)
        self._make_room(count)
        if count <= _FEW:
            return self._find_or_add_few(low, high, new_slots, np.arange(count), set())
        slots = np.full(count, -1, dtype=np.int64)
        held = np.zeros(count, dtype=bool)
        mask = (1 << self._bits) - 1
        table = self._cells_
        pending = np.arange(count)
        cell = self._cells(low, high)
        stayed = np.zeros(count, dtype=bool)  # lost a free cell to another id last round
        probe = np.zeros(count, dtype=np.int64)  # cells each id has moved past
        added: list[np.ndarray] = []  # the cells taken, per round
        while pending.size:
            if pending.size <= _FEW:  # the last few: one by one, from their first cell
                cells_added = set(np.concatenate(added).tolist()) if added else set()
                last = self._find_or_add_few(
                    low[pending], high[pending], new_slots, pending, cells_added
                )
                slots[pending], held[pending] = last
                break
            seen = table[cell]
            tag = seen[:, 2]
            match = (tag >= _OFFSET) & (seen[:, 0] == low[pending]) & (seen[:, 1] == high[pending])
            slots[pending[match]] = tag[match].astype(np.int64) - _OFFSET
            # A match right after losing a cell is the same id, added by its first occurrence.
            held[pending[match & ~stayed]] = True
            stay = np.zeros(len(pending), dtype=bool)
            empty = np.flatnonzero(tag == _EMPTY)
            if empty.size:
                # Of the ids reaching one empty cell, the first takes it; the others look at
                # the same cell again (it may now hold their own id).
                taken, first = np.unique(cell[empty], return_index=True)
                winners = pending[empty[first]]
                given = new_slots(winners)
                table[taken, 0] = low[winners]
                table[taken, 1] = high[winners]
                table[taken, 2] = given.astype(np.uint64) + np.uint64(_OFFSET)
                slots[winners] = given
                added.append(taken)
                self._used += len(winners)
                self._live += len(winners)
                stay[empty] = True
                stay[empty[first]] = False
            advance = ~match & (tag != _EMPTY)  # another id's cell, or a tombstone
            keep = advance | stay
            probe += advance
            cell = np.where(advance, (cell + probe) & mask, cell)[keep]
            pending = pending[keep]
            stayed = stay[keep]
            probe = probe[keep]
        return slots, held

    def find_or_add_values(
        self, low: list[int], high: list[int], new_slot: Callable[[], int]
    ) -> tuple[list[int], list[bool]]:
        """:meth:`find_or_add` for a few distinct ids given as Python ints, in Python (for a
        few ids, cheaper than NumPy calls on tiny arrays); ``new_slot()`` gives the slot of
        each id added."""
        self._make_room(len(low))
        return self._probe_each(low, high, lambda _position: new_slot(), range(len(low)), set())

    def _find_or_add_few(
        self,
        low: np.ndarray,
        high: np.ndarray,
        new_slots: Callable[[np.ndarray], np.ndarray],
        positions: np.ndarray,
        added: set[int],
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`find_or_add` one id after the other (see :meth:`_probe_each`). ``positions``
        are the ids' positions for ``new_slots``; ``added`` the cells this call took already
        (an id found there was not held before), updated."""
        slots, held = self._probe_each(
            low.tolist(),
            high.tolist(),
            lambda position: int(new_slots(np.array([position]))[0]),
            positions.tolist(),
            added,
        )
        return np.array(slots, dtype=np.int64), np.array(held, dtype=bool)

    def _probe_each(
        self,
        low: list[int],
        high: list[int],
        new_slot: Callable[[int], int],
        positions: Sequence[int],
        added: set[int],
    ) -> tuple[list[int], list[bool]]:
        """Find or add ids one after the other, in Python, with the same probe sequences as
        the vectorised rounds (so the same table): the slot of each id and whether it was
        held before. ``new_slot(position)`` gives the slot of an id added; ``added``: the
        cells taken by the current call (an id found there was not held before), updated."""
        table = self._cells_
        mask = (1 << self._bits) - 1
        shift = 64 - self._bits
        slots: list[int] = []
        held: list[bool] = []
        for position, lo, hi in zip(positions, low, high, strict=True):
            cell = (((lo ^ hi) * _MULTIPLIER_INT) & _LOW_64) >> shift  # as _cells, in Python
            probe = 0
            while True:
                seen_low, seen_high, tag = table[cell].tolist()
                if tag == _EMPTY:
                    slot = new_slot(position)
                    table[cell] = (lo, hi, slot + _OFFSET)
                    added.add(cell)
                    self._used += 1
                    self._live += 1
                    slots.append(slot)
                    held.append(False)
                    break
                if tag >= _OFFSET and seen_low == lo and seen_high == hi:
                    slots.append(tag - _OFFSET)
                    held.append(cell not in added)
                    break
                probe += 1
                cell = (cell + probe) & mask
        return slots, held

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
            self.find_or_add(low, high, slots.__getitem__)
