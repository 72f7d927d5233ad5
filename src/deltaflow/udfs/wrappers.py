"""Function wrappers for asynchronous calls: ``pw.udfs.coerce_async``, ``with_timeout`` ...

Each takes a function and returns a coroutine function with one more behaviour. The async
executor composes them (timeout inside retries: every attempt has the full timeout).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

__all__ = [
    "async_options",
    "coerce_async",
    "with_cache_strategy",
    "with_capacity",
    "with_retry_strategy",
    "with_timeout",
]


def is_coroutine_function(fun: Any) -> bool:
    """Whether calling ``fun`` gives a coroutine (functions, methods and callable objects)."""
    if inspect.iscoroutinefunction(fun):
        return True
    call = getattr(fun, "__call__", None)  # noqa: B004 - callable objects, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


def coerce_async(
    func: Callable[..., T] | Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[T]]:
    """``func`` as a coroutine function; a plain function runs in the loop's thread pool."""
    # Which of the two it is is known from the check, which the type checker cannot follow.
    if is_coroutine_function(func):
        return cast("Callable[..., Awaitable[T]]", func)
    plain = cast("Callable[..., T]", func)

    @functools.wraps(func)
    async def in_thread(*args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(plain, *args, **kwargs))

    return in_thread


def with_capacity(func: Callable[..., Awaitable[T]], capacity: int) -> Callable[..., Awaitable[T]]:
    """At most ``capacity`` calls of ``func`` in flight at once (per event loop)."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
        raise ValueError(
            f"pw.udfs.with_capacity: capacity must be a positive integer, got {capacity!r}"
        )
    semaphores: dict[int, asyncio.Semaphore] = {}

    @functools.wraps(func)
    async def limited(*args: Any, **kwargs: Any) -> T:
        loop_id = id(asyncio.get_running_loop())
        semaphore = semaphores.get(loop_id)
        if semaphore is None:
            semaphore = semaphores[loop_id] = asyncio.Semaphore(capacity)
        async with semaphore:
            return await func(*args, **kwargs)

    return limited


def with_timeout(func: Callable[..., Awaitable[T]], timeout: float) -> Callable[..., Awaitable[T]]:
    """Each call fails with ``TimeoutError`` after ``timeout`` seconds."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(
            f"pw.udfs.with_timeout: timeout must be a positive number of seconds, got {timeout!r}"
        )

    @functools.wraps(func)
    async def bounded(*args: Any, **kwargs: Any) -> T:
        return await asyncio.wait_for(func(*args, **kwargs), timeout=timeout)

    return bounded


def with_retry_strategy(
    func: Callable[..., Awaitable[T]], retry_strategy: Any
) -> Callable[..., Awaitable[T]]:
    """Failed calls are retried as ``retry_strategy`` says."""
    from deltaflow.udfs.retries import AsyncRetryStrategy

    if not isinstance(retry_strategy, AsyncRetryStrategy):
        raise TypeError(
            f"pw.udfs.with_retry_strategy: retry_strategy must be a "
            f"pw.udfs.AsyncRetryStrategy, got {type(retry_strategy).__name__}"
        )

    @functools.wraps(func)
    async def retried(*args: Any, **kwargs: Any) -> T:
        return await retry_strategy.invoke(func, *args, **kwargs)

    return retried


def with_cache_strategy(func: Callable[..., Any], cache_strategy: Any) -> Callable[..., Any]:
    """``func`` answering from ``cache_strategy`` when it can (sync or async alike)."""
    from deltaflow.udfs.caches import CacheStrategy

    if not isinstance(cache_strategy, CacheStrategy):
        raise TypeError(
            f"pw.udfs.with_cache_strategy: cache_strategy must be a "
            f"pw.udfs.CacheStrategy, got {type(cache_strategy).__name__}"
        )
    if is_coroutine_function(func):
        return cache_strategy.wrap_async(func)
    return cache_strategy.wrap_sync(func)


def async_options(
    capacity: int | None = None,
    timeout: float | None = None,
    retry_strategy: Any = None,
    cache_strategy: Any = None,
) -> Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]:
    """A decorator giving a function all the chosen behaviours at once."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        wrapped = coerce_async(func)
        if timeout is not None:
            wrapped = with_timeout(wrapped, timeout)
        if retry_strategy is not None:
            wrapped = with_retry_strategy(wrapped, retry_strategy)
        if capacity is not None:
            wrapped = with_capacity(wrapped, capacity)
        if cache_strategy is not None:
            wrapped = with_cache_strategy(wrapped, cache_strategy)
        return wrapped

    return decorate
