"""``deduplicate`` on update streams: its update stream against a reference model, at every
time (the acceptor sees the inserted values one after another; retractions are ignored)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from tests.test_stateful_properties import SETTINGS, Event, _stream_table, update_streams

import deltaflow as pw


def _expected(stream: list[Event], with_instance: bool) -> Counter:
    """The changes a sequential deduplicate keeping the largest value gives, time by time."""
    current: dict[int | None, tuple[int, int]] = {}
    out: Counter = Counter()
    for time in sorted({e[3] for e in stream}):
        before = dict(current)
        for _, k, v, when, diff in stream:
            if when != time or diff < 0:
                continue
            key = k if with_instance else None
            if key not in current or v > current[key][1]:
                current[key] = (k, v)
        for key, row in current.items():
            if before.get(key) != row:
                if key in before:
                    out[(time, *before[key], -1)] += 1
                out[(time, *row, 1)] += 1
    return out


@pytest.mark.parametrize("with_instance", [False, True])
@given(stream=update_streams(max_times=5))
@SETTINGS
def test_deduplicate_matches_a_sequential_model(stream: list[Event], with_instance: bool) -> None:
    pw.clear_graph()
    if not stream:
        return
    table = _stream_table(stream)
    instance = pw.this.k if with_instance else None
    result = table.deduplicate(
        value=pw.this.v, instance=instance, acceptor=lambda new, old: new > old
    )
    got = Counter(
        (time, row["k"], row["v"], diff) for time, row, diff in pw.debug.table_to_stream(result)
    )
    assert got == _expected(stream, with_instance)


def test_deletions_do_not_bring_back_an_earlier_row() -> None:
    table = pw.debug.table_from_markdown("""
          | v | __time__ | __diff__
        1 | 1 | 2        | 1
        2 | 5 | 4        | 1
        2 | 5 | 6        | -1
        3 | 3 | 8        | 1
    """)
    result = table.deduplicate(value=pw.this.v, acceptor=lambda new, old: new > old)
    got = sorted((time, row["v"], diff) for time, row, diff in pw.debug.table_to_stream(result))
    assert got == [(2, 1, 1), (4, 1, -1), (4, 5, 1)]
