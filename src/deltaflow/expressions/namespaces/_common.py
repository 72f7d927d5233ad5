"""What the ``.str``, ``.dt`` and ``.num`` namespaces share: the type rule built from a method's
receiver and argument types, the namespace base class and the whole-column node kind."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from deltaflow import _types as t
from deltaflow.expressions.base import (
    ColumnExpression,
    ColumnReference,
    ExpressionAttributeError,
    MethodCall,
    PythonMethodCall,
    Scope,
    wrap_value,
)

_NUMBERS = (t.INT, t.FLOAT)
_DATETIMES = (t.DATE_TIME_NAIVE, t.DATE_TIME_UTC)
_STR = (t.STR,)
_INT_PARAM = (t.INT,)

TypeRule = Callable[[Scope, list[t.DType]], t.DType]


def _describe(expr: ColumnExpression) -> str:
    if isinstance(expr, ColumnReference):
        return f"column {expr.name!r}"
    return "the expression"


def _type_names(types: Sequence[t.DType]) -> str:
    return " or ".join(repr(x) for x in types)


class _Param:
    """One argument of a namespace method: its name, the types it accepts, whether None is ok."""

    def __init__(self, name: str, types: Sequence[t.DType], *, none_ok: bool = False) -> None:
        self.name = name
        self.types = tuple(types)
        self.none_ok = none_ok


def _rule(
    method: str,
    receiver: ColumnExpression,
    receiver_types: Sequence[t.DType],
    params: Sequence[_Param],
    result: t.DType | Callable[[list[t.DType]], t.DType],
    *,
    nullable_result: bool = True,
) -> TypeRule:
    """A type rule: check the receiver and each argument, then give the result type.

    The result is Optional when the receiver is (a None value gives None), unless
    ``nullable_result`` is False (methods such as ``fill_na`` that remove None).
    """

    def rule(scope: Scope, types: list[t.DType]) -> t.DType:
        own = types[0]
        if own.strip_optional() not in receiver_types:
            raise _no_such_method(
                scope,
                f"{method}() needs a {_type_names(receiver_types)} column, but "
                f"{_describe(receiver)} has type {own!r}",
            )
        for param, given in zip(params, types[1:], strict=True):
            if given in (t.Optional(t.ANY), t.NONE) and param.none_ok:  # a None literal
                continue
            if given.strip_optional() not in param.types:
                raise _no_such_method(
                    scope,
                    f"{method}(): argument {param.name!r} must be {_type_names(param.types)}, "
                    f"got {given!r} (called on {_describe(receiver)})",
                )
            if given.is_optional and not param.none_ok:
                # No version of the method takes None there: AttributeError, as in Pathway.
                raise _no_such_method(
                    scope,
                    f"{method}(): argument {param.name!r} may be None (type {given!r}); "
                    f"use pw.coalesce or pw.unwrap to give it a value",
                )
        out = result(types) if callable(result) else result
        return t.optional(out) if own.is_optional and nullable_result else out

    return rule


def _shows_arguments(method: Callable[..., ColumnExpression]) -> Callable[..., ColumnExpression]:
    """Make the node a namespace method returns print the arguments as the user gave
    them (``dt.round('D')``, not the Duration it became), as Pathway prints them."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> ColumnExpression:
        node = method(self, *args, **kwargs)
        node.shown_args = (*args, *kwargs.values())  # type: ignore[attr-defined]
        return node

    return wrapper


def _no_such_method(scope: Scope, message: str) -> ExpressionAttributeError:
    """A namespace method called on (or with) values of types it has no version for: an
    AttributeError, as in Pathway, that is also an ExpressionError (a TypeError)."""
    return ExpressionAttributeError(f"{scope.description}: {message}")


class SeriesMethodCall(PythonMethodCall):
    """A namespace method computed on whole columns that may reject values (parsing ...).

    ``fun(args)`` receives the receiver's and the arguments' columns as Polars series and
    returns the result column; it raises ``ValueError`` naming the first offending value.
    """

    def compute(self, args: list[pl.Series], size: int, dtype: t.DType) -> pl.Series:
        return self.fun(args).alias("value")


def _first_failure(source: pl.Series, result: pl.Series) -> Any:
    """The first source value that gave no result (None when every value converted)."""
    failed = source.is_not_null() & result.is_null()
    if not failed.any():
        return None
    return source.filter(failed)[0]


class _Namespace:
    def __init__(self, expression: ColumnExpression) -> None:
        self._expression = expression

    def _call(
        self,
        method: str,
        args: Sequence[Any],
        receiver_types: Sequence[t.DType],
        params: Sequence[_Param],
        result: t.DType | Callable[[list[t.DType]], t.DType],
        build: Callable[[list[pl.Expr], list[t.DType]], pl.Expr],
        *,
        nullable_result: bool = True,
    ) -> ColumnExpression:
        wrapped = (self._expression, *(wrap_value(a) for a in args))
        rule = _rule(
            method,
            self._expression,
            receiver_types,
            params,
            result,
            nullable_result=nullable_result,
        )
        return MethodCall(method, wrapped, rule, build)

    def _python(
        self,
        method: str,
        args: Sequence[Any],
        receiver_types: Sequence[t.DType],
        params: Sequence[_Param],
        result: t.DType | Callable[[list[t.DType]], t.DType],
        fun: Callable[..., Any],
    ) -> ColumnExpression:
        wrapped = (self._expression, *(wrap_value(a) for a in args))
        rule = _rule(method, self._expression, receiver_types, params, result)
        return PythonMethodCall(method, wrapped, rule, fun)

    def _series(
        self,
        method: str,
        args: Sequence[Any],
        receiver_types: Sequence[t.DType],
        params: Sequence[_Param],
        result: t.DType | Callable[[list[t.DType]], t.DType],
        fun: Callable[[list[pl.Series]], pl.Series],
    ) -> ColumnExpression:
        wrapped = (self._expression, *(wrap_value(a) for a in args))
        rule = _rule(method, self._expression, receiver_types, params, result)
        return SeriesMethodCall(method, wrapped, rule, fun)
