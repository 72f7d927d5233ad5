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

import functools
import inspect
import logging
from typing import Any

from deltaflow import _types as t
from deltaflow.expressions.base import Apply, ColumnExpression
from deltaflow.udfs.caches import CacheStrategy, default_cache_name
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

    def __init__(self, input_table: Any, *, instance: Any = None,
                 autocommit_duration_ms: int | None = 1500, **kwargs: Any) -> None:
        if kwargs and set(kwargs) != {"_event_loop"}:
            unknown = sorted(set(kwargs) - {"_event_loop"})
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument "
                            f"{unknown[0]!r}")
        if self.output_schema is None:
            raise TypeError(f"{type(self).__name__}: give the output schema in the class "
                            f"statement: class {type(self).__name__}(pw.AsyncTransformer, "
                            f"output_schema=MySchema)")
        if not inspect.iscoroutinefunction(type(self).invoke):
            raise TypeError(f"{type(self).__name__}.invoke must be an async method")
        self._check_signature(input_table)
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

    def with_options(self, capacity: int | None = None, timeout: float | None = None,
                     retry_strategy: AsyncRetryStrategy | None = None,
                     cache_strategy: CacheStrategy | None = None) -> AsyncTransformer:
        """Set the concurrency ``capacity``, per-call ``timeout``, retries and cache."""
        AsyncExecutor(capacity=capacity, timeout=timeout, retry_strategy=retry_strategy)
        if cache_strategy is not None and not isinstance(cache_strategy, CacheStrategy):
            raise TypeError(f"{type(self).__name__}.with_options: cache_strategy must be a "
                            f"pw.udfs.CacheStrategy, got {type(cache_strategy).__name__}")
        if self._output is not None:
            raise ValueError(f"{type(self).__name__}.with_options: set the options before "
                             f"using the result tables")
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
        return done.select(**{name: declare_type(dtype, done[name])
                              for name, dtype in self.output_schema.dtypes().items()})

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
        signature = inspect.signature(self.invoke)
        columns = input_table.column_names()
        try:
            signature.bind(**{name: None for name in columns})
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}.invoke{signature} does not accept the "
                            f"columns of its input table {columns}: {exc}") from exc

    def _build(self) -> Any:
        from deltaflow.expressions.functions import apply_with_type

        table = self._input_table
        names = table.column_names()
        outputs = self.output_schema.dtypes()
        # Timeout and retries bound each invocation; the row call itself never fails.
        invoke = AsyncExecutor(timeout=self._timeout,
                               retry_strategy=self._retry_strategy).wrap(self.invoke)
        call = _RowCall(self, invoke, list(outputs)).__call__
        options = CallOptions(
            executor=AsyncExecutor(capacity=self._capacity),
            cache_strategy=self._cache_strategy,
            cache_name=default_cache_name(type(self).invoke),
        )
        outcome: ColumnExpression = Apply(call, (), {name: table[name]
                                                     for name in names},
                                          t.ANY, name=f"{type(self).__name__}.invoke",
                                          options=options)
        with_outcome = table.select(**{OUTCOME_COLUMN: outcome})
        columns: dict[str, Any] = {STATUS_COLUMN: apply_with_type(
            _status_of, str, with_outcome[OUTCOME_COLUMN])}
        for name, dtype in outputs.items():
            columns[name] = apply_with_type(functools.partial(_value_of, name),
                                            t.optional(dtype), with_outcome[OUTCOME_COLUMN])
        return with_outcome.select(**columns)


class _RowCall:
    """One row's invocation: never raises; failures become the failure status."""

    def __init__(self, transformer: AsyncTransformer, invoke: Any, outputs: list[str]) -> None:
        self.transformer = transformer
        self.invoke = invoke
        self.outputs = outputs
        self.__name__ = f"{type(transformer).__name__}.invoke"

    async def __call__(self, **row: Any) -> tuple[str, dict[str, Any] | None]:
        transformer = self.transformer
        if not transformer._opened:
            transformer._opened = True
            transformer.open()
        try:
            result = await self.invoke(**row)
        except Exception:  # noqa: BLE001 - Pathway's transformers log and mark the row
            logger.exception("Exception in AsyncTransformer %s", type(transformer).__name__)
            return FAILURE, None
        if not isinstance(result, dict) or set(result) != set(self.outputs):
            logger.error("AsyncTransformer %s: invoke returned %r, not a dict with exactly "
                         "the columns %s", type(transformer).__name__, result, self.outputs)
            return FAILURE, None
        return SUCCESS, result


def _status_of(outcome: tuple[str, Any]) -> str:
    return outcome[0]


def _value_of(name: str, outcome: tuple[str, Any]) -> Any:
    values = outcome[1]
    return None if values is None else values[name]
