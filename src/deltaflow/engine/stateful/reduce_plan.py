"""The fixed layout of a reduce's Python path: where each value sits in a group row and in a
group's delta, how a delta folds into a group row, and how rows become frames."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from deltaflow import _types as t
from deltaflow import errors
from deltaflow._float_sums import average, wrap_int64
from deltaflow._small_frames import frame_of, series_of_values
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.stateful.keys import KH

if TYPE_CHECKING:
    from deltaflow.engine.stateful.reduce_state import ReduceState


class SmallPlan:
    """Positions and steps of the Python path, fixed for one reduce: group rows are
    ``(key hash, *keys, id, count, *accumulators, *reducer values)``, group deltas
    ``[count, any deletion, *per-reducer accumulators or folded values]``."""

    def __init__(self, op: ReduceState) -> None:
        calls = op.calls
        self.width = 1 + len(op.keys)  # key hash and keys: what identifies a group
        self.key_dtypes = [k.to_polars() for k in op.key_types]
        count_at = self.width + 1
        self.accumulated = [i for i, c in enumerate(calls) if f"__acc{i}" in op.accs]
        self.largest = [i for i, c in enumerate(calls) if op.foldable and c.reducer.name == "max"]
        self.smallest = [i for i, c in enumerate(calls) if op.foldable and c.reducer.name == "min"]
        self.zeros = [0 if i in self.accumulated else None for i in range(len(calls))]
        acc_at = {i: count_at + 1 + n for n, i in enumerate(self.accumulated)}
        first_result = count_at + 1 + len(self.accumulated)
        # (kind, delta slot, old accumulator position, old value position) per reducer
        self.steps = [
            (c.reducer.name, 2 + i, acc_at.get(i, -1), first_result + i)
            for i, c in enumerate(calls)
        ]
        self.count_at = count_at
        columns = op._state_columns([KH, *op.keys])
        schema = op._state_schema()
        declared = {c.column: c.dtype for c in calls}
        self.columns = [(name, schema[name], declared.get(name)) for name in columns]
        #: The group row's columns as ``(name, Polars type)``: what the column paths output.
        self.layout = [(name, dtype) for name, dtype, _ in self.columns]
        objects = any(dtype == pl.Object for dtype in schema.values())
        floats = any(dtype in (pl.Float32, pl.Float64) for dtype in schema.values())
        self.same = _same if objects else _equal if floats else operator.eq
        # Where the reducer values start in a group row and in its (count, *accs, *values).
        self.values_from = first_result
        self.body_values = 1 + len(self.accumulated)
        self.injective = _shows_every_value(op.post, [c.column for c in calls])
        self.read_by_post = list(range(len(columns)))
        #: The reduce's output columns as ``(name, position in a group row)`` when ``post``
        #: only picks and renames group row columns and shows every reducer value: the
        #: output is then made from the group rows without running ``post`` (None: it runs).
        self.outputs: list[tuple[str, int]] | None = None
        empty = pl.DataFrame(schema={name: dtype for name, dtype, _ in self.columns})
        if not errors.keeps_errors() and (copies := op.post.copies(empty)) is not None:
            wanted = {ID} | {source for _, source in copies}
            self.read_by_post = [i for i, name in enumerate(columns) if name in wanted]
            if self.injective:
                self.outputs = [
                    (ID, columns.index(ID)),
                    *((name, columns.index(source)) for name, source in copies),
                ]

    def fold(self, entry: list[Any], old: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        """The group row's count, accumulators and values after an insert-only delta (any
        delta when every reducer is invertible), None when the group is now empty."""
        count = entry[0] + (old[self.count_at] if old is not None else 0)
        if count <= 0:
            return None
        accs: list[Any] = []
        results: list[Any] = []
        for kind, slot, acc_at, value_at in self.steps:
            if kind == "count":
                results.append(count)
            elif acc_at >= 0:
                acc = wrap_int64(entry[slot] if old is None else old[acc_at] + entry[slot])
                accs.append(acc)
                results.append(acc if kind == "sum" else average(acc, count))
            else:
                results.append(
                    _better(None if old is None else old[value_at], entry[slot], kind == "max")
                )
        return (count, *accs, *results)

    def series(self, index: int, values: list[Any]) -> pl.Series:
        name, dtype, declared = self.columns[index]
        if declared is not None:
            return t.series_from_values(name, values, declared)
        return series_of_values(name, values, dtype)

    def state_frame(self, rows: list[tuple[Any, ...]]) -> pl.DataFrame:
        """Group rows (with their diffs last) as a frame of the group arrangement."""
        columns = list(zip(*rows, strict=True))
        series = [self.series(i, list(values)) for i, values in enumerate(columns[:-1])]
        series.append(series_of_values(DIFF, list(columns[-1]), pl.Int64))
        return frame_of(series)

    def output_frame(self, changes: list[tuple[Any, ...]], diffs: list[int]) -> pl.DataFrame:
        """The frame ``post`` reads, from changed group rows (without their diffs): only the
        columns it reads when it merely picks columns, else every state column."""
        columns = list(zip(*changes, strict=True))
        series = [self.series(i, list(columns[i])) for i in self.read_by_post]
        series.append(series_of_values(DIFF, diffs, pl.Int64))
        return frame_of(series)


def _shows_every_value(post: Any, columns: list[str]) -> bool:
    """Whether every reducer value is an output of ``post`` as it is (so two group rows with
    different values never give equal output rows)."""
    from deltaflow.reducers import ReducerExpression

    scope_columns = getattr(post.scope, "reducer_columns", {})
    shown = {
        scope_columns.get(id(expr))
        for _, expr in post.outputs
        if isinstance(expr, ReducerExpression)
    }
    return all(c in shown for c in columns)


def _better(current: Any, value: Any, largest: bool) -> Any:
    """The larger (smaller) of two values, None meaning no value (as Polars skips nulls)."""
    if value is None:
        return current
    if current is None:
        return value
    if largest:
        return value if value > current else current
    return value if value < current else current


def _same(old: Sequence[Any], new: Sequence[Any]) -> bool:
    """Whether a group row's values are unchanged (Python objects compared canonically)."""
    if len(old) != len(new):
        return False
    for a, b in zip(old, new, strict=True):
        if type(a) in _SCALARS and type(b) in _SCALARS:
            if a != b and (a == a or b == b):  # NaN equals NaN, as Polars groups them
                return False
        elif t.canonical_key(a) != t.canonical_key(b):
            return False
    return True


_SCALARS = frozenset([int, float, str, bool, bytes, type(None)])


def _equal(old: Sequence[Any], new: Sequence[Any]) -> bool:
    """Equality of plain values, NaN equal to NaN (as Polars groups them)."""
    if old == new:
        return True
    if len(old) != len(new):
        return False
    return all(a == b or (a != a and b != b) for a, b in zip(old, new, strict=True))
