"""``deduplicate`` on update streams: its update stream against a reference model, at every
time (the acceptor sees the inserted values one after another, each time's in the order of the
values and then of the rows, as in Pathway; retractions are ignored)."""

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
        # The acceptor sees a time's values in order (ties: in the order of the rows).
        inserted = sorted((v, k) for _, k, v, when, diff in stream if when == time and diff > 0)
        for v, k in inserted:
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


def test_the_acceptor_sees_a_times_rows_ordered_by_value_then_row() -> None:
    """Whatever the order of the rows and their ids (as Pathway 0.33: the results below are
    its own), so a run on several workers, whose deltas come in another order, keeps the same
    rows."""
    results = set()
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        for ids in ([1, 2, 3], [3, 1, 2]):
            pw.clear_graph()
            rows = [(1, "b"), (0, "c"), (1, "a")]
            table = pw.debug.table_from_markdown(
                "  | v | w | __time__\n"
                + "\n".join(f"{i} | {rows[o][0]} | {rows[o][1]} | 2" for i, o in zip(ids, order))
            )
            far = table.deduplicate(value=table.v, acceptor=lambda new, old: abs(new - old) >= 1)
            first = table.deduplicate(value=table.v, acceptor=lambda new, old: False)
            results.add(
                (
                    tuple(sorted(pw.debug.table_to_dicts(far)[1]["w"].values())),
                    tuple(sorted(pw.debug.table_to_dicts(first)[1]["w"].values())),
                )
            )
    # Seen in the order (0, c), (1, a), (1, b): c is kept, then a replaces it (b is refused).
    assert results == {(("a",), ("c",))}
