"""The reduce operator: one output row per group, updated for the groups a delta touches.

State: ``groups``, an arrangement of the current group rows (key values, id, count,
accumulators and reducer values) keyed by the group-key hash. When every reducer is invertible
(count, sum, avg) that is all: a delta is aggregated per group and added to the accumulators.
Otherwise the input rows are arranged by group key as well and the touched groups are
recomputed from their current rows (with Polars aggregations where they exist, in Python for
the others).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._ids import hash_columns
from deltaflow.engine.batch import DIFF, ID, consolidate
from deltaflow.engine.operators import Delta, Operator
from deltaflow.engine.stateful.arrangement import (
    KH,
    TIME,
    Arrangement,
    add_key_columns,
    constant_ids,
)
from deltaflow.engine.stateful.nodes import ReduceNode
from deltaflow.reducers import Row

COUNT = "__cnt"


class ReduceOperator(Operator):
    def __init__(self, node: ReduceNode) -> None:
        super().__init__(node)
        self.pre = node.pre
        self.keys = list(node.keys)
        self.key_types = list(node.key_types)
        self.calls = list(node.reducers)
        self.post = node.post
        self.id_key = node.id_key
        self.invertible = all(c.reducer.invertible for c in self.calls)
        self.groups = Arrangement()
        self.rows: Arrangement | None = None if self.invertible else Arrangement(ignore=(TIME,))
        self.match: list[str] | None = None

    # --- helpers ---------------------------------------------------------------------------
    def _prepare(self, delta: pl.DataFrame) -> pl.DataFrame:
        frame = self.pre.run(delta, keep=[ID, DIFF])
        frame, match = add_key_columns(frame, self.keys)
        self.match = match
        return frame

    def _group_ids(self, groups: pl.DataFrame) -> pl.Series:
        if self.id_key is not None:
            ids = groups[self.id_key]
            if ids.null_count():
                raise ValueError(f"{self.describe()}: groupby(id=...) met a None id value")
            return ids.alias(ID)
        if not self.keys:
            return constant_ids(groups.height)
        return hash_columns(groups, list(zip(self.keys, self.key_types, strict=True)))

    def _key_columns(self, match: Sequence[str]) -> list[str]:
        """Key columns that are not themselves join columns (object keys have surrogates)."""
        return [k for k in self.keys if k not in match]

    # --- step ------------------------------------------------------------------------------
    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        if self.invertible:
            # Aggregate the delta per group first: hashing then costs per group, not per row.
            agg, match = self._aggregate(self.pre.run(delta, keep=[ID, DIFF]))
            old = self.groups.lookup(agg[KH])
            new = self._accumulate(agg, old, match)
        else:
            frame = self._prepare(delta)
            match = self.match or [KH]
            touched = frame[KH].unique()
            old = self.groups.lookup(touched)
            assert self.rows is not None
            frame = frame.with_columns(pl.lit(time, dtype=pl.Int64).alias(TIME))
            self.rows.insert(frame)
            current = self.rows.lookup(touched)
            new = self._recompute(current, match, old)
        parts = []
        if old is not None and old.height:
            parts.append(old.with_columns(pl.lit(-1, dtype=pl.Int64).alias(DIFF)))
        if new is not None and new.height:
            parts.append(new.with_columns(pl.lit(1, dtype=pl.Int64).alias(DIFF)))
        if not parts:
            return None
        changes = pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]
        self.groups.insert(changes)
        out = self.post.run(changes, keep=[ID])
        out = consolidate(out.with_columns(changes[DIFF]))
        return out if out.height else None

    # --- invertible reducers ---------------------------------------------------------------
    def _acc_exprs(self) -> list[pl.Expr]:
        exprs = [pl.col(DIFF).sum().alias(COUNT)]
        for index, call in enumerate(self.calls):
            if call.reducer.name in ("sum", "avg"):
                exprs.append((pl.col(call.args[0]) * pl.col(DIFF)).sum().alias(f"__acc{index}"))
        return exprs

    def _results(self, groups: pl.DataFrame) -> pl.DataFrame:
        exprs = []
        for index, call in enumerate(self.calls):
            target = call.dtype.to_polars()
            if call.reducer.name == "count":
                value = pl.col(COUNT)
            elif call.reducer.name == "sum":
                value = pl.col(f"__acc{index}")
            else:
                value = pl.col(f"__acc{index}") / pl.col(COUNT)
            exprs.append(value.cast(target).alias(call.column))
        return groups.with_columns(exprs)

    def _aggregate(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
        objects = [k for k in self.keys if frame.schema[k] == pl.Object]
        if objects or not self.keys:
            frame, match = add_key_columns(frame, self.keys)
            firsts = [pl.col(k).first() for k in self._key_columns(match)]
            return frame.group_by(match).agg(firsts + self._acc_exprs()), match
        agg = frame.group_by(self.keys).agg(self._acc_exprs())
        return add_key_columns(agg, self.keys)

    def _accumulate(self, agg: pl.DataFrame, old: pl.DataFrame | None,
                    match: list[str]) -> pl.DataFrame | None:
        accs = [COUNT] + [f"__acc{i}" for i, c in enumerate(self.calls)
                          if c.reducer.name in ("sum", "avg")]
        if old is None or old.height == 0:
            new = agg.filter(pl.col(COUNT) > 0)
            if new.height == 0:
                return None
            new = new.with_columns(self._group_ids(new))
            return self._results(new)
        previous = old.select([*match, *self._key_columns(match), ID, *accs])
        joined = previous.join(agg, on=match, how="full", coalesce=True, nulls_equal=True,
                               suffix="__d")
        fixes = [pl.col(k).fill_null(pl.col(f"{k}__d")) for k in self._key_columns(match)]
        fixes += [(pl.col(a).fill_null(0) + pl.col(f"{a}__d").fill_null(0)).alias(a)
                  for a in accs]
        joined = joined.with_columns(fixes).filter(pl.col(COUNT) > 0)
        joined = joined.drop([c for c in joined.columns if c.endswith("__d")])
        if joined.height == 0:
            return None
        missing = joined[ID].is_null()
        if missing.any():
            joined = joined.with_columns(
                pl.when(missing).then(self._group_ids(joined)).otherwise(pl.col(ID)).alias(ID)
            )
        return self._results(joined)

    # --- recomputed reducers ---------------------------------------------------------------
    def _recompute(self, rows: pl.DataFrame | None, match: list[str],
                   old: pl.DataFrame | None) -> pl.DataFrame | None:
        if rows is None or rows.height == 0:
            return None
        rows = rows.filter(pl.col(DIFF) > 0)
        if rows.height == 0:
            return None
        aggs: list[pl.Expr] = [pl.col(k).first() for k in self._key_columns(match)]
        aggs.append(pl.col(DIFF).sum().alias(COUNT))
        in_python = []
        for call in self.calls:
            expr = call.reducer.polars_agg(call.args, call.arg_types)
            if expr is None:
                in_python.append(call)
            else:
                aggs.append(expr.alias(call.column))
        groups = rows.group_by(match, maintain_order=True).agg(aggs)
        if in_python:
            groups = groups.with_columns(self._python_values(rows, groups, match, in_python))
        casts = [pl.col(c.column).cast(c.dtype.to_polars()) for c in self.calls
                 if c.dtype.to_polars() != pl.Object]
        if casts:
            groups = groups.with_columns(casts)
        groups = self._reuse_ids(groups, old, match)
        return groups

    def _reuse_ids(self, groups: pl.DataFrame, old: pl.DataFrame | None,
                   match: list[str]) -> pl.DataFrame:
        return groups.with_columns(self._group_ids(groups))

    def _python_values(self, rows: pl.DataFrame, groups: pl.DataFrame, match: list[str],
                       calls: list[Any]) -> list[pl.Series]:
        rows = rows.sort(ID)
        position: dict[tuple[Any, ...], int] = {
            key: i for i, key in enumerate(groups.select(match).iter_rows())
        }
        group_of = [position[key] for key in rows.select(match).iter_rows()]
        ids = rows[ID].to_list()
        counts = rows[DIFF].to_list()
        times = rows[TIME].to_list()
        out = []
        for call in calls:
            columns = [t.values_from_series(rows[a]) for a in call.args]
            per_group: list[list[Row]] = [[] for _ in range(groups.height)]
            for i, g in enumerate(group_of):
                per_group[g].append(Row(ids[i], tuple(c[i] for c in columns), counts[i],
                                        times[i]))
            values = [call.reducer.python(group) for group in per_group]
            out.append(t.series_from_values(call.column, values, call.dtype))
        return out
