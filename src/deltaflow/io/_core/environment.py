"""Connector settings read from environment variables (retry budgets, outage limits)."""

from __future__ import annotations

import os


def seconds_from_env(
    variable: str, default: float, connector: str, *, allow_zero: bool = False
) -> float:
    """A duration in seconds from ``variable`` (``default`` when unset or empty); a value
    that is not a number, or not positive (negative, with ``allow_zero``), is a
    ``ValueError`` naming the connector and the variable."""
    raw = os.environ.get(variable)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{connector}: environment variable {variable}={raw!r} is not a number of seconds"
        ) from None
    if value < 0 or (value == 0 and not allow_zero):
        limit = "must not be negative" if allow_zero else "must be positive"
        raise ValueError(f"{connector}: {variable} {limit}, got {raw!r}")
    return value
