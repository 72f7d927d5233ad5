"""Tables as streams of changes and back: ``to_stream``, ``stream_to_table``,
``from_streams``.

``to_stream`` turns every change of a table into an inserted row: an insertion or update of
a row id becomes its new values with ``is_upsert = True``, a deletion its old values with
``is_upsert = False`` (stateless). ``stream_to_table`` reads such a stream back into a table:
it keeps the current row of each id, replacing it on an upsert and removing it on a deletion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID, consolidate, empty_batch
from deltaflow.engine.operators import Delta, Operator, run_projection
from deltaflow.plan import Node


@dataclass(eq=False)
class ToStreamNode(Node):
    """``to_stream``: each change of the input as an inserted row with an upsert flag."""

    flag: str = "is_upsert"


@dataclass(eq=False)
class StreamToTableNode(Node):
    """A table kept from a stream of upserts/deletions (and optionally a deletion stream)."""

    upsert_flag: Any = None  # CompiledProjection with one output "__upsert" (None: all upserts)


@dataclass(eq=False)
class AssertAppendOnlyNode(Node):
    """The input unchanged; a deletion stops the run."""


class AssertAppendOnlyOperator(Operator[AssertAppendOnlyNode]):
    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None:
            return None
        deletions = delta.filter(pl.col(DIFF) < 0)
        if deletions.height:
            key = t.Pointer(deletions[ID][0])
            raise ValueError(
                f"Expected table to be append-only, but got "
                f"diff={deletions[DIFF][0]} for key: {key}"
            )
        return delta


class ToStreamOperator(Operator[ToStreamNode]):
    def __init__(self, node: ToStreamNode) -> None:
        super().__init__(node)
        self.flag = node.flag
        self.data_columns = [c for c in node.columns if c != node.flag]

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        inserted = delta.filter(pl.col(DIFF) > 0)
        deleted = delta.filter(pl.col(DIFF) < 0).join(inserted.select(ID), on=ID, how="anti")
        out = pl.concat(
            [
                inserted.select(ID, *self.data_columns, pl.lit(True).alias(self.flag)),
                deleted.select(ID, *self.data_columns, pl.lit(False).alias(self.flag)),
            ]
        ).with_columns(pl.lit(1, dtype=pl.Int64).alias(DIFF))
        return consolidate(out)


class StreamToTableOperator(Operator[StreamToTableNode]):
    """Keeps the current row per id (a dict: each stream row costs one lookup)."""

    def __init__(self, node: StreamToTableNode) -> None:
        super().__init__(node)
        self.upsert_flag = node.upsert_flag
        self.names = list(node.columns)
        self.schema = empty_batch(node.columns).schema
        self.dtypes = node.columns
        self.current: dict[int, tuple[Any, ...]] = {}

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        events: list[tuple[int, tuple[Any, ...] | None]] = []
        for index, delta in enumerate(deltas):
            if delta is None or delta.height == 0:
                continue
            arrivals = delta.filter(pl.col(DIFF) > 0)
            if index == 0 and self.upsert_flag is not None:
                flags = run_projection(self.upsert_flag, arrivals)["__upsert"].to_list()
            else:
                flags = [index == 0] * arrivals.height
            ids = arrivals[ID].to_list()
            # A deletion stream (second input) only names ids: its columns are not read.
            rows = arrivals.select(self.names).rows() if index == 0 else [()] * arrivals.height
            for row_id, row, upsert in zip(ids, rows, flags, strict=True):
                events.append((row_id, row if upsert else None))
        if not events:
            return None
        retract: dict[int, tuple[Any, ...]] = {}
        for row_id, event_row in events:
            old = self.current.get(row_id)
            if old is not None and row_id not in retract:
                retract[row_id] = old
            if event_row is None:
                self.current.pop(row_id, None)
            else:
                self.current[row_id] = event_row
        touched = {row_id for row_id, _ in events}
        out_ids: list[int] = []
        out_rows: list[tuple[Any, ...]] = []
        out_diffs: list[int] = []
        for row_id in touched:
            old, new = retract.get(row_id), self.current.get(row_id)
            if old is not None and new is not None and old == new:
                continue
            if old is not None:
                out_ids.append(row_id)
                out_rows.append(old)
                out_diffs.append(-1)
            if new is not None:
                out_ids.append(row_id)
                out_rows.append(new)
                out_diffs.append(1)
        if not out_ids:
            return None
        columns = [pl.Series(ID, out_ids, dtype=self.schema[ID])]
        for position, name in enumerate(self.names):
            columns.append(
                t.series_from_values(name, [r[position] for r in out_rows], self.dtypes[name])
            )
        columns.append(pl.Series(DIFF, out_diffs, dtype=pl.Int64))
        return consolidate(pl.DataFrame(columns))
