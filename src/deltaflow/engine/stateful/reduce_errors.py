"""Errors as values in a reduce (runs with ``terminate_on_error=False``).

A reducer that fails gives an Error cell; an Error in a reducer's argument leaves the row out
of that reducer (``skip_errors``) or makes its value an Error. The group arrangement keeps its
column types, so Error cells are stored as nulls and remembered by group id; a user reducer
whose state took an Error in keeps giving one (:data:`POISONED`). Only the frame path runs
with errors kept.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow import errors
from deltaflow.engine.batch import DIFF, ID
from deltaflow.engine.stateful.reduce_state import ReduceState
from deltaflow.expressions.evaluate import error_flag
from deltaflow.reducers import Row

# The state of a user reducer that folded an Error in (see ReduceErrorValues._poison_states).
POISONED = object()


class ReduceErrorValues(ReduceState):
    """Error cells of group rows and reducer arguments that are Errors."""

    def _with_error_cells(
        self, parts: list[pl.DataFrame]
    ) -> tuple[list[pl.DataFrame], pl.DataFrame | None]:
        """Reducer values that are Errors (a failing reducer in a run keeping errors): the
        group arrangement keeps its column types, so they are stored as nulls and remembered
        here by group id. Returns the parts with the Errors of the retracted group rows put
        back, and the changes to store (None: no Error involved)."""
        cells = self._error_cells
        if not cells and not any(errors.error_columns(p) for p in parts):
            return parts, None
        restored = []
        for part in parts:
            retracted = part[DIFF][0] < 0 if part.height else False
            if retracted and cells:
                ids = part[ID].to_list()
                replace = {}
                for column in {c for i in ids for c in cells.get(i, ())}:
                    mask = pl.Series([column in cells.get(i, ()) for i in ids])
                    replace[column] = errors.with_errors(part[column], mask)
                if replace:
                    part = part.with_columns(list(replace.values()))
            restored.append(part)
        for part in restored:  # retractions first, then the new rows' Errors
            if part.height and part[DIFF][0] < 0:
                for gid in part[ID].to_list():
                    cells.pop(gid, None)
        for part in restored:
            if part.height and part[DIFF][0] > 0:
                for column, mask in errors.error_columns(part).items():
                    for gid in part.filter(mask)[ID].to_list():
                        cells.setdefault(gid, set()).add(column)
        restored = errors.unify_object_columns(restored)
        changes = pl.concat(restored, how="vertical_relaxed") if len(restored) > 1 else restored[0]
        schema = self._state_schema()
        stored = changes.with_columns(
            [
                errors.without_errors(changes[c], schema[c])
                for c in changes.columns
                if changes.schema[c] == pl.Object and schema.get(c, pl.Object) != pl.Object
            ]
        )
        return [changes], stored

    def _error_mask(self, call: Any) -> pl.Expr:
        """The rows where an argument of ``call`` was an error."""
        return pl.any_horizontal([pl.col(error_flag(a)) for a in call.args])

    def _argument_errors(
        self, groups: pl.DataFrame, rows: pl.DataFrame, match: list[str]
    ) -> pl.DataFrame:
        """Reducer values of groups that have rows with error arguments: recomputed without
        those rows (skip_errors), or Errors. Reducers computed in Python already left the
        rows out."""
        for call in self.calls:
            if not call.args:
                continue
            mask = self._error_mask(call)
            bad = rows.filter(mask)
            if bad.height == 0:
                continue
            if self.skip_errors:
                expr = call.reducer.polars_agg(call.args, call.arg_types)
                if expr is None:
                    continue
                values = rows.filter(~mask).group_by(match).agg(expr.alias(call.column))
                column = groups.select(match).join(
                    values, on=match, how="left", nulls_equal=True, maintain_order="left"
                )
                groups = groups.with_columns(column[call.column])
            else:
                marked = bad.select(match).unique().with_columns(pl.lit(True).alias("__bad"))
                hit = (
                    groups.select(match)
                    .join(marked, on=match, how="left", nulls_equal=True, maintain_order="left")[
                        "__bad"
                    ]
                    .fill_null(False)
                )
                groups = groups.with_columns(errors.with_errors(groups[call.column], hit))
                if call.reducer.stateful:
                    self._poison_states(self.calls.index(call), groups.filter(hit), match)
        return groups

    def _poison_states(self, index: int, groups: pl.DataFrame, match: list[str]) -> None:
        """A user reducer's state that saw an Error argument (``skip_errors=False``) cannot
        take it out again: its groups keep an Error value while they live (as in Pathway)."""
        fresh = self._fresh_states[index]
        for key in groups.select(match).iter_rows():
            fresh.setdefault(key[0], {})[key] = POISONED


def python_value(call: Any, rows: list[Row]) -> Any:
    """A Python reducer's value for one group; a reducer that fails (``unique`` over
    different values, a user reducer raising) gives an Error cell when the run keeps errors
    (else the run stops with its exception)."""
    try:
        return call.reducer.python(rows)
    except Exception as error:  # noqa: BLE001 - any failure of user code becomes an Error
        return errors.on_failure(errors.exception_message(error), error)


def value_series(name: str, values: list[Any], dtype: t.DType) -> pl.Series:
    """A column of reducer values; with Error cells it is an object column."""
    if any(value is errors.ERROR for value in values):
        return pl.Series(name, values, dtype=pl.Object)
    return t.series_from_values(name, values, dtype)
