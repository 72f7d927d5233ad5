"""Small NumPy helpers shared by the stores that keep values in arrays by slot."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["grown"]


def grown(values: np.ndarray, size: int, fill: Any = 0) -> np.ndarray:
    """A copy of ``values`` with room for ``size`` entries, those past the old end ``fill``.

    Stores grow their arrays by doubling, so each entry is copied a bounded number of times.
    """
    bigger = np.full(size, fill, dtype=values.dtype)
    bigger[: values.shape[0]] = values
    return bigger
