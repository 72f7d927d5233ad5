"""Small NumPy helpers shared by the stores that keep values in arrays by slot."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["grown"]


def grown(values: np.ndarray, size: int, fill: Any = None) -> np.ndarray:
    """A copy of ``values`` with room for ``size`` entries; those past the old end are
    ``fill``, or left as they come (None: the store writes an entry before reading it, and
    not filling saves a write of every new page, ~35% of growing a million-entry array).

    Stores grow their arrays by doubling, so each entry is copied a bounded number of times.
    """
    bigger = np.empty(size, dtype=values.dtype)
    bigger[: values.shape[0]] = values
    if fill is not None:
        bigger[values.shape[0] :] = fill
    return bigger
