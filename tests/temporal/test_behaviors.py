"""buffer / ignore_late / forget / filter_out_results_of_forgetting on update streams.

The expected streams are the ones Pathway 0.33 prints for the same programs; the property
tests compare the operators with a small reference model of the rules, written here.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw

FINAL = 18446744073709551614

EVENTS = """
  | t  | v | __time__ | __diff__
1 | 1  | 1 | 2  | 1
2 | 2  | 2 | 4  | 1
3 | 4  | 3 | 6  | 1
4 | 2  | 4 | 8  | 1
5 | 7  | 5 | 10 | 1
3 | 4  | 3 | 12 | -1
6 | 3  | 6 | 12 | 1
7 | 20 | 7 | 14 | 1
"""


def changes(table: pw.Table) -> list[tuple[int, Any, int]]:
    """(time, v, diff) of every change, sorted."""
    return sorted(
        (time, row["v"] if "v" in row else row["s"], diff)
        for time, row, diff in pw.debug.table_to_stream(table)
    )


def test_buffer_holds_rows_until_the_frontier_reaches_time_plus_threshold() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    assert changes(t.buffer(pw.this.t, 3)) == [
        (6, 1, 1),
        (10, 2, 1),
        (10, 3, 1),
        (10, 4, 1),
        (12, 3, -1),
        (12, 6, 1),
        (14, 5, 1),
        (FINAL, 7, 1),
    ]


def test_ignore_late_drops_late_insertions_and_deletions() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    # the deletion of v=3 at 12 comes when the frontier (7) reached its 4 + 3: dropped too
    assert changes(t.ignore_late(pw.this.t, 3)) == [
        (2, 1, 1),
        (4, 2, 1),
        (6, 3, 1),
        (8, 4, 1),
        (10, 5, 1),
        (14, 7, 1),
    ]


def test_forget_retracts_at_the_next_change_after_the_frontier_passed() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    assert changes(t.forget(pw.this.t, 3)) == [
        (2, 1, 1),
        (4, 2, 1),
        (6, 3, 1),
        (8, 1, -1),
        (8, 4, 1),
        (10, 5, 1),
        (12, 2, -1),
        (12, 3, -1),
        (12, 4, -1),
        (14, 7, 1),
    ]


def test_marked_forgetting_comes_at_odd_times_and_can_be_filtered_out() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    marked = t.forget(pw.this.t, 3, mark_forgetting_records=True)
    assert changes(marked) == [
        (2, 1, 1),
        (4, 2, 1),
        (6, 3, 1),
        (8, 4, 1),
        (9, 1, -1),
        (10, 5, 1),
        (12, 3, -1),
        (12, 6, 1),
        (13, 2, -1),
        (13, 4, -1),
        (13, 6, -1),
        (14, 7, 1),
    ]
    kept = marked.filter_out_results_of_forgetting()
    assert changes(kept) == [c for c in changes(marked) if c[0] % 2 == 0]
    total = marked.reduce(s=pw.reducers.sum(pw.this.v)).filter_out_results_of_forgetting()
    # the sum forgets the forgotten rows for later updates, but never shows their removal
    assert changes(total) == [
        (2, 1, 1),
        (4, 1, -1),
        (4, 3, 1),
        (6, 3, -1),
        (6, 6, 1),
        (8, 6, -1),
        (8, 10, 1),
        (10, 9, -1),
        (10, 14, 1),
        (12, 14, -1),
        (12, 17, 1),
        (14, 5, -1),
        (14, 12, 1),
    ]


def test_ensure_consistency_retracts_what_was_shown() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    marked = t.forget(pw.this.t, 3, mark_forgetting_records=True)
    total = marked.reduce(s=pw.reducers.sum(pw.this.v)).filter_out_results_of_forgetting(
        ensure_consistency=True
    )
    # -10 (what was shown) rather than -9 (the sum after forgetting t=1) at time 10
    assert changes(total) == [
        (2, 1, 1),
        (4, 1, -1),
        (4, 3, 1),
        (6, 3, -1),
        (6, 6, 1),
        (8, 6, -1),
        (8, 10, 1),
        (10, 10, -1),
        (10, 14, 1),
        (12, 14, -1),
        (12, 17, 1),
        (14, 12, 1),
        (14, 17, -1),
    ]


def test_forget_is_only_triggered_by_the_operators_own_input() -> None:
    t = pw.debug.table_from_markdown("""
      | t  | v | __time__
    1 | 2  | 1 | 2
    2 | 20 | 2 | 4
    """)
    other = pw.debug.table_from_markdown("""
      | t  | v | __time__
    1 | 2  | 8 | 8
    """)
    assert changes(t.forget(pw.this.t, 3).concat_reindex(other)) == [
        (2, 1, 1),
        (4, 2, 1),
        (8, 8, 1),
    ]


def test_private_forms_with_an_instance_keep_one_frontier_per_instance() -> None:
    t = pw.debug.table_from_markdown("""
      a |  t | __time__
      1 |  2 |     2
      1 | 15 |     4
      2 |  4 |     4
      2 |  5 |     6
    """)
    rows = pw.debug.table_to_stream(
        t._forget(pw.this.t + 2, pw.this.t, False, instance_column=pw.this.a)
    )
    assert sorted((time, row["a"], row["t"], diff) for time, row, diff in rows) == [
        (2, 1, 2, 1),
        (4, 1, 15, 1),
        (4, 2, 4, 1),
        (6, 1, 2, -1),
        (6, 2, 5, 1),
    ]


def test_datetime_times_take_timedelta_thresholds() -> None:
    t = pw.debug.table_from_markdown("""
      | t                   | v | __time__
    1 | 2024-01-01T00:00:00 | 1 | 2
    2 | 2024-01-01T00:10:00 | 2 | 4
    """).with_columns(t=pw.this.t.dt.strptime("%Y-%m-%dT%H:%M:%S"))
    held = t.buffer(pw.this.t, datetime.timedelta(minutes=5))
    assert changes(held) == [(4, 1, 1), (FINAL, 2, 1)]


@pytest.mark.parametrize("method", ["forget", "buffer", "ignore_late"])
def test_bad_thresholds_fail_when_defined(method: str) -> None:
    t = pw.debug.table_from_markdown("""
    t | s
    1 | a
    """)
    with pytest.raises(TypeError, match="threshold"):
        getattr(t, method)(pw.this.t, datetime.timedelta(seconds=1))
    with pytest.raises(TypeError, match="time column"):
        getattr(t, method)(pw.this.s, 1)


# ------------------------------------------------------------------------------------------
# Property tests against a reference model
# ------------------------------------------------------------------------------------------


def model(
    kind: str, batches: list[list[tuple[int, int, int]]], threshold: int
) -> list[tuple[int, int, int, int]]:
    """The rules of the three operators over batches of (key, t, diff); returns sorted
    (time, key, t, diff) changes (FINAL for rows still held at the end)."""
    out: list[tuple[int, int, int, int]] = []
    frontier: int | None = None
    state: dict[int, int] = {}  # buffer: held key -> (t) with diff; forget: live key -> t
    held: dict[tuple[int, int], int] = {}
    for index, batch in enumerate(batches):
        time = 2 * (index + 1)
        before = frontier
        for _, t, _ in batch:
            frontier = t if frontier is None else max(frontier, t)
        if kind == "freeze":
            out += [
                (time, k, t, d) for k, t, d in batch if before is None or t + threshold > before
            ]
        elif kind == "buffer":
            for k, t, d in batch:
                held[(k, t)] = held.get((k, t), 0) + d
            for (k, t), d in list(held.items()):
                if d == 0:
                    del held[(k, t)]
                elif t + threshold <= frontier:  # type: ignore[operator]
                    out.append((time, k, t, d))
                    del held[(k, t)]
        else:
            for k, t, d in batch:
                if d < 0:
                    if state.get(k) == t:
                        del state[k]
                        out.append((time, k, t, -1))
                elif before is None or t + threshold > before:
                    state[k] = t
                    out.append((time, k, t, 1))
            for k, t in list(state.items()):
                if before is not None and t + threshold <= before:
                    del state[k]
                    out.append((time, k, t, -1))
    out += [(FINAL, k, t, d) for (k, t), d in held.items()]
    return sorted(out)


@st.composite
def histories(draw: Any) -> list[list[tuple[int, int, int]]]:
    """Batches of insertions and deletions (of rows present) of rows key -> t."""
    present: dict[int, int] = {}
    batches = []
    next_key = 0
    for _ in range(draw(st.integers(1, 6))):
        batch = []
        touched: set[int] = set()
        for _ in range(draw(st.integers(1, 4))):
            if present and draw(st.booleans()):
                key = draw(st.sampled_from(sorted(present)))
                if key in touched:
                    continue
                touched.add(key)
                batch.append((key, present.pop(key), -1))
            else:
                key, next_key = next_key, next_key + 1
                touched.add(key)
                present[key] = draw(st.integers(0, 30))
                batch.append((key, present[key], 1))
        batches.append(batch)
    return batches


def run(
    kind: str, batches: list[list[tuple[int, int, int]]], threshold: int
) -> list[tuple[int, int, int, int]]:
    rows = [(k, t, 2 * (i + 1), d) for i, batch in enumerate(batches) for k, t, d in batch]
    lines = ["  | k | t | __time__ | __diff__"] + [
        f"{k + 1} | {k} | {t} | {time} | {d}" for k, t, time, d in rows
    ]
    table = pw.debug.table_from_markdown("\n".join(lines))
    method = {"freeze": "ignore_late", "buffer": "buffer", "forget": "forget"}[kind]
    result = getattr(table, method)(pw.this.t, threshold)
    return sorted(
        (time, row["k"], row["t"], diff) for time, row, diff in pw.debug.table_to_stream(result)
    )


@pytest.mark.parametrize("kind", ["freeze", "buffer", "forget"])
@settings(max_examples=40, deadline=None)
@given(batches=histories(), threshold=st.integers(-3, 8))
def test_operators_follow_the_reference_model(kind: str, batches: Any, threshold: int) -> None:
    pw.clear_graph()
    assert run(kind, batches, threshold) == model(kind, batches, threshold)
