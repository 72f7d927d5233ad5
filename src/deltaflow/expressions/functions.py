"""Functions building expressions: ``pw.apply``, ``pw.udf``, ``pw.if_else``, ``pw.cast`` ..."""

from __future__ import annotations

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
    """Apply a Python function to every row; the result type comes from its annotations.
    An ``async def`` function is awaited (as with :func:`apply_async`)."""
    _require_arguments("apply", fun, args, kwargs)
    return Apply(fun, args, kwargs, options=_async_options_if_coroutine(fun))


def apply_with_type(
    fun: Callable[..., Any], ret_type: Any, *args: Any, **kwargs: Any
) -> ColumnExpression:
    """Like :func:`apply`, with the result type given explicitly."""
    _require_arguments("apply_with_type", fun, args, kwargs)
    return Apply(fun, args, kwargs, ret_type, options=_async_options_if_coroutine(fun))


def apply_async(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> ColumnExpression:
    """Apply a function (usually ``async def``) to every row; the calls of one minibatch run
    concurrently on the run's event loop (``pw.udfs.async_executor()``)."""
    _require_arguments("apply_async", fun, args, kwargs)
    return Apply(fun, args, kwargs, options=_async_options(fun))


def _require_arguments(
    name: str, fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """A function applied to no argument at all has nothing to be computed per row from:
    refused at once, with Pathway's exception type (an ``AssertionError``)."""
    if not args and not kwargs:
        from deltaflow.errors import NoArgumentsError

        raise NoArgumentsError(
            f"pw.{name}({getattr(fun, '__name__', fun)!s}): give the function's arguments "
            f"(columns or values), e.g. pw.{name}(f, pw.this.a); to compute one value for "
            f"every row, use a plain Python value"
        )


def _async_options(fun: Callable[..., Any]) -> Any:
    from deltaflow.udfs.caches import default_cache_name
    from deltaflow.udfs.evaluation import CallOptions
    from deltaflow.udfs.executors import AsyncExecutor

    return CallOptions(executor=AsyncExecutor(), cache_name=default_cache_name(fun))


def _async_options_if_coroutine(fun: Callable[..., Any]) -> Any:
    """Options for a coroutine function; None (a plain synchronous call) otherwise."""
    from deltaflow.udfs.wrappers import is_coroutine_function

    return _async_options(fun) if is_coroutine_function(fun) else None


def udf(
    fun: Callable[..., Any] | None = None,
    /,
    *,
    return_type: Any = ...,
    deterministic: bool = False,
    propagate_none: bool = False,
    executor: Any = None,
    cache_strategy: Any = None,
    max_batch_size: int | None = None,
) -> Any:
    """Turn a Python function into a column function (``@pw.udf`` or ``@pw.udf(...)``);
    see :func:`deltaflow.udfs.udf`."""
    from deltaflow.udfs.udf import udf as make_udf

    return make_udf(
        fun,
        return_type=return_type,
        deterministic=deterministic,
        propagate_none=propagate_none,
        executor=executor,
        cache_strategy=cache_strategy,
        max_batch_size=max_batch_size,
    )


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
