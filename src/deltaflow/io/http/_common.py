"""What the HTTP client connectors share: the retry policy, the retry loop and safe URLs.

Pathway's ``RetryPolicy``/``n_retries`` arguments are mapped onto the shared retry policy of
every connector (:mod:`deltaflow.io._core.retry`, ``docs/retries.md``): the same delays, at
most ``1 + n_retries`` attempts, and never longer than the outage limit
(``DELTAFLOW_HTTP_MAX_OUTAGE_S``, default 300 s).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from deltaflow.io._core.retry import (
    BackoffPolicy,
    Outage,
    OutageTooLong,
    limit_hint,
    policy_for,
)

logger = logging.getLogger("deltaflow.io")

DEFAULT_RETRY_CODES = (429, 500, 502, 503, 504)


class RetryPolicy:
    """How long to wait before each retry of a failed HTTP request.

    The first retry waits ``first_delay_ms``; each next wait is the previous one times
    ``backoff_factor`` plus a random jitter of up to ``jitter_ms``.
    """

    def __init__(self, first_delay_ms: int, backoff_factor: float, jitter_ms: int) -> None:
        for label, value in (
            ("first_delay_ms", first_delay_ms),
            ("backoff_factor", backoff_factor),
            ("jitter_ms", jitter_ms),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(
                    f"pw.io.http.RetryPolicy: {label} must be a non-negative number, got {value!r}"
                )
        self._next_retry_duration = first_delay_ms / 1000.0
        self._backoff_factor = backoff_factor
        self._jitter = jitter_ms / 1000.0

    @classmethod
    def default(cls) -> RetryPolicy:
        """One second first, then 1.5 times longer each time, with up to 0.3 s of jitter."""
        return cls(first_delay_ms=1000, backoff_factor=1.5, jitter_ms=300)

    def wait_duration_before_retry(self) -> float:
        """The wait before the next retry, in seconds (and advance to the one after it)."""
        current = self._next_retry_duration
        self._next_retry_duration = current * self._backoff_factor + random.uniform(
            0.0, self._jitter
        )
        return current

    def backoff(self, n_retries: int, connector: str) -> BackoffPolicy:
        """This policy as the shared one: its first delay and factor, its jitter added to
        each wait, at most ``1 + n_retries`` attempts, within the HTTP outage limit."""
        shared = policy_for("http", connector)
        return BackoffPolicy(
            first_delay_s=self._next_retry_duration,
            multiplier=max(self._backoff_factor, 1.0),
            jitter=0.0,
            extra_jitter_s=self._jitter,
            max_delay_s=math.inf,
            max_outage_s=shared.max_outage_s,
            max_attempts=n_retries + 1,
        )

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(first_delay_ms={self._next_retry_duration * 1000:g}, "
            f"backoff_factor={self._backoff_factor:g}, jitter_ms={self._jitter * 1000:g})"
        )


def safe_url(url: str) -> str:
    """``url`` without a password and without query values, fit for logs and errors."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}"
    query = "&".join(
        f"{k}=..." for k, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def check_url(url: Any, connector: str) -> str:
    if not isinstance(url, str):
        raise TypeError(f"{connector}: url must be a str, got {url!r}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"{connector}: url must be an http:// or https:// address, got {safe_url(url)!r}"
        )
    return url


def check_client_args(
    connector: str,
    *,
    method: Any,
    headers: Any,
    n_retries: Any,
    retry_policy: Any,
    connect_timeout_ms: Any,
    request_timeout_ms: Any,
    retry_codes: Any,
) -> None:
    """The arguments ``read`` and ``write`` have in common, checked at definition time."""
    if not isinstance(method, str) or not method.isalpha():
        raise ValueError(
            f"{connector}: method must be an HTTP method name such as 'GET' or "
            f"'POST', got {method!r}"
        )
    if headers is not None and (
        not isinstance(headers, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise TypeError(f"{connector}: headers must be a dict of str to str")
    if isinstance(n_retries, bool) or not isinstance(n_retries, int) or n_retries < 0:
        raise ValueError(f"{connector}: n_retries must be a non-negative int, got {n_retries!r}")
    if not isinstance(retry_policy, RetryPolicy):
        raise TypeError(
            f"{connector}: retry_policy must be a pw.io.http.RetryPolicy, got {retry_policy!r}"
        )
    policy_for("http", connector)  # a malformed outage limit fails here, not mid-run
    for label, value in (
        ("connect_timeout_ms", connect_timeout_ms),
        ("request_timeout_ms", request_timeout_ms),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise ValueError(
                f"{connector}: {label} must be a positive number of milliseconds "
                f"or None, got {value!r}"
            )
    if retry_codes is not None and (
        not isinstance(retry_codes, Sequence) or not all(isinstance(c, int) for c in retry_codes)
    ):
        raise TypeError(f"{connector}: retry_codes must be a tuple of HTTP status codes")


def client_timeout(connect_timeout_ms: float | None, request_timeout_ms: float | None) -> Any:
    import aiohttp

    return aiohttp.ClientTimeout(
        total=None if request_timeout_ms is None else request_timeout_ms / 1000.0,
        sock_connect=None if connect_timeout_ms is None else connect_timeout_ms / 1000.0,
    )


class RequestFailed(Exception):
    """A request still failed after its retries."""


async def with_retries(
    attempt: Callable[[], Awaitable[Any]],
    *,
    n_retries: int,
    policy: RetryPolicy,
    retry_codes: Sequence[int],
    what: str,
) -> Any:
    """Run ``attempt`` (which returns an aiohttp response, already read) until it succeeds,
    at most ``1 + n_retries`` times within the outage limit; retried are connection errors,
    timeouts and the ``retry_codes`` statuses. Returns the last response; raises
    :class:`RequestFailed` when the last attempt failed on a connection error."""
    import aiohttp

    outage = Outage(policy.backoff(n_retries, what), what=what, hint=limit_hint("http"))
    while True:
        try:
            response = await attempt()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            try:
                wait = outage.failed(reason)
            except OutageTooLong:
                raise RequestFailed(
                    f"{what} failed after {outage.failures} attempt(s): {reason}"
                ) from exc
            logger.warning("%s failed (%s); retrying", what, reason)
        else:
            if response.status not in retry_codes:
                return response
            try:
                wait = outage.failed(f"HTTP {response.status}")
            except OutageTooLong:
                return response
            logger.warning("%s got HTTP %d; retrying", what, response.status)
        await asyncio.sleep(wait)
