"""Retry strategies for asynchronous UDFs (``async_executor(retry_strategy=...)``).

A strategy wraps one call: it awaits the coroutine function and, when it raises, waits and
calls it again, up to ``max_retries`` more times; the last failure is raised to the caller.
Delays are given in milliseconds, as in Pathway.
"""

from __future__ import annotations

import abc
import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "AsyncRetryStrategy",
    "ExponentialBackoffRetryStrategy",
    "FixedDelayRetryStrategy",
    "NoRetryStrategy",
]


class AsyncRetryStrategy(abc.ABC):
    """Base class of retry strategies: :meth:`invoke` runs one call with retries."""

    @abc.abstractmethod
    async def invoke(self, func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``func(*args, **kwargs)``, retrying as the strategy says."""


class NoRetryStrategy(AsyncRetryStrategy):
    """Call once; a failure is final."""

    async def invoke(self, func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        return await func(*args, **kwargs)


class ExponentialBackoffRetryStrategy(AsyncRetryStrategy):
    """Retry up to ``max_retries`` times; the n-th wait is ``initial_delay * backoff_factor**n``
    milliseconds plus a random jitter of up to ``jitter_ms``."""

    def __init__(
        self,
        max_retries: int = 3,
        initial_delay: int = 1000,
        backoff_factor: float = 2,
        jitter_ms: int = 300,
    ) -> None:
        _check_non_negative("max_retries", max_retries, int)
        _check_non_negative("initial_delay", initial_delay, int | float)
        _check_non_negative("backoff_factor", backoff_factor, int | float)
        _check_non_negative("jitter_ms", jitter_ms, int | float)
        self._max_retries = max_retries
        self._initial_delay = initial_delay / 1000
        self._backoff_factor = backoff_factor
        self._jitter = jitter_ms / 1000

    @property
    def max_retries(self) -> int:
        return self._max_retries

    def delays(self) -> list[float]:
        """The waits (in seconds, before jitter) between consecutive attempts."""
        return [self._initial_delay * self._backoff_factor**n for n in range(self._max_retries)]

    async def invoke(self, func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        delays = self.delays()
        for attempt in range(self._max_retries + 1):
            try:
                return await func(*args, **kwargs)
            except Exception:
                if attempt == self._max_retries:
                    raise
            jitter = random.uniform(0, self._jitter) if self._jitter else 0.0
            await asyncio.sleep(delays[attempt] + jitter)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_retries={self._max_retries}, "
            f"initial_delay={round(self._initial_delay * 1000)}, "
            f"backoff_factor={self._backoff_factor}, "
            f"jitter_ms={round(self._jitter * 1000)})"
        )


class FixedDelayRetryStrategy(ExponentialBackoffRetryStrategy):
    """Retry up to ``max_retries`` times, waiting ``delay_ms`` milliseconds between tries."""

    def __init__(self, max_retries: int = 3, delay_ms: int = 1000) -> None:
        super().__init__(
            max_retries=max_retries, initial_delay=delay_ms, backoff_factor=1, jitter_ms=0
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_retries={self._max_retries}, "
            f"delay_ms={round(self._initial_delay * 1000)})"
        )


def _check_non_negative(name: str, value: Any, kind: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
        raise ValueError(f"retry strategy: {name} must be a non-negative number, got {value!r}")
