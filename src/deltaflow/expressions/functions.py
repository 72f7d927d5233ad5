"""Functions building expressions: ``pw.apply``, ``pw.udf``, ``pw.if_else``, ``pw.cast`` ..."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from deltaflow.expressions.base import (
    Apply,
    Cast,
    Coalesce,
    ColumnExpression,
    DeclareType,
    FillError,
    IfElse,
    MakeTuple,
    Require,
    Unwrap,
    wrap_value,
)


def apply(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> ColumnExpression:
    """Apply a Python function to every row; the result type comes from its annotations."""
    return Apply(fun, args, kwargs)


def apply_with_type(fun: Callable[..., Any], ret_type: Any, *args: Any,
                    **kwargs: Any) -> ColumnExpression:
    """Like :func:`apply`, with the result type given explicitly."""
    return Apply(fun, args, kwargs, ret_type)


def apply_async(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> ColumnExpression:
    """Apply a coroutine function to every row (awaited one row at a time for now)."""
    import asyncio
    import inspect

    if inspect.iscoroutinefunction(fun):
        @functools.wraps(fun)
        def runner(*a: Any, **k: Any) -> Any:
            return asyncio.run(fun(*a, **k))

        return Apply(runner, args, kwargs)
    return Apply(fun, args, kwargs)


class UDF:
    """A user function usable on columns: calling it with expressions builds an expression."""

    def __init__(self, fun: Callable[..., Any], *, return_type: Any = None,
                 deterministic: bool = False, propagate_none: bool = False,
                 name: str | None = None) -> None:
        self.fun = fun
        self.return_type = return_type
        self.deterministic = deterministic
        self.propagate_none = propagate_none
        self.name = name or getattr(fun, "__name__", "udf")
        functools.update_wrapper(self, fun)

    def __call__(self, *args: Any, **kwargs: Any) -> ColumnExpression:
        return Apply(self.fun, args, kwargs, self.return_type,
                     propagate_none=self.propagate_none, deterministic=self.deterministic,
                     name=self.name)


def udf(fun: Callable[..., Any] | None = None, /, *, return_type: Any = None,
        deterministic: bool = False, propagate_none: bool = False, executor: Any = None,
        cache_strategy: Any = None, max_batch_size: int | None = None) -> Any:
    """Turn a Python function into a column function (``@pw.udf`` or ``@pw.udf(...)``).

    ``executor``, ``cache_strategy`` and ``max_batch_size`` are accepted for compatibility;
    UDFs run synchronously, row by row, on the engine thread.
    """

    def decorate(f: Callable[..., Any]) -> UDF:
        return UDF(f, return_type=return_type, deterministic=deterministic,
                   propagate_none=propagate_none)

    if fun is None:
        return decorate
    return decorate(fun)


def cast(target_type: Any, col: Any) -> ColumnExpression:
    """Convert values to ``target_type`` (int, float, bool, str and their Optional forms)."""
    return Cast(target_type, wrap_value(col))


def declare_type(target_type: Any, col: Any) -> ColumnExpression:
    """Change the declared type of an expression without converting its values."""
    return DeclareType(target_type, wrap_value(col))


def coalesce(*args: Any) -> ColumnExpression:
    """The first argument that is not None, row by row."""
    return Coalesce(*(wrap_value(a) for a in args))


def if_else(if_clause: Any, then_clause: Any, else_clause: Any) -> ColumnExpression:
    """``then_clause`` where ``if_clause`` holds, ``else_clause`` elsewhere."""
    return IfElse(wrap_value(if_clause), wrap_value(then_clause), wrap_value(else_clause))


def require(val: Any, *deps: Any) -> ColumnExpression:
    """``val``, or None wherever one of ``deps`` is None."""
    return Require(wrap_value(val), *(wrap_value(d) for d in deps))


def make_tuple(*args: Any) -> ColumnExpression:
    """A tuple of the arguments' values, row by row."""
    return MakeTuple(*(wrap_value(a) for a in args))


def unwrap(col: Any) -> ColumnExpression:
    """Declare an Optional column as never None; a None value stops the run with an error."""
    return Unwrap(wrap_value(col))


def fill_error(col: Any, replacement: Any) -> ColumnExpression:
    """Replace error values by ``replacement`` (deltaflow raises instead of storing errors)."""
    return FillError(wrap_value(col), wrap_value(replacement))
