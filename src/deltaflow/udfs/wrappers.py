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
    """``func`` as a coroutine function; a plain function runs in the loop's thread pool.

    A coroutine function is returned as it is.

    Parameters:
        func: a plain function or a coroutine function.

    Examples:
        >>> import asyncio
        >>> import deltaflow as pw
        >>> def add(a: int, b: int) -> int:
        ...     return a + b
        >>> add_async = pw.udfs.coerce_async(add)
        >>> asyncio.run(add_async(2, b=3))
        5
    """
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
    """At most ``capacity`` calls of ``func`` in flight at once (per event loop); the others
    wait for a free slot.

    Parameters:
        func: a coroutine function.
        capacity: the most calls running together, a positive integer.

    Examples:
        >>> import asyncio
        >>> import deltaflow as pw
        >>> running, most = 0, 0
        >>> async def fetch(i: int) -> int:
        ...     global running, most
        ...     running += 1
        ...     most = max(most, running)
        ...     await asyncio.sleep(0.01)
        ...     running -= 1
        ...     return i
        >>> fetch_two_at_once = pw.udfs.with_capacity(fetch, 2)
        >>> async def main() -> list[int]:
        ...     return await asyncio.gather(*(fetch_two_at_once(i) for i in range(6)))
        >>> asyncio.run(main()), most
        ([0, 1, 2, 3, 4, 5], 2)
    """
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
    """Each call fails with ``TimeoutError`` after ``timeout`` seconds.

    Parameters:
        func: a coroutine function.
        timeout: the seconds a call may take, a positive number.

    Examples:
        >>> import asyncio
        >>> import deltaflow as pw
        >>> async def wait(seconds: float) -> str:
        ...     await asyncio.sleep(seconds)
        ...     return "done"
        >>> bounded = pw.udfs.with_timeout(wait, 0.5)
        >>> asyncio.run(bounded(0.01))
        'done'
        >>> try:
        ...     asyncio.run(bounded(5))
        ... except asyncio.TimeoutError:
        ...     print("gave up after 0.5 s")
        gave up after 0.5 s
    """
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
    """Failed calls are retried as ``retry_strategy`` says; the last failure is raised when
    the retries run out.

    Parameters:
        func: a coroutine function.
        retry_strategy: a ``pw.udfs.AsyncRetryStrategy``, such as
            ``pw.udfs.FixedDelayRetryStrategy`` or ``pw.udfs.ExponentialBackoffRetryStrategy``.

    Examples:
        >>> import asyncio
        >>> import deltaflow as pw
        >>> attempts = []
        >>> async def flaky(x: int) -> int:
        ...     attempts.append(x)
        ...     if len(attempts) < 3:
        ...         raise ConnectionError("service busy")
        ...     return x * 10
        >>> retried = pw.udfs.with_retry_strategy(
        ...     flaky, pw.udfs.FixedDelayRetryStrategy(max_retries=5, delay_ms=1)
        ... )
        >>> asyncio.run(retried(4)), len(attempts)
        (40, 3)
    """
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
    """``func`` answering from ``cache_strategy`` when it can (sync or async alike): a call
    with arguments seen before returns the remembered result without calling ``func``.

    Parameters:
        func: a plain function or a coroutine function.
        cache_strategy: a ``pw.udfs.CacheStrategy``, such as ``pw.udfs.InMemoryCache()``.

    Examples:
        >>> import asyncio
        >>> import deltaflow as pw
        >>> calls = []
        >>> async def price(item: str) -> int:
        ...     calls.append(item)
        ...     return len(item)
        >>> cached = pw.udfs.with_cache_strategy(price, pw.udfs.InMemoryCache())
        >>> async def main() -> list[int]:
        ...     return [await cached("pen"), await cached("pen"), await cached("ink")]
        >>> asyncio.run(main()), calls
        ([3, 3, 3], ['pen', 'ink'])
    """
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
    """A decorator giving a function all the chosen behaviours at once: the result is a
    coroutine function (a plain function runs in a thread pool) whose every attempt has
    ``timeout``, retried by ``retry_strategy``, at most ``capacity`` calls at once, answered
    from ``cache_strategy`` when it can. An option left None is not applied.

    Parameters:
        capacity: the most calls in flight at once.
        timeout: the seconds one attempt may take.
        retry_strategy: a ``pw.udfs.AsyncRetryStrategy`` for failed attempts.
        cache_strategy: a ``pw.udfs.CacheStrategy`` remembering results.

    Examples:
        >>> import asyncio
        >>> import deltaflow as pw
        >>> @pw.udfs.async_options(capacity=4, timeout=5.0, cache_strategy=pw.udfs.InMemoryCache())
        ... def slug(title: str) -> str:
        ...     return title.lower().replace(" ", "-")
        >>> asyncio.run(slug("Hello World"))
        'hello-world'
    """

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
