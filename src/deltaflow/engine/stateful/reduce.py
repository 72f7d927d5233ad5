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
all, whatever the state holds), bigger ones with Polars frame operations. Simple reductions
keep their groups in NumPy columns instead of tuples, which costs little per row, so they take
that path for deltas of up to :data:`COLUMN_DELTA_ROWS` rows; a bigger delta of count, sum and
avg is aggregated per group by the frame path's query and, when it touches at most
:data:`AGGREGATED_FOLD_GROUPS` groups, folded into the same columns.

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

__all__ = [
    "AGGREGATED_FOLD_GROUPS",
    "COLUMN_DELTA_ROWS",
    "COLUMN_GROUPS",
    "SMALL_DELTA_ROWS",
    "ReduceOperator",
]

SMALL_DELTA_ROWS = 1024  # deltas up to this many rows take the Python path
#: Deltas up to this many rows take the NumPy-columns path when the reduction allows it. Its
#: cost is mostly per call (~0.5 ms) plus ~0.7 us a row, while the frame path's fixed cost is
#: ~3 ms; and each switch between the two writes the cached groups back (a few ms for 1,000
#: groups). A stream whose minibatches hover around 1,000 rows (Kafka at 50k messages/s,
#: commits every 10 ms) used to switch at nearly every minibatch and fall behind.
COLUMN_DELTA_ROWS = 4096
COLUMN_GROUPS = True  # simple reductions keep that path's groups in NumPy columns (tests: off)
#: A bigger delta of count/sum/avg is aggregated per group by one query, and when it has at
#: most this many groups they are folded into the NumPy columns (a pass over the groups, no
#: arrangement merge): ~5 ms for 10,000 rows of 1,000 groups, against ~15-20 ms for the rest of
#: the frame path (a dozen queries and a merge of the group rows).
AGGREGATED_FOLD_GROUPS = 4096


class ReduceOperator(ReduceFramePath, ReduceRowPath):
    """One output row per group: picks the path for each delta."""

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        # Reducer failures become Error cells only on the frame path (runs keeping errors).
        if not self.small or errors.keeps_errors():
            return self._step_big(time, delta)
        columns = self._columns_possible and COLUMN_GROUPS and not self.argument_errors
        if columns and delta.height <= COLUMN_DELTA_ROWS:
            out = self._step_columns(time, delta)
            if out is not NOT_FOLDED:
                return out
        if delta.height <= SMALL_DELTA_ROWS:
            return self._step_small(time, delta)
        if columns and self.invertible:
            aggregated = self._aggregate_delta(delta)
            if aggregated[0].height <= AGGREGATED_FOLD_GROUPS:
                return self._fold_aggregated(aggregated[0])
            return self._step_big(time, delta, aggregated)
        return self._step_big(time, delta)
