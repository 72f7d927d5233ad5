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
        keys = [row[0] for row in rows]
        if not any(map(self._slots.__contains__, keys)) and len(set(keys)) == len(keys):
            self._put_new(keys, rows)
            return
        for row in rows:
            self.put(row[0], row)

    def _put_new(self, keys: list[Hashable], rows: Sequence[tuple[Any, ...]]) -> None:
        """Store rows under distinct ids that have none yet."""
        if self._free:
            for key, row in zip(keys, rows, strict=True):
                self.put(key, row)
            return
        start = self._take(len(rows))  # one run of never used slots
        self._slots.update(zip(keys, range(start, start + len(rows))))
        self._rows[start : start + len(rows)] = _objects(rows)

    def replace_rows(self, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Store each row under its id (its first value), as :meth:`put` one by one would,
        and return the rows they replaced, in order. Distinct ids are handled a batch at a
        time: the replaced rows read and written with one array access each."""
        keys = [row[0] for row in rows]
        if len(set(keys)) != len(keys):  # an id twice: its second row replaces its first
            replaced = []
            for key, row in zip(keys, rows, strict=True):
                old = self.get(key)
                if old is not None:
                    replaced.append(old)
                self.put(key, row)
            return replaced
        found = list(map(self._slots.get, keys))
        present = [i for i, slot in enumerate(found) if slot is not None]
        replaced = []
        if present:
            at = np.fromiter((found[i] for i in present), dtype=np.int64, count=len(present))
            replaced = self._rows[at].tolist()
            self._rows[at] = _objects([rows[i] for i in present])
        if len(present) < len(rows):
            absent = [i for i, slot in enumerate(found) if slot is None]
            self._put_new([keys[i] for i in absent], [rows[i] for i in absent])
        return replaced

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


def _objects(rows: Sequence[tuple[Any, ...]]) -> np.ndarray:
    """A one-dimensional object array of the rows (``np.array`` would make a table of them)."""
    return np.fromiter(rows, dtype=object, count=len(rows))
