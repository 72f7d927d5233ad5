"""seconds_from_env: the one check of connectors' duration settings."""

from __future__ import annotations

import pytest

from deltaflow.io._core.environment import seconds_from_env

VAR = "DELTAFLOW_TEST_SECONDS"


def test_unset_or_empty_gives_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    assert seconds_from_env(VAR, 7.5, "pw.io.x") == 7.5
    monkeypatch.setenv(VAR, "")
    assert seconds_from_env(VAR, 7.5, "pw.io.x") == 7.5


def test_values_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "2.5")
    assert seconds_from_env(VAR, 1.0, "pw.io.x") == 2.5
    monkeypatch.setenv(VAR, "soon")
    with pytest.raises(ValueError, match=r"pw.io.x: environment variable .* not a number"):
        seconds_from_env(VAR, 1.0, "pw.io.x")
    monkeypatch.setenv(VAR, "0")
    with pytest.raises(ValueError, match="must be positive"):
        seconds_from_env(VAR, 1.0, "pw.io.x")
    assert seconds_from_env(VAR, 1.0, "pw.io.x", allow_zero=True) == 0.0
    monkeypatch.setenv(VAR, "-1")
    with pytest.raises(ValueError, match="must not be negative"):
        seconds_from_env(VAR, 1.0, "pw.io.x", allow_zero=True)
