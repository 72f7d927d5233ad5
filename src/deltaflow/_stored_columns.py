"""The columns of a :class:`~deltaflow._row_store.RowsById`: values by slot, a batch at a time.

Two kinds, made by :func:`stored_column` from a column's Polars type:

* :class:`ArrayColumn`: a NumPy array indexed by slot, holding a number column's physical
  numbers (with a validity array once the column has had a None) or, for other types, Python
  objects.
* :class:`TextColumn`: text kept in Polars' own form. A batch's values are kept as the Series
  they came in (no Python ``str`` is made per row, ~0.04 us and ~50-60 bytes a value), and an
  array gives each slot's position among them. Reading rows back is one gather. Replaced
  values are dropped a chunk at a time, in steps bounded by what each operation replaced.

Each kind gives its batch of new values an opaque form (:meth:`StoredColumn.values_of`)
that :meth:`~StoredColumn.same` and :meth:`~StoredColumn.write` take, so that a batch is
converted once.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import polars as pl

from deltaflow._arrays import enlarged
from deltaflow._small_frames import NUMBER_TYPES, series_of_array, series_of_values

__all__ = ["ArrayColumn", "StoredColumn", "TextColumn", "stored_column"]

#: Column types stored as their physical numbers (everything else: Python values or text).
_NUMERIC = (*NUMBER_TYPES, pl.Boolean, pl.Date, pl.Datetime, pl.Duration)


def stored_column(name: str, dtype: pl.DataType | type[pl.DataType]) -> StoredColumn:
    """The store for a column of this Polars type."""
    instance = pl.Series([], dtype=dtype).dtype  # an instance, also when given a class
    if instance == pl.String:
        return TextColumn(name, instance)
    return ArrayColumn(name, instance)


class StoredColumn(ABC):
    """One stored column: a value (or None) per slot."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: pl.DataType) -> None:
        self.name = name
        self.dtype = dtype

    @abstractmethod
    def reset(self) -> None:
        """Forget every value."""

    @abstractmethod
    def grow(self, size: int) -> None:
        """Make room for slots below ``size``."""

    @abstractmethod
    def values_of(self, series: pl.Series) -> Any:
        """The values of ``series`` in the form :meth:`same` and :meth:`write` take."""

    @abstractmethod
    def pick(self, values: Any, mask: np.ndarray) -> Any:
        """The values of :meth:`values_of` where ``mask`` is true."""

    @abstractmethod
    def same(self, slots: np.ndarray, values: Any) -> np.ndarray | None:
        """Whether each stored value at ``slots`` is exactly the new one, as consolidation
        compares them (None when that cannot be told here: values of other Python types)."""

    @abstractmethod
    def write(self, slots: np.ndarray, values: Any) -> None:
        """Store the values (of :meth:`values_of`) at ``slots`` (distinct)."""

    @abstractmethod
    def read(self, slots: np.ndarray) -> pl.Series:
        """The values stored at ``slots``."""

    @abstractmethod
    def release(self, slots: np.ndarray) -> None:
        """The values at ``slots`` are no longer needed (their ids were removed)."""

    @property
    @abstractmethod
    def python_exact(self) -> bool:
        """Whether a stored value reads back as the Python value given (numbers stored as
        themselves, Python objects, text), so that the few-row path may skip conversions."""

    @abstractmethod
    def get(self, slot: int) -> Any:
        """The Python value stored at ``slot`` (a :attr:`python_exact` column)."""

    @abstractmethod
    def set(self, slot: int, value: Any) -> None:
        """Store the Python ``value`` at ``slot`` (a :attr:`python_exact` column)."""

    def same_value(self, old: Any, new: Any) -> bool | None:
        """:meth:`same` for one pair of Python values (None: cannot be told here)."""
        if old is None or new is None:
            return old is None and new is None
        return old == new if isinstance(self.dtype, pl.String) else None


class ArrayColumn(StoredColumn):
    """Values by slot in a NumPy array: numbers (with a validity array when the column has
    had a None) or Python objects."""

    __slots__ = ("kind", "numeric", "plain", "valid", "values")

    def __init__(self, name: str, dtype: pl.DataType) -> None:
        super().__init__(name, dtype)
        self.numeric = isinstance(dtype, _NUMERIC)
        physical = pl.Series([], dtype=dtype).to_physical()
        #: The type of the values array: the column's physical numbers, or Python objects.
        self.kind = physical.to_numpy().dtype if self.numeric else np.dtype(object)
        #: Whether the column's values are their physical numbers (no conversion needed).
        self.plain = self.numeric and physical.dtype == dtype
        self.reset()

    def reset(self) -> None:
        self.values = np.empty(0, dtype=self.kind)
        self.valid: np.ndarray | None = None  # None: every stored value is set

    def grow(self, size: int) -> None:
        self.values = enlarged(self.values, size)  # (object arrays start as None)
        if self.valid is not None:
            self.valid = enlarged(self.valid, size, True)

    def values_of(self, series: pl.Series) -> tuple[np.ndarray, np.ndarray | None]:
        """The values as stored, and whether each is set (None: all are)."""
        if not self.numeric:
            return np.fromiter(series.to_list(), dtype=object, count=len(series)), None
        if series.dtype != self.dtype:
            series = series.cast(self.dtype)
        if not series.null_count():
            return (series if self.plain else series.to_physical()).to_numpy(), None
        numbers = series.to_physical().fill_null(strategy="zero").to_numpy()
        return numbers, series.is_not_null().to_numpy()

    def pick(
        self, values: tuple[np.ndarray, np.ndarray | None], mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        numbers, valid = values
        return numbers[mask], None if valid is None else valid[mask]

    def same(
        self, slots: np.ndarray, values: tuple[np.ndarray, np.ndarray | None]
    ) -> np.ndarray | None:
        numbers, valid = values
        if not self.numeric:
            return None
        old = self.values[slots]
        if self.values.dtype.kind == "f":  # bit for bit, or both NaN
            equal = old.view(f"u{old.itemsize}") == numbers.view(f"u{numbers.itemsize}")
            equal |= np.isnan(old) & np.isnan(numbers)
        else:
            equal = old == numbers
        if self.valid is not None or valid is not None:  # a missing value stored as 0
            old_valid = self.valid[slots] if self.valid is not None else True
            equal &= old_valid == (valid if valid is not None else True)
        return equal

    def write(self, slots: np.ndarray, values: tuple[np.ndarray, np.ndarray | None]) -> None:
        numbers, valid = values
        self.values[slots] = numbers
        if valid is not None:
            if self.valid is None:
                self.valid = np.ones(self.values.shape[0], dtype=bool)
            self.valid[slots] = valid
        elif self.valid is not None:
            self.valid[slots] = True

    def read(self, slots: np.ndarray) -> pl.Series:
        if not self.numeric:
            return series_of_values(self.name, self.values[slots].tolist(), self.dtype)
        series = series_of_array(self.name, np.ascontiguousarray(self.values[slots]))
        if series.dtype != self.dtype:
            series = series.cast(self.dtype)
        if self.valid is not None:
            valid = self.valid[slots]
            if not valid.all():
                mask = series_of_array("valid", valid)
                masked = series.to_frame().select(pl.when(mask).then(pl.col(self.name)))
                series = masked.to_series()
        return series

    def release(self, slots: np.ndarray) -> None:
        if not self.numeric:  # let go of the Python values
            self.values[slots] = None

    @property
    def python_exact(self) -> bool:
        return self.plain or not self.numeric

    def get(self, slot: int) -> Any:
        if self.valid is not None and not self.valid[slot]:
            return None
        value = self.values[slot]
        return value.item() if self.numeric else value

    def set(self, slot: int, value: Any) -> None:
        if value is None and self.numeric:
            if self.valid is None:
                self.valid = np.ones(self.values.shape[0], dtype=bool)
            self.valid[slot] = False
            self.values[slot] = 0
            return
        self.values[slot] = value
        if self.valid is not None:
            self.valid[slot] = True

    def same_value(self, old: Any, new: Any) -> bool | None:
        if old is None or new is None or not self.numeric:
            return super().same_value(old, new)
        if isinstance(old, float):  # bit for bit (0.0 is not -0.0), or both NaN
            if old != old:
                return new != new
            return old == new and math.copysign(1.0, old) == math.copysign(1.0, new)
        return bool(old == new)


#: A chunk holds at most this many values, so that re-gathering one (the step that drops
#: replaced values) costs well under a millisecond.
_CHUNK = 16_384
#: Values set one at a time wait in a list until this many, or until a batch reads them.
_LOOSE_VALUES = 1024
#: Up to this many values are read one by one (no joined Series of every chunk is made).
_FEW_READ = 32
_OFFSET_BITS = 32
_OFFSET_MASK = (1 << _OFFSET_BITS) - 1


class TextColumn(StoredColumn):
    """Text by slot, kept as Polars Series in *chunks* of at most :data:`_CHUNK` values.

    By slot, ``_where`` holds the position of the slot's value: its chunk's id and its offset
    there (-1: no value). A batch of at least half a chunk becomes chunks of its own (slices
    of its Series, no copy); smaller batches, and values set one at a time (kept in a list
    until :data:`_LOOSE_VALUES`), fill the *open* chunk, which is closed (its pieces joined
    into one Series) when full. Each chunk knows which slot it wrote at each offset, so that
    its values still in use can be told from replaced ones.

    Replaced values are dropped a chunk at a time: a closed chunk no more than half in use
    is re-gathered into the open chunk, and a chunk out of use is dropped. Each operation
    does such work in proportion to the values it replaced (at most about two chunks more),
    so no single update pays for dropping values a whole state left behind.
    """

    __slots__ = (
        "_base",
        "_credit",
        "_free",
        "_joined",
        "_live",
        "_loose",
        "_loose_slots",
        "_open",
        "_open_owners",
        "_open_pieces",
        "_open_starts",
        "_owners",
        "_series",
        "_size",
        "_sparse",
        "_where",
    )

    def __init__(self, name: str, dtype: pl.DataType) -> None:
        super().__init__(name, dtype)
        self.reset()

    def reset(self) -> None:
        self._where = np.full(0, -1, dtype=np.int64)
        # By chunk id: the closed chunk's values and the slot written at each offset (None:
        # the open chunk, or an id not in use), values written and values in use.
        self._series: list[pl.Series | None] = []
        self._owners: list[np.ndarray | None] = []
        self._size = np.zeros(0, dtype=np.int64)
        self._live = np.zeros(0, dtype=np.int64)
        self._free: list[int] = []  # chunk ids to reuse
        self._sparse: set[int] = set()  # closed chunks no more than half in use
        self._credit = 0  # values the next steps may re-gather
        # The open chunk: its pieces (with their first offsets and slots), then loose values.
        self._open = self._new_id()
        self._open_pieces: list[pl.Series] = []
        self._open_starts: list[int] = []
        self._open_owners: list[np.ndarray] = []
        self._loose: list[Any] = []
        self._loose_slots: list[int] = []
        #: Every chunk as one Series (not copied), and where each chunk starts in it.
        self._joined: pl.Series | None = None
        self._base = np.zeros(0, dtype=np.int64)

    def grow(self, size: int) -> None:
        self._where = enlarged(self._where, size, -1)

    def values_of(self, series: pl.Series) -> pl.Series:
        return series if series.dtype == pl.String else series.cast(pl.String)

    def pick(self, values: pl.Series, mask: np.ndarray) -> pl.Series:
        return values.filter(series_of_array("mask", mask))

    def same(self, slots: np.ndarray, values: pl.Series) -> np.ndarray:
        return self.read(slots).eq_missing(values).to_numpy()

    def write(self, slots: np.ndarray, values: pl.Series) -> None:
        self._credit = min(self._credit, 2 * _CHUNK)
        self._forget(slots)
        values = values.alias(self.name)
        count, start = len(slots), 0
        while count - start >= _CHUNK // 2:  # a big batch: chunks of its own
            end = min(count, start + _CHUNK)
            self._add_closed(values.slice(start, end - start), slots[start:end].copy())
            start = end
        if start < count:
            self._add_open(values.slice(start, count - start), slots[start:].copy())
        self._tidy()

    def read(self, slots: np.ndarray) -> pl.Series:
        if len(slots) <= _FEW_READ:  # a few values: no joined Series needed
            values = [self.get(slot) for slot in slots.tolist()]
            return series_of_values(self.name, values, pl.String)
        if self._loose:
            self._flush_loose()
        if self._joined is None:
            self._join()
        assert self._joined is not None
        positions = self._where[slots]
        return self._joined.gather(
            self._base[positions >> _OFFSET_BITS] + (positions & _OFFSET_MASK)
        )

    def release(self, slots: np.ndarray) -> None:
        self._credit = min(self._credit, 2 * _CHUNK)
        self._forget(slots)
        self._where[slots] = -1
        self._tidy()

    @property
    def python_exact(self) -> bool:
        return True

    def get(self, slot: int) -> Any:
        position = int(self._where[slot])
        chunk, offset = position >> _OFFSET_BITS, position & _OFFSET_MASK
        if chunk != self._open:
            series = self._series[chunk]
            assert series is not None
            return series[offset]
        in_pieces = int(self._size[chunk]) - len(self._loose)
        if offset >= in_pieces:
            return self._loose[offset - in_pieces]
        piece = bisect.bisect_right(self._open_starts, offset) - 1
        return self._open_pieces[piece][offset - self._open_starts[piece]]

    def set(self, slot: int, value: Any) -> None:
        self._credit = min(self._credit, 2 * _CHUNK)
        position = int(self._where[slot])
        if position >= 0:
            chunk = position >> _OFFSET_BITS
            self._live[chunk] -= 1
            self._credit += 2
            self._check(chunk)
        if self._size[self._open] >= _CHUNK:
            self._close_open()
        self._where[slot] = (self._open << _OFFSET_BITS) | int(self._size[self._open])
        self._size[self._open] += 1
        self._live[self._open] += 1
        self._loose.append(value)
        self._loose_slots.append(slot)
        if len(self._loose) >= _LOOSE_VALUES:
            self._flush_loose()
            self._tidy()

    # --- chunks ---------------------------------------------------------------------------
    def _new_id(self) -> int:
        if self._free:
            return self._free.pop()
        chunk = len(self._series)
        self._series.append(None)
        self._owners.append(None)
        if chunk >= len(self._size):
            size = max(16, 2 * len(self._size))
            self._size = enlarged(self._size, size, 0)
            self._live = enlarged(self._live, size, 0)
        return chunk

    def _forget(self, slots: np.ndarray) -> None:
        """The values at ``slots`` are replaced or released: their chunks lose them."""
        positions = self._where[slots]
        chunks = positions[positions >= 0] >> _OFFSET_BITS
        if not len(chunks):
            return
        self._credit += 2 * len(chunks)
        counts = np.bincount(chunks)
        touched = np.flatnonzero(counts)
        self._live[touched] -= counts[touched]
        touched = touched[touched != self._open]  # the open chunk is judged when closed
        live = self._live[touched]
        for chunk in touched[live == 0].tolist():
            self._drop(chunk)
        half = touched[(live > 0) & (2 * live <= self._size[touched])]
        self._sparse.update(half.tolist())

    def _check(self, chunk: int) -> None:
        """Drop a closed chunk out of use; mark one no more than half in use."""
        if chunk == self._open:
            return
        live = int(self._live[chunk])
        if live == 0:
            self._drop(chunk)
        elif 2 * live <= int(self._size[chunk]):
            self._sparse.add(chunk)

    def _drop(self, chunk: int) -> None:
        self._series[chunk] = None
        self._owners[chunk] = None
        self._size[chunk] = self._live[chunk] = 0
        self._sparse.discard(chunk)
        self._free.append(chunk)
        self._joined = None

    def _add_closed(self, series: pl.Series, owners: np.ndarray) -> None:
        chunk = self._new_id()
        self._series[chunk] = series
        self._owners[chunk] = owners
        self._size[chunk] = self._live[chunk] = len(owners)
        self._where[owners] = (chunk << _OFFSET_BITS) | np.arange(len(owners))
        self._joined = None

    def _add_open(self, series: pl.Series, owners: np.ndarray) -> None:
        """Add values to the open chunk (closing it first when they do not fit)."""
        if self._loose:
            self._flush_loose()
        if self._size[self._open] + len(owners) > _CHUNK:
            self._close_open()
        start = int(self._size[self._open])
        self._where[owners] = (self._open << _OFFSET_BITS) | np.arange(start, start + len(owners))
        self._open_pieces.append(series)
        self._open_starts.append(start)
        self._open_owners.append(owners)
        self._size[self._open] += len(owners)
        self._live[self._open] += len(owners)
        self._joined = None

    def _flush_loose(self) -> None:
        """The loose values become a piece of the open chunk (their positions stay)."""
        start = int(self._size[self._open]) - len(self._loose)
        self._open_pieces.append(series_of_values(self.name, self._loose, pl.String))
        self._open_starts.append(start)
        self._open_owners.append(np.array(self._loose_slots, dtype=np.int64))
        self._loose, self._loose_slots = [], []
        self._joined = None

    def _close_open(self) -> None:
        """The open chunk's pieces become one Series; a new chunk opens."""
        if self._loose:
            self._flush_loose()
        chunk = self._open
        if not self._open_pieces:
            return
        pieces = self._open_pieces
        self._series[chunk] = pieces[0] if len(pieces) == 1 else pl.concat(pieces, rechunk=True)
        self._owners[chunk] = np.concatenate(self._open_owners)
        self._open = self._new_id()
        self._open_pieces, self._open_starts, self._open_owners = [], [], []
        self._joined = None
        self._check(chunk)

    def _tidy(self) -> None:
        """Re-gather chunks no more than half in use, as far as the credit goes."""
        while self._sparse and self._credit > 0:
            chunk = self._sparse.pop()
            series, owners = self._series[chunk], self._owners[chunk]
            assert series is not None and owners is not None
            self._credit -= len(owners)
            in_use = self._where[owners] == (chunk << _OFFSET_BITS) | np.arange(len(owners))
            kept = np.flatnonzero(in_use)
            moved, slots = series.gather(kept), owners[kept]
            self._drop(chunk)
            if len(kept):
                self._add_open(moved, slots)

    def _join(self) -> None:
        """Every chunk (the open one's pieces in its place) as one Series."""
        parts: list[pl.Series] = []
        base = np.zeros(len(self._series), dtype=np.int64)
        start = 0
        for chunk, series in enumerate(self._series):
            base[chunk] = start
            if chunk == self._open:
                parts.extend(self._open_pieces)
                start += int(self._size[chunk])
            elif series is not None:
                parts.append(series)
                start += len(series)
        if not parts:
            parts = [pl.Series(self.name, [], dtype=pl.String)]
        self._joined = parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)
        self._base = base
