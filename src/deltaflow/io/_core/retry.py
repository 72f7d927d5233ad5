"""The one retry policy of every connector: exponential backoff with jitter and an outage limit.

Connectors differ in *what* they retry (each one classifies its client's errors as "the
service could not be reached / is busy" or "the request is wrong"), not in *how*: every
connector waits ``first_delay_s``, then twice as long after each further failure up to
``max_delay_s``, each wait drawn at random from its upper half (so that many writers that
failed together do not retry together), and gives up once the service has been failing for
``max_outage_s`` without a single success. The defaults are the same everywhere
(:data:`DEFAULT_POLICY`); environment variables override them for all connectors
(``DELTAFLOW_RETRY_*``) or for one connector (``DELTAFLOW_<CONNECTOR>_MAX_OUTAGE_S``). See
``docs/retries.md``.

Two ways to use a policy, for the two shapes of connector loop:

- :func:`call_with_retries`: run a call until it succeeds (blocking);
- :class:`Outage`: for loops that must not sleep in our code (a reader that returns "nothing
  yet", a writer whose sender threads schedule a retry time, an asyncio task): it counts
  failures, says how long to wait and raises :class:`OutageTooLong` past the limit.

Where a client has retry machinery of its own (botocore's retry modes, librdkafka's
reconnects) it handles the short blips inside one attempt; the policy decides how long a
whole outage may last.
"""

from __future__ import annotations

import logging
import math
import random
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from deltaflow.errors import ConnectorOSError
from deltaflow.io._core.environment import seconds_from_env

logger = logging.getLogger("deltaflow.io.retry")

T = TypeVar("T")

MAX_OUTAGE_ENV = "DELTAFLOW_RETRY_MAX_OUTAGE_S"
"""Environment variable: the outage limit of every connector (seconds)."""
FIRST_DELAY_ENV = "DELTAFLOW_RETRY_FIRST_DELAY_S"
"""Environment variable: the wait after the first failure (seconds), every connector."""
MAX_DELAY_ENV = "DELTAFLOW_RETRY_MAX_DELAY_S"
"""Environment variable: the longest wait between two attempts (seconds), every connector."""

CONNECTOR_ENV = {
    "s3": "DELTAFLOW_S3_MAX_OUTAGE_S",
    "dynamodb": "DELTAFLOW_DYNAMODB_MAX_OUTAGE_S",
    "deltalake": "DELTAFLOW_DELTALAKE_MAX_OUTAGE_S",
    "postgres": "DELTAFLOW_POSTGRES_CONNECT_RETRY_S",
    "kafka": "DELTAFLOW_KAFKA_MAX_OUTAGE_S",
    "http": "DELTAFLOW_HTTP_MAX_OUTAGE_S",
    "sqlite": "DELTAFLOW_SQLITE_MAX_OUTAGE_S",
}
"""Per connector: the environment variable that sets its outage limit (it wins over
:data:`MAX_OUTAGE_ENV`). PostgreSQL keeps the name it had before the policy was shared."""


@dataclass(frozen=True)
class BackoffPolicy:
    """How a connector waits between attempts and when it stops trying.

    The wait before attempt ``n + 1`` (after ``n`` consecutive failures) is at most
    ``min(max_delay_s, first_delay_s * multiplier ** (n - 1))`` and at least ``1 - jitter``
    times that, drawn uniformly, plus up to ``extra_jitter_s`` (used by the HTTP connector's
    Pathway-style policy). Retrying stops when the first failure of the outage lies
    ``max_outage_s`` back, or after ``max_attempts`` attempts when that is set.
    """

    first_delay_s: float = 0.2
    max_delay_s: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_outage_s: float = 300.0
    max_attempts: int | None = None
    extra_jitter_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("first_delay_s", "max_delay_s", "max_outage_s", "extra_jitter_s"):
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or value < 0
                or math.isnan(value)
            ):
                raise ValueError(
                    f"BackoffPolicy: {name} must be a non-negative number of seconds, got {value!r}"
                )
        if not isinstance(self.multiplier, int | float) or self.multiplier < 1:
            raise ValueError(f"BackoffPolicy: multiplier must be >= 1, got {self.multiplier!r}")
        if not isinstance(self.jitter, int | float) or not 0 <= self.jitter <= 1:
            raise ValueError(f"BackoffPolicy: jitter must be between 0 and 1, got {self.jitter!r}")
        if self.max_attempts is not None and (
            not isinstance(self.max_attempts, int) or self.max_attempts < 1
        ):
            raise ValueError(
                f"BackoffPolicy: max_attempts must be a positive int or None, "
                f"got {self.max_attempts!r}"
            )

    def ceiling(self, failures: int) -> float:
        """The longest wait after ``failures`` consecutive failures (jitter aside)."""
        exponent = max(failures - 1, 0)
        # Past ~1000 doublings the float overflows; the cap has long been reached by then.
        if self.multiplier > 1 and exponent * math.log(self.multiplier) > 700:
            return self.max_delay_s
        return min(self.max_delay_s, self.first_delay_s * self.multiplier**exponent)

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """A wait, drawn with jitter, after ``failures`` (>= 1) consecutive failures."""
        draw = (rng or random).random
        ceiling = self.ceiling(failures)
        return ceiling * (1.0 - self.jitter * draw()) + self.extra_jitter_s * draw()

    def with_max_outage(self, seconds: float | None) -> BackoffPolicy:
        """This policy with another outage limit (None: unchanged)."""
        return self if seconds is None else replace(self, max_outage_s=seconds)


DEFAULT_POLICY = BackoffPolicy()
"""The defaults every connector starts from: 0.2 s, doubling up to 10 s, half-interval
jitter, give up after 300 s of uninterrupted failures."""


def policy_for(connector: str, label: str) -> BackoffPolicy:
    """The policy of ``connector`` (a key of :data:`CONNECTOR_ENV`) after the environment's
    overrides; ``label`` (``pw.io.s3.write`` ...) names the API in a ``ValueError`` about a
    malformed variable. Called when the pipeline is defined."""
    defaults = DEFAULT_POLICY
    outage = seconds_from_env(MAX_OUTAGE_ENV, defaults.max_outage_s, label, allow_zero=True)
    variable = CONNECTOR_ENV.get(connector)
    if variable is not None:
        outage = seconds_from_env(variable, outage, label, allow_zero=True)
    return replace(
        defaults,
        first_delay_s=seconds_from_env(
            FIRST_DELAY_ENV, defaults.first_delay_s, label, allow_zero=True
        ),
        max_delay_s=seconds_from_env(MAX_DELAY_ENV, defaults.max_delay_s, label, allow_zero=True),
        max_outage_s=outage,
    )


def limit_hint(connector: str) -> str:
    """Which environment variables set ``connector``'s outage limit (for error messages)."""
    variable = CONNECTOR_ENV.get(connector)
    return MAX_OUTAGE_ENV if variable is None else f"{variable} or {MAX_OUTAGE_ENV}"


class OutageTooLong(ConnectorOSError, ConnectionError):
    """A service kept failing for longer than the policy allows (or for every attempt).

    A connector error (its message names the connector) and a ``ConnectionError``.
    ``detail`` is the message without the leading description of what failed (for callers
    that phrase that part themselves)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class Outage:
    """The failures of one outage: consecutive failures since the last success.

    :meth:`failed` records a failure and returns how long to wait before the next attempt,
    or raises :class:`OutageTooLong` when the policy says to stop; :meth:`succeeded` ends the
    outage. Its message reads "<what> <failing> for <seconds> s (...)". Not thread-safe:
    callers that share one (sender threads) hold their own lock.
    """

    def __init__(
        self,
        policy: BackoffPolicy,
        *,
        what: str,
        hint: str = "",
        failing: str = "kept failing",
        clock: Callable[[], float] = _time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.what = what
        self.hint = hint
        self.failing = failing
        self.clock = clock
        self.rng = rng
        self.failures = 0
        self.started: float | None = None

    @property
    def ongoing(self) -> bool:
        return self.failures > 0

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def failed(self, reason: str) -> float:
        """Record a failure (``reason``: the error, already free of secrets); the wait before
        the next attempt, or :class:`OutageTooLong`."""
        now = self.clock()
        if self.started is None:
            self.started = now
        self.failures += 1
        policy = self.policy
        elapsed = now - self.started
        out_of_attempts = policy.max_attempts is not None and self.failures >= policy.max_attempts
        if out_of_attempts or elapsed >= policy.max_outage_s:
            raise self.too_long(reason, elapsed)
        # Never sleep past the limit: the last attempt happens right at it.
        return min(policy.delay(self.failures, self.rng), max(policy.max_outage_s - elapsed, 0.0))

    def too_long(self, reason: str, elapsed: float) -> OutageTooLong:
        """The error that ends the outage (``reason``: the last error)."""
        set_by = f", set by {self.hint}" if self.hint else ""
        detail = (
            f"{self.failing} for {elapsed:.1f} s ({self.failures} attempt(s); limit "
            f"{self.policy.max_outage_s:g} s{set_by}); last error: {reason}"
        )
        return OutageTooLong(f"{self.what} {detail}", detail)

    def succeeded(self) -> int:
        """End the outage; returns how many failures it had (0: there was none)."""
        failures, self.failures, self.started = self.failures, 0, None
        return failures


def call_with_retries(
    call: Callable[[], T],
    *,
    policy: BackoffPolicy,
    is_transient: Callable[[BaseException], bool],
    what: str,
    describe: Callable[[BaseException], str] = str,
    hint: str = "",
    failing: str = "kept failing",
    stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = _time.sleep,
) -> T:
    """``call()`` until it succeeds. Errors ``is_transient`` accepts are retried per
    ``policy`` (a warning per failure, ``describe`` giving its text without secrets); others
    propagate at once. Past the limit, or when ``stop()`` turns true, an
    :class:`OutageTooLong` ("<what> <failing> for ...") is raised from the last error."""
    outage = Outage(policy, what=what, hint=hint, failing=failing)
    while True:
        try:
            result = call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            reason = describe(exc)
            if stop is not None and stop():
                raise outage.too_long(reason, outage.elapsed()) from exc
            try:
                wait = outage.failed(reason)
            except OutageTooLong as too_long:
                raise too_long from exc
            logger.warning(
                "%s failed (attempt %d: %s); retrying in %.1f s",
                what,
                outage.failures,
                reason,
                wait,
            )
            sleep(wait)
            continue
        failures = outage.succeeded()
        if failures:
            logger.info("%s succeeded after %d failed attempt(s)", what, failures)
        return result
