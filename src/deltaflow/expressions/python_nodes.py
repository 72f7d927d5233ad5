"""Running a projection's Python nodes (UDFs and the expressions Polars cannot compute) on
the rows whose value is used: the rows outside a node's guard (a branch not taken, a
``pw.coalesce`` argument not reached) and, when errors are kept as values, the rows with an
error argument are not computed. A batch that fails as a whole is computed again row by row
so that each failing row becomes an error cell.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow import errors
from deltaflow.expressions.base import ColumnExpression


def run_python_node_keeping_errors(
    work: pl.DataFrame,
    node: ColumnExpression,
    dtype: t.DType,
    arg_exprs: list[pl.Expr],
    guard: pl.Expr | None,
    child_errors: pl.Expr | None,
) -> tuple[pl.Series, pl.Series]:
    """The node's values (null where it failed or was not computed) and the rows where
    it failed itself; rows outside the guard or with an error argument are skipped."""
    height = work.height
    wanted: pl.Expr | None = guard.fill_null(False) if guard is not None else None
    if child_errors is not None:
        fine = ~child_errors.fill_null(False)
        wanted = fine if wanted is None else wanted & fine
    rows: pl.Series | None = None
    if wanted is not None and height:
        mask = work.select(wanted.alias("__wanted")).to_series()
        if not mask.all():
            rows = mask.arg_true()
    subset = work if rows is None else work[rows]
    args = _args(subset, arg_exprs)
    try:
        computed = _compute(node, args, subset, dtype)
    except errors.InconsistentDataError:
        raise  # not a failure of the rows' values: the run stops
    except Exception:  # noqa: BLE001 - retried row by row, each failure reported
        computed = _compute_row_by_row(node, args, subset.height, dtype)
    failed = errors.error_mask(computed)
    if failed is not None:
        computed = errors.without_errors(computed, dtype.to_polars())
    else:
        failed = pl.Series("failed", [False] * subset.height, dtype=pl.Boolean)
    if rows is None:
        return computed, failed
    return (
        _scatter(computed, rows, height, dtype),
        pl.Series("failed", [False] * height, dtype=pl.Boolean).scatter(rows, failed),
    )


def run_python_node(
    work: pl.DataFrame,
    node: ColumnExpression,
    dtype: t.DType,
    arg_exprs: list[pl.Expr],
    guard: pl.Expr | None,
) -> pl.Series:
    """The node's values for the rows of ``work``; computed only on the rows where ``guard``
    holds (null elsewhere), the first failure raised."""
    if guard is not None and work.height:
        mask = work.select(guard.fill_null(False).alias("__guard")).to_series()
        if not mask.all():
            rows = mask.arg_true()
            subset = work[rows]
            args = _args(subset, arg_exprs)
            computed = _compute(node, args, subset, dtype)
            return _scatter(computed, rows, work.height, dtype)
    args = _args(work, arg_exprs)
    return _compute(node, args, work, dtype)


def _compute_row_by_row(
    node: ColumnExpression, args: list[pl.Series], height: int, dtype: t.DType
) -> pl.Series:
    """The node computed one row at a time (after it failed on the whole batch): a row that
    fails holds an error, reported with the exception's text."""
    parts: list[pl.Series | None] = []
    for row in range(height):
        try:
            parts.append(node.compute([a[row : row + 1] for a in args], 1, dtype))
        except Exception as exc:  # noqa: BLE001 - the failure is the row's value
            errors.report(_failure_message(node, exc))
            parts.append(None)
    computed = [p for p in parts if p is not None]
    if parts and len(computed) == len(parts):
        return pl.concat(computed)
    values = [errors.ERROR if p is None else p.to_list()[0] for p in parts]
    return pl.Series("value", values, dtype=pl.Object)


def _failure_message(node: ColumnExpression, error: BaseException) -> str:
    describe = getattr(node, "failure_message", None)
    if describe is not None:
        return describe(error)
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]  # str() of a KeyError quotes its text
    return str(error) or type(error).__name__


def _compute(
    node: ColumnExpression, args: list[pl.Series], frame: pl.DataFrame, dtype: t.DType
) -> pl.Series:
    # UDFs (``Apply``) also get the rows' ids and diffs, when the frame is a delta batch.
    compute_rows = getattr(node, "compute_rows", None)
    if compute_rows is not None and "_id" in frame.columns and "_diff" in frame.columns:
        return compute_rows(args, frame.height, dtype, frame["_id"], frame["_diff"])
    return node.compute(args, frame.height, dtype)


def _args(frame: pl.DataFrame, arg_exprs: list[pl.Expr]) -> list[pl.Series]:
    if not arg_exprs:
        return []
    names = [e.meta.output_name() for e in arg_exprs]
    # with_columns (not select) so that constant arguments are broadcast to every row
    values = frame.with_columns(arg_exprs).select(names)
    return [values[name] for name in names]


def _scatter(values: pl.Series, rows: pl.Series, height: int, dtype: t.DType) -> pl.Series:
    """A column of ``height`` nulls with ``values`` placed at ``rows``."""
    if values.dtype == pl.Object:
        full: list[Any] = [None] * height
        for position, value in zip(rows.to_list(), values.to_list(), strict=True):
            full[position] = value
        return pl.Series("value", full, dtype=pl.Object)
    full_series = pl.Series("value", [None] * height, dtype=values.dtype)
    return full_series.scatter(rows, values)
