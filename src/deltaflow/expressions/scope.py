"""How column references resolve in one operation (:class:`Scope`), and the errors of
typing an expression there."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl

from deltaflow import _types as t
from deltaflow.errors import DefinitionError

if TYPE_CHECKING:
    from deltaflow.expressions.core import ColumnExpression, ColumnReference


class ExpressionError(DefinitionError, TypeError):
    """An expression cannot be typed in its context (wrong column, impossible operation)."""


class ExpressionAttributeError(ExpressionError, AttributeError):
    """A method (``.dt.hour()``, ``abs()`` ...) that a column of this type does not have."""


class ColumnNotFoundError(DefinitionError, KeyError, AttributeError):
    """A column name that the table does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "column not found"


class Scope:
    """How column references resolve in one operation.

    ``resolver(ref)`` returns the name of the frame column holding the referenced column and
    its type, or raises ``KeyError``/``ValueError`` with a message for the user.
    """

    def __init__(
        self, description: str, resolver: Callable[[ColumnReference], tuple[str, t.DType]]
    ) -> None:
        self.description = description
        self._resolver = resolver
        self._types: dict[int, t.DType] = {}
        self.python_columns: dict[int, str] = {}
        # Set while the evaluator compiles the error-keeping form of a projection: each
        # node's error mask (None: never an error), read by pw.fill_error and remove_errors.
        self.error_exprs: dict[int, pl.Expr | None] | None = None

    def set_by_expression(self, attribute: str, pairs: list[tuple[Any, Any]]) -> None:
        """Set ``attribute`` to a map from each expression's id to its value (expressions
        compare into expressions, so they cannot be dict keys); a pickled copy maps the
        copies' ids."""
        self.__dict__.setdefault("_by_expression", {})[attribute] = pairs
        setattr(self, attribute, {id(expr): value for expr, value in pairs})

    def __getstate__(self) -> dict[str, Any]:
        # The caches are keyed by the expressions' ids, which another process does not share:
        # a copy starts without them (the projections compiled in it fill them again), and
        # the maps of set_by_expression are made again from their pairs.
        state = dict(self.__dict__)
        state.update(_types={}, python_columns={}, error_exprs=None)
        for attribute in state.get("_by_expression", {}):
            state.pop(attribute, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for attribute, pairs in state.get("_by_expression", {}).items():
            setattr(self, attribute, {id(expr): value for expr, value in pairs})

    def resolve(self, ref: ColumnReference) -> tuple[str, t.DType]:
        return self._resolver(ref)

    def dtype_of(self, expr: ColumnExpression) -> t.DType:
        key = id(expr)
        if key not in self._types:
            try:
                dtype = expr._infer(self)
            except ExpressionError:
                # A Future argument is the likelier cause (Future[T] fits no T): say so.
                if not getattr(expr, "accepts_futures", False):
                    self._refuse_future_arguments(expr)
                raise
            if not getattr(expr, "accepts_futures", False):
                self._refuse_future_arguments(expr)
            self._types[key] = dtype
        return self._types[key]

    def _refuse_future_arguments(self, expr: ColumnExpression) -> None:
        """A column of a fully asynchronous UDF (``Future[T]``, deltaflow.udfs.future) may
        hold no value yet: only passing it along, casting it and other such UDFs take it."""
        for child in expr.children():
            dtype = self._types.get(id(child))  # the children _infer typed (no new lookups)
            if getattr(dtype, "is_future", False):
                raise self.fail(
                    f"cannot compute {expr!r}: {child!r} has type {dtype!r} (a "
                    f"fully asynchronous UDF's result, maybe not there yet); "
                    f"call await_futures() on the table first"
                )

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"{self.description}: {message}")
