"""The shared retry policy (deltaflow.io._core.retry): backoff bounds, jitter, outage limit,
overrides from the environment, and the blocking and non-blocking ways to use it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deltaflow.io._core.retry import (
    CONNECTOR_ENV,
    DEFAULT_POLICY,
    BackoffPolicy,
    Outage,
    OutageTooLong,
    call_with_retries,
    policy_for,
)


class FakeClock:
    """A monotonic clock the test moves by hand (sleeping advances it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_defaults_are_the_documented_ones() -> None:
    documented = BackoffPolicy(
        first_delay_s=0.2, max_delay_s=10.0, multiplier=2.0, jitter=0.5, max_outage_s=300.0
    )
    assert documented == DEFAULT_POLICY
    # The ceilings double from 0.2 s and stop at 10 s.
    assert [DEFAULT_POLICY.ceiling(n) for n in range(1, 9)] == [
        0.2,
        0.4,
        0.8,
        1.6,
        3.2,
        6.4,
        10.0,
        10.0,
    ]
    assert DEFAULT_POLICY.ceiling(10_000) == 10.0  # no overflow after many failures


@given(
    failures=st.integers(min_value=1, max_value=200),
    seed=st.integers(0, 2**32 - 1),
    first=st.floats(0.001, 5),
    cap=st.floats(0.001, 60),
    jitter=st.floats(0, 1),
)
def test_every_delay_lies_within_the_jittered_ceiling(
    failures: int, seed: int, first: float, cap: float, jitter: float
) -> None:
    policy = BackoffPolicy(first_delay_s=first, max_delay_s=cap, jitter=jitter)
    ceiling = min(cap, first * 2 ** min(failures - 1, 100))
    delay = policy.delay(failures, random.Random(seed))
    assert ceiling * (1 - jitter) - 1e-12 <= delay <= ceiling + 1e-12


def test_jitter_spreads_the_delays_and_zero_jitter_does_not() -> None:
    rng = random.Random(7)
    spread = {round(DEFAULT_POLICY.delay(3, rng), 6) for _ in range(50)}
    assert len(spread) > 40 and min(spread) >= 0.4 and max(spread) <= 0.8
    exact = BackoffPolicy(jitter=0.0)
    assert {exact.delay(3, rng) for _ in range(10)} == {0.8}
    additive = BackoffPolicy(first_delay_s=1.0, jitter=0.0, extra_jitter_s=0.3)
    assert all(1.0 <= additive.delay(1, rng) <= 1.3 for _ in range(20))


def test_outage_gives_up_after_the_limit_and_names_it() -> None:
    clock = FakeClock()
    outage = Outage(
        BackoffPolicy(max_outage_s=5.0),
        what="output w",
        clock=clock,
        hint="DELTAFLOW_X_MAX_OUTAGE_S",
        rng=random.Random(1),
    )
    waited = 0.0
    with pytest.raises(OutageTooLong) as info:
        while True:
            wait = outage.failed("connection refused")
            assert wait <= 5.0 - waited + 1e-9  # never sleeps past the limit
            clock.sleep(wait)
            waited += wait
    assert waited == pytest.approx(5.0)
    message = str(info.value)
    assert message.startswith("output w kept failing for 5.0 s")
    assert "limit 5 s, set by DELTAFLOW_X_MAX_OUTAGE_S" in message
    assert message.endswith("last error: connection refused")


def test_a_success_ends_the_outage() -> None:
    clock = FakeClock()
    outage = Outage(BackoffPolicy(max_outage_s=1.0, jitter=0.0), what="w", clock=clock)
    for _ in range(3):
        clock.sleep(outage.failed("down"))
    assert outage.ongoing and outage.failures == 3
    assert outage.succeeded() == 3 and not outage.ongoing
    # A new outage starts from the first delay and a fresh clock.
    assert outage.failed("down again") == pytest.approx(0.2)


def test_max_attempts_stops_before_the_time_limit() -> None:
    outage = Outage(BackoffPolicy(max_attempts=3), what="request", clock=FakeClock())
    outage.failed("503")
    outage.failed("503")
    with pytest.raises(OutageTooLong, match=r"3 attempt\(s\)"):
        outage.failed("503")


def test_call_with_retries_retries_transient_errors_only() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionRefusedError("refused")
        return "done"

    assert (
        call_with_retries(
            flaky,
            policy=DEFAULT_POLICY,
            is_transient=lambda e: isinstance(e, ConnectionError),
            what="call",
            sleep=clock.sleep,
        )
        == "done"
    )
    assert len(calls) == 4 and len(clock.sleeps) == 3

    def wrong() -> None:
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        call_with_retries(
            wrong,
            policy=DEFAULT_POLICY,
            is_transient=lambda e: False,
            what="call",
            sleep=clock.sleep,
        )


def test_call_with_retries_stops_when_asked() -> None:
    def down() -> None:
        raise ConnectionResetError("reset")

    with pytest.raises(OutageTooLong, match="reset"):
        call_with_retries(
            down,
            policy=DEFAULT_POLICY,
            is_transient=lambda e: True,
            what="call",
            stop=lambda: True,
            sleep=lambda s: None,
        )


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "DELTAFLOW_RETRY_MAX_OUTAGE_S",
        "DELTAFLOW_RETRY_FIRST_DELAY_S",
        "DELTAFLOW_RETRY_MAX_DELAY_S",
        *CONNECTOR_ENV.values(),
    ):
        monkeypatch.delenv(variable, raising=False)
    assert policy_for("s3", "pw.io.s3.write") == DEFAULT_POLICY
    # The same defaults for every connector.
    assert {policy_for(name, name) for name in CONNECTOR_ENV} == {DEFAULT_POLICY}
    monkeypatch.setenv("DELTAFLOW_RETRY_MAX_OUTAGE_S", "60")
    monkeypatch.setenv("DELTAFLOW_RETRY_FIRST_DELAY_S", "0.5")
    monkeypatch.setenv("DELTAFLOW_DYNAMODB_MAX_OUTAGE_S", "12")
    assert policy_for("s3", "x").max_outage_s == 60.0
    dynamodb = policy_for("dynamodb", "x")
    assert (dynamodb.max_outage_s, dynamodb.first_delay_s) == (12.0, 0.5)
    monkeypatch.setenv("DELTAFLOW_DYNAMODB_MAX_OUTAGE_S", "soon")
    with pytest.raises(ValueError, match="pw.io.dynamodb.write.*DELTAFLOW_DYNAMODB_MAX_OUT"):
        policy_for("dynamodb", "pw.io.dynamodb.write")


def test_bad_policies_are_rejected() -> None:
    with pytest.raises(ValueError, match="first_delay_s"):
        BackoffPolicy(first_delay_s=-1)
    with pytest.raises(ValueError, match="jitter"):
        BackoffPolicy(jitter=2)
    with pytest.raises(ValueError, match="multiplier"):
        BackoffPolicy(multiplier=0.5)
    with pytest.raises(ValueError, match="max_attempts"):
        BackoffPolicy(max_attempts=0)
