"""Property tests: the incremental output of stateful operators equals the differences of
from-scratch recomputations.

For random update streams (insertions, deletions and updates at several times), each program
runs once incrementally; then, for every time, it runs from scratch on the inputs as they were
at that time. At every time the consolidated incremental changes must equal
``snapshot(time) - snapshot(previous time)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw

COLUMNS = ("k", "v")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class S(pw.Schema):
    k: int
    v: int


Event = tuple[int, int, int, int, int]  # (label, k, v, time, diff)


@st.composite
def update_streams(
    draw: Any,
    label_base: int = 0,
    *,
    max_times: int = 4,
    changes: st.SearchStrategy[int] | None = None,
    kinds: tuple[str, ...] = ("insert", "delete", "update"),
    max_key: int = 2,
) -> list[Event]:
    """Random events over 1..max_times times; one change per id per time."""
    changes = st.integers(0, 4) if changes is None else changes
    live: dict[int, tuple[int, int]] = {}
    events: list[Event] = []
    next_label = label_base + 1
    for time in range(2, 2 + 2 * draw(st.integers(1, max_times)), 2):
        touched: set[int] = set()
        for _ in range(draw(changes)):
            kind = draw(st.sampled_from(list(kinds)))
            candidates = sorted(set(live) - touched)
            k = draw(st.integers(0, max_key))
            v = draw(st.integers(-3, 3))
            if kind == "insert" or not candidates:
                label = next_label
                next_label += 1
                live[label] = (k, v)
                events.append((label, k, v, time, 1))
            else:
                label = draw(st.sampled_from(candidates))
                old = live.pop(label)
                events.append((label, *old, time, -1))
                if kind == "update":
                    live[label] = (k, v)
                    events.append((label, k, v, time, 1))
            touched.add(label)
    return events


def _times(*streams: list[Event]) -> list[int]:
    return sorted({e[3] for s in streams for e in s})


def _state_at(stream: list[Event], time: int) -> dict[int, tuple[int, int]]:
    state: dict[int, tuple[int, int]] = {}
    for label, k, v, when, diff in stream:
        if when > time:
            break
        if diff > 0:
            state[label] = (k, v)
        else:
            state.pop(label, None)
    return state


def _markdown(rows: list[tuple[Any, ...]], stream: bool) -> str:
    header = "  | k | v" + (" | __time__ | __diff__" if stream else "")
    lines = [header] + ["  " + " | ".join(str(c) for c in row) for row in rows]
    return "\n".join(lines)


def _stream_table(stream: list[Event]) -> pw.Table:
    rows = [(label, k, v, time, diff) for label, k, v, time, diff in stream]
    return pw.debug.table_from_markdown(_markdown(rows, True), schema=S)


def _static_table(state: dict[int, tuple[int, int]]) -> pw.Table:
    rows = [(label, k, v) for label, (k, v) in sorted(state.items())]
    return pw.debug.table_from_markdown(_markdown(rows, False), schema=S)


def _canon(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("array", tuple(value.tolist()))
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, (tuple, list)):
        return tuple(_canon(v) for v in value)
    return value


def _row(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((name, _canon(value)) for name, value in row.items()))


def _snapshot(table: pw.Table) -> Counter:
    counter: Counter = Counter()
    for _, row, diff in pw.debug.table_to_stream(table):
        counter[_row(row)] += diff
    return +counter


def check(program: Callable[..., pw.Table], *streams: list[Event]) -> None:
    """Compare the incremental run of ``program`` with from-scratch runs at every time."""
    pw.clear_graph()
    incremental: dict[int, Counter] = {}
    seen: set[tuple[int, tuple[Any, ...]]] = set()
    for time, row, diff in pw.debug.table_to_stream(program(*map(_stream_table, streams))):
        key = _row(row)
        assert diff != 0
        # Exact values here (the comparisons below round floats): a retraction of x and an
        # insertion of x + 1 ulp in one time are two rows, not one row twice.
        exact = tuple(sorted((name, repr(value)) for name, value in row.items()))
        assert (time, exact) not in seen, f"row {row} appears twice at time {time}"
        seen.add((time, exact))
        incremental.setdefault(time, Counter())[key] += diff
    previous: Counter = Counter()
    for time in _times(*streams):
        pw.clear_graph()
        tables = [_static_table(_state_at(s, time)) for s in streams]
        current = _snapshot(program(*tables))
        expected = Counter(current)
        expected.subtract(previous)
        expected = Counter({k: d for k, d in expected.items() if d != 0})
        got = Counter({k: d for k, d in incremental.pop(time, Counter()).items() if d != 0})
        assert got == expected, f"at time {time}: incremental {got} != expected {expected}"
        previous = current
    assert not any(incremental.values()), f"changes at unexpected times: {incremental}"


# ------------------------------------------------------------------------------------------


class Concat(pw.BaseCustomAccumulator):
    def __init__(self, values: list[int]) -> None:
        self.values = values

    @classmethod
    def from_row(cls, row: list[Any]) -> Concat:
        return cls([row[0]])

    def update(self, other: Concat) -> None:
        self.values = self.values + other.values

    def compute_result(self) -> int:
        return sum(v * v for v in self.values)


def _sum_many(state: Any, rows: list[tuple[list[Any], int]]) -> int:
    return sum(values[0] * count for values, count in rows) + (state or 0)


REDUCERS: dict[str, Callable[[pw.Table], Any]] = {
    "count": lambda t: pw.reducers.count(),
    "sum": lambda t: pw.reducers.sum(t.v),
    "avg": lambda t: pw.reducers.avg(t.v),
    "min": lambda t: pw.reducers.min(t.v),
    "max": lambda t: pw.reducers.max(t.v),
    "argmin": lambda t: pw.reducers.argmin(t.v),
    "argmax": lambda t: pw.reducers.argmax(t.v),
    "any": lambda t: pw.reducers.any(t.v),
    "unique": lambda t: pw.reducers.unique(t.k),
    "tuple": lambda t: pw.reducers.tuple(t.v),
    "sorted_tuple": lambda t: pw.reducers.sorted_tuple(t.v),
    "count_distinct": lambda t: pw.reducers.count_distinct(t.v),
    "ndarray": lambda t: pw.reducers.ndarray(t.v),
    "stateful_many": lambda t: pw.reducers.stateful_many(_sum_many)(t.v),
    "udf_reducer": lambda t: pw.reducers.udf_reducer(Concat)(t.v),
    "ratio": lambda t: pw.reducers.sum(t.v) * 10 / pw.reducers.count(),
}


@SETTINGS
@given(update_streams(), st.sampled_from(sorted(REDUCERS)))
def test_groupby_reduce_matches_recomputation(stream: list[Event], name: str) -> None:
    def program(t: pw.Table) -> pw.Table:
        return t.groupby(t.k).reduce(t.k, r=REDUCERS[name](t))

    check(program, stream)


@SETTINGS
@given(update_streams())
def test_invertible_and_recomputed_reducers_together(stream: list[Event]) -> None:
    def program(t: pw.Table) -> pw.Table:
        return t.groupby(pw.this.k).reduce(
            pw.this.k,
            n=pw.reducers.count(),
            s=pw.reducers.sum(pw.this.v),
            a=pw.reducers.avg(pw.this.v),
        )

    def program_mixed(t: pw.Table) -> pw.Table:
        return t.reduce(n=pw.reducers.count(), m=pw.reducers.max(t.v), s=pw.reducers.sum(t.v))

    check(program, stream)
    check(program_mixed, stream)


@SETTINGS
@given(
    update_streams(),
    update_streams(label_base=100),
    st.sampled_from(["inner", "left", "right", "outer"]),
)
def test_joins_match_recomputation(left: list[Event], right: list[Event], how: str) -> None:
    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"join_{how}")(b, a.k == b.k)
        return joined.select(lv=pw.left.v, rv=pw.right.v, k=pw.this.k, lid=a.id, rid=b.id)

    check(program, left, right)


@SETTINGS
@given(update_streams(), update_streams(label_base=100))
def test_join_on_two_columns_with_left_ids(left: list[Event], right: list[Event]) -> None:
    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        unique_right = b.groupby(b.k, b.v).reduce(b.k, b.v, n=pw.reducers.count())
        return a.join_left(
            unique_right, a.k == unique_right.k, a.v == unique_right.v, id=a.id
        ).select(a.k, a.v, n=unique_right.n)

    check(program, left, right)


def id_operation(kind: str) -> Callable[[pw.Table, pw.Table], pw.Table]:
    """The id operation ``kind`` of ``a`` and ``b`` (update_cells and restrict take the part
    of ``b`` that ``a`` has, as they require)."""

    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        if kind == "update_rows":
            return a.update_rows(b)
        if kind == "update_cells":
            return a.update_cells(b.intersect(a).select(pw.this.v))
        if kind == "restrict":
            return a.restrict(b.intersect(a))
        result: pw.Table = getattr(a, kind)(b)
        return result

    return program


@SETTINGS
@given(
    update_streams(),
    update_streams(label_base=2),
    st.sampled_from(["update_rows", "update_cells", "restrict", "difference", "intersect"]),
)
def test_id_operations_match_recomputation(
    base: list[Event], other: list[Event], kind: str
) -> None:
    check(id_operation(kind), base, other)


@SETTINGS
@given(update_streams(), update_streams(label_base=100))
def test_pipeline_join_reduce_update_rows(left: list[Event], right: list[Event]) -> None:
    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = a.join_outer(b, a.k == b.k).select(
            k=pw.this.k, x=pw.coalesce(pw.left.v, 0) + pw.coalesce(pw.right.v, 0)
        )
        totals = joined.groupby(pw.this.k).reduce(pw.this.k, v=pw.reducers.sum(pw.this.x))
        per_key = a.groupby(a.k).reduce(a.k, v=pw.reducers.max(a.v))
        return per_key.update_rows(totals).filter(pw.this.v > -2)

    check(program, left, right)


@SETTINGS
@given(update_streams())
def test_sort_matches_recomputation(stream: list[Event]) -> None:
    def program(t: pw.Table) -> pw.Table:
        return t.sort(key=t.v, instance=t.k)

    check(program, stream)
