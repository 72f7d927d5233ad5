"""The columns of a :class:`~deltaflow._row_store.RowsById`: values by slot, a batch at a time.

Two kinds, made by :func:`stored_column` from a column's Polars type:

* :class:`ArrayColumn`: a NumPy array indexed by slot, holding a number column's physical
  numbers (with a validity array once the column has had a None) or, for other types, Python
  objects.
* :class:`TextColumn`: text kept in Polars' own form. A batch's values are kept as the Series
  they came in (no Python ``str`` is made per row, ~0.04 us and ~50-60 bytes a value), and an
  array gives each slot's position among them. Reading rows back is one gather. Replaced
  values stay until they outnumber the live ones, then the live ones are gathered into one
  Series (*compaction*, linear in the live values; see :meth:`TextColumn.write`).

Each kind gives its batch of new values an opaque form (:meth:`StoredColumn.values_of`)
that :meth:`~StoredColumn.same` and :meth:`~StoredColumn.write` take, so that a batch is
converted once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import polars as pl

from deltaflow._arrays import enlarged
from deltaflow._small_frames import series_of_array, series_of_values

__all__ = ["ArrayColumn", "StoredColumn", "TextColumn", "stored_column"]

#: Column types stored as their physical numbers (everything else: Python values or text).
_NUMERIC = (
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
    pl.Float32,
    pl.Float64,
    pl.Boolean,
    pl.Date,
    pl.Datetime,
    pl.Duration,
)


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


#: Values set one at a time are kept in a list until this many (or until a batch needs them),
#: then become one more chunk.
_LOOSE_VALUES = 1024
#: A chunk shorter than this takes the next small chunk in (a copy of both), so that values
#: set one at a time do not leave thousands of chunks, each a cost to every gather.
_SMALL_CHUNK = 4096
#: Replaced values are dropped (the live ones gathered into one chunk) when they are more
#: than the live ones and more than this many.
_DEAD_VALUES = 1 << 16


class TextColumn(StoredColumn):
    """Text by slot, kept as Polars Series: the chunks written, in order, and by slot the
    position of its value among them (-1: none). Values set one at a time (the few-row path)
    wait in a list, at positions past the chunks, until a batch reads or a list is full."""

    __slots__ = ("_chunks", "_dead", "_joined", "_loose", "_stored", "_where")

    def __init__(self, name: str, dtype: pl.DataType) -> None:
        super().__init__(name, dtype)
        self.reset()

    def reset(self) -> None:
        self._chunks: list[pl.Series] = []
        self._joined: pl.Series | None = None  # the chunks as one Series, made when needed
        self._stored = 0  # values in the chunks
        self._loose: list[str | None] = []  # values at positions _stored, _stored + 1, ...
        self._dead = 0  # positions no slot refers to any more
        self._where = np.full(0, -1, dtype=np.int64)

    def grow(self, size: int) -> None:
        self._where = enlarged(self._where, size, -1)

    def values_of(self, series: pl.Series) -> pl.Series:
        return series if series.dtype == pl.String else series.cast(pl.String)

    def pick(self, values: pl.Series, mask: np.ndarray) -> pl.Series:
        return values.filter(series_of_array("mask", mask))

    def same(self, slots: np.ndarray, values: pl.Series) -> np.ndarray:
        return self.read(slots).eq_missing(values).to_numpy()

    def write(self, slots: np.ndarray, values: pl.Series) -> None:
        self._flush()
        self._forget(slots)
        self._where[slots] = np.arange(self._stored, self._stored + len(slots))
        self._append(values.alias(self.name))
        if self._dead > max(_DEAD_VALUES, self._stored - self._dead):
            self._compact()

    def read(self, slots: np.ndarray) -> pl.Series:
        positions = self._where[slots]
        if self._loose and len(positions) and positions.max() >= self._stored:
            self._flush()
        if not len(positions):
            return pl.Series(self.name, [], dtype=pl.String)
        return self._all().gather(positions)

    def release(self, slots: np.ndarray) -> None:
        self._forget(slots)
        self._where[slots] = -1

    @property
    def python_exact(self) -> bool:
        return True

    def get(self, slot: int) -> Any:
        position = int(self._where[slot])
        if position >= self._stored:
            return self._loose[position - self._stored]
        return self._all()[position]

    def set(self, slot: int, value: Any) -> None:
        if self._where[slot] >= 0:
            self._dead += 1
        self._where[slot] = self._stored + len(self._loose)
        self._loose.append(value)
        if len(self._loose) >= _LOOSE_VALUES:
            self._flush()
            # Rarely (a compaction takes ~50 ms a million values): not on most updates' path.
            if self._dead > 4 * max(_DEAD_VALUES, self._stored - self._dead):
                self._compact()

    def _forget(self, slots: np.ndarray) -> None:
        """Count the values at ``slots`` as replaced (their positions are not reused)."""
        self._dead += int(np.count_nonzero(self._where[slots] >= 0))

    def _flush(self) -> None:
        """The loose values become a chunk."""
        if self._loose:
            loose = self._loose
            self._loose = []
            self._append(series_of_values(self.name, loose, pl.String))

    def _append(self, chunk: pl.Series) -> None:
        self._stored += len(chunk)
        last = self._chunks[-1] if self._chunks else None
        if last is not None and len(last) < _SMALL_CHUNK and len(chunk) < _SMALL_CHUNK:
            self._chunks[-1] = pl.concat([last, chunk], rechunk=True)
        else:
            self._chunks.append(chunk)
        self._joined = None

    def _all(self) -> pl.Series:
        """The chunks as one Series (not copied into one buffer)."""
        if self._joined is None:
            chunks = self._chunks
            self._joined = chunks[0] if len(chunks) == 1 else pl.concat(chunks, rechunk=False)
        return self._joined

    def _compact(self) -> None:
        """Keep only the values some slot refers to, as one chunk, in slot order."""
        self._flush()
        live = np.flatnonzero(self._where >= 0)
        kept = self.read(live).rechunk() if len(live) else pl.Series(self.name, [], pl.String)
        self._where[live] = np.arange(len(live))
        self._chunks = [kept]
        self._joined = None
        self._stored = len(kept)
        self._dead = 0
