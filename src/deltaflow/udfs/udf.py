"""The UDF class and the ``@pw.udf`` decorator.

A :class:`UDF` is a callable object: calling it with column expressions (or plain values)
builds an ``Apply`` expression node. Subclass it and define ``__wrapped__`` (a method, plain or
``async``) to keep state or configuration in the object; :func:`udf` wraps a function the same
way. Options are checked when the UDF is created, the return type when it is called.
"""

from __future__ import annotations

import functools
import typing
import warnings
from collections.abc import Callable
from typing import Any

from deltaflow import _types as t
from deltaflow.expressions.base import Apply, ColumnExpression
from deltaflow.udfs.caches import CacheStrategy, default_cache_name
from deltaflow.udfs.evaluation import CallOptions
from deltaflow.udfs.executors import (
    AutoExecutor,
    Executor,
    FullyAsyncExecutor,
    SyncExecutor,
)
from deltaflow.udfs.future import FutureType
from deltaflow.udfs.wrappers import is_coroutine_function

__all__ = ["UDF", "UDFFunction", "udf"]

_AUTO = AutoExecutor()  # the default executor (stateless, so one instance serves all)


class UDF:
    """A user-defined function usable on columns.

    Subclasses define ``__wrapped__``; the options are ``return_type`` (default: the return
    annotation of ``__wrapped__``), ``deterministic`` (a deterministic function is called again
    to retract a deleted row; otherwise the value it gave the row is remembered),
    ``propagate_none`` (a None argument gives None without a call), ``executor``,
    ``cache_strategy`` and ``max_batch_size`` (the function receives and returns lists).
    """

    def __init__(
        self,
        *,
        return_type: Any = ...,
        deterministic: bool = False,
        propagate_none: bool = False,
        executor: Executor = _AUTO,
        cache_strategy: CacheStrategy | None = None,
        max_batch_size: int | None = None,
    ) -> None:
        label = f"pw.udf {type(self).__name__}"
        if not hasattr(self, "__wrapped__"):
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute "
                f"'__wrapped__': a pw.UDF subclass defines the function to "
                f"apply as its __wrapped__ method"
            )
        executor = AutoExecutor() if executor is None else executor
        if not isinstance(executor, Executor):
            raise TypeError(
                f"{label}: executor must be made by pw.udfs.sync_executor(), "
                f"async_executor(), auto_executor() or fully_async_executor(), "
                f"got {type(executor).__name__}"
            )
        if cache_strategy is not None and not isinstance(cache_strategy, CacheStrategy):
            raise TypeError(
                f"{label}: cache_strategy must be a pw.udfs.CacheStrategy "
                f"(InMemoryCache, DiskCache ...), got "
                f"{type(cache_strategy).__name__}"
            )
        if max_batch_size is not None and (
            isinstance(max_batch_size, bool)
            or not isinstance(max_batch_size, int)
            or max_batch_size <= 0
        ):
            raise ValueError(
                f"{label}: max_batch_size must be None or a positive integer, "
                f"got {max_batch_size!r}"
            )
        for option, value in (("deterministic", deterministic), ("propagate_none", propagate_none)):
            if not isinstance(value, bool):
                raise TypeError(f"{label}: {option} must be a bool, got {value!r}")
        is_async = is_coroutine_function(self._function())
        if is_async and isinstance(executor, SyncExecutor):
            raise ValueError("The function is a coroutine. You can't use SyncExecutor.")
        if max_batch_size is not None and isinstance(executor, FullyAsyncExecutor):
            raise ValueError("Batching is not supported for fully asynchronous UDFs.")
        self.return_type = return_type
        self.deterministic = deterministic
        self.propagate_none = propagate_none
        self.executor = executor
        self.cache_strategy = cache_strategy
        self.max_batch_size = max_batch_size

    def _function(self) -> Callable[..., Any]:
        return self.__wrapped__  # type: ignore[attr-defined]  # subclasses define it (checked)

    def _name(self) -> str:
        fun = self._function()
        return getattr(fun, "__name__", None) or type(self).__name__

    def _return_type(self) -> Any:
        """The type of one result (for batched UDFs: of one element of the returned list)."""
        annotation = _return_annotation(self._function())
        if self.max_batch_size is not None:
            if self.return_type is not ...:
                return self.return_type
            origin = typing.get_origin(annotation)
            if annotation is list or origin is list:
                inner = typing.get_args(annotation)
                return inner[0] if inner else Any
            raise ValueError(
                f"A batch UDF has to return a list but is annotated as returning {annotation}"
            )
        if self.return_type is ...:
            return annotation
        if annotation is not Any:
            _warn_if_narrower(self.return_type, annotation)
        return self.return_type

    def __call__(self, *args: Any, **kwargs: Any) -> ColumnExpression:
        """An expression applying the function to every row of its arguments."""
        fun = self._function()
        options = CallOptions(
            executor=self.executor.resolve(is_coroutine_function(fun)),
            cache_strategy=self.cache_strategy,
            cache_name=default_cache_name(fun),
            max_batch_size=self.max_batch_size,
        )
        return_type = self._return_type()
        fully_async = isinstance(options.executor, FullyAsyncExecutor)
        if fully_async:  # its values may come later: the column is a Future (udfs/future.py)
            return_type = FutureType(t.wrap(return_type))
        apply = Apply(
            fun,
            args,
            kwargs,
            return_type,
            propagate_none=self.propagate_none,
            deterministic=self.deterministic,
            name=self._name(),
            options=options,
        )
        apply.accepts_futures = fully_async  # a fully async UDF may take another's result
        return apply


class UDFFunction(UDF):
    """A UDF made from a function by :func:`udf`."""

    def __init__(self, func: Callable[..., Any], **options: Any) -> None:
        if not callable(func):
            raise TypeError(f"pw.udf: expected a function, got {type(func).__name__}")
        self.func = func
        self.__wrapped__ = func
        functools.update_wrapper(self, func)
        super().__init__(**options)

    def _function(self) -> Callable[..., Any]:
        return self.func


def udf(
    fun: Callable[..., Any] | None = None,
    /,
    *,
    return_type: Any = ...,
    deterministic: bool = False,
    propagate_none: bool = False,
    executor: Executor = _AUTO,
    cache_strategy: CacheStrategy | None = None,
    max_batch_size: int | None = None,
) -> Any:
    """Turn a function (plain or ``async``) into a UDF: ``@pw.udf`` or ``@pw.udf(...)``.

    The UDF is called on columns and gives a column; ``pw.udf`` is this function.

    Parameters:
        fun: the function, when used bare (``@pw.udfs.udf``).
        return_type: the type of the results (default: the function's return annotation).
        deterministic: whether equal arguments always give equal results; then a deleted
            row's result is computed again instead of being remembered.
        propagate_none: a None argument gives None without calling the function.
        executor: how calls are made (``pw.udfs.auto_executor()`` by default: async for a
            coroutine function, one after another otherwise).
        cache_strategy: a ``pw.udfs.CacheStrategy`` remembering results across calls.
        max_batch_size: the function receives lists of at most this many arguments (one list
            per parameter) and returns the list of their results.

    Examples:
        >>> import deltaflow as pw
        >>> @pw.udfs.udf(max_batch_size=100)
        ... def lengths(words: list[str]) -> list[int]:
        ...     return [len(w) for w in words]
        >>> t = pw.debug.table_from_markdown('''
        ... word
        ... tea
        ... coffee
        ... ''')
        >>> pw.debug.compute_and_print(t.select(t.word, n=lengths(t.word)), include_id=False)
        word   | n
        coffee | 6
        tea    | 3
    """
    options = {
        "return_type": return_type,
        "deterministic": deterministic,
        "propagate_none": propagate_none,
        "executor": executor,
        "cache_strategy": cache_strategy,
        "max_batch_size": max_batch_size,
    }
    if fun is None:
        return functools.partial(udf, **options)
    return UDFFunction(fun, **options)


def _return_annotation(fun: Callable[..., Any]) -> Any:
    target = fun
    if not callable(target):
        return Any
    if not hasattr(target, "__code__") and not hasattr(target, "__func__"):
        target = getattr(fun, "__call__", fun)  # noqa: B004 - callable objects
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unresolvable annotations: no type information
        return Any
    return hints.get("return", Any)


def _warn_if_narrower(return_type: Any, annotation: Any) -> None:
    try:
        declared, annotated = t.wrap(return_type), t.wrap(annotation)
    except TypeError:
        return
    if declared != annotated and not t.is_subtype(annotated, declared):
        warnings.warn(
            f"udf: return_type={return_type} does not match the function's return "
            f"annotation {annotation}; the column gets return_type",
            stacklevel=4,
        )
