"""Executors: how a UDF's calls for the rows of one minibatch are made.

An executor gets the function, the argument columns (Python lists) and the positions of the
rows to compute, and returns the results of those rows plus the failures, by row position, as
exception objects. It never raises for a failing row: the caller (``Apply``) decides in one
place what a failure becomes (today: the run stops with ``UdfError``).

* :class:`SyncExecutor` calls the function row after row on the engine thread.
* :class:`AsyncExecutor` runs the calls of a minibatch concurrently on the run's event loop
  (``capacity`` at once), each with its own ``timeout`` and retries; a plain function runs
  in the loop's thread pool.
* :class:`FullyAsyncExecutor` takes the same options; in deltaflow its results are ready in the
  minibatch of their row (see docs/udfs.md).
* :class:`AutoExecutor` picks the async executor for coroutine functions, the sync one otherwise.

With ``max_batch_size`` the function receives lists (one per argument) of up to that many rows
and returns a list of as many results.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from deltaflow.udfs.retries import AsyncRetryStrategy
from deltaflow.udfs.wrappers import coerce_async, with_retry_strategy, with_timeout

__all__ = [
    "AsyncExecutor",
    "AutoExecutor",
    "Executor",
    "FullyAsyncExecutor",
    "SyncExecutor",
    "async_executor",
    "auto_executor",
    "fully_async_executor",
    "sync_executor",
]

Results = tuple[list[Any], dict[int, BaseException]]


class Executor(abc.ABC):
    """Base class of executors."""

    def resolve(self, is_async_function: bool) -> Executor:
        """The executor that really runs a function of that kind."""
        return self

    @abc.abstractmethod
    def run(
        self,
        fun: Callable[..., Any],
        columns: Sequence[list[Any]],
        rows: Sequence[int],
        kwarg_names: Sequence[str],
        batch_size: int | None,
        fail_fast: bool,
    ) -> Results:
        """Compute ``fun`` on the given rows: (results aligned with ``rows``, failures keyed by
        the index in ``rows``). ``columns`` hold the positional arguments first, then one
        column per name of ``kwarg_names``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SyncExecutor(Executor):
    """Row after row, on the engine thread."""

    def run(
        self,
        fun: Callable[..., Any],
        columns: Sequence[list[Any]],
        rows: Sequence[int],
        kwarg_names: Sequence[str],
        batch_size: int | None,
        fail_fast: bool,
    ) -> Results:
        if batch_size is not None:
            return _run_batches_sync(fun, columns, rows, kwarg_names, batch_size, fail_fast)
        selected = _select(columns, rows)
        out: list[Any] = []
        failures: dict[int, BaseException] = {}
        append = out.append
        positional = len(columns) - len(kwarg_names)
        if not kwarg_names:
            arguments = zip(*selected, strict=True) if selected else iter([()] * len(rows))
            while True:
                # The loop is the hot path of every plain UDF: one try around all rows.
                try:
                    for values in arguments:
                        append(fun(*values))
                    break
                except Exception as exc:  # noqa: BLE001 - a failing row, reported by caller
                    failures[len(out)] = exc
                    append(None)
                    if fail_fast:
                        break
        else:
            names = tuple(kwarg_names)
            for index, values in enumerate(zip(*selected, strict=True)):
                try:
                    append(
                        fun(
                            *values[:positional],
                            **dict(zip(names, values[positional:], strict=True)),
                        )
                    )
                except Exception as exc:  # noqa: BLE001
                    failures[index] = exc
                    append(None)
                    if fail_fast:
                        break
        out.extend([None] * (len(rows) - len(out)))
        return out, failures


class AsyncExecutor(Executor):
    """The calls of a minibatch run concurrently on the run's event loop."""

    def __init__(
        self,
        *,
        capacity: int | None = None,
        timeout: float | None = None,
        retry_strategy: AsyncRetryStrategy | None = None,
    ) -> None:
        label = type(self).__name__
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0
        ):
            raise ValueError(
                f"{label}: capacity must be None or a positive integer, got {capacity!r}"
            )
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ValueError(
                f"{label}: timeout must be None or a positive number of seconds, got {timeout!r}"
            )
        if retry_strategy is not None and not isinstance(retry_strategy, AsyncRetryStrategy):
            raise TypeError(
                f"{label}: retry_strategy must be a pw.udfs.AsyncRetryStrategy, "
                f"got {type(retry_strategy).__name__}"
            )
        self.capacity = capacity
        self.timeout = timeout
        self.retry_strategy = retry_strategy

    def wrap(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        """``fun`` as a coroutine function with this executor's timeout and retries (the
        timeout bounds each attempt)."""
        wrapped = coerce_async(fun)
        if self.timeout is not None:
            wrapped = with_timeout(wrapped, self.timeout)
        if self.retry_strategy is not None:
            wrapped = with_retry_strategy(wrapped, self.retry_strategy)
        return wrapped

    def run(
        self,
        fun: Callable[..., Any],
        columns: Sequence[list[Any]],
        rows: Sequence[int],
        kwarg_names: Sequence[str],
        batch_size: int | None,
        fail_fast: bool,
    ) -> Results:
        from deltaflow.udfs.context import current_scope

        if not rows:  # nothing to call: do not start the run's event loop for it
            return [], {}
        call = self.wrap(fun)
        positional = len(columns) - len(kwarg_names)
        names = tuple(kwarg_names)
        if batch_size is None:
            groups = [[row] for row in rows]
            arguments = [tuple(column[row] for column in columns) for row in rows]
        else:
            groups = [list(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
            arguments = [
                tuple([column[row] for row in group] for column in columns) for group in groups
            ]
        outcomes = current_scope().run_coroutine(
            _gather(call, arguments, positional, names, self.capacity)
        )
        out: list[Any] = []
        failures: dict[int, BaseException] = {}
        for group, outcome in zip(groups, outcomes, strict=True):
            if isinstance(outcome, _Failed):
                for _ in group:
                    failures[len(out)] = outcome.error
                    out.append(None)
            elif batch_size is None:
                out.append(outcome)
            else:
                try:
                    out.extend(check_batch_result(outcome, len(group)))
                except ValueError as exc:
                    for _ in group:
                        failures[len(out)] = exc
                        out.append(None)
        return out, failures

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(capacity={self.capacity}, timeout={self.timeout}, "
            f"retry_strategy={self.retry_strategy!r})"
        )


class FullyAsyncExecutor(AsyncExecutor):
    """Pathway's fully asynchronous executor; deltaflow completes its calls within the
    minibatch (as :class:`AsyncExecutor` does) instead of delivering them at later times."""

    def __init__(
        self,
        *,
        capacity: int | None = None,
        timeout: float | None = None,
        retry_strategy: AsyncRetryStrategy | None = None,
        autocommit_duration_ms: int | None = 1500,
    ) -> None:
        super().__init__(capacity=capacity, timeout=timeout, retry_strategy=retry_strategy)
        self.autocommit_duration_ms = autocommit_duration_ms

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(capacity={self.capacity}, timeout={self.timeout}, "
            f"retry_strategy={self.retry_strategy!r}, "
            f"autocommit_duration_ms={self.autocommit_duration_ms})"
        )


class AutoExecutor(Executor):
    """The async executor for coroutine functions, the sync executor otherwise."""

    def resolve(self, is_async_function: bool) -> Executor:
        return AsyncExecutor() if is_async_function else SyncExecutor()

    def run(
        self,
        fun: Callable[..., Any],
        columns: Sequence[list[Any]],
        rows: Sequence[int],
        kwarg_names: Sequence[str],
        batch_size: int | None,
        fail_fast: bool,
    ) -> Results:
        executor = self.resolve(asyncio.iscoroutinefunction(fun))
        return executor.run(fun, columns, rows, kwarg_names, batch_size, fail_fast)


def sync_executor() -> Executor:
    """Calls made one after another on the engine thread.

    The executor for plain functions; a coroutine function cannot use it.

    Examples:
        >>> import deltaflow as pw
        >>> @pw.udf(executor=pw.udfs.sync_executor())
        ... def next_year(age: int) -> int:
        ...     return age + 1
        >>> t = pw.debug.table_from_markdown('''
        ... name | age
        ... Ann  | 30
        ... Bob  | 41
        ... ''')
        >>> pw.debug.compute_and_print(t.select(t.name, then=next_year(t.age)), include_id=False)
        name | then
        Ann  | 31
        Bob  | 42
    """
    return SyncExecutor()


def async_executor(
    *,
    capacity: int | None = None,
    timeout: float | None = None,
    retry_strategy: AsyncRetryStrategy | None = None,
) -> Executor:
    """Calls of a minibatch made concurrently (at most ``capacity`` at once), each attempt
    bounded by ``timeout`` seconds and retried by ``retry_strategy``.

    A plain function given this executor runs in a thread pool, so its calls overlap too.

    Parameters:
        capacity: the most calls in flight at once (no limit when None).
        timeout: seconds one attempt may take before it fails with ``TimeoutError``.
        retry_strategy: how failed attempts are retried, e.g.
            ``pw.udfs.FixedDelayRetryStrategy()`` (no retry when None).

    Examples:
        >>> import asyncio
        >>> import deltaflow as pw
        >>> @pw.udf(executor=pw.udfs.async_executor(capacity=2, timeout=10.0))
        ... async def lookup(code: str) -> str:
        ...     await asyncio.sleep(0.01)  # a request to a service, say
        ...     return {"fr": "France", "pl": "Poland"}.get(code, "?")
        >>> t = pw.debug.table_from_markdown('''
        ... code
        ... fr
        ... pl
        ... xx
        ... ''')
        >>> pw.debug.compute_and_print(t.select(t.code, country=lookup(t.code)), include_id=False)
        code | country
        fr   | France
        pl   | Poland
        xx   | ?
    """
    return AsyncExecutor(capacity=capacity, timeout=timeout, retry_strategy=retry_strategy)


def fully_async_executor(
    *,
    capacity: int | None = None,
    timeout: float | None = None,
    retry_strategy: AsyncRetryStrategy | None = None,
    autocommit_duration_ms: int | None = 1500,
) -> Executor:
    """Pathway's fully asynchronous executor (see :class:`FullyAsyncExecutor`).

    deltaflow completes the calls of a minibatch before the minibatch's results leave, as
    with :func:`async_executor`, so results are never late; the options are the same.

    Parameters:
        capacity: the most calls in flight at once (no limit when None).
        timeout: seconds one attempt may take before it fails with ``TimeoutError``.
        retry_strategy: how failed attempts are retried (no retry when None).
        autocommit_duration_ms: accepted for Pathway programs; results are not delayed.

    Examples:
        >>> import deltaflow as pw
        >>> @pw.udf(executor=pw.udfs.fully_async_executor(capacity=4))
        ... async def square(x: int) -> int:
        ...     return x * x
        >>> t = pw.debug.table_from_markdown('''
        ... x
        ... 3
        ... 4
        ... ''')
        >>> pw.debug.compute_and_print(t.select(t.x, sq=square(t.x)), include_id=False)
        x | sq
        3 | 9
        4 | 16
    """
    return FullyAsyncExecutor(
        capacity=capacity,
        timeout=timeout,
        retry_strategy=retry_strategy,
        autocommit_duration_ms=autocommit_duration_ms,
    )


def auto_executor() -> Executor:
    """Async for coroutine functions, sync otherwise (the default of ``pw.udf``).

    Examples:
        >>> import deltaflow as pw
        >>> auto = pw.udfs.auto_executor()
        >>> @pw.udf(executor=auto)
        ... def plain(x: int) -> int:
        ...     return x + 1
        >>> @pw.udf(executor=auto)
        ... async def coroutine(x: int) -> int:
        ...     return x - 1
        >>> t = pw.debug.table_from_markdown('''
        ... x
        ... 10
        ... ''')
        >>> pw.debug.compute_and_print(t.select(up=plain(t.x), down=coroutine(t.x)), include_id=False)
        up | down
        11 | 9
    """
    return AutoExecutor()


# --- helpers ----------------------------------------------------------------------------------
class _Failed:
    """A failed call inside the gathered results (a function may return exceptions as values)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _gather(
    call: Callable[..., Any],
    arguments: list[tuple[Any, ...]],
    positional: int,
    names: tuple[str, ...],
    capacity: int | None,
) -> list[Any]:
    semaphore = asyncio.Semaphore(capacity) if capacity is not None else None

    async def one(values: tuple[Any, ...]) -> Any:
        kwargs = dict(zip(names, values[positional:], strict=True))
        try:
            if semaphore is None:
                return await call(*values[:positional], **kwargs)
            async with semaphore:
                return await call(*values[:positional], **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported by the caller, row by row
            return _Failed(exc)

    return await asyncio.gather(*(one(values) for values in arguments))


def _select(columns: Sequence[list[Any]], rows: Sequence[int]) -> list[list[Any]]:
    if isinstance(rows, range) and rows == range(len(columns[0]) if columns else 0):
        return list(columns)
    return [[column[row] for row in rows] for column in columns]


def check_batch_result(result: Any, expected: int) -> list[Any]:
    """The results of a batched call as a list; a wrong count is a ValueError."""
    try:
        values = list(result)
    except TypeError as exc:
        raise ValueError(
            f"A batch UDF has to return a list of results, got {type(result).__name__}"
        ) from exc
    if len(values) != expected:
        raise ValueError(
            f"The number of rows produced by a UDF ({len(values)}) is different "
            f"than the number of rows on its input ({expected})."
        )
    return [
        v.item() if hasattr(v, "item") and getattr(v, "shape", None) == () else v for v in values
    ]


def _run_batches_sync(
    fun: Callable[..., Any],
    columns: Sequence[list[Any]],
    rows: Sequence[int],
    kwarg_names: Sequence[str],
    batch_size: int,
    fail_fast: bool,
) -> Results:
    positional = len(columns) - len(kwarg_names)
    out: list[Any] = []
    failures: dict[int, BaseException] = {}
    for start in range(0, len(rows), batch_size):
        group = rows[start : start + batch_size]
        lists = [[column[row] for row in group] for column in columns]
        try:
            result = fun(
                *lists[:positional], **dict(zip(kwarg_names, lists[positional:], strict=True))
            )
            out.extend(check_batch_result(result, len(group)))
        except Exception as exc:  # noqa: BLE001
            for _ in group:
                failures[len(out)] = exc
                out.append(None)
            if fail_fast:
                break
    out.extend([None] * (len(rows) - len(out)))
    return out, failures
