"""Asof joins and asof_now joins: static results (checked against Pathway 0.33's output for
the same programs and against a small reference model), update streams, property tests that
the incremental stream equals recomputation, errors at definition, and behaviors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._util import snapshot, stream
from tests.test_stateful_properties import Event, check, update_streams

import deltaflow as pw
import deltaflow.engine.stateful.asof as asof_engine

LEFT = """
  | k | t | a
1 | 1 | 1 | 10
2 | 1 | 5 | 20
4 | 2 | 3 | 30
5 | 1 | 8 | 40
"""
RIGHT = """
   | k | t | b
11 | 1 | 0 | 100
12 | 1 | 5 | 200
13 | 1 | 6 | 300
14 | 2 | 9 | 400
"""

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def tables() -> tuple[pw.Table, pw.Table]:
    return pw.debug.table_from_markdown(LEFT), pw.debug.table_from_markdown(RIGHT)


def rows(result: pw.JoinResult) -> list[tuple]:
    return snapshot(result.select(a=pw.left.a, b=pw.right.b))


# Expected rows: what Pathway 0.33 gives for these tables (no ties within one side).
EXPECTED = {
    ("BACKWARD", "LEFT"): [(10, 100), (20, 200), (30, None), (40, 300)],
    ("BACKWARD", "RIGHT"): [(None, 100), (20, 200), (20, 300), (30, 400)],
    ("BACKWARD", "OUTER"): [
        (None, 100),
        (10, 100),
        (20, 100),
        (20, 200),
        (20, 300),
        (30, None),
        (30, 400),
        (40, 300),
    ],
    ("FORWARD", "LEFT"): [(10, 200), (20, 200), (30, 400), (40, None)],
    ("FORWARD", "RIGHT"): [(None, 400), (10, 100), (20, 200), (40, 300)],
    ("FORWARD", "OUTER"): [
        (None, 400),
        (10, 100),
        (10, 200),
        (20, 200),
        (30, 400),
        (40, None),
        (40, 200),
        (40, 300),
    ],
    ("NEAREST", "LEFT"): [(10, 100), (20, 200), (30, 400), (40, 300)],
    ("NEAREST", "RIGHT"): [(10, 100), (20, 200), (20, 300), (30, 400)],
}


@pytest.mark.parametrize("direction,how", list(EXPECTED))
def test_directions_and_modes_match_pathway(direction: str, how: str) -> None:
    t1, t2 = tables()
    result = t1.asof_join(
        t2,
        t1.t,
        t2.t,
        t1.k == t2.k,
        how=getattr(pw.JoinMode, how),
        direction=getattr(pw.temporal.Direction, direction),
    )
    assert rows(result) == sorted(EXPECTED[direction, how], key=_none_first)


def _none_first(row: tuple) -> tuple:
    return tuple((0, 0) if v is None else (1, v) for v in row)


def test_method_and_module_forms_agree_and_types() -> None:
    t1, t2 = tables()
    left = t1.asof_join_left(t2, t1.t, t2.t, t1.k == t2.k).select(
        pw.left.a, pw.right.b, pw.this.instance, pw.this.t
    )
    module = pw.temporal.asof_join(t1, t2, t1.t, t2.t, t1.k == t2.k, how=pw.JoinMode.LEFT)
    assert snapshot(left) == [(10, 100, 1, 1), (20, 200, 1, 5), (30, None, 2, 3), (40, 300, 1, 8)]
    assert snapshot(module.select(pw.left.a, pw.right.b)) == [r[:2] for r in snapshot(left)]
    assert left.schema.typehints() == {"a": int, "b": int | None, "instance": int, "t": int}
    outer = t1.asof_join_outer(t2, t1.t, t2.t, t1.k == t2.k).select(pw.left.a, pw.right.b)
    assert outer.schema.typehints() == {"a": int | None, "b": int | None}


def test_defaults_fill_the_missing_side_and_drop_optional() -> None:
    t1, t2 = tables()
    result = t1.asof_join_outer(t2, t1.t, t2.t, t1.k == t2.k, defaults={t2.b: -1, t1.a: -2})
    selected = result.select(pw.left.a, pw.right.b)
    assert selected.schema.typehints() == {"a": int, "b": int}
    assert (-2, 100) in snapshot(selected)
    assert (30, -1) in snapshot(selected)


def test_filter_and_groupby_on_the_result() -> None:
    t1, t2 = tables()
    result = t1.asof_join_left(t2, t1.t, t2.t, t1.k == t2.k)
    assert snapshot(result.filter(pw.right.b.is_not_none()).select(pw.left.a)) == [
        (10,),
        (20,),
        (40,),
    ]
    counts = result.groupby(pw.left.k).reduce(pw.left.k, n=pw.reducers.count())
    assert snapshot(counts) == [(1, 3), (2, 1)]


def test_instances_partition_and_no_condition_joins_everything() -> None:
    t1, t2 = tables()
    by_instance = t1.asof_join_left(t2, t1.t, t2.t, left_instance=t1.k, right_instance=t2.k)
    assert rows(by_instance) == [(10, 100), (20, 200), (30, None), (40, 300)]
    everything = t1.asof_join_left(t2, t1.t, t2.t)
    assert rows(everything) == [(10, 100), (20, 200), (30, 100), (40, 300)]


def test_datetimes_and_mixed_int_float_times() -> None:
    t1 = pw.debug.table_from_markdown("""
      | t                   | a
    1 | 2024-01-01T10:00:00 | 1
    2 | 2024-01-01T10:05:00 | 2
    """).with_columns(t=pw.this.t.dt.strptime("%Y-%m-%dT%H:%M:%S"))
    t2 = pw.debug.table_from_markdown("""
      | t                   | b
    1 | 2024-01-01T10:01:00 | 7
    """).with_columns(t=pw.this.t.dt.strptime("%Y-%m-%dT%H:%M:%S"))
    result = t1.asof_join_left(t2, t1.t, t2.t, direction=pw.temporal.Direction.NEAREST)
    assert rows(result) == [(1, 7), (2, 7)]
    ints, floats = tables()
    floats = floats.with_columns(t=pw.cast(float, pw.this.t) + 0.5)
    assert rows(ints.asof_join_left(floats, ints.t, floats.t, ints.k == floats.k)) == [
        (10, 100),
        (20, 100),
        (30, None),
        (40, 300),
    ]


def test_bad_arguments_fail_at_definition() -> None:
    t1, t2 = tables()
    with pytest.raises(ValueError, match="INNER is not an asof join mode"):
        t1.asof_join(t2, t1.t, t2.t, how=pw.JoinMode.INNER)
    strings = t2.select(t=pw.this.b.to_string(), b=pw.this.b)
    with pytest.raises(TypeError, match=r"Arguments \(t_left, t_right\).*\(INT, STR\)"):
        t1.asof_join_left(strings, t1.t, strings.t)
    with pytest.raises(TypeError, match="cannot join"):
        t1.asof_join_left(t2, t1.t, t2.t, t1.k == t2.b.to_string())
    with pytest.raises(ValueError, match="Cannot join table with itself"):
        t1.asof_join_left(t1, t1.t, t1.t)
    with pytest.raises(ValueError, match="left_instance and right_instance"):
        t1.asof_join_left(t2, t1.t, t2.t, left_instance=t1.k)


def test_update_stream_retracts_changed_matches() -> None:
    t1 = pw.debug.table_from_markdown("""
      | t | a | __time__ | __diff__
    1 | 5 | 1 | 2        | 1
    2 | 9 | 2 | 2        | 1
    """)
    t2 = pw.debug.table_from_markdown("""
       | t | b | __time__ | __diff__
    11 | 1 | 7 | 2        | 1
    12 | 4 | 8 | 4        | 1
    12 | 4 | 8 | 6        | -1
    13 | 8 | 9 | 6        | 1
    """)
    result = t1.asof_join_left(t2, t1.t, t2.t).select(pw.left.a, pw.right.b)
    assert stream(result) == [
        (2, 1, 7, 1),
        (2, 2, 7, 1),
        (4, 1, 7, -1),
        (4, 1, 8, 1),
        (4, 2, 7, -1),
        (4, 2, 8, 1),
        (6, 1, 7, 1),
        (6, 1, 8, -1),
        (6, 2, 8, -1),
        (6, 2, 9, 1),
    ]


# --- property tests -------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    update_streams(max_key=1),
    update_streams(label_base=100, max_key=1),
    st.sampled_from(["left", "right", "outer"]),
    st.sampled_from(["BACKWARD", "FORWARD", "NEAREST"]),
    st.sampled_from([-1, 1, 256]),
)
def test_asof_join_matches_recomputation(
    left: list[Event], right: list[Event], how: str, direction: str, small_rows: int
) -> None:
    """``small_rows``: the largest delta the Python path takes (-1: Polars only, 1: both
    paths mixed, 256: Python for every streaming delta)."""

    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"asof_join_{how}")(
            b, a.v, b.v, a.k == b.k, direction=getattr(pw.temporal.Direction, direction)
        )
        return joined.select(
            lid=a.id,
            rid=b.id,
            lv=pw.left.v,
            rv=pw.right.v,
            t=pw.this.t,
            side=pw.this.side,
            instance=pw.this.instance,
        )

    saved = asof_engine.SMALL_ROWS
    asof_engine.SMALL_ROWS = small_rows
    try:
        check(program, left, right)
    finally:
        asof_engine.SMALL_ROWS = saved


def test_both_paths_give_the_same_static_result() -> None:
    results = []
    for small_rows in (-1, 256):
        saved = asof_engine.SMALL_ROWS
        asof_engine.SMALL_ROWS = small_rows
        try:
            t1, t2 = tables()
            result = t1.asof_join_outer(
                t2,
                t1.t,
                t2.t,
                t1.k == t2.k,
                direction=pw.temporal.Direction.NEAREST,
                defaults={t2.b: 0},
            )
            results.append(stream(result.select(pw.left.a, pw.right.b, pw.this.t)))
        finally:
            asof_engine.SMALL_ROWS = saved
    assert results[0] == results[1]


def _reference(
    left: dict[Any, tuple], right: dict[Any, tuple], how: str, direction: str
) -> list[tuple]:
    """Asof matches by the total order (time, side rank, id) within each key."""
    right_first = (direction == "backward" and how == "left") or (
        direction == "forward" and how == "right"
    )
    order = []
    for side, rows_ in ((0, left), (1, right)):
        for row_id, (k, v) in rows_.items():
            order.append((k, v, side ^ right_first, int(row_id), side, row_id))
    order.sort()
    out = []
    for i, (k, v, _, _, side, _row_id) in enumerate(order):
        if (side == 0 and how == "right") or (side == 1 and how == "left"):
            continue
        prev = next((o for o in reversed(order[:i]) if o[0] == k and o[4] != side), None)
        nxt = next((o for o in order[i + 1 :] if o[0] == k and o[4] != side), None)
        if direction == "backward":
            peer = prev
        elif direction == "forward":
            peer = nxt
        else:
            peer = prev if prev is not None and (nxt is None or v - prev[1] < nxt[1] - v) else nxt
        peer_v = None if peer is None else peer[1]
        out.append((v, peer_v) if side == 0 else (peer_v, v))
    return sorted(out, key=_none_first)


@PROPERTY_SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), max_size=6),
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6)), max_size=6),
    st.sampled_from(["left", "right", "outer"]),
    st.sampled_from(["backward", "forward", "nearest"]),
)
def test_asof_join_matches_reference_model(
    left: list, right: list, how: str, direction: str
) -> None:
    pw.clear_graph()
    a = pw.debug.table_from_rows(pw.schema_from_types(k=int, v=int), left)
    b = pw.debug.table_from_rows(pw.schema_from_types(k=int, v=int), right)
    joined = getattr(a, f"asof_join_{how}")(
        b, a.v, b.v, a.k == b.k, direction=getattr(pw.temporal.Direction, direction.upper())
    )
    got = sorted(
        ((r[0], r[1]) for r in snapshot(joined.select(lv=pw.left.v, rv=pw.right.v))),
        key=_none_first,
    )
    left_rows = pw.debug.table_to_dicts(a)
    right_rows = pw.debug.table_to_dicts(b)
    left_state = {i: (left_rows[1]["k"][i], left_rows[1]["v"][i]) for i in left_rows[0]}
    right_state = {i: (right_rows[1]["k"][i], right_rows[1]["v"][i]) for i in right_rows[0]}
    assert got == _reference(left_state, right_state, how, direction)


# --- behaviors ------------------------------------------------------------------------------


def test_behavior_cutoff_ignores_late_rows_and_keeps_results() -> None:
    queries = pw.debug.table_from_markdown("""
    a | t | __time__
    1 | 2 |    2
    2 | 9 |    4
    3 | 3 |    6
    """)
    data = pw.debug.table_from_markdown("""
    b | t | __time__
    1 | 1 |    2
    2 | 8 |    4
    """)
    result = queries.asof_join_left(
        data, pw.left.t, pw.right.t, behavior=pw.temporal.common_behavior(cutoff=2)
    ).select(pw.left.a, pw.right.b)
    # a=3 (t=3) comes when the left frontier is 9: later than 3 + 2, so it is ignored.
    assert snapshot(result) == [(1, 1), (2, 2)]


def test_behavior_delay_holds_rows() -> None:
    queries = pw.debug.table_from_markdown("""
    a | t | __time__
    1 | 2 |    2
    2 | 9 |    4
    """)
    data = pw.debug.table_from_markdown("""
    b | t | __time__
    1 | 1 |    2
    """)
    result = queries.asof_join_left(
        data, pw.left.t, pw.right.t, behavior=pw.temporal.common_behavior(delay=3)
    ).select(pw.left.a, pw.right.b)
    # a=1 waits until the left frontier reaches 2 + 3 (at time 4, when t=9 comes); the data
    # row waits for a right time of 4, which never comes: it is released when the inputs
    # end, and the answers change then (the stream Pathway 0.33 prints).
    final = 18446744073709551614
    assert stream(result) == [
        (4, 1, None, 1),
        (final, 1, None, -1),
        (final, 1, 1, 1),
        (final, 2, 1, 1),
    ]


# --- asof_now -------------------------------------------------------------------------------


def now_tables() -> tuple[pw.Table, pw.Table]:
    data = pw.debug.table_from_markdown("""
       | v  | k | __time__ | __diff__
     1 | 10 | 1 | 2        | 1
     2 | 11 | 1 | 2        | 1
     3 | 20 | 1 | 4        | 1
     1 | 10 | 1 | 6        | -1
    """)
    queries = pw.debug.table_from_markdown("""
       | qv | k | __time__ | __diff__
     7 | 1  | 1 | 2        | 1
     8 | 2  | 1 | 4        | 1
     8 | 2  | 1 | 8        | -1
     9 | 3  | 2 | 8        | 1
     8 | 5  | 1 | 10       | 1
    """)
    return queries, data


def test_asof_now_answers_once_against_the_state_of_its_time() -> None:
    queries, data = now_tables()
    result = queries.asof_now_join(data, pw.left.k == pw.right.k).select(
        qv=pw.left.qv, v=pw.right.v, k=pw.this.k
    )
    # As in Pathway: the deletion of query 8 at time 8 is answered against the data of time
    # 8 (row 10 is gone), and old answers stay.
    assert stream(result) == [
        (2, 1, 10, 1, 1),
        (2, 1, 11, 1, 1),
        (4, 2, 10, 1, 1),
        (4, 2, 11, 1, 1),
        (4, 2, 20, 1, 1),
        (8, 2, 11, 1, -1),
        (8, 2, 20, 1, -1),
        (10, 5, 11, 1, 1),
        (10, 5, 20, 1, 1),
    ]


def test_asof_now_left_and_ids() -> None:
    queries, data = now_tables()
    result = queries.asof_now_join_left(data, pw.left.k == pw.right.k).select(
        qv=pw.left.qv, v=pw.right.v
    )
    assert (8, 3, None, 1) in stream(result)
    assert result.schema.typehints() == {"qv": int, "v": int | None}
    single = pw.debug.table_from_markdown("""
      | k | v
    1 | 1 | 5
    """)
    asked = pw.debug.table_from_markdown("""
      | k | q
    7 | 1 | 1
    8 | 2 | 2
    """)
    by_left = asked.asof_now_join_left(single, asked.k == single.k, id=asked.id).select(
        asked.q, single.v
    )
    keys, _ = pw.debug.table_to_dicts(by_left)
    assert set(keys) == set(pw.debug.table_to_dicts(asked)[0])
    with pytest.raises(ValueError, match="INNER or LEFT"):
        asked.asof_now_join(single, how=pw.JoinMode.OUTER)


def test_asof_now_module_form_and_inner_variant() -> None:
    queries, data = now_tables()
    a = pw.temporal.asof_now_join_inner(queries, data, queries.k == data.k).select(
        queries.qv, data.v
    )
    assert len(snapshot(a)) == 5 - 0  # (1,10) (1,11) (2,10) (5,11) (5,20)
    assert (2, 10) in snapshot(a)


def test_the_examples_of_the_temporal_joins_docs_run() -> None:
    """The code blocks of docs/temporal.md's section on temporal joins run and their
    assertions hold."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[2] / "docs" / "temporal.md").read_text()
    start = text.index("## Temporal joins: asof, asof_now and interval")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3
    for block in blocks:
        pw.clear_graph()
        exec(compile(block, "docs/temporal.md", "exec"), {})  # noqa: S102
