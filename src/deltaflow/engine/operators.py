"""Operators: the runnable form of plan nodes.

An operator receives, for one time, the delta batch of each input (None when an input did not
change) and returns its own delta batch for that time (None when nothing changed). Batches
leaving an operator are consolidated. Stateless operators here map deltas to deltas; stateful
ones (in :mod:`deltaflow.engine.stateful`) keep arrangements of their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import polars as pl

from deltaflow import _types as t
from deltaflow import errors, plan
from deltaflow._ids import combine_ids_expr
from deltaflow._small_frames import frame_of
from deltaflow.engine.batch import (
    DIFF,
    ID,
    concat_batches,
    consolidate,
    empty_batch,
    has_distinct_ids,
    project,
    same_ids_as,
)
from deltaflow.engine.boundary import sink_errors

Delta = pl.DataFrame | None

#: The plan node type an operator runs; ``Operator[plan.SelectNode]`` has ``node`` typed as one.
NodeT = TypeVar("NodeT", bound=plan.Node)


def projection_exprs(projection: Any) -> dict[str, pl.Expr] | None:
    """The output expressions of a compiled projection by name (each evaluates over the input
    frame), or None when running it needs more than evaluating them (Python nodes computed
    first, divisions checked for zeros): then only its ``run`` will do."""
    return projection.pure_exprs()


def run_projection(
    projection: Any, frame: pl.DataFrame, keep: Sequence[str] = (), tail: Sequence[str] = ()
) -> pl.DataFrame:
    """``projection.run(frame, keep=keep)`` followed by the ``tail`` columns of ``frame``, in a
    single eager Polars call when the projection has no Python nodes (per-time deltas are
    small: the number of calls is their cost; lazy chains cost several times an eager call).
    """
    exprs = projection_exprs(projection)
    if exprs is None or errors.frame_has_errors(frame):  # error cells: only run() handles them
        out = projection.run(frame, keep=keep)
        return out.with_columns([frame[c] for c in tail]) if tail else out
    copies = projection.copies(frame)
    if copies is not None:
        # Renaming or choosing columns: the Series themselves, without a query's fixed cost.
        series = dict(zip(frame.columns, frame.get_columns(), strict=True))
        return frame_of(
            [
                *(series[c] for c in keep),
                *(series[source].alias(name) for name, source in copies),
                *(series[c] for c in tail),
            ]
        )
    computed = projection.numpy_outputs(frame)
    if computed is not None:  # simple arithmetic: NumPy, without a query's fixed cost
        return frame_of(
            [*(frame.get_column(c) for c in keep), *computed, *(frame.get_column(c) for c in tail)]
        )
    return project(frame, [*keep, *exprs.values(), *tail])


class Operator(Generic[NodeT]):
    """Base class: one plan node at run time.

    ``handles_errors``: whether the operator copes with error cells in its deltas (runs with
    ``terminate_on_error=False``); the runtime leaves rows holding errors out of the deltas of
    the others, reporting each."""

    handles_errors = False

    def __init__(self, node: NodeT) -> None:
        self.node: NodeT = node
        self.columns = node.columns

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        raise NotImplementedError

    def empty(self) -> pl.DataFrame:
        return empty_batch(self.columns)

    def describe(self) -> str:
        return self.node.describe()


class InputOperator(Operator[plan.InputNode]):
    """Emits what the engine collected from the node's source for this time."""

    handles_errors = True  # error cells: see deltaflow.errors

    def __init__(self, node: plan.InputNode) -> None:
        super().__init__(node)
        self.pending: list[pl.DataFrame] = []
        self._names = [ID, *node.columns, DIFF]

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        if not self.pending:
            return None
        batches, self.pending = self.pending, []
        batch = concat_batches(
            [
                b if b.columns == self._names else same_ids_as(b, b.select(self._names))
                for b in batches
            ]
        )
        if isinstance(batch, list) or batch.height == 0:
            return None
        # A single batch its source marked consolidated (pushed with consolidated=True) is
        # only checked for zero diffs; several batches of one time may overlap.
        return consolidate(batch)


class SelectOperator(Operator[plan.SelectNode]):
    handles_errors = True  # error cells: see deltaflow.errors

    def __init__(self, node: plan.SelectNode) -> None:
        super().__init__(node)
        self.projection = node.projection

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None:
            return None
        out = run_projection(self.projection, delta, keep=[ID], tail=[DIFF])
        if has_distinct_ids(delta):
            # Same ids, each once: no two output rows can merge or cancel.
            return same_ids_as(delta, out)
        if self.node.rows_stay_distinct:
            return out  # see plan.SelectNode: nothing to merge or cancel
        # Rows that differed only in dropped columns cancel: an empty change is no change.
        return _nonempty(consolidate(out))


class FilterOperator(Operator[plan.FilterNode]):
    handles_errors = True  # error cells: see deltaflow.errors

    def __init__(self, node: plan.FilterNode) -> None:
        super().__init__(node)
        self.predicate = node.predicate

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None:
            return None
        computed = self.predicate.numpy_outputs(delta)  # a simple condition: NumPy
        keep = computed[0] if computed is not None else self.predicate.run(delta)["__keep"]
        failed = errors.error_mask(keep) if errors.errors_seen() else None
        if failed is not None:
            errors.report(
                "row skipped: an Error value in the filter condition",
                count=int(failed.sum()),
            )
            keep = errors.without_errors(keep, pl.Boolean())
        # columns whose errors were all in dropped rows get their types back
        out = errors.restore_column_types(delta.filter(keep.fill_null(False)), self.columns)
        return same_ids_as(delta, out) if out.height else None


class ReindexOperator(Operator[plan.ReindexNode]):
    handles_errors = True  # error cells: see deltaflow.errors

    def __init__(self, node: plan.ReindexNode) -> None:
        super().__init__(node)
        self.projection = node.id_projection
        self.what = node.what

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None:
            return None
        new_ids = self.projection.run(delta)["__id"]
        failed = errors.error_mask(new_ids) if errors.errors_seen() else None
        if failed is not None:
            errors.report(
                "row skipped: an Error value in the expression of its new id",
                count=int(failed.sum()),
            )
            delta = delta.filter(~failed)
            new_ids = errors.without_errors(new_ids, pl.UInt128()).filter(~failed)
            if delta.height == 0:
                return None
        if new_ids.null_count():
            raise ValueError(f"{self.what}: some rows got no id (a None key value)")
        out = delta.with_columns(new_ids.alias(ID))
        return _nonempty(consolidate(out))


class ConcatOperator(Operator[plan.ConcatNode]):
    handles_errors = True  # error cells: see deltaflow.errors

    def __init__(self, node: plan.ConcatNode) -> None:
        super().__init__(node)
        self.reindex = node.reindex
        self._names = [ID, *node.columns, DIFF]

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        parts = []
        for index, delta in enumerate(deltas):
            if delta is None:
                continue
            part = delta if delta.columns == self._names else delta.select(self._names)
            if self.reindex:
                part = part.with_columns(combine_ids_expr(pl.col(ID), salt=str(index)).alias(ID))
            parts.append(part)
        if not parts:
            return None
        if errors.errors_seen():  # a column holding errors in one part: objects in all
            parts = errors.unify_object_columns(parts)
        out = consolidate(concat_batches(parts))
        if not self.reindex and len(parts) > 1 and not errors.keeps_errors():
            # Keeping errors, both rows go on (as in Pathway); a final table shows the id's
            # cells as Errors (errors.squash_repeated_ids).
            _check_no_duplicate_insertions(out)
        return _nonempty(out)


def _check_no_duplicate_insertions(batch: pl.DataFrame) -> None:
    """Two inputs of a concat inserting the same id at one time is a broken promise of
    disjoint universes: stop instead of keeping two rows under one id."""
    inserted = batch.filter(pl.col(DIFF) > 0)[ID]
    if inserted.len() > 1 and inserted.n_unique() < inserted.len():
        key = t.Pointer(inserted.filter(inserted.is_duplicated())[0])
        raise KeyError(f"several rows inserted with the id {key} at one time")


class FlattenOperator(Operator[plan.FlattenNode]):
    def __init__(self, node: plan.FlattenNode) -> None:
        super().__init__(node)
        self.column = node.column
        self.origin_id = node.origin_id

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None:
            return None
        values = t.values_from_series(delta[self.column])
        rows: list[int] = []
        positions: list[int] = []
        elements: list[Any] = []
        for row, value in enumerate(values):
            if value is None:
                continue
            items = value.value if isinstance(value, t.Json) else value
            if isinstance(value, t.Json) and not isinstance(items, list):
                raise ValueError(f"flatten: Json value {value} is not a list")
            for position, item in enumerate(items):
                rows.append(row)
                positions.append(position)
                elements.append(t.Json(item) if isinstance(value, t.Json) else item)
        if not rows:
            return None
        element_type = self.columns[self.column]
        base = delta[rows]
        out = base.with_columns(
            t.series_from_values(self.column, elements, element_type).alias(self.column),
            pl.Series("__pos", positions, dtype=pl.Int64),
        )
        new_id = combine_ids_expr(pl.col(ID), pl.col("__pos"), salt="flatten")
        if self.origin_id is not None:
            out = out.with_columns(pl.col(ID).alias(self.origin_id))
        out = out.with_columns(new_id.alias(ID)).drop("__pos")
        # Distinct (id, position) pairs give distinct ids.
        return consolidate(same_ids_as(delta, out.select([ID, *self.columns, DIFF])))


class OutputOperator(Operator[plan.OutputNode]):
    """Passes the input's delta to the sink (sorted by ``sort_by`` within the time)."""

    handles_errors = True  # error cells: see deltaflow.errors

    def __init__(self, node: plan.OutputNode) -> None:
        super().__init__(node)
        self.sink = node.sink
        self.sort_by = list(node.sort_by)

    def step(self, time: int, deltas: Sequence[Delta]) -> Delta:
        delta = deltas[0]
        if delta is None or delta.height == 0:
            return None
        if errors.errors_seen() and not getattr(self.sink, "keeps_errors", False):
            delta = _without_error_rows(delta, self.columns)
            if delta is None:
                return None
        if self.sort_by:
            delta = delta.sort([*self.sort_by, DIFF])
        with sink_errors(self.sink):  # type: ignore[arg-type]
            self.sink.on_batch(time, delta)  # type: ignore[union-attr]
        return None


def _without_error_rows(delta: pl.DataFrame, columns: dict[str, t.DType]) -> Delta:
    """A sink never writes an error: rows holding one are left out and reported, and the
    columns that held errors get their own dtype back."""
    masks = errors.error_columns(delta)
    if not masks:
        return delta
    failed = errors.row_has_error_mask(delta, list(masks))
    assert failed is not None
    errors.report(
        "row skipped: an Error value cannot be written to an output",
        count=int(failed.sum()),
        with_trace=False,
    )
    kept = delta.filter(~failed)
    if kept.height == 0:
        return None
    return kept.with_columns(
        [
            errors.without_errors(kept[name], columns[name].to_polars())
            for name in masks
            if name in columns
        ]
    )


def _nonempty(batch: pl.DataFrame) -> Delta:
    return batch if batch.height else None


STATELESS: dict[type[plan.Node], type[Operator]] = {
    plan.InputNode: InputOperator,
    plan.SelectNode: SelectOperator,
    plan.FilterNode: FilterOperator,
    plan.ReindexNode: ReindexOperator,
    plan.ConcatNode: ConcatOperator,
    plan.FlattenNode: FlattenOperator,
    plan.OutputNode: OutputOperator,
}
