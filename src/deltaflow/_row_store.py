"""The current row of every id, kept out of the cyclic garbage collector's sight.

A plain ``dict[id, tuple]`` of millions of rows stalls live updates: CPython stops tracking a
dict of plain values at a full collection and tracks it again, in the youngest generation, the
moment a freshly made tuple is stored in it, so the next young collections visit every entry
(~45 ms at 2M rows, paid by whichever update stored a row), and every full collection walks it
too. Here the ids map to slot numbers (a dict of ints, never tracked) and the rows live in a
NumPy object array, which the collector does not traverse; freed slots are reused.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

__all__ = ["RowsById"]

_START = 1024  # slots allocated at first; doubled as needed


class RowsById:
    """Rows (tuples) by id, for ids that are ints or other values never tracked by the
    collector (texts, floats ...)."""

    __slots__ = ("_free", "_next", "_rows", "_slots")

    def __init__(self) -> None:
        self.clear()

    def __len__(self) -> int:
        return len(self._slots)

    def get(self, key: Hashable) -> tuple[Any, ...] | None:
        slot = self._slots.get(key)
        return None if slot is None else self._rows[slot]

    def put(self, key: Hashable, row: tuple[Any, ...]) -> None:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._free.pop() if self._free else self._take(1)
            self._slots[key] = slot
        self._rows[slot] = row

    def put_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Store each row under its first value (its id); a later row of one id wins."""
        slots = self._slots
        keys = [row[0] for row in rows]
        fresh = not self._free and not any(map(slots.__contains__, keys))
        if fresh and len(set(keys)) == len(keys):
            start = self._take(len(rows))  # all new and distinct: one run of slots
            slots.update(zip(keys, range(start, start + len(rows))))
            self._rows[start : start + len(rows)] = np.fromiter(rows, dtype=object, count=len(rows))
            return
        for row in rows:
            self.put(row[0], row)

    def pop(self, key: Hashable) -> tuple[Any, ...] | None:
        slot = self._slots.pop(key, None)
        if slot is None:
            return None
        row: tuple[Any, ...] = self._rows[slot]
        self._rows[slot] = None
        self._free.append(slot)
        return row

    def values(self) -> list[tuple[Any, ...]]:
        return [row for row in self._rows[: self._next].tolist() if row is not None]

    def clear(self) -> None:
        self._slots: dict[Hashable, int] = {}
        self._rows: np.ndarray = np.empty(_START, dtype=object)
        self._next = 0  # slots below this have been used
        self._free = array("q")  # slots freed by pop, reused first

    def _take(self, count: int) -> int:
        """The first of ``count`` never used slots, growing the array if needed."""
        start = self._next
        self._next += count
        if self._next > self._rows.shape[0]:
            grown = np.empty(max(self._next, 2 * self._rows.shape[0]), dtype=object)
            grown[:start] = self._rows[:start]
            self._rows = grown
        return start
