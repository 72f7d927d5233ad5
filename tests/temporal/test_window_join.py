"""Window joins: tumbling, sliding and session windows, all join modes, on static tables and
update streams; expected values are Pathway 0.33's, the property test uses a model here."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw

LEFT = """
    | a | t
  1 | 1 | 1
  2 | 1 | 2
  3 | 1 | 3
  4 | 1 | 7
  5 | 1 | 13
  6 | 2 | 1
  7 | 2 | 2
  8 | 3 | 4
"""
RIGHT = """
    | b | t
  1 | 1 | 2
  2 | 1 | 5
  3 | 1 | 6
  4 | 1 | 7
  5 | 2 | 2
  6 | 2 | 3
  7 | 4 | 3
"""


def rows(table: pw.Table) -> Counter[tuple[Any, ...]]:
    """The final rows (values only) with their multiplicities."""
    keys, columns = pw.debug.table_to_dicts(table)
    names = table.column_names()
    return Counter(tuple(columns[n][k] for n in names) for k in keys)


def test_outer_tumbling_join_on_a_key() -> None:
    t1, t2 = pw.debug.table_from_markdown(LEFT), pw.debug.table_from_markdown(RIGHT)
    result = t1.window_join_outer(t2, t1.t, t2.t, pw.temporal.tumbling(2), t1.a == t2.b).select(
        key=pw.coalesce(t1.a, t2.b), left_t=t1.t, right_t=t2.t
    )
    assert rows(result) == Counter(
        [
            (1, None, 5),
            (1, 1, None),
            (1, 2, 2),
            (1, 3, 2),
            (1, 7, 6),
            (1, 7, 7),
            (1, 13, None),
            (2, 1, None),
            (2, 2, 2),
            (2, 2, 3),
            (3, 4, None),
            (4, None, 3),
        ]
    )


def test_sliding_join_repeats_pairs_once_per_common_window() -> None:
    t1, t2 = pw.debug.table_from_markdown(LEFT), pw.debug.table_from_markdown(RIGHT)
    result = t1.window_join(t2, t1.t, t2.t, pw.temporal.sliding(1, 2)).select(
        left_t=t1.t, right_t=t2.t, s=pw.this._pw_window_start
    )
    got = rows(result)
    assert got[(7, 7, 6)] == 1 and got[(7, 7, 7)] == 1  # the pair shares two windows
    assert got[(2, 2, 1)] == 4  # two left rows at 2 x two right rows at 2, window [1, 3)
    assert sum(got.values()) == 28


def test_session_join_builds_sessions_from_both_sides() -> None:
    t1, t2 = pw.debug.table_from_markdown(LEFT), pw.debug.table_from_markdown(RIGHT)
    result = t1.window_join_left(
        t2, t1.t, t2.t, pw.temporal.session(max_gap=2), t1.a == t2.b
    ).select(
        pw.left.a, lt=pw.left.t, rt=pw.right.t, s=pw.this._pw_window_start, e=pw.this._pw_window_end
    )
    assert rows(result) == Counter(
        [
            (1, 1, 2, 1, 3),
            (1, 2, 2, 1, 3),
            (1, 3, 2, 1, 3),
            (1, 7, 5, 5, 7),
            (1, 7, 6, 5, 7),
            (1, 7, 7, 5, 7),
            (1, 13, None, 13, 13),
            (2, 1, 2, 1, 3),
            (2, 1, 3, 1, 3),
            (2, 2, 2, 1, 3),
            (2, 2, 3, 1, 3),
            (3, 4, None, 4, 4),
        ]
    )


def test_original_ids_reach_the_select() -> None:
    t1, t2 = pw.debug.table_from_markdown(LEFT), pw.debug.table_from_markdown(RIGHT)
    result = t1.window_join_left(t2, t1.t, t2.t, pw.temporal.sliding(1, 2)).select(
        x=t1.t, original=t1.id
    )
    keys, columns = pw.debug.table_to_dicts(t1)
    times = {key: columns["t"][key] for key in keys}
    assert all(times[original] == x for x, original in rows(result))


def test_module_function_and_how_argument_agree_with_methods() -> None:
    t1, t2 = pw.debug.table_from_markdown(LEFT), pw.debug.table_from_markdown(RIGHT)
    by_method = t1.window_join_right(t2, t1.t, t2.t, pw.temporal.tumbling(3)).select(
        pw.left.a, pw.right.b
    )
    by_function = pw.temporal.window_join(
        t1, t2, t1.t, t2.t, pw.temporal.tumbling(3), how=pw.JoinMode.RIGHT
    ).select(pw.left.a, pw.right.b)
    assert isinstance(
        t1.window_join(t2, t1.t, t2.t, pw.temporal.tumbling(3)), pw.temporal.WindowJoinResult
    )
    assert rows(by_method) == rows(by_function)


def test_a_late_row_and_a_deletion_update_the_join() -> None:
    t1 = pw.debug.table_from_markdown("""
      | t | __time__ | __diff__
    1 | 1 | 2        | 1
    2 | 5 | 2        | 1
    1 | 1 | 6        | -1
    """)
    t2 = pw.debug.table_from_markdown("""
      | t | __time__
    1 | 0 | 4
    2 | 6 | 4
    """)
    result = t1.window_join(t2, t1.t, t2.t, pw.temporal.tumbling(4)).select(
        lt=pw.left.t, rt=pw.right.t
    )
    stream = sorted(
        (time, row["lt"], row["rt"], diff) for time, row, diff in pw.debug.table_to_stream(result)
    )
    assert stream == [(4, 1, 0, 1), (4, 5, 6, 1), (6, 1, 0, -1)]


def test_bad_window_join_arguments() -> None:
    t1 = pw.Table.empty(a=int, t=int)
    t2 = pw.Table.empty(b=int, t=str)
    with pytest.raises(TypeError, match="time"):
        t1.window_join(t2, t1.t, t2.t, pw.temporal.tumbling(2))
    t3 = pw.Table.empty(b=int, t=int)
    with pytest.raises(TypeError, match=r"Arguments \(left_time_expression"):
        t1.window_join(t3, t1.t, t3.t, pw.temporal.tumbling(datetime.timedelta(1)))
    with pytest.raises(NotImplementedError, match="intervals_over"):
        t1.window_join(
            t3, t1.t, t3.t, pw.temporal.intervals_over(at=t1.t, lower_bound=-1, upper_bound=1)
        )


class Rows(pw.Schema):
    row: int = pw.column_definition(primary_key=True)
    t: int


@st.composite
def sides(draw: Any) -> list[list[tuple[int, int, int, int, int]]]:
    """Batches of (side, key, row, t, diff): insertions and deletions of rows present."""
    present: dict[tuple[int, int], int] = {}
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        batch = []
        for _ in range(draw(st.integers(1, 4))):
            side = draw(st.integers(0, 1))
            mine = sorted(k for k in present if k[0] == side)
            if mine and draw(st.booleans()):
                key = draw(st.sampled_from(mine))
                if any(b[0] == key[0] and b[2] == key[1] for b in batch):
                    continue
                batch.append((side, 0, key[1], present.pop(key), -1))
            else:
                row = 1 + len(present) + sum(len(b) for b in batches) + len(batch)
                value = draw(st.integers(0, 12))
                present[(side, row)] = value
                batch.append((side, 0, row, value, 1))
        batches.append(batch)
    return batches


@settings(max_examples=30, deadline=None)
@given(history=sides(), how=st.sampled_from(list(pw.JoinMode)))
def test_tumbling_window_join_matches_a_model(history: Any, how: Any) -> None:
    pw.clear_graph()
    data: dict[int, list[tuple[int, ...]]] = {0: [], 1: []}
    for index, batch in enumerate(history):
        for side, _, row, value, diff in batch:
            data[side].append((row, value, 2 * (index + 1), diff))
    t1 = pw.debug.table_from_rows(Rows, data[0], is_stream=True)
    t2 = pw.debug.table_from_rows(Rows, data[1], is_stream=True)
    result = t1.window_join(t2, t1.t, t2.t, pw.temporal.tumbling(3), how=how).select(
        lt=pw.left.t, rt=pw.right.t
    )
    left_rows: list[int] = []
    right_rows: list[int] = []
    final: dict[tuple[int, int], int] = {}
    for batch in history:
        for side, _, row, value, diff in batch:
            if diff > 0:
                final[(side, row)] = value
            else:
                del final[(side, row)]
    left_rows = [v for (s, _), v in final.items() if s == 0]
    right_rows = [v for (s, _), v in final.items() if s == 1]
    expected: Counter[tuple[Any, ...]] = Counter()
    for lt in left_rows:
        partners = [rt for rt in right_rows if rt // 3 == lt // 3]
        expected.update((lt, rt) for rt in partners)
        if not partners and how in (pw.JoinMode.LEFT, pw.JoinMode.OUTER):
            expected[(lt, None)] += 1
    for rt in right_rows:
        if how in (pw.JoinMode.RIGHT, pw.JoinMode.OUTER) and not any(
            lt // 3 == rt // 3 for lt in left_rows
        ):
            expected[(None, rt)] += 1
    assert rows(result) == expected
