"""``Table.unpack_snapshots``: every state of a table, as rows added at each time.

At each time at which the input changed, the operator emits the whole current contents of the
input as insertions, with new ids derived from the row's id and the time; nothing is ever
retracted, so the result is append-only and holds one full snapshot per changing time. The
state is kept as one Polars frame: applying a delta and emitting the snapshot are both
columnar (the output of a time is, by definition, as big as the table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from deltaflow import _types as t
from deltaflow._ids import hash_columns
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.runtime import register_operator
from deltaflow.plan import Node


@dataclass(eq=False)
class UnpackSnapshotsNode(Node):
    """The snapshots of the one input, one per time at which it changed."""


class UnpackSnapshotsOperator(Operator[UnpackSnapshotsNode]):
    def __init__(self, node: UnpackSnapshotsNode) -> None:
        super().__init__(node)
        self.names = list(node.columns)
        self.state = self.empty().drop(DIFF)

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        removed = delta.filter(pl.col(DIFF) < 0).select(ID)
        added = delta.filter(pl.col(DIFF) > 0).select([ID, *self.names])
        kept = self.state.join(removed, on=ID, how="anti") if removed.height else self.state
        kept = kept.join(added.select(ID), on=ID, how="anti") if added.height else kept
        self.state = pl.concat([kept, added.cast(kept.schema)], how="vertical")
        if self.state.height == 0:
            return None
        keys = self.state.select(
            pl.col(ID).alias("row"), pl.lit(time, dtype=pl.Int64).alias("time")
        )
        ids = hash_columns(keys, [("row", t.POINTER), ("time", t.INT)])
        return self.state.with_columns(ids.alias(ID), pl.lit(1, dtype=pl.Int64).alias(DIFF))


register_operator(UnpackSnapshotsNode, UnpackSnapshotsOperator)
