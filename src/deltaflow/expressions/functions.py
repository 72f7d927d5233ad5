"""Functions building expressions: ``pw.apply``, ``pw.udf``, ``pw.if_else``, ``pw.cast`` ..."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deltaflow.error_display import user_call
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


@user_call
def apply(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> ColumnExpression:
    """Apply a Python function to every row; the result type comes from its annotations.
    An ``async def`` function is awaited (as with :func:`apply_async`).

    Parameters:
        fun: the function, called once per row with the arguments' values.
        *args, **kwargs: its arguments: column expressions or constants.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> def label(name: str) -> str:
        ...     return name.upper() + "!"
        >>> pw.debug.compute_and_print(t.select(l=pw.apply(label, t.name)), include_id=False)
        l
        INK!
        PEN!
    """
    _require_arguments("apply", fun, args, kwargs)
    return Apply(fun, args, kwargs, options=_async_options_if_coroutine(fun))


@user_call
def apply_with_type(
    fun: Callable[..., Any], ret_type: Any, *args: Any, **kwargs: Any
) -> ColumnExpression:
    """Like :func:`apply`, with the result type given explicitly.

    Parameters:
        fun: the function, called once per row with the arguments' values.
        ret_type: the type of its results (``int``, ``str | None``, ``tuple[int, ...]`` ...).
        *args, **kwargs: its arguments: column expressions or constants.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> r = t.select(n=pw.apply_with_type(len, int, t.name))
        >>> r.typehints()["n"], pw.debug.table_to_dicts(r)[1]["n"].values()
        (<class 'int'>, dict_values([3, 3]))
    """
    _require_arguments("apply_with_type", fun, args, kwargs)
    return Apply(fun, args, kwargs, ret_type, options=_async_options_if_coroutine(fun))


@user_call
def apply_async(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> ColumnExpression:
    """Apply a function (usually ``async def``) to every row; the calls of one minibatch run
    concurrently on the run's event loop (``pw.udfs.async_executor()``).

    Parameters:
        fun: the function (``async def``, or a plain function run in a thread).
        *args, **kwargs: its arguments: column expressions or constants.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> async def shout(name: str) -> str:
        ...     return name.upper()
        >>> pw.debug.compute_and_print(t.select(s=pw.apply_async(shout, t.name)), include_id=False)
        s
        INK
        PEN
    """
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
    see :func:`deltaflow.udfs.udf`.

    Parameters:
        fun: the function (when used as ``@pw.udf`` without arguments).
        return_type: the result type (default: the function's return annotation).
        deterministic: whether equal arguments always give equal results (then results need not be
            kept to retract rows).
        propagate_none: give None without calling the function when an argument is None.
        executor: how calls run: ``pw.udfs.sync_executor()`` (default), ``async_executor()`` ...
        cache_strategy: a cache of results, e.g. ``pw.udfs.InMemoryCache()``.
        max_batch_size: the largest number of rows given to one call of a batched function.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> @pw.udf(propagate_none=True)
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> pw.debug.compute_and_print(t.select(t.name, d=double(t.qty)), include_id=False)
        name | d
        ink  |
        pen  | 4
    """
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


@user_call
def cast(target_type: Any, col: Any) -> ColumnExpression:
    """Convert values to ``target_type`` (int, float, bool, str and their Optional forms).

    Parameters:
        target_type: the type converted to.
        col: the expression converted.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  | 7
        ... ''')
        >>> r = t.select(t.name, q=pw.cast(float, t.qty), s=pw.cast(str, t.qty))
        >>> pw.debug.compute_and_print(r, include_id=False)
        name | q   | s
        ink  | 7.0 | 7
        pen  | 2.0 | 2
    """
    return Cast(target_type, wrap_value(col))


@user_call
def declare_type(target_type: Any, col: Any) -> ColumnExpression:
    """Change the declared type of an expression without converting its values.

    Parameters:
        target_type: the type declared.
        col: the expression, whose values must already have that type.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> r = t.filter(t.qty.is_not_none()).select(q=pw.declare_type(int, pw.this.qty))
        >>> r.typehints()["q"]
        <class 'int'>
    """
    return DeclareType(target_type, wrap_value(col))


@user_call
def coalesce(*args: Any) -> ColumnExpression:
    """The first argument that is not None, row by row.

    Parameters:
        *args: expressions of one type (Optional or not).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> pw.debug.compute_and_print(t.select(t.name, q=pw.coalesce(t.qty, 0)), include_id=False)
        name | q
        ink  | 0
        pen  | 2
    """
    return Coalesce(*(wrap_value(a) for a in args))


@user_call
def if_else(if_clause: Any, then_clause: Any, else_clause: Any) -> ColumnExpression:
    """``then_clause`` where ``if_clause`` holds, ``else_clause`` elsewhere.

    Parameters:
        if_clause: a bool expression.
        then_clause: the value where it is true.
        else_clause: the value where it is false (of the same type).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> r = t.select(t.name, stock=pw.if_else(t.qty.is_none(), "unknown", "known"))
        >>> pw.debug.compute_and_print(r, include_id=False)
        name | stock
        ink  | unknown
        pen  | known
    """
    return IfElse(wrap_value(if_clause), wrap_value(then_clause), wrap_value(else_clause))


@user_call
def require(val: Any, *deps: Any) -> ColumnExpression:
    """``val``, or None wherever one of ``deps`` is None.

    Parameters:
        val: the value given where every dependency is set.
        *deps: expressions that must not be None.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> pw.debug.compute_and_print(t.select(t.name, r=pw.require(t.name, t.qty)),
        ...                            include_id=False)
        name | r
        ink  |
        pen  | pen
    """
    return Require(wrap_value(val), *(wrap_value(d) for d in deps))


@user_call
def make_tuple(*args: Any) -> ColumnExpression:
    """A tuple of the arguments' values, row by row.

    Parameters:
        *args: the expressions, one per tuple element.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> pw.debug.compute_and_print(t.select(p=pw.make_tuple(t.name, t.qty)), include_id=False)
        p
        ('ink', None)
        ('pen', 2)
    """
    return MakeTuple(*(wrap_value(a) for a in args))


@user_call
def unwrap(col: Any) -> ColumnExpression:
    """Declare an Optional column as never None; a None value stops the run with an error.

    Parameters:
        col: an expression of an Optional type.

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... name | qty
        ... pen  | 2
        ... ink  |
        ... ''')
        >>> r = t.filter(t.qty.is_not_none()).select(q=pw.unwrap(pw.this.qty))
        >>> r.typehints()["q"], pw.debug.table_to_dicts(r)[1]["q"].values()
        (<class 'int'>, dict_values([2]))
    """
    return Unwrap(wrap_value(col))


@user_call
def fill_error(col: Any, replacement: Any) -> ColumnExpression:
    """Replace error values by ``replacement``: cells whose computation failed in a run that
    keeps going on errors (``terminate_on_error=False``; otherwise the run stops at once).

    Parameters:
        col: the expression whose errors are replaced.
        replacement: the value given instead (of the same type).

    Examples:
        >>> import deltaflow as pw
        >>> t = pw.debug.table_from_markdown('''
        ... a | b
        ... 6 | 2
        ... 1 | 0
        ... ''')
        >>> r = t.select(t.a, ratio=pw.fill_error(t.a // t.b, -1))
        >>> pw.debug.compute_and_print(r, include_id=False, terminate_on_error=False)
        a | ratio
        1 | -1
        6 | 3
    """
    return FillError(wrap_value(col), wrap_value(replacement))
