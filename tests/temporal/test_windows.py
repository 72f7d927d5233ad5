"""windowby with tumbling, sliding, session and intervals_over windows.

Expected values are what Pathway 0.33 gives for the same programs; the property test
compares the update stream with from-scratch recomputations (a small model written here).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw

STREAM = """
  | k | t  | __time__
1 | a | 1  | 2
2 | a | 3  | 2
3 | a | 12 | 4
4 | b | 5  | 4
5 | a | 4  | 6
6 | a | 25 | 8
7 | a | 2  | 10
8 | b | 15 | 10
"""


def changes(table: pw.Table, *names: str) -> list[tuple[Any, ...]]:
    """(time, the named values..., diff) of every change, sorted."""
    return sorted(
        (time, *(row[n] for n in names), diff)
        for time, row, diff in pw.debug.table_to_stream(table)
    )


def rows(table: pw.Table, *names: str) -> list[tuple[Any, ...]]:
    """The final rows' named values, sorted."""
    state: dict[Any, tuple[Any, ...]] = {}
    for _, row, diff in pw.debug.table_to_stream(table):
        if diff > 0:
            state[row["id"]] = tuple(row[n] for n in names)
        else:
            state.pop(row["id"], None)
    return sorted(state.values(), key=lambda r: [(v is None, v) for v in r])


def test_sliding_windows_with_an_origin_and_instances_update_as_rows_arrive() -> None:
    t = pw.debug.table_from_markdown(STREAM)
    result = t.windowby(
        t.t, window=pw.temporal.sliding(hop=5, duration=10, origin=-3), instance=t.k
    ).reduce(pw.this._pw_window, pw.this._pw_instance, c=pw.reducers.count())
    assert changes(result, "_pw_window", "c") == [
        (2, ("a", -3, 7), 2, 1),
        (2, ("a", 2, 12), 1, 1),
        (4, ("a", 7, 17), 1, 1),
        (4, ("a", 12, 22), 1, 1),
        (4, ("b", -3, 7), 1, 1),
        (4, ("b", 2, 12), 1, 1),
        (6, ("a", -3, 7), 2, -1),
        (6, ("a", -3, 7), 3, 1),
        (6, ("a", 2, 12), 1, -1),
        (6, ("a", 2, 12), 2, 1),
        (8, ("a", 17, 27), 1, 1),
        (8, ("a", 22, 32), 1, 1),
        (10, ("a", -3, 7), 3, -1),
        (10, ("a", -3, 7), 4, 1),
        (10, ("a", 2, 12), 2, -1),
        (10, ("a", 2, 12), 3, 1),
        (10, ("b", 7, 17), 1, 1),
        (10, ("b", 12, 22), 1, 1),
    ]


def test_result_ids_and_types_are_pathways() -> None:
    t = pw.debug.table_from_markdown("""
    t | v
    1 | 1
    7 | 2
    """)
    result = t.windowby(t.t, window=pw.temporal.tumbling(5)).reduce(
        pw.this._pw_window,
        pw.this._pw_window_start,
        pw.this._pw_window_end,
        pw.this._pw_instance,
        s=pw.reducers.sum(pw.this.v),
    )
    keys, columns = pw.debug.table_to_dicts(result)
    probe = pw.debug.table_from_markdown("x\n1")
    expected = probe.select(p=probe.pointer_from((None, 0, 5), 0, 5, None))
    _, pointer = pw.debug.table_to_dicts(expected)
    assert next(iter(pointer["p"].values())) in keys
    assert result.schema.typehints()["_pw_window_start"] is int
    assert sorted(columns["_pw_window"].values()) == [(None, 0, 5), (None, 5, 10)]


def test_hop_longer_than_duration_leaves_gaps_and_origin_drops_earlier_rows() -> None:
    t = pw.debug.table_from_markdown("""
    t  | v
    1  | 1
    4  | 2
    7  | 3
    11 | 4
    16 | 5
    """)
    gaps = t.windowby(t.t, window=pw.temporal.sliding(hop=10, duration=3)).reduce(
        pw.this._pw_window_start, s=pw.reducers.sum(pw.this.v)
    )
    assert rows(gaps, "_pw_window_start", "s") == [(0, 1), (10, 4)]
    late_origin = t.windowby(t.t, window=pw.temporal.tumbling(duration=4, origin=5)).reduce(
        pw.this._pw_window_start, s=pw.reducers.sum(pw.this.v)
    )
    assert rows(late_origin, "_pw_window_start", "s") == [(5, 3), (9, 4), (13, 5)]
    unaligned = t.windowby(t.t, window=pw.temporal.sliding(hop=5, duration=10)).reduce(
        pw.this._pw_window_start, s=pw.reducers.sum(pw.this.v)
    )
    assert rows(unaligned, "_pw_window_start", "s") == [(-5, 3), (0, 6), (5, 7), (10, 9), (15, 5)]


def test_float_and_datetime_times() -> None:
    floats = pw.debug.table_from_markdown("""
    t
    1.5
    3.5
    4.5
    """)
    result = floats.windowby(floats.t, window=pw.temporal.tumbling(2.5)).reduce(
        pw.this._pw_window_start, c=pw.reducers.count()
    )
    assert rows(result, "_pw_window_start", "c") == [(0.0, 1), (2.5, 2)]
    d = pw.debug.table_from_markdown("""
    t                   | v
    2024-01-01T00:00:30 | 1
    2024-01-01T00:01:30 | 2
    """).select(t=pw.this.t.dt.strptime("%Y-%m-%dT%H:%M:%S"), v=pw.this.v)
    minute = datetime.timedelta(minutes=1)
    slid = d.windowby(d.t, window=pw.temporal.sliding(hop=minute, duration=2 * minute)).reduce(
        pw.this._pw_window_start, s=pw.reducers.sum(pw.this.v)
    )
    starts = [(str(start), s) for start, s in rows(slid, "_pw_window_start", "s")]
    assert starts == [
        ("2023-12-31 23:59:00", 1),
        ("2024-01-01 00:00:00", 3),
        ("2024-01-01 00:01:00", 2),
    ]


def test_sessions_merge_when_a_late_row_bridges_them() -> None:
    t = pw.debug.table_from_markdown("""
      | t  | v | __time__ | __diff__
    1 | 1  | 1 | 2        | 1
    2 | 5  | 2 | 2        | 1
    3 | 3  | 3 | 4        | 1
    3 | 3  | 3 | 6        | -1
    """)
    result = t.windowby(t.t, window=pw.temporal.session(max_gap=3)).reduce(
        pw.this._pw_window_start, pw.this._pw_window_end, s=pw.reducers.sum(pw.this.v)
    )
    assert changes(result, "_pw_window_start", "_pw_window_end", "s") == [
        (2, 1, 1, 1, 1),
        (2, 5, 5, 2, 1),
        (4, 1, 1, 1, -1),
        (4, 1, 5, 6, 1),
        (4, 5, 5, 2, -1),
        (6, 1, 1, 1, 1),
        (6, 1, 5, 6, -1),
        (6, 5, 5, 2, 1),
    ]


def test_session_gap_is_strict_and_predicates_see_neighbours() -> None:
    t = pw.debug.table_from_markdown("""
    t  | v
    1  | 1
    4  | 2
    7  | 3
    11 | 4
    """)
    gap = t.windowby(t.t, window=pw.temporal.session(max_gap=3)).reduce(
        pw.this._pw_window_start, s=pw.reducers.sum(pw.this.v)
    )
    assert rows(gap, "_pw_window_start", "s") == [(1, 1), (4, 2), (7, 3), (11, 4)]
    close = t.windowby(t.t, window=pw.temporal.session(predicate=lambda a, b: b - a <= 3)).reduce(
        pw.this._pw_window_start, pw.this._pw_window_end, s=pw.reducers.sum(pw.this.v)
    )
    assert rows(close, "_pw_window_start", "_pw_window_end", "s") == [(1, 7, 6), (11, 11, 4)]


def test_instance_column_can_be_used_by_its_name() -> None:
    t = pw.debug.table_from_markdown("""
    g | t | v
    0 | 1 | 10
    0 | 2 | 1
    1 | 1 | 9
    """)
    result = t.windowby(
        pw.this.t, window=pw.temporal.session(max_gap=2), instance=pw.this.g
    ).reduce(pw.this.g, m=pw.reducers.max(pw.this.v))
    assert rows(result, "g", "m") == [(0, 10), (1, 9)]


def test_intervals_over_groups_rows_around_each_point() -> None:
    t = pw.debug.table_from_markdown("""
    t  | v
    1  | 10
    2  | 1
    3  | 3
    8  | 2
    9  | 4
    10 | 8
    """)
    probes = pw.debug.table_from_markdown("""
    t
    2
    6
    """)
    inner = t.windowby(
        t.t,
        window=pw.temporal.intervals_over(
            at=probes.t, lower_bound=-2, upper_bound=1, is_outer=False
        ),
    ).reduce(pw.this._pw_window_location, s=pw.reducers.sum(pw.this.v))
    assert rows(inner, "_pw_window_location", "s") == [(2, 14)]
    outer = t.windowby(
        t.t, window=pw.temporal.intervals_over(at=probes.t, lower_bound=-2, upper_bound=1)
    ).reduce(pw.this._pw_window_location, c=pw.reducers.count())
    assert rows(outer, "_pw_window_location", "c") == [(2, 3), (6, 1)]


def test_intervals_over_tuple_lists_rows_by_time() -> None:
    # Ids are hashes: listed by id, these rows would not come out in time order.
    t = pw.debug.table_from_markdown("""
      | t  | v
    1 | 7  | 70
    2 | 3  | 30
    3 | 5  | 50
    4 | 4  | 40
    5 | 6  | 60
    6 | 20 | 99
    """)
    probes = pw.debug.table_from_markdown("""
    t
    5
    20
    """)
    result = t.windowby(
        t.t, window=pw.temporal.intervals_over(at=probes.t, lower_bound=-2, upper_bound=2)
    ).reduce(
        pw.this._pw_window_location,
        vs=pw.reducers.tuple(pw.this.v),
        arr=pw.reducers.ndarray(pw.this.t, skip_nones=True),
    )
    frame = pw.debug.table_to_pandas(result).sort_values("_pw_window_location")
    assert [tuple(v) for v in frame["vs"]] == [(30, 40, 50, 60, 70), (99,)]
    assert [list(a) for a in frame["arr"]] == [[3, 4, 5, 6, 7], [20]]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "sliding",
            [(-5, (300, 400, 500), 1200), (0, (100, 300, 400, 500), 1300), (5, (100,), 100)],
        ),
        ("intervals_over", [(0, (400, 500), 900), (3, (300,), 300), (6, (100,), 100)]),
    ],
)
def test_ix_inside_a_reducer_of_windows_sharing_rows(kind: str, expected: list[Any]) -> None:
    prices = pw.debug.table_from_markdown("""
      | price
    1 | 100
    3 | 300
    4 | 400
    5 | 500
    """)
    sales = pw.debug.table_from_markdown("""
    t | item
    1 | 5
    2 | 4
    4 | 3
    7 | 1
    """).select(pw.this.t, ref=prices.pointer_from(pw.this.item))
    points = pw.debug.table_from_markdown("t\n1\n4\n7\n9")
    window = (
        pw.temporal.sliding(hop=5, duration=10)
        if kind == "sliding"
        else pw.temporal.intervals_over(at=points.t, lower_bound=-1, upper_bound=1, is_outer=False)
    )
    grouped = sales.windowby(sales.t, window=window)
    result = grouped.reduce(
        pw.this._pw_window_start,
        seen=pw.reducers.sorted_tuple(prices.ix(grouped.ref).price),
        total=pw.reducers.sum(prices.ix(grouped.ref).price),
    )
    assert rows(result, "_pw_window_start", "seen", "total") == expected


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda t: t.windowby(t.s, window=pw.temporal.tumbling(2)), TypeError, "time column"),
        (
            lambda t: t.windowby(t.t, window=pw.temporal.tumbling(datetime.timedelta(1))),
            TypeError,
            r"Arguments \(time_expr, window.hop\)",
        ),
        (lambda t: t.windowby(t.t, window=pw.temporal.tumbling(0)), ValueError, "hop"),
        (lambda t: t.windowby(t.t, window=pw.temporal.sliding(-1, 3)), ValueError, "hop"),
        (lambda t: t.windowby(t.t, window=pw.temporal.session(max_gap=0)), ValueError, "max_gap"),
        (lambda t: pw.temporal.sliding(1, 3, ratio=2), ValueError, "not both"),
        (lambda t: pw.temporal.sliding(1), ValueError, "duration"),
        (lambda t: pw.temporal.session(), ValueError, "predicate"),
        (
            lambda t: pw.temporal.session(max_gap=1, predicate=lambda a, b: True),
            ValueError,
            "not both",
        ),
    ],
)
def test_bad_windows_fail_when_defined(make: Any, error: type, match: str) -> None:
    t = pw.debug.table_from_markdown("""
    t | s
    1 | a
    """)
    with pytest.raises(error, match=match):
        make(t)


def test_datetime_time_with_int_duration_names_the_table() -> None:
    d = pw.debug.table_from_markdown("""
    t
    2024-01-01T00:00:30
    """).select(t=pw.this.t.dt.strptime("%Y-%m-%dT%H:%M:%S"))
    with pytest.raises(TypeError, match="windowby on table select.*DATE_TIME_NAIVE, INT"):
        d.windowby(d.t, window=pw.temporal.tumbling(2))


# ------------------------------------------------------------------------------------------
# Property: the update stream is the difference of from-scratch results at every time
# ------------------------------------------------------------------------------------------


def windows_of(kind: str, t: int) -> list[tuple[int, int]]:
    if kind == "tumbling":
        start = t - t % 4
        return [(start, start + 4)]
    if kind == "sliding":  # hop 2, duration 5, origin 1
        return [(s, s + 5) for s in range(1, t + 1, 2) if s <= t < s + 5]
    if kind == "tumbling_origin":  # duration 4 from 3: rows before 3 are in no window
        if t < 3:
            return []
        start = t - (t - 3) % 4
        return [(start, start + 4)]
    if kind == "gaps":  # hop 5, duration 2: rows at 2-4 (mod 5) are in no window
        start = t - t % 5
        return [(start, start + 2)] if t < start + 2 else []
    if kind == "panes":  # hop 2, duration 6 (reduced per pane first), no origin
        return [(s, s + 6) for s in range(t - t % 2 - 4, t + 1, 2) if s <= t < s + 6]
    raise AssertionError(kind)


def model(
    kind: str, present: dict[int, tuple[str, int, int]]
) -> list[tuple[str, int, int, int, int]]:
    """(instance, start, end, count, sum) of every window of the rows present."""
    groups: dict[tuple[str, int, int], list[int]] = {}
    if kind == "session":
        by_instance: dict[str, list[tuple[int, int]]] = {}
        for k, t, v in present.values():
            by_instance.setdefault(k, []).append((t, v))
        for k, items in by_instance.items():
            items.sort()
            session: list[tuple[int, int]] = []
            for t, v in items:
                if session and t - session[-1][0] >= 3:
                    groups[(k, session[0][0], session[-1][0])] = [v for _, v in session]
                    session = []
                session.append((t, v))
            groups[(k, session[0][0], session[-1][0])] = [v for _, v in session]
    else:
        for k, t, v in present.values():
            for start, end in windows_of(kind, t):
                groups.setdefault((k, start, end), []).append(v)
    return sorted((k, s, e, len(vs), sum(vs)) for (k, s, e), vs in groups.items())


@st.composite
def histories(draw: Any) -> list[list[tuple[int, str, int, int, int]]]:
    present: dict[int, tuple[str, int, int]] = {}
    batches = []
    next_key = 1
    for _ in range(draw(st.integers(1, 5))):
        batch = []
        touched: set[int] = set()
        for _ in range(draw(st.integers(1, 4))):
            if present and draw(st.booleans()):
                key = draw(st.sampled_from(sorted(present)))
                if key in touched:
                    continue
                touched.add(key)
                batch.append((key, *present.pop(key), -1))
            else:
                key, next_key = next_key, next_key + 1
                touched.add(key)
                present[key] = (
                    draw(st.sampled_from("ab")),
                    draw(st.integers(0, 20)),
                    draw(st.integers(0, 9)),
                )
                batch.append((key, *present[key], 1))
        batches.append(batch)
    return batches


@pytest.mark.parametrize(
    "kind", ["tumbling", "tumbling_origin", "gaps", "sliding", "panes", "session"]
)
@settings(max_examples=25, deadline=None)
@given(history=histories())
def test_update_stream_equals_recomputation_at_every_time(kind: str, history: Any) -> None:
    pw.clear_graph()
    lines = ["  | k | t | v | __time__ | __diff__"]
    for index, batch in enumerate(history):
        lines += [f"{key} | {k} | {t} | {v} | {2 * (index + 1)} | {d}" for key, k, t, v, d in batch]
    table = pw.debug.table_from_markdown("\n".join(lines))
    window = {
        "tumbling": pw.temporal.tumbling(4),
        "tumbling_origin": pw.temporal.tumbling(4, origin=3),
        "gaps": pw.temporal.sliding(hop=5, duration=2),
        "sliding": pw.temporal.sliding(hop=2, duration=5, origin=1),
        "panes": pw.temporal.sliding(hop=2, duration=6),
        "session": pw.temporal.session(max_gap=3),
    }[kind]
    result = table.windowby(table.t, window=window, instance=table.k).reduce(
        pw.this._pw_instance,
        pw.this._pw_window_start,
        pw.this._pw_window_end,
        c=pw.reducers.count(),
        s=pw.reducers.sum(pw.this.v),
    )
    stream = pw.debug.table_to_stream(result)
    state: dict[Any, tuple[Any, ...]] = {}
    present: dict[int, tuple[str, int, int]] = {}
    for index, batch in enumerate(history):
        time = 2 * (index + 1)
        for key, k, t, v, d in batch:
            if d > 0:
                present[key] = (k, t, v)
            else:
                del present[key]
        seen: set[tuple[Any, int]] = set()
        for at, row, diff in stream:
            if at != time:
                continue
            values = (
                row["_pw_instance"],
                row["_pw_window_start"],
                row["_pw_window_end"],
                row["c"],
                row["s"],
            )
            assert (row["id"], diff) not in seen  # consolidated: one change per id and sign
            seen.add((row["id"], diff))
            if diff > 0:
                state[row["id"]] = values
            else:
                assert state.pop(row["id"]) == values
        assert sorted(state.values()) == model(kind, present)


def test_the_examples_of_docs_temporal_run() -> None:
    """The code blocks of docs/temporal.md's sections on windows, behaviors and window joins
    run and their assertions hold."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[2] / "docs" / "temporal.md").read_text()
    mine = text[text.index("## Windows and `windowby`") : text.index("## How it is built")]
    blocks = re.findall(r"```python\n(.*?)```", mine, flags=re.S)
    assert len(blocks) >= 4
    for block in blocks:
        pw.clear_graph()
        exec(compile(block, "docs/temporal.md", "exec"), {})  # noqa: S102


class _Rows(pw.Schema):
    row: int = pw.column_definition(primary_key=True)
    t: int


@settings(max_examples=25, deadline=None)
@given(
    history=st.lists(
        st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=1, max_size=4),
        min_size=1,
        max_size=4,
    ),
    outer=st.booleans(),
)
def test_intervals_over_streams_end_in_the_recomputed_windows(history: Any, outer: bool) -> None:
    """Points and rows arriving over time (some deleted again) give the windows a static
    computation over what remains gives."""
    pw.clear_graph()
    data: dict[int, list[tuple[int, ...]]] = {0: [], 1: []}
    present: dict[int, dict[int, int]] = {0: {}, 1: {}}
    row = 0
    for index, batch in enumerate(history):
        for side, value in batch:
            row += 1
            data[side].append((row, value, 2 * (index + 1), 1))
            present[side][row] = value
            if value % 3 == 0:  # taken back at the next time
                data[side].append((row, value, 2 * (index + 2), -1))
                del present[side][row]
    points = pw.debug.table_from_rows(_Rows, data[0], is_stream=True)
    rows_table = pw.debug.table_from_rows(_Rows, data[1], is_stream=True)
    result = rows_table.windowby(
        rows_table.t,
        window=pw.temporal.intervals_over(
            at=points.t, lower_bound=-3, upper_bound=2, is_outer=outer
        ),
    ).reduce(pw.this._pw_window_location, c=pw.reducers.count())
    got = sorted(rows(result, "_pw_window_location", "c"))
    expected = []
    for at in present[0].values():
        inside = [v for v in present[1].values() if at - 3 <= v <= at + 2]
        if inside:
            expected.append((at, len(inside)))
        elif outer:
            expected.append((at, 1))  # the point's own empty row, as in Pathway
    # points at the same time share one window (one row per (location, start, end))
    merged: dict[int, int] = {}
    for at, count in expected:
        merged[at] = merged.get(at, 0) + count
    assert got == sorted(merged.items())


def test_columns_of_the_windowed_rows_by_attribute_and_by_name() -> None:
    table = pw.debug.table_from_markdown("""
        | t | v
      1 | 1 | 3
      2 | 2 | 1
      3 | 8 | 2
    """)
    grouped = table.windowby(table.t, window=pw.temporal.tumbling(duration=5))
    result = grouped.reduce(
        grouped._pw_window_start,
        total=pw.reducers.sum(grouped.v),
        n=pw.reducers.count(grouped["t"]),
    )
    assert sorted(pw.debug.table_to_dicts(result)[1]["total"].values()) == [2, 4]
    assert sorted(pw.debug.table_to_dicts(result)[1]["n"].values()) == [1, 2]
    with pytest.raises(AttributeError, match="nope"):
        grouped.nope  # noqa: B018
    with pytest.raises(KeyError):
        grouped["nope"]


def test_ix_of_a_windowed_column_inside_a_reducer() -> None:
    values = pw.debug.table_from_markdown("""
        | v
      1 | 1
      2 | 2
      3 | 6
    """)
    table = pw.debug.table_from_markdown("""
        | t | ptr | __time__
      1 | 1 | 3   | 2
      2 | 2 | 1   | 2
      3 | 8 | 2   | 4
      4 | 3 | 2   | 6
    """).select(pw.this.t, ptr=values.pointer_from(pw.this.ptr))
    grouped = table.windowby(table.t, window=pw.temporal.tumbling(duration=5))
    result = grouped.reduce(
        grouped._pw_window_start, v=pw.reducers.sorted_tuple(values.ix(grouped.ptr).v)
    )
    _, columns = pw.debug.table_to_dicts(result)
    final = {columns["_pw_window_start"][key]: columns["v"][key] for key in columns["v"]}
    assert final == {0: (1, 2, 6), 5: (2,)}  # rows arrived at three times


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    instance_kind=st.sampled_from(["none", "int", "str"]),
)
def test_window_ids_of_small_deltas_written_in_python_match_the_query(
    data: Any, instance_kind: str
) -> None:
    """Window ids of a few rows are hashed from texts written in Python; they must be the
    ids the Polars query gives (for every instance kind, None values, quotes, non-ASCII)."""
    import polars as pl

    import deltaflow.engine.temporal_window as tw
    from deltaflow import _types as t

    rows = data.draw(st.integers(1, 5))
    starts = data.draw(st.lists(st.integers(-(10**12), 10**12), min_size=rows, max_size=rows))
    columns = [pl.Series("s", starts), pl.Series("e", [s + 7 for s in starts])]
    types: dict[str, Any] = {"s": t.INT, "e": t.INT}
    instance = None
    if instance_kind != "none":
        values = st.integers(-50, 50) if instance_kind == "int" else st.text(max_size=4)
        drawn = data.draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
        dtype = t.Optional(t.INT if instance_kind == "int" else t.STR)
        columns.append(t.series_from_values("i", drawn, dtype))
        types["i"] = dtype
        instance = "i"
    frame = pl.DataFrame(columns)
    in_python = tw.window_ids(frame, "s", "e", instance, None, types)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tw, "PYTHON_KEY_ROWS", 0)
        by_query = tw.window_ids(frame, "s", "e", instance, None, types)
    assert in_python.to_list() == by_query.to_list()
