"""Interval joins: static results against a reference model, every mode, time types, errors
at definition, update streams, property tests against recomputation, and behaviors (checked
against the streams Pathway 0.33 prints for the same programs)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._util import snapshot, stream
from tests.test_stateful_properties import Event, check, update_streams

import deltaflow as pw
import deltaflow.engine.stateful.interval as interval_engine

FINAL = 18446744073709551614

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def tables() -> tuple[pw.Table, pw.Table]:
    t1 = pw.debug.table_from_markdown("""
      | k | t | a
    1 | 1 | 1 | 10
    2 | 1 | 5 | 20
    4 | 2 | 3 | 30
    """)
    t2 = pw.debug.table_from_markdown("""
       | k | t | b
    11 | 1 | 0 | 100
    12 | 1 | 5 | 200
    14 | 3 | 9 | 400
    """)
    return t1, t2


def _key(row: tuple) -> tuple:
    return tuple((0, 0) if v is None else (1, v) for v in row)


def reference(
    left: list[tuple[int, int]], right: list[tuple[int, int]], lower: int, upper: int, how: str
) -> list[tuple]:
    """Pairs (left t, right t) with equal keys and t + lower <= rt <= t + upper, plus the
    unmatched rows of the kept sides."""
    pairs = [
        (lt, rt)
        for lk, lt in left
        for rk, rt in right
        if lk == rk and lt + lower <= rt <= lt + upper
    ]
    out = list(pairs)
    if how in ("left", "outer"):
        out += [
            (lt, None)
            for lk, lt in left
            if not any(lk == rk and lt + lower <= rt <= lt + upper for rk, rt in right)
        ]
    if how in ("right", "outer"):
        out += [
            (None, rt)
            for rk, rt in right
            if not any(lk == rk and lt + lower <= rt <= lt + upper for lk, lt in left)
        ]
    return sorted(out, key=_key)


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_modes_match_pathway(how: str) -> None:
    t1, t2 = tables()
    result = getattr(t1, f"interval_join_{how}")(
        t2, t1.t, t2.t, pw.temporal.interval(-1, 1), t1.k == t2.k
    ).select(pw.left.a, pw.right.b, k=pw.this.k)
    expected = {
        "inner": [(10, 100, 1), (20, 200, 1)],
        "left": [(10, 100, 1), (20, 200, 1), (30, None, 2)],
        "right": [(None, 400, 3), (10, 100, 1), (20, 200, 1)],
        "outer": [(None, 400, 3), (10, 100, 1), (20, 200, 1), (30, None, 2)],
    }[how]
    assert snapshot(result) == expected
    module = pw.temporal.interval_join(
        t1,
        t2,
        t1.t,
        t2.t,
        pw.temporal.interval(-1, 1),
        t1.k == t2.k,
        how=getattr(pw.JoinMode, how.upper()),
    )
    assert snapshot(module.select(pw.left.a, pw.right.b)) == [r[:2] for r in expected]


def test_column_types_follow_the_mode() -> None:
    t1, t2 = tables()
    left = t1.interval_join_left(t2, t1.t, t2.t, pw.temporal.interval(-1, 1)).select(
        pw.left.a, pw.right.b
    )
    assert left.schema.typehints() == {"a": int, "b": int | None}
    inner = t1.interval_join(t2, t1.t, t2.t, pw.temporal.interval(-1, 1)).select(
        pw.left.a, pw.right.b
    )
    assert inner.schema.typehints() == {"a": int, "b": int}


@pytest.mark.parametrize("bounds", [(0, 0), (-2, 0), (0, 3), (2, 3), (-3, -2), (-10, 10)])
@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_bounds_against_reference(
    bounds: tuple[int, int], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Static tables: the Polars path (the small one is covered by the property tests).
    monkeypatch.setattr(interval_engine, "SMALL_ROWS", -1)
    left = [(0, -1), (0, 0), (0, 2), (0, 3), (0, 7), (1, 13)]
    right = [(0, 2), (0, 5), (0, 6), (1, 10), (1, 15)]
    t1 = pw.debug.table_from_rows(pw.schema_from_types(k=int, t=int), left)
    t2 = pw.debug.table_from_rows(pw.schema_from_types(k=int, t=int), right)
    result = getattr(t1, f"interval_join_{how}")(
        t2, t1.t, t2.t, pw.temporal.interval(*bounds), t1.k == t2.k
    ).select(lt=pw.left.t, rt=pw.right.t)
    assert snapshot(result) == reference(left, right, *bounds, how)


def test_float_and_datetime_times() -> None:
    t1 = pw.debug.table_from_rows(pw.schema_from_types(t=float), [(0.5,), (2.25,)])
    t2 = pw.debug.table_from_rows(pw.schema_from_types(t=float), [(0.75,), (3.0,)])
    result = t1.interval_join(t2, t1.t, t2.t, pw.temporal.interval(-0.25, 0.25)).select(
        lt=pw.left.t, rt=pw.right.t
    )
    assert snapshot(result) == [(0.5, 0.75)]
    ints = pw.debug.table_from_rows(pw.schema_from_types(t=int), [(1,), (3,)])
    mixed = ints.interval_join(t2, ints.t, t2.t, pw.temporal.interval(-0.5, 0)).select(
        lt=pw.left.t, rt=pw.right.t
    )
    assert snapshot(mixed) == [(1, 0.75), (3, 3.0)]
    base = datetime.datetime(2024, 1, 1, 10, 0)
    d1 = pw.debug.table_from_rows(
        pw.schema_from_types(t=pw.DateTimeNaive, a=int),
        [(base, 1), (base + datetime.timedelta(minutes=10), 2)],
    )
    d2 = pw.debug.table_from_rows(
        pw.schema_from_types(t=pw.DateTimeNaive, b=int), [(base + datetime.timedelta(minutes=1), 7)]
    )
    dt = d1.interval_join_outer(
        d2, d1.t, d2.t, pw.temporal.interval(datetime.timedelta(0), datetime.timedelta(minutes=2))
    ).select(pw.left.a, pw.right.b)
    assert snapshot(dt) == [(1, 7), (2, None)]


def test_bad_arguments_fail_at_definition() -> None:
    t1, t2 = tables()
    with pytest.raises(
        TypeError,
        match=r"have to be of types .* but are of types "
        r"\(INT, INT, DURATION, DURATION\)",
    ):
        t1.interval_join(
            t2, t1.t, t2.t, pw.temporal.interval(datetime.timedelta(-1), datetime.timedelta(1))
        )
    with pytest.raises(ValueError, match="lower_bound"):
        t1.interval_join(t2, t1.t, t2.t, pw.temporal.interval(2, 1))
    with pytest.raises(ValueError, match="Cannot join table with itself"):
        t1.interval_join(t1, t1.t, t1.t, pw.temporal.interval(-1, 1))
    with pytest.raises(TypeError, match="cannot join"):
        t1.interval_join(t2, t1.t, t2.t, pw.temporal.interval(-1, 1), t1.k == t2.b.to_string())
    with pytest.raises(TypeError, match="interval must be"):
        t1.interval_join(t2, t1.t, t2.t, (-1, 1))


def test_unmatched_rows_are_retracted_when_a_partner_comes() -> None:
    t1 = pw.debug.table_from_markdown("""
      | t | a | __time__ | __diff__
    1 | 5 | 1 | 2        | 1
    """)
    t2 = pw.debug.table_from_markdown("""
       | t  | b | __time__ | __diff__
    11 | 20 | 7 | 2        | 1
    12 | 6  | 8 | 4        | 1
    12 | 6  | 8 | 6        | -1
    """)
    result = t1.interval_join_outer(t2, t1.t, t2.t, pw.temporal.interval(0, 2)).select(
        pw.left.a, pw.right.b
    )
    assert stream(result) == [
        (2, None, 7, 1),
        (2, 1, None, 1),
        (4, 1, None, -1),
        (4, 1, 8, 1),
        (6, 1, None, 1),
        (6, 1, 8, -1),
    ]


@PROPERTY_SETTINGS
@given(
    update_streams(max_key=1),
    update_streams(label_base=100, max_key=1),
    st.sampled_from(["inner", "left", "right", "outer"]),
    st.sampled_from([(0, 0), (-1, 1), (0, 2), (-3, -1)]),
    st.sampled_from([-1, 2, 256]),
)
def test_interval_join_matches_recomputation(
    left: list[Event], right: list[Event], how: str, bounds: tuple[int, int], small_rows: int
) -> None:
    """``small_rows``: the largest delta the Python path takes (-1: Polars only, 2: both
    paths mixed, 256: Python for every streaming delta)."""

    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"interval_join_{how}")(
            b, a.v, b.v, pw.temporal.interval(*bounds), a.k == b.k
        )
        return joined.select(lid=a.id, rid=b.id, lv=pw.left.v, rv=pw.right.v, k=pw.this.k)

    saved = interval_engine.SMALL_ROWS
    interval_engine.SMALL_ROWS = small_rows
    try:
        check(program, left, right)
    finally:
        interval_engine.SMALL_ROWS = saved


# --- behaviors (streams as Pathway 0.33 prints them) -------------------------------------


def behavior_tables() -> tuple[pw.Table, pw.Table]:
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
    return queries, data


def test_behavior_cutoff_drops_late_rows() -> None:
    queries, data = behavior_tables()
    result = queries.interval_join_outer(
        data,
        pw.left.t,
        pw.right.t,
        pw.temporal.interval(-1, 1),
        behavior=pw.temporal.common_behavior(cutoff=2, keep_results=False),
    ).select(pw.left.a, pw.right.b)
    assert stream(result) == [(2, 1, 1, 1), (4, 2, 2, 1)]


def test_behavior_delay_and_cutoff() -> None:
    queries, data = behavior_tables()
    result = queries.interval_join_outer(
        data,
        pw.left.t,
        pw.right.t,
        pw.temporal.interval(-1, 1),
        behavior=pw.temporal.common_behavior(delay=1, cutoff=2),
    ).select(pw.left.a, pw.right.b)
    assert stream(result) == [(4, 1, 1, 1), (6, 3, None, 1), (FINAL, 2, 2, 1)]


def _side_fate(events: list[tuple[int, int, int]], cutoff: int) -> dict[int, tuple[int, int]]:
    """For insert-only events (label, t, arrival time) of one side: label -> (arrival,
    forget time) of the rows a cutoff lets in. A row is dropped if the largest t of earlier
    arrivals is already at or past t + cutoff. A row is forgotten when its side next lets
    rows in after that largest t (of earlier arrivals) reached t + cutoff; rows of the other
    side arriving at that time still meet it (its retraction comes just after)."""
    times = sorted({arrival for _, _, arrival in events})
    before: dict[int, int | None] = {}  # time -> largest t of the arrivals before it
    frontier: int | None = None
    for time in times:
        before[time] = frontier
        top = max(t for _, t, arrival in events if arrival == time)
        frontier = top if frontier is None else max(frontier, top)
    admitted = {
        label: arrival
        for label, t, arrival in events
        if before[arrival] is None or before[arrival] < t + cutoff
    }  # type: ignore
    # Forgetting happens when the forgetting step receives changes: late rows never reach it.
    receiving = sorted(set(admitted.values()))
    fates: dict[int, tuple[int, int]] = {}
    for label, t, arrival in events:
        if label not in admitted:
            continue
        forget = next(
            (
                time
                for time in receiving
                if time > arrival and before[time] is not None and before[time] >= t + cutoff
            ),
            FINAL,
        )
        fates[label] = (arrival, forget)
    return fates


@PROPERTY_SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(1, 4)), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 12), st.integers(1, 4)), min_size=1, max_size=8),
    st.integers(1, 4),
)
def test_cutoff_keeping_results_matches_reference_model(
    left: list[tuple[int, int]], right: list[tuple[int, int]], cutoff: int
) -> None:
    """Inner interval join with cutoff: a pair is in the final result when both rows got in
    and each arrived no later than the time the other was forgotten."""
    pw.clear_graph()
    left_events = [(i, t, 2 * arrival) for i, (t, arrival) in enumerate(left)]
    right_events = [(100 + i, t, 2 * arrival) for i, (t, arrival) in enumerate(right)]

    def table(events: list[tuple[int, int, int]]) -> pw.Table:
        lines = ["  | t | label | __time__"]
        lines += [
            f"{label} | {t} | {label} | {arrival}"
            for label, t, arrival in sorted(events, key=lambda e: e[2])
        ]
        return pw.debug.table_from_markdown("\n".join(lines))

    a, b = table(left_events), table(right_events)
    result = a.interval_join(
        b,
        a.t,
        b.t,
        pw.temporal.interval(-2, 2),
        behavior=pw.temporal.common_behavior(cutoff=cutoff),
    ).select(lab=pw.left.label, rab=pw.right.label)
    left_fate, right_fate = _side_fate(left_events, cutoff), _side_fate(right_events, cutoff)
    times = {label: t for label, t, _ in left_events + right_events}
    expected = sorted(
        (lab, rab)
        for lab, (l_in, l_out) in left_fate.items()
        for rab, (r_in, r_out) in right_fate.items()
        if times[lab] - 2 <= times[rab] <= times[lab] + 2 and r_in <= l_out and l_in <= r_out
    )
    assert snapshot(result) == expected


def test_cutoff_keeps_the_state_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a cutoff, rows older than event time - cutoff are forgotten: the operator's state
    (arranged rows and partner counts) stays near the live window instead of growing with
    the stream."""
    from deltaflow.engine.stateful import interval as engine

    sizes: list[int] = []
    step = engine.IntervalJoinOperator.step

    def recording(self: engine.IntervalJoinOperator, time: int, deltas: list) -> object:
        out = step(self, time, deltas)
        sizes.append(
            self.left.size
            + self.right.size
            + len(self.counts[engine.LID])
            + len(self.counts[engine.RID])
        )
        return out

    monkeypatch.setattr(engine.IntervalJoinOperator, "step", recording)
    per_time, times = 10, 60

    def table() -> pw.Table:
        lines = ["  | t | __time__"]
        lines += [
            f"{time * per_time + i} | {time * per_time + i} | {2 * time + 2}"
            for time in range(times)
            for i in range(per_time)
        ]
        return pw.debug.table_from_markdown("\n".join(lines))

    a, b = table(), table()
    result = a.interval_join_outer(
        b, a.t, b.t, pw.temporal.interval(-3, 3), behavior=pw.temporal.common_behavior(cutoff=20)
    )
    pw.debug.table_to_dicts(result.select(lt=pw.left.t, rt=pw.right.t))
    total = 2 * per_time * times * 2  # left rows sit in up to two buckets
    assert len(sizes) >= times
    assert max(sizes[times // 2 :]) < total / 4, (max(sizes), total)


@pytest.mark.parametrize("small_rows", [-1, 256])
def test_missing_times_match_nothing_on_both_paths(
    small_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(interval_engine, "SMALL_ROWS", small_rows)
    a = pw.debug.table_from_markdown("""
      | k | t | a  | __time__
    1 | 1 | 1 | 10 | 2
    2 | 1 |   | 20 | 2
    3 | 1 | 2 | 30 | 4
    """)
    b = pw.debug.table_from_markdown("""
       | k | t | b   | __time__
    11 | 1 | 1 | 100 | 2
    12 | 1 |   | 200 | 4
    """)
    result = a.interval_join_outer(b, a.t, b.t, pw.temporal.interval(-1, 1), a.k == b.k)
    assert snapshot(result.select(pw.left.a, pw.right.b)) == [
        (None, 200),
        (10, 100),
        (20, None),
        (30, 100),
    ]


def test_two_live_rows_under_one_id_are_padded_each() -> None:
    """A cutoff that ignores the deletion of an updated left row leaves both versions alive
    under one id; each has partners of its own, so when the old version loses its partner it
    is padded too (checked against Pathway 0.33: the same update stream)."""
    left = pw.debug.table_from_markdown(
        """
          | k | v | __time__ | __diff__
        1 | 5 | 1 | 2        | 1
        2 | 3 | 3 | 2        | 1
        1 | 5 | 1 | 4        | -1
        1 | 0 | 3 | 4        | 1
        """
    )
    right = pw.debug.table_from_markdown(
        """
          | k | v | __time__ | __diff__
        7 | 5 | 1 | 2        | 1
        7 | 5 | 1 | 4        | -1
        """
    )
    joined = left.interval_join_left(
        right,
        left.v,
        right.v,
        pw.temporal.interval(-1, 2),
        left.k == right.k,
        behavior=pw.temporal.common_behavior(cutoff=2),
    ).select(lv=pw.left.v, lk=pw.left.k, rv=pw.right.v)
    assert sorted(stream(joined), key=repr) == sorted(
        [
            (2, 1, 5, 1, 1),
            (2, 3, 3, None, 1),
            (4, 1, 5, 1, -1),
            (4, 1, 5, None, 1),  # the old version, alive and now without a partner
            (4, 3, 0, None, 1),
        ],
        key=repr,
    )
