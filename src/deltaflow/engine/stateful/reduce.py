"""The reduce operator: one output row per group, updated for the groups a delta touches.

State: ``groups``, an arrangement of the current group rows (key hash, key values, id, count,
accumulators and reducer values) keyed by the group-key hash. When every reducer is invertible
(count, sum, avg) that is all: a delta is aggregated per group and added to the accumulators.
Otherwise the input rows are arranged by group key as well. A group whose delta only inserts rows
is *folded* when every reducer can absorb insertions (count, sum, avg, min, max: the new min is
the min of the old one and the delta's); any other touched group is recomputed from its current
rows (with Polars aggregations where they exist, in Python for the others).

Each step takes one of two paths with the same results: deltas of up to
:data:`SMALL_DELTA_ROWS` rows are handled in plain Python over row tuples (a few Polars calls in
all, whatever the state holds), bigger ones with Polars frame operations.

The operator is put together from one class per responsibility: :mod:`.reduce_state` (what
a reduce keeps, group ids, the write-back of cached group rows), :mod:`.reduce_frames` (the
frame path), :mod:`.reduce_errors` (errors as values, frame path only), :mod:`.reduce_rows`
(the Python paths) with :mod:`.reduce_plan` (its row layout) and :mod:`.reduce_columns` (its
NumPy group columns).
"""

from __future__ import annotations

from collections.abc import Sequence

from deltaflow import errors
from deltaflow.engine.operators import Delta
from deltaflow.engine.stateful.reduce_frames import ReduceFramePath
from deltaflow.engine.stateful.reduce_rows import NOT_FOLDED, ReduceRowPath

__all__ = ["COLUMN_GROUPS", "SMALL_DELTA_ROWS", "ReduceOperator"]

SMALL_DELTA_ROWS = 1024  # deltas up to this many rows take the Python path
COLUMN_GROUPS = True  # simple reductions keep that path's groups in NumPy columns (tests: off)


class ReduceOperator(ReduceFramePath, ReduceRowPath):
    """One output row per group: picks the path for each delta."""

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        # Reducer failures become Error cells only on the frame path (runs keeping errors).
        if self.small and delta.height <= SMALL_DELTA_ROWS and not errors.keeps_errors():
            if self._columns_possible and COLUMN_GROUPS and not self.argument_errors:
                out = self._step_columns(time, delta)
                if out is not NOT_FOLDED:
                    return out
            return self._step_small(time, delta)
        return self._step_big(time, delta)
