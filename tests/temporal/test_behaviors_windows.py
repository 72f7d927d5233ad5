"""Behaviors applied by windowby: delay, cutoff, keep_results, exactly once.

The expected update streams are those Pathway 0.33 prints for the same program (a stream with
late rows, a deletion and rows that arrive after their window was closed).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.engine.times import FINAL_TIME as FINAL

EVENTS = """
  | t  | v | __time__ | __diff__
1 | 1  | 1 | 2  | 1
2 | 4  | 2 | 2  | 1
3 | 7  | 3 | 4  | 1
4 | 2  | 4 | 6  | 1
5 | 13 | 5 | 8  | 1
6 | 3  | 6 | 10 | 1
2 | 4  | 2 | 12 | -1
7 | 9  | 7 | 12 | 1
8 | 22 | 8 | 14 | 1
9 | 8  | 9 | 16 | 1
"""

BEHAVIORS = {
    "delay2": pw.temporal.common_behavior(delay=2),
    "cutoff2": pw.temporal.common_behavior(cutoff=2),
    "cutoff2 nokeep": pw.temporal.common_behavior(cutoff=2, keep_results=False),
    "delay3 cutoff1": pw.temporal.common_behavior(delay=3, cutoff=1),
    "delay3 cutoff1 nokeep": pw.temporal.common_behavior(delay=3, cutoff=1, keep_results=False),
    "exactly once": pw.temporal.exactly_once_behavior(),
    "exactly once 1": pw.temporal.exactly_once_behavior(shift=1),
}

#: (time, window start, sum, diff) of every change, per behavior (and with sliding windows).
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "delay2": [
        (2, 0, 3, 1),
        (4, 5, 3, 1),
        (6, 0, 3, -1),
        (6, 0, 7, 1),
        (8, 10, 5, 1),
        (10, 0, 7, -1),
        (10, 0, 13, 1),
        (12, 0, 13, -1),
        (12, 5, 3, -1),
        (12, 0, 11, 1),
        (12, 5, 10, 1),
        (14, 20, 8, 1),
        (16, 5, 10, -1),
        (16, 5, 19, 1),
    ],
    "delay2 sliding": [
        (2, -3, 1, 1),
        (2, 0, 3, 1),
        (4, 3, 5, 1),
        (6, -3, 1, -1),
        (6, 0, 3, -1),
        (6, -3, 5, 1),
        (6, 0, 7, 1),
        (8, 6, 3, 1),
        (8, 9, 5, 1),
        (10, 0, 7, -1),
        (10, 3, 5, -1),
        (10, 0, 13, 1),
        (10, 3, 11, 1),
        (12, 0, 13, -1),
        (12, 3, 11, -1),
        (12, 6, 3, -1),
        (12, 9, 5, -1),
        (12, 0, 11, 1),
        (12, 3, 9, 1),
        (12, 6, 10, 1),
        (12, 9, 12, 1),
        (14, 12, 5, 1),
        (14, 18, 8, 1),
        (16, 3, 9, -1),
        (16, 6, 10, -1),
        (16, 3, 18, 1),
        (16, 6, 19, 1),
        (FINAL, 21, 8, 1),
    ],
    "cutoff2": [(2, 0, 3, 1), (4, 5, 3, 1), (8, 10, 5, 1), (14, 20, 8, 1)],
    "cutoff2 sliding": [
        (2, -3, 1, 1),
        (2, 0, 3, 1),
        (2, 3, 2, 1),
        (4, 3, 2, -1),
        (4, 3, 5, 1),
        (4, 6, 3, 1),
        (6, 0, 3, -1),
        (6, 0, 7, 1),
        (8, 9, 5, 1),
        (8, 12, 5, 1),
        (12, 6, 3, -1),
        (12, 9, 5, -1),
        (12, 6, 10, 1),
        (12, 9, 12, 1),
        (14, 18, 8, 1),
        (14, 21, 8, 1),
    ],
    "cutoff2 nokeep": [
        (2, 0, 3, 1),
        (4, 5, 3, 1),
        (8, 0, 3, -1),
        (8, 10, 5, 1),
        (14, 5, 3, -1),
        (14, 20, 8, 1),
    ],
    "cutoff2 nokeep sliding": [
        (2, -3, 1, 1),
        (2, 0, 3, 1),
        (2, 3, 2, 1),
        (4, 3, 2, -1),
        (4, 3, 5, 1),
        (4, 6, 3, 1),
        (6, -3, 1, -1),
        (6, 0, 3, -1),
        (6, 0, 7, 1),
        (8, 9, 5, 1),
        (8, 12, 5, 1),
        (12, 0, 7, -1),
        (12, 3, 5, -1),
        (12, 6, 3, -1),
        (12, 9, 5, -1),
        (12, 6, 10, 1),
        (12, 9, 12, 1),
        (14, 18, 8, 1),
        (14, 21, 8, 1),
    ],
    "delay3 cutoff1": [(2, 0, 3, 1), (8, 5, 3, 1), (8, 10, 5, 1), (FINAL, 20, 8, 1)],
    "delay3 cutoff1 sliding": [
        (2, -3, 1, 1),
        (2, 0, 3, 1),
        (4, 3, 5, 1),
        (8, 6, 3, 1),
        (8, 9, 5, 1),
        (12, 9, 5, -1),
        (12, 9, 12, 1),
        (14, 12, 5, 1),
        (14, 18, 8, 1),
        (FINAL, 21, 8, 1),
    ],
    "delay3 cutoff1 nokeep": [
        (2, 0, 3, 1),
        (8, 5, 3, 1),
        (8, 10, 5, 1),
        (FINAL, 0, 3, -1),
        (FINAL, 5, 3, -1),
        (FINAL, 20, 8, 1),
    ],
    "delay3 cutoff1 nokeep sliding": [
        (2, -3, 1, 1),
        (2, 0, 3, 1),
        (4, -3, 1, -1),
        (4, 3, 5, 1),
        (8, 0, 3, -1),
        (8, 6, 3, 1),
        (8, 9, 5, 1),
        (12, 3, 5, -1),
        (12, 6, 3, -1),
        (12, 9, 5, -1),
        (12, 9, 12, 1),
        (14, 12, 5, 1),
        (14, 18, 8, 1),
        (FINAL, 9, 12, -1),
        (FINAL, 12, 5, -1),
        (FINAL, 21, 8, 1),
    ],
    "exactly once": [(4, 0, 3, 1), (8, 5, 3, 1), (14, 10, 5, 1), (FINAL, 20, 8, 1)],
    "exactly once sliding": [
        (2, -3, 1, 1),
        (4, 0, 3, 1),
        (8, 3, 5, 1),
        (8, 6, 3, 1),
        (14, 9, 12, 1),
        (14, 12, 5, 1),
        (FINAL, 18, 8, 1),
        (FINAL, 21, 8, 1),
    ],
    "exactly once 1": [(4, 0, 3, 1), (8, 5, 3, 1), (14, 10, 5, 1), (FINAL, 20, 8, 1)],
    "exactly once 1 sliding": [
        (2, -3, 1, 1),
        (4, 0, 3, 1),
        (8, 3, 5, 1),
        (8, 6, 3, 1),
        (14, 9, 12, 1),
        (14, 12, 5, 1),
        (FINAL, 18, 8, 1),
        (FINAL, 21, 8, 1),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_behavior_streams_are_pathways(name: str) -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    behavior = BEHAVIORS[name.removesuffix(" sliding")]
    window = (
        pw.temporal.sliding(hop=3, duration=6)
        if name.endswith("sliding")
        else pw.temporal.tumbling(5)
    )
    result = t.windowby(t.t, window=window, behavior=behavior).reduce(
        pw.this._pw_window_start, s=pw.reducers.sum(pw.this.v)
    )
    got = sorted(
        (time, row["_pw_window_start"], row["s"], diff)
        for time, row, diff in pw.debug.table_to_stream(result)
    )
    assert got == sorted(EXPECTED[name])


def test_bad_behaviors_fail_when_defined() -> None:
    t = pw.debug.table_from_markdown(EVENTS)
    with pytest.raises(TypeError, match="behavior"):
        t.windowby(t.t, window=pw.temporal.tumbling(5), behavior="late")
    with pytest.raises(TypeError, match="delay"):
        t.windowby(
            t.t,
            window=pw.temporal.tumbling(5),
            behavior=pw.temporal.common_behavior(delay=datetime.timedelta(1)),
        )


# ------------------------------------------------------------------------------------------
# Property: windowby with a behavior agrees with a model of the rules
# ------------------------------------------------------------------------------------------

DURATION = 5


def _later(current: int | None, values: list[int]) -> int | None:
    return max([v for v in [current, *values] if v is not None], default=None)


def behavior_model(
    batches: list[list[tuple[int, int, int]]], delay: int | None, cutoff: int | None, keep: bool
) -> list[tuple[int, int, int, int]]:
    """(time, window start, sum, diff) of a tumbling-window sum with a common behavior: late
    rows dropped past end + cutoff (frontier of the earlier batches), rows held until the
    frontier reaches start + delay, windows forgotten once end + cutoff is reached (at the
    next batch the forgetting stage receives), their results kept or retracted."""
    frozen_at = held_at = forgot_at = None
    held: list[tuple[int, int, int, int]] = []  # (start, end, time, value)
    live: list[tuple[int, int, int, int]] = []
    sums: dict[int, list[int]] = {}
    out: list[tuple[int, int, int, int]] = []

    def emit(time: int, before: dict[int, list[int]]) -> None:
        for start in sorted(set(before) | set(sums)):
            old, new = before.get(start), sums.get(start)
            if old != new:
                if old is not None:
                    out.append((time, start, old[0], -1))
                if new is not None:
                    out.append((time, start, new[0], 1))

    def add(row: tuple[int, int, int, int], sign: int) -> None:
        entry = sums.setdefault(row[0], [0, 0])
        entry[0] += sign * row[3]
        entry[1] += sign
        if entry[1] == 0:
            del sums[row[0]]

    def step(time: int, rows: list[tuple[int, int, int, int]], final: bool) -> None:
        nonlocal frozen_at, held_at, forgot_at, held, live
        if not final and cutoff is not None:
            passed = [r for r in rows if frozen_at is None or r[1] + cutoff > frozen_at]
            frozen_at = _later(frozen_at, [r[2] for r in rows])
        else:
            passed = rows
        if delay is not None:
            if not final:
                held_at = _later(held_at, [r[2] for r in passed])
            held += passed
            due = [r for r in held if final or r[0] + delay <= held_at]  # type: ignore[operator]
            held = [r for r in held if r not in due]
            passed = [(s, e, max(t, s + delay), v) for s, e, t, v in due]
        before = {k: list(v) for k, v in sums.items()}
        if cutoff is None:
            for row in passed:
                add(row, 1)
            emit(time, before)
            return
        if not passed:
            return
        earlier = forgot_at
        for row in passed:
            if keep or earlier is None or row[1] + cutoff > earlier:
                live.append(row)
                add(row, 1)
        expired = [r for r in live if earlier is not None and r[1] + cutoff <= earlier]
        live = [r for r in live if r not in expired]
        forgot_at = _later(forgot_at, [r[2] for r in passed])
        if keep:  # the forgetting is marked: its effect is never shown
            emit(time, before)
        for row in expired:
            add(row, -1)
        if not keep:
            emit(time, before)

    for index, batch in enumerate(batches):
        rows = [(t - t % DURATION, t - t % DURATION + DURATION, t, v) for _, t, v in batch]
        step(2 * (index + 1), rows, final=False)
    if held:
        step(FINAL, [], final=True)
    return sorted(out)


@st.composite
def late_streams(draw: Any) -> list[list[tuple[int, int, int]]]:
    batches = []
    row = 0
    for _ in range(draw(st.integers(1, 6))):
        batch = []
        for _ in range(draw(st.integers(1, 3))):
            row += 1
            batch.append((row, draw(st.integers(0, 30)), draw(st.integers(1, 9))))
        batches.append(batch)
    return batches


@settings(max_examples=60, deadline=None)
@given(
    batches=late_streams(),
    delay=st.one_of(st.none(), st.integers(0, 6)),
    cutoff=st.one_of(st.none(), st.integers(0, 4)),
    keep=st.booleans(),
)
def test_windowby_behaviors_follow_the_model(
    batches: Any, delay: Any, cutoff: Any, keep: bool
) -> None:
    pw.clear_graph()
    lines = ["  | t | v | __time__"] + [
        f"{row} | {t} | {v} | {2 * (i + 1)}"
        for i, batch in enumerate(batches)
        for row, t, v in batch
    ]
    t = pw.debug.table_from_markdown("\n".join(lines))
    behavior = pw.temporal.common_behavior(delay=delay, cutoff=cutoff, keep_results=keep)
    result = t.windowby(t.t, window=pw.temporal.tumbling(DURATION), behavior=behavior).reduce(
        pw.this._pw_window_start, s=pw.reducers.sum(pw.this.v)
    )
    got = sorted(
        (time, row["_pw_window_start"], row["s"], diff)
        for time, row, diff in pw.debug.table_to_stream(result)
    )
    assert got == behavior_model(batches, delay, cutoff, keep)
