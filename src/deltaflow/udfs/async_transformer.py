"""``pw.AsyncTransformer``: an ``async def invoke(**row)`` applied to every row of a table.

A subclass names its ``output_schema`` in the class statement and defines ``invoke``, which
receives a row's columns as keyword arguments and returns a dict with the output columns.
``output_table`` has a ``_async_status`` column (``-SUCCESS-`` or ``-FAILURE-``) and the output
columns (None for failed rows); ``successful``, ``failed`` and ``finished`` select the rows by
status. The invocations of one minibatch run concurrently on the run's event loop, with the
options of :meth:`with_options`. A failing ``invoke`` is a row with the failure status (logged),
never a stopped run.

Difference from Pathway: results belong to the minibatch of their input row (Pathway delivers
them at later times, showing ``Pending`` meanwhile), and ``instance`` only checks its argument:
rows are not serialised per instance.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import Any

from deltaflow import _types as t
from deltaflow.expressions.base import Apply, ColumnExpression
from deltaflow.udfs.caches import CacheStrategy, DiskCacheWhenPersisted, default_cache_name
from deltaflow.udfs.evaluation import CallOptions
from deltaflow.udfs.executors import AsyncExecutor
from deltaflow.udfs.retries import AsyncRetryStrategy

logger = logging.getLogger("deltaflow.udfs")

STATUS_COLUMN = "_async_status"
SUCCESS = "-SUCCESS-"
FAILURE = "-FAILURE-"
OUTCOME_COLUMN = "async_outcome"

__all__ = ["AsyncTransformer"]


class AsyncTransformer:
    """Apply the asynchronous :meth:`invoke` to every row of ``input_table``."""

    output_schema: Any = None

    def __init_subclass__(cls, output_schema: Any = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if output_schema is not None:
            cls.output_schema = output_schema

    def __init__(
        self,
        input_table: Any,
        *,
        instance: Any = None,
        autocommit_duration_ms: int | None = 1500,
        _event_loop: Any = None,
    ) -> None:
        if self.output_schema is None:
            raise TypeError(
                f"{type(self).__name__}: give the output schema in the class "
                f"statement: class {type(self).__name__}(pw.AsyncTransformer, "
                f"output_schema=MySchema)"
            )
        if not inspect.iscoroutinefunction(type(self).invoke):
            raise TypeError(f"{type(self).__name__}.invoke must be an async method")
        self._check_signature(input_table)
        if instance is not None:
            _check_hashable_instance(input_table, instance)
        self._input_table = input_table
        self._instance = instance
        self.autocommit_duration_ms = autocommit_duration_ms
        self._capacity: int | None = None
        self._timeout: float | None = None
        self._retry_strategy: AsyncRetryStrategy | None = None
        self._cache_strategy: CacheStrategy | None = None
        self._opened = False
        self._output: Any = None

    async def invoke(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The work for one row: its columns as keyword arguments, the output as a dict."""
        raise NotImplementedError(f"{type(self).__name__} must define async def invoke")

    def open(self) -> None:  # noqa: A003 - Pathway's name
        """Called once before the first invocation (set up clients here)."""

    def close(self) -> None:
        """Called when the object is no longer used (deltaflow does not call it itself)."""

    def with_options(
        self,
        capacity: int | None = None,
        timeout: float | None = None,
        retry_strategy: AsyncRetryStrategy | None = None,
        cache_strategy: CacheStrategy | None = None,
    ) -> AsyncTransformer:
        """Set the concurrency ``capacity``, per-call ``timeout``, retries and cache."""
        AsyncExecutor(capacity=capacity, timeout=timeout, retry_strategy=retry_strategy)
        if cache_strategy is not None and not isinstance(cache_strategy, CacheStrategy):
            raise TypeError(
                f"{type(self).__name__}.with_options: cache_strategy must be a "
                f"pw.udfs.CacheStrategy, got {type(cache_strategy).__name__}"
            )
        if self._output is not None:
            raise ValueError(
                f"{type(self).__name__}.with_options: set the options before "
                f"using the result tables"
            )
        self._capacity, self._timeout = capacity, timeout
        self._retry_strategy, self._cache_strategy = retry_strategy, cache_strategy
        return self

    # --- the result tables ----------------------------------------------------------------------
    @property
    def output_table(self) -> Any:
        """Every row with its status and output columns (None where ``invoke`` failed)."""
        if self._output is None:
            self._output = self._build()
        return self._output

    @functools.cached_property
    def finished(self) -> Any:
        """The rows whose invocation ended (all rows in deltaflow)."""
        return self.output_table.select(*self._references(self.output_table, with_status=True))

    @functools.cached_property
    def successful(self) -> Any:
        """The rows whose invocation succeeded, output columns only, with the schema's types."""
        from deltaflow.expressions.functions import declare_type

        table = self.output_table
        done = table.filter(table[STATUS_COLUMN] == SUCCESS)
        return done.select(
            **{
                name: declare_type(dtype, done[name])
                for name, dtype in self.output_schema.dtypes().items()
            }
        )

    @functools.cached_property
    def failed(self) -> Any:
        """The rows whose invocation failed (output columns, all None)."""
        table = self.output_table
        failed = table.filter(table[STATUS_COLUMN] == FAILURE)
        return failed.select(*self._references(failed, with_status=False))

    # --- internals ------------------------------------------------------------------------------
    def _references(self, table: Any, *, with_status: bool) -> list[Any]:
        names = ([STATUS_COLUMN] if with_status else []) + list(self.output_schema.column_names())
        return [table[name] for name in names]

    def _check_signature(self, input_table: Any) -> None:
        parameters = inspect.signature(self.invoke).parameters.values()
        kinds = {p.kind for p in parameters}
        named = {
            p.name: p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        columns = input_table.column_names()
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            for column in columns:
                if column not in named:
                    raise TypeError(
                        f"Input table has a column {column!r} but it is not "
                        f"present on the argument list of the invoke method."
                    )
        for name, parameter in named.items():
            if parameter.default is parameter.empty and name not in columns:
                raise TypeError(
                    f"Column {name!r} is present on the argument list of the "
                    f"invoke method but it is not present in the input_table."
                )

    def _build(self) -> Any:
        from deltaflow.expressions.functions import apply_with_type

        table = self._input_table
        names = table.column_names()
        outputs = self.output_schema.dtypes()
        # Timeout and retries bound each invocation; the batch call itself never fails.
        invoke = AsyncExecutor(timeout=self._timeout, retry_strategy=self._retry_strategy).wrap(
            self.invoke
        )
        call = _BatchCall(self, invoke, list(outputs), self._capacity).__call__
        options = CallOptions(
            executor=AsyncExecutor(),
            # Without a strategy of its own, results persist with the run (if it persists).
            cache_strategy=self._cache_strategy or DiskCacheWhenPersisted(),
            cache_name=default_cache_name(type(self).invoke),
            max_batch_size=_WHOLE_MINIBATCH,  # one call sees every row, to group instances
        )
        instance = table.id if self._instance is None else self._instance
        outcome: ColumnExpression = Apply(
            call,
            (instance,),
            {name: table[name] for name in names},
            t.ANY,
            name=f"{type(self).__name__}.invoke",
            options=options,
        )
        with_outcome = table.select(**{OUTCOME_COLUMN: outcome})
        columns: dict[str, Any] = {
            STATUS_COLUMN: apply_with_type(_status_of, str, with_outcome[OUTCOME_COLUMN])
        }
        for name, dtype in outputs.items():
            columns[name] = apply_with_type(
                functools.partial(_value_of, name), t.optional(dtype), with_outcome[OUTCOME_COLUMN]
            )
        return with_outcome.select(**columns)


_WHOLE_MINIBATCH = 2**62

Outcome = tuple[str, dict[str, Any] | None]


class _BatchCall:
    """The invocations of a minibatch's rows, run concurrently (at most ``capacity`` at
    once); never raises. A failure fails every row of the same instance in the minibatch."""

    def __init__(
        self, transformer: AsyncTransformer, invoke: Any, outputs: list[str], capacity: int | None
    ) -> None:
        self.transformer = transformer
        self.invoke = invoke
        self.outputs = outputs
        self.capacity = capacity
        self.__name__ = f"{type(transformer).__name__}.invoke"

    async def __call__(self, instances: list[Any], **columns: list[Any]) -> list[Outcome]:
        transformer = self.transformer
        if not transformer._opened:
            transformer._opened = True
            transformer.open()
        semaphore = asyncio.Semaphore(self.capacity) if self.capacity else None

        async def one(row: int) -> Outcome:
            values = {name: column[row] for name, column in columns.items()}
            if semaphore is None:
                return await self._invoke(values)
            async with semaphore:
                return await self._invoke(values)

        outcomes = list(await asyncio.gather(*(one(row) for row in range(len(instances)))))
        failed = {
            t.canonical_key(instance)
            for instance, (status, _) in zip(instances, outcomes, strict=True)
            if status == FAILURE
        }
        if failed:
            outcomes = [
                (FAILURE, None) if t.canonical_key(instance) in failed else outcome
                for instance, outcome in zip(instances, outcomes, strict=True)
            ]
        return outcomes

    async def _invoke(self, values: dict[str, Any]) -> Outcome:
        name = type(self.transformer).__name__
        try:
            result = await self.invoke(**values)
        except Exception:  # Pathway's transformers log and mark the row
            logger.exception("Exception in AsyncTransformer %s", name)
            return FAILURE, None
        if not isinstance(result, dict) or set(result) != set(self.outputs):
            logger.error(
                "AsyncTransformer %s: invoke returned %r, not a dict with exactly the columns %s",
                name,
                result,
                self.outputs,
            )
            return FAILURE, None
        return SUCCESS, result


def _status_of(outcome: tuple[str, Any]) -> str:
    return outcome[0]


def _value_of(name: str, outcome: tuple[str, Any]) -> Any:
    values = outcome[1]
    return None if values is None else values[name]


def _check_hashable_instance(table: Any, instance: Any) -> None:
    from deltaflow.expressions.base import wrap_value

    dtype = table._scope("AsyncTransformer").dtype_of(wrap_value(instance)).strip_optional()
    if isinstance(dtype, t.Array | t.List) or dtype == t.JSON:
        raise ValueError(
            f"You can't use a column of type {dtype!r} as instance in "
            f"AsyncTransformer because it is unhashable."
        )
