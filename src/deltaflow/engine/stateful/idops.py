"""Operators that match the rows of several tables by id.

``update_rows``, ``update_cells``, ``restrict``, ``intersect`` and ``difference`` all have the
same shape: every input is arranged by row id; at each time the operator looks up the ids the
deltas touch, computes the result for those ids before and after the deltas, and emits the
difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from deltaflow.engine.batch import DIFF, ID, consolidate, empty_batch
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.stateful.arrangement import KH, Arrangement, consolidate_rows
from deltaflow.engine.stateful.nodes import IdOpNode


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(ID).hash(7).alias(KH))


class IdOpOperator(Operator):
    def __init__(self, node: IdOpNode) -> None:
        super().__init__(node)
        self.kind = node.kind
        self.arrangements = [Arrangement() for _ in node.inputs]
        self.schemas = [empty_batch(i.columns).schema for i in node.inputs]
        self.out_schema = empty_batch(node.columns).schema
        self.input_columns = [list(i.columns) for i in node.inputs]

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        keyed = [None if d is None or d.height == 0 else _keyed(d) for d in deltas]
        present = [d for d in keyed if d is not None]
        if not present:
            return None
        touched = pl.concat([d[KH] for d in present]).unique()
        olds: list[pl.DataFrame | None] = []
        news: list[pl.DataFrame | None] = []
        for arrangement, delta in zip(self.arrangements, keyed, strict=True):
            old = arrangement.lookup(touched)
            olds.append(old)
            if delta is None:
                news.append(old)
                continue
            arrangement.insert(delta)
            if old is None:
                news.append(delta)
            else:
                merged = consolidate_rows(pl.concat([old, delta], how="vertical_relaxed"))
                news.append(merged if merged.height else None)
        before = self._combine(olds)
        after = self._combine(news)
        parts = []
        if before is not None and before.height:
            parts.append(before.with_columns((-pl.col(DIFF)).alias(DIFF)))
        if after is not None and after.height:
            parts.append(after)
        if not parts:
            return None
        out = consolidate(pl.concat(parts, how="vertical_relaxed"))
        return out if out.height else None

    def _frame(self, index: int, frame: pl.DataFrame | None) -> pl.DataFrame:
        if frame is None:
            return pl.DataFrame(schema=self.schemas[index])
        return frame.select(list(self.schemas[index]))

    def _shape(self, frame: pl.DataFrame) -> pl.DataFrame:
        names = list(self.out_schema)
        return frame.select([pl.col(c).cast(self.out_schema[c]) if frame.schema[c] !=
                             self.out_schema[c] and self.out_schema[c] != pl.Object
                             else pl.col(c) for c in names])

    def _combine(self, frames: list[pl.DataFrame | None]) -> pl.DataFrame | None:
        base = self._frame(0, frames[0])
        kind = self.kind
        if kind == "update_rows":
            other = self._frame(1, frames[1])
            kept = base.join(other.select(ID), on=ID, how="anti")
            return pl.concat([self._shape(kept), self._shape(other)], how="vertical_relaxed")
        if kind == "update_cells":
            other = self._frame(1, frames[1])
            names = [c for c in self.input_columns[1]]
            renamed = other.select([ID, *[pl.col(c).alias(f"__u_{c}") for c in names]]) \
                .with_columns(pl.lit(True).alias("__u_present"))
            joined = base.join(renamed, on=ID, how="left")
            present = pl.col("__u_present").fill_null(False)
            joined = joined.with_columns([
                pl.when(present).then(pl.col(f"__u_{c}")).otherwise(pl.col(c)).alias(c)
                if self.out_schema[c] != pl.Object else
                _object_choice(joined, c) for c in names
            ])
            return self._shape(joined)
        if kind in ("restrict", "intersect"):
            for index in range(1, len(frames)):
                other = self._frame(index, frames[index])
                base = base.join(other.select(ID), on=ID, how="semi")
            return self._shape(base)
        if kind == "difference":
            other = self._frame(1, frames[1])
            return self._shape(base.join(other.select(ID), on=ID, how="anti"))
        raise ValueError(f"unknown id operation {kind!r}")


def _object_choice(joined: pl.DataFrame, column: str) -> pl.Series:
    present = joined["__u_present"].fill_null(False).to_list()
    new = joined[f"__u_{column}"].to_list()
    old = joined[column].to_list()
    return pl.Series(column, [n if p else o for p, n, o in zip(present, new, old, strict=True)],
                     dtype=pl.Object)
