"""``pw.udfs``: user-defined functions and how their calls are made.

See docs/udfs.md. The pieces, one module each: :mod:`~deltaflow.udfs.udf` (the ``UDF`` class
and ``@pw.udf``), :mod:`~deltaflow.udfs.executors` (sync, async, auto, fully async),
:mod:`~deltaflow.udfs.caches`, :mod:`~deltaflow.udfs.retries`,
:mod:`~deltaflow.udfs.wrappers` (``coerce_async``, ``with_timeout`` ...),
:mod:`~deltaflow.udfs.evaluation` (running a UDF over a minibatch) and
:mod:`~deltaflow.udfs.context` (what a UDF keeps during one run).
"""

from deltaflow.udfs.caches import CacheStrategy, DefaultCache, DiskCache, InMemoryCache
from deltaflow.udfs.executors import (
    Executor,
    async_executor,
    auto_executor,
    fully_async_executor,
    sync_executor,
)
from deltaflow.udfs.retries import (
    AsyncRetryStrategy,
    ExponentialBackoffRetryStrategy,
    FixedDelayRetryStrategy,
    NoRetryStrategy,
)
from deltaflow.udfs.udf import UDF, udf
from deltaflow.udfs.wrappers import (
    async_options,
    coerce_async,
    with_cache_strategy,
    with_capacity,
    with_retry_strategy,
    with_timeout,
)

__all__ = [
    "UDF",
    "AsyncRetryStrategy",
    "CacheStrategy",
    "DefaultCache",
    "DiskCache",
    "Executor",
    "ExponentialBackoffRetryStrategy",
    "FixedDelayRetryStrategy",
    "InMemoryCache",
    "NoRetryStrategy",
    "async_executor",
    "async_options",
    "auto_executor",
    "coerce_async",
    "fully_async_executor",
    "sync_executor",
    "udf",
    "with_cache_strategy",
    "with_capacity",
    "with_retry_strategy",
    "with_timeout",
]
