"""Evaluating typed expressions over a Polars frame (the only place expressions run).

Branches are evaluated the way users read them: a Python function (or a division) inside the
branch of ``pw.if_else`` that a row does not take, or inside a ``pw.coalesce`` argument that a
row does not reach, is not computed for that row. Each node gets a *guard* — a boolean
expression telling for which rows its value is used — so that UDFs run only on those rows and
a division by zero is an error only where the quotient is really used (as in Pathway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.base import (
    BinaryOp,
    Coalesce,
    ColumnExpression,
    IfElse,
    Require,
    Scope,
)

_DIVISIONS = ("/", "//", "%")


class CompiledProjection:
    """Named expressions checked against a scope, ready to run on frames of that scope."""

    def __init__(self, scope: Scope, outputs: Sequence[tuple[str, ColumnExpression]]) -> None:
        self.scope = scope
        self.outputs = list(outputs)
        self.types = {name: scope.dtype_of(expr) for name, expr in self.outputs}
        seen: set[int] = set()
        self.python_nodes: list[ColumnExpression] = []
        divisions: list[BinaryOp] = []
        for _, expr in self.outputs:
            for node in expr.walk():
                if id(node) in seen:
                    continue
                seen.add(id(node))
                if node.computed_in_python(scope):
                    self.python_nodes.append(node)  # type: ignore[arg-type]
                elif isinstance(node, BinaryOp) and node.op in _DIVISIONS \
                        and t.is_numeric(scope.dtype_of(node.right)):
                    divisions.append(node)
        for node in self.python_nodes:
            scope.python_columns[id(node)] = f"__py{node._uid}"
        self._guards: dict[int, pl.Expr | None] = {}
        for _, expr in self.outputs:
            self._assign_guards(expr, None)
        # Everything compiled once, here: running a projection costs only Polars calls.
        self._python_args = [[c.to_polars(scope).alias(f"__arg{i}")
                              for i, c in enumerate(node.children())]
                             for node in self.python_nodes]
        self._python_guards = [self._guards.get(id(node)) for node in self.python_nodes]
        self._division_checks = [
            (node, _and(self._guards.get(id(node)), node.right.to_polars(scope) == 0))
            for node in divisions
        ]
        self._final = [self._cast(name, expr) for name, expr in self.outputs]

    # --- compile-time helpers ------------------------------------------------------------
    def _assign_guards(self, node: ColumnExpression, guard: pl.Expr | None) -> None:
        key = id(node)
        if key in self._guards:
            previous = self._guards[key]
            # Used in several places: needed wherever any of them needs it.
            guard = None if previous is None or guard is None else previous | guard
        self._guards[key] = guard
        if isinstance(node, IfElse):
            condition = node.cond.to_polars(self.scope).fill_null(False)
            self._assign_guards(node.cond, guard)
            self._assign_guards(node.then, _and(guard, condition))
            self._assign_guards(node.otherwise, _and(guard, ~condition))
        elif isinstance(node, Coalesce):
            reached = guard
            for arg in node.args:
                self._assign_guards(arg, reached)
                reached = _and(reached, arg.to_polars(self.scope).is_null())
        elif isinstance(node, Require):
            for dep in node.deps:
                self._assign_guards(dep, guard)
            present = [d.to_polars(self.scope).is_not_null() for d in node.deps]
            self._assign_guards(node.value, _and(guard, pl.all_horizontal(present))
                                if present else guard)
        else:
            for child in node.children():
                self._assign_guards(child, guard)

    def _cast(self, name: str, expr: ColumnExpression) -> pl.Expr:
        compiled = expr.to_polars(self.scope)
        target = self.types[name].to_polars()
        if target != pl.Object:
            compiled = compiled.cast(target)
        return compiled.alias(name)

    def pure_exprs(self) -> dict[str, pl.Expr] | None:
        """The outputs as Polars expressions over the input frame (to fuse into one call), or
        None when running needs more than evaluating them: Python nodes computed first or
        divisions checked for zeros; then only :meth:`run` will do."""
        if self.python_nodes or self._division_checks:
            return None
        return {name: expr for (name, _), expr in zip(self.outputs, self._final, strict=True)}

    # --- running ------------------------------------------------------------------------------
    def run(self, frame: pl.DataFrame, keep: Sequence[str] = ()) -> pl.DataFrame:
        """Compute the outputs for every row of ``frame``; ``keep`` columns are passed through."""
        work = frame
        for node, arg_exprs, guard in zip(self.python_nodes, self._python_args,
                                          self._python_guards, strict=True):
            column = self._run_python_node(work, node, arg_exprs, guard)
            work = work.with_columns(column.alias(self.scope.python_columns[id(node)]))
        if self._division_checks:
            self._check_divisions(work)
        names = [name for name, _ in self.outputs]
        if not names:
            return work.select(list(keep))
        return work.with_columns(self._final).select([*keep, *names])

    def _run_python_node(self, work: pl.DataFrame, node: ColumnExpression,
                         arg_exprs: list[pl.Expr], guard: pl.Expr | None) -> pl.Series:
        dtype = self.scope.dtype_of(node)
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

    def _check_divisions(self, work: pl.DataFrame) -> None:
        flags = work.select([check.fill_null(False).any().alias(f"d{i}")
                             for i, (_, check) in enumerate(self._division_checks)]).row(0)
        for flag, (node, check) in zip(flags, self._division_checks, strict=True):
            if flag:
                row = work.filter(check.fill_null(False)).head(1)
                shown = {c: v for c, v in row.row(0, named=True).items()
                         if not c.startswith("_")}
                raise ZeroDivisionError(f"{self.scope.description}: division by zero in "
                                        f"{node._describe()} (row {shown})")


def _compute(node: ColumnExpression, args: list[pl.Series], frame: pl.DataFrame,
             dtype: t.DType) -> pl.Series:
    # UDFs (``Apply``) also get the rows' ids and diffs, when the frame is a delta batch.
    compute_rows = getattr(node, "compute_rows", None)
    if compute_rows is not None and "_id" in frame.columns and "_diff" in frame.columns:
        return compute_rows(args, frame.height, dtype, frame["_id"], frame["_diff"])
    return node.compute(args, frame.height, dtype)


def _and(guard: pl.Expr | None, condition: pl.Expr) -> pl.Expr:
    return condition if guard is None else guard & condition


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
