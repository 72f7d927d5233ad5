"""Offset frontiers: how far a source has been read, per part of the source.

A frontier maps an offset key (a file path, a partition ...) to the latest offset value read
for it. Persistence stores one frontier per input at each completed time; a restart hands it to
:meth:`deltaflow.io._core.base.Reader.seek`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from deltaflow.io._core.base import OffsetAntichain, OffsetKey, OffsetValue


def _later(old: OffsetValue, new: OffsetValue) -> OffsetValue:
    try:
        return new if old is None or new >= old else old
    except TypeError:  # values of a source that are not ordered: the newest wins
        return new


class OffsetFrontier:
    """The frontier of one input, advanced by every ``Data`` event's offset."""

    def __init__(self, initial: OffsetAntichain | None = None) -> None:
        self._offsets: dict[OffsetKey, OffsetValue] = dict(initial or {})

    def advance(self, key: OffsetKey, value: OffsetValue) -> None:
        """Record that the part ``key`` was read up to ``value``."""
        self._offsets[key] = value

    def snapshot(self) -> dict[OffsetKey, OffsetValue]:
        """A copy, safe to hand to another thread."""
        return dict(self._offsets)

    def __bool__(self) -> bool:
        return bool(self._offsets)


def merge_frontiers(
    frontiers: Iterable[Mapping[OffsetKey, OffsetValue]],
    later: Callable[[Any, Any], Any] = _later,
) -> dict[OffsetKey, OffsetValue]:
    """Combine the frontiers saved by several workers into one.

    The standard rule: for each key, keep the furthest value any worker reached. A source whose
    offsets do not merge this way passes its own ``later(old, new)``.
    """
    merged: dict[OffsetKey, OffsetValue] = {}
    for frontier in frontiers:
        for key, value in frontier.items():
            merged[key] = later(merged[key], value) if key in merged else value
    return merged
