"""Combining before the exchange: a partitioned reduce of counts and sums gets partial
aggregates from each worker instead of every row.

A reduce whose reducers are all ``count()``, ``sum`` or ``avg`` of an integer column depends
on its input only through, per group, the sum of the diffs and the sums of ``value * diff``:
any delta with the same sums gives the same updates. So before the rows of such a reduce
are split between the workers, each worker replaces its delta by at most two rows per group
with the same sums — the group key and the partial sums with diff 1, and the group key with
zeros for the rest of the count (diff ``n - 1``) — and a word count sends partial counts, at
most one row per word and worker, instead of every word.

Only when the reduce's key and arguments are input columns as they are (or cast to their own
type): the combined rows must give the same keys and arguments through the reduce's own
projection. Integer sums only (a float sum depends on the order of its terms). The columns
the reduce does not read are null in combined rows, and their ids are a hash of the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow._ids import ID_DTYPE
from deltaflow.engine.batch import DIFF, ID, collect
from deltaflow.engine.operators import Operator, projection_exprs

#: Deltas of at least this many rows are combined (smaller ones cost more to group than
#: they save); ``DELTAFLOW_WORKERS_COMBINE_ROWS`` overrides it (0: every delta).
COMBINE_ROWS = 2048
_COMBINABLE = frozenset(["count", "sum", "avg"])
_COUNT = "__combined_count"

#: A delta of a reduce's input -> a smaller delta with the same per-group sums.
Combiner = Callable[[pl.DataFrame], pl.DataFrame]


def combine_threshold() -> int:
    """The smallest delta that is combined (see :data:`COMBINE_ROWS`)."""
    raw = os.environ.get("DELTAFLOW_WORKERS_COMBINE_ROWS", "").strip()
    return int(raw) if raw else COMBINE_ROWS


def _source_column(expr: pl.Expr, inputs: dict[str, t.DType]) -> str | None:
    """The input column ``expr`` is (perhaps cast to its own type), else None."""
    roots = expr.meta.root_names()
    if len(roots) != 1 or roots[0] not in inputs:
        return None
    column = roots[0]
    plain = expr.meta.undo_aliases()
    dtype = inputs[column].to_polars()
    if plain.meta.eq(pl.col(column)) or plain.meta.eq(pl.col(column).cast(dtype, strict=True)):
        return column
    return None


def combiner_for(op: Operator) -> Combiner | None:
    """The combiner of a partitioned reduce, or None when its input cannot be combined."""
    from deltaflow.engine.stateful.reduce import ReduceOperator

    if type(op) is not ReduceOperator or not op.invertible or op.id_key is not None:
        return None
    if not op.keys:
        return None
    exprs = projection_exprs(op.pre)
    if exprs is None:
        return None
    inputs: dict[str, t.DType] = dict(op.node.inputs[0].columns)
    keys = [_source_column(exprs[k], inputs) for k in op.keys]
    sums: list[str] = []
    for call in op.calls:
        name = call.reducer.name
        if name not in _COMBINABLE or (name == "count" and call.args):
            return None
        if name == "count":
            continue
        source = _source_column(exprs[call.args[0]], inputs)
        if source is None or call.arg_types[0] != t.INT or inputs[source] != t.INT:
            return None
        if source not in sums:
            sums.append(source)
    if any(k is None for k in keys):
        return None
    key_columns = [k for k in keys if k is not None]
    if set(key_columns) & set(sums) or len(set(exprs)) != len(op.keys) + sum(
        len(c.args) for c in op.calls
    ):
        return None
    if any(inputs[k].to_polars() == pl.Object for k in key_columns):
        return None
    others = {
        name: dtype.to_polars()
        for name, dtype in inputs.items()
        if name not in key_columns and name not in sums
    }
    if any(dtype == pl.Object for dtype in others.values()):
        return None
    return _combiner(key_columns, sums, others, list(inputs))


def _combiner(
    keys: list[str], sums: list[str], others: dict[str, Any], columns: list[str]
) -> Combiner:
    def combine(delta: pl.DataFrame) -> pl.DataFrame:
        aggregates = [pl.col(DIFF).sum().alias(_COUNT)]
        aggregates += [(pl.col(c) * pl.col(DIFF)).sum().alias(c) for c in sums]
        # A big delta's group_by runs on Polars' streaming engine (several times faster).
        groups = collect(delta.lazy().group_by(keys).agg(aggregates), delta.height)
        groups = groups.with_columns(pl.struct(keys).hash().cast(ID_DTYPE).alias(ID))
        if sums:
            carries = pl.any_horizontal([pl.col(c) != 0 for c in sums])
            with_sums = groups.filter(carries).with_columns(pl.lit(1, dtype=pl.Int64).alias(DIFF))
            rest = groups.with_columns(
                (pl.col(_COUNT) - carries.cast(pl.Int64)).alias(DIFF),
                *[pl.lit(0, dtype=pl.Int64).alias(c) for c in sums],
            )
            rows = pl.concat([with_sums, rest], how="vertical_relaxed")
        else:
            rows = groups.with_columns(pl.col(_COUNT).alias(DIFF))
        rows = rows.filter(pl.col(DIFF) != 0)
        return rows.select(
            ID,
            *[
                pl.lit(None, dtype=others[c]).alias(c) if c in others else pl.col(c)
                for c in columns
            ],
            DIFF,
        )

    return combine
