"""Conditional and error-handling nodes: ``pw.if_else``, ``pw.coalesce``, ``pw.require``,
``pw.fill_error`` and the check that arguments hold no error values."""

from __future__ import annotations

from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.core import ColumnExpression, Scope
from deltaflow.expressions.type_rules import merge_types


class IfElse(ColumnExpression):
    def __init__(
        self, cond: ColumnExpression, then: ColumnExpression, otherwise: ColumnExpression
    ) -> None:
        super().__init__()
        self.cond, self.then, self.otherwise = cond, then, otherwise

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.cond, self.then, self.otherwise)

    def _infer(self, scope: Scope) -> t.DType:
        cond = scope.dtype_of(self.cond)
        if cond.strip_optional() != t.BOOL:
            raise scope.fail(f"pw.if_else needs a bool condition, got {cond!r}")
        a, b = scope.dtype_of(self.then), scope.dtype_of(self.otherwise)
        result = merge_types(a, b)
        if result is None:
            raise scope.fail(f"pw.if_else branches have incompatible types {a!r} and {b!r}")
        return result

    def computed_in_python(self, scope: Scope) -> bool:
        return scope.dtype_of(self).stored_as_object

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return [then if cond else otherwise for cond, then, otherwise in zip(*args, strict=True)]

    def _polars(self, scope: Scope) -> pl.Expr:
        out = scope.dtype_of(self)
        return (
            pl.when(self.cond.to_polars(scope))
            .then(_coerce(self.then, out, scope))
            .otherwise(_coerce(self.otherwise, out, scope))
        )


def _coerce(expr: ColumnExpression, target: t.DType, scope: Scope) -> pl.Expr:
    compiled = expr.to_polars(scope)
    source = scope.dtype_of(expr).strip_optional()
    if source == t.INT and target.strip_optional() == t.FLOAT:
        return compiled.cast(pl.Float64)
    return compiled


class Coalesce(ColumnExpression):
    def __init__(self, *args: ColumnExpression) -> None:
        super().__init__()
        self.args = args

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        if not self.args:
            raise scope.fail("pw.coalesce needs at least one argument")
        result: t.DType | None = None
        for arg in self.args:
            dtype = scope.dtype_of(arg)
            if result is None:
                result = dtype
                continue
            merged = merge_types(result, dtype)
            if merged is None:
                raise scope.fail(
                    f"pw.coalesce arguments have incompatible types {result!r} and {dtype!r}"
                )
            result = merged
        assert result is not None
        if not all(scope.dtype_of(a).is_optional for a in self.args):
            return result.strip_optional()
        return result

    def computed_in_python(self, scope: Scope) -> bool:
        return scope.dtype_of(self).stored_as_object

    def _py_eval(self, args: list[list[Any]], size: int) -> list[Any]:
        return [
            next((v for v in values if v is not None), None) for values in zip(*args, strict=True)
        ]

    def _polars(self, scope: Scope) -> pl.Expr:
        out = scope.dtype_of(self)
        return pl.coalesce([_coerce(a, out, scope) for a in self.args])


class Require(ColumnExpression):
    """``pw.require(val, *deps)``: ``val`` unless one of ``deps`` is None, then None."""

    def __init__(self, value: ColumnExpression, *deps: ColumnExpression) -> None:
        super().__init__()
        self.value = value
        self.deps = deps

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.value, *self.deps)

    def _infer(self, scope: Scope) -> t.DType:
        for dep in self.deps:
            scope.dtype_of(dep)
        return t.optional(scope.dtype_of(self.value))

    def _polars(self, scope: Scope) -> pl.Expr:
        if not self.deps:
            return self.value.to_polars(scope)
        any_null = pl.any_horizontal([d.to_polars(scope).is_null() for d in self.deps])
        return pl.when(any_null).then(None).otherwise(self.value.to_polars(scope))


class FillError(ColumnExpression):
    """``pw.fill_error(col, replacement)``: ``replacement`` where ``col`` is an error.

    Errors exist only in runs with ``terminate_on_error=False``; the evaluator then compiles
    this node against the error masks of its argument (``Scope.error_exprs``)."""

    def __init__(self, arg: ColumnExpression, replacement: ColumnExpression) -> None:
        super().__init__()
        self.arg = arg
        self.replacement = replacement

    def children(self) -> tuple[ColumnExpression, ...]:
        return (self.arg, self.replacement)

    def _infer(self, scope: Scope) -> t.DType:
        scope.dtype_of(self.replacement)
        return scope.dtype_of(self.arg)

    def _polars(self, scope: Scope) -> pl.Expr:
        value = self.arg.to_polars(scope)
        arg_errors = None if scope.error_exprs is None else scope.error_exprs.get(id(self.arg))
        if arg_errors is None:
            return value
        out = scope.dtype_of(self)
        return (
            pl.when(arg_errors.fill_null(False))
            .then(_coerce(self.replacement, out, scope))
            .otherwise(value)
        )


class NoErrors(ColumnExpression):
    """True where none of ``args`` is an error (the test behind ``Table.remove_errors``);
    never an error itself."""

    def __init__(self, *args: ColumnExpression) -> None:
        super().__init__()
        self.args = args

    def children(self) -> tuple[ColumnExpression, ...]:
        return self.args

    def _infer(self, scope: Scope) -> t.DType:
        for arg in self.args:
            scope.dtype_of(arg)
        return t.BOOL

    def _polars(self, scope: Scope) -> pl.Expr:
        masks = (
            []
            if scope.error_exprs is None
            else [m for a in self.args if (m := scope.error_exprs.get(id(a))) is not None]
        )
        if not masks:
            return pl.lit(True)
        return ~pl.any_horizontal([m.fill_null(False) for m in masks])
