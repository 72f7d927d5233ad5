"""Polars calls on the small frames of streaming deltas.

Polars' ``select`` and ``with_columns`` hand their expressions to its thread pool: a fixed
cost of tens of microseconds per call, and on a busy machine a wait until the pool's threads
are scheduled. On the few rows of a streaming delta that cost is most of the call, and the
engine makes several such calls per minibatch. ``select_seq``/``with_columns_seq`` evaluate
the expressions one after the other on the calling thread: about half the time for a
100-row frame, and no hand-over. Big frames keep the parallel calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

#: Frames up to this many rows evaluate their expressions on the calling thread.
SEQUENTIAL_ROWS = 4096


def project(frame: pl.DataFrame, exprs: Sequence[Any]) -> pl.DataFrame:
    """``frame.select(exprs)``; for a small frame, evaluated on the calling thread."""
    if frame.height <= SEQUENTIAL_ROWS:
        return frame.select_seq(exprs)
    return frame.select(exprs)


def extend(frame: pl.DataFrame, exprs: Sequence[Any]) -> pl.DataFrame:
    """``frame.with_columns(exprs)``; for a small frame, evaluated on the calling thread."""
    if frame.height <= SEQUENTIAL_ROWS:
        return frame.with_columns_seq(exprs)
    return frame.with_columns(exprs)
