"""Small NumPy helpers shared by the stores that keep values in arrays by slot."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["enlarged", "grown"]


def grown(values: np.ndarray, size: int, fill: Any = None) -> np.ndarray:
    """A copy of ``values`` with room for ``size`` entries; those past the old end are
    ``fill``, or left as they come (None: the store writes an entry before reading it, and
    not filling saves a write of every new page, ~35% of growing a million-entry array).

    Stores grow their arrays geometrically (by half or more), so each entry is copied a
    bounded number of times.
    """
    bigger = np.empty(size, dtype=values.dtype)
    bigger[: values.shape[0]] = values
    if fill is not None:
        bigger[values.shape[0] :] = fill
    return bigger


def enlarged(values: np.ndarray, size: int, fill: Any = None) -> np.ndarray:
    """:func:`grown`, done in place when ``values`` owns its numbers: the array's memory is
    reallocated, which for a big array moves its pages rather than copying them (and never
    holds the old and the new array at once). Growing a store's arrays to millions of entries
    by copies cost more than storing the entries: every copy lands in fresh pages the kernel
    must map and zero (~0.8 s for five arrays grown to 8M entries, against ~0.3 s in place).

    Only for arrays of which no view or zero-copy Series exists (a store's private arrays, read
    through fancy indexing, which copies): the old memory is gone after the call. Arrays of
    Python objects are copied (their references must be counted)."""
    if values.dtype.hasobject or not (values.flags.owndata and values.flags.c_contiguous):
        return grown(values, size, fill)
    old = values.shape[0]
    values.resize(size, refcheck=False)  # refcheck would count the caller's own references
    if fill is not None:
        values[old:] = fill
    return values
