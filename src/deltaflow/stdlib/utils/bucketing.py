"""Time bucketing helpers."""

from __future__ import annotations

import datetime


def truncate_to_minutes(time: datetime.datetime) -> datetime.datetime:
    """``time`` with its seconds and microseconds set to zero."""
    return time.replace(second=0, microsecond=0)
