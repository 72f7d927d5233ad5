"""The small-delta (Python) and big-batch (Polars) paths of the stateful operators agree.

Every property of ``test_stateful_properties`` is checked again with the paths forced: ``big``
(every delta through Polars frames), ``aggregated`` (every delta of count/sum/avg aggregated
per group by Polars and folded into NumPy group columns), ``small`` (every delta through the Python path: NumPy
group columns for the simple reductions that allow them, Python tuples otherwise), ``rows``
(every delta through Python tuples) and ``mixed`` (deltas of at most two rows in Python, the
others in Polars, sharing one state). The
arrangements' Python tail is kept tiny so that it is flushed into runs, and runs merged, within
a test.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.engine import batch
from deltaflow.engine.stateful import arrangement, join, reduce, reduce_columns
from deltaflow.engine.stateful.keys import TIME
from test_stateful_properties import REDUCERS, Event, check, update_streams

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = {"big": 0, "aggregated": 0, "small": 10**9, "few": 10**9, "rows": 10**9, "mixed": 2}


@contextlib.contextmanager
def paths(mode: str) -> Iterator[None]:
    """Force the small/big path choice and make the arrangements' tail flush early."""
    saved = (
        reduce.SMALL_DELTA_ROWS,
        reduce.COLUMN_DELTA_ROWS,
        join.SMALL_DELTA_ROWS,
        arrangement.TAIL_ROWS,
        arrangement.SMALL_INSERT,
        batch.SMALL_BATCH,
        reduce.COLUMN_GROUPS,
        reduce_columns.FEW_ROWS,
        reduce_columns.COUNT_SLOTS_SLACK,
        reduce.AGGREGATED_FOLD_GROUPS,
    )
    limit = MODES[mode]
    # "big": every delta through Polars frames; "aggregated": every delta of count/sum/avg
    # aggregated by the frame path's query and folded into the NumPy columns.
    if mode in ("big", "aggregated"):
        reduce.AGGREGATED_FOLD_GROUPS = 10**9 if mode == "aggregated" else 0
    # "small": every column-path delta folded with NumPy; "few": every one in Python.
    reduce_columns.FEW_ROWS = {"small": 0, "few": 10**9}.get(mode, reduce_columns.FEW_ROWS)
    # "small" sorts a delta's slots to find the distinct ones (as with a big state), the
    # others count them.
    if mode == "small":
        reduce_columns.COUNT_SLOTS_SLACK = -(10**9)
    reduce.COLUMN_GROUPS = mode != "rows"
    reduce.SMALL_DELTA_ROWS = limit
    reduce.COLUMN_DELTA_ROWS = limit
    join.SMALL_DELTA_ROWS = limit
    arrangement.TAIL_ROWS = 3
    arrangement.SMALL_INSERT = 4 if mode != "big" else 0
    batch.SMALL_BATCH = limit
    try:
        yield
    finally:
        (
            reduce.SMALL_DELTA_ROWS,
            reduce.COLUMN_DELTA_ROWS,
            join.SMALL_DELTA_ROWS,
            arrangement.TAIL_ROWS,
            arrangement.SMALL_INSERT,
            batch.SMALL_BATCH,
            reduce.COLUMN_GROUPS,
            reduce_columns.FEW_ROWS,
            reduce_columns.COUNT_SLOTS_SLACK,
            reduce.AGGREGATED_FOLD_GROUPS,
        ) = saved


modes = st.sampled_from(sorted(MODES))


def bursty_streams(label_base: int = 0) -> st.SearchStrategy[list[Event]]:
    """Update streams whose times carry from 0 to 12 changes (so ``mixed`` really mixes)."""
    return update_streams(
        label_base,
        max_times=5,
        changes=st.sampled_from([0, 1, 2, 6, 12]),
        kinds=("insert", "insert", "delete", "update"),
        max_key=3,
    )


@SETTINGS
@given(bursty_streams(), st.sampled_from(sorted(REDUCERS)), modes)
def test_reducers_on_both_paths(stream: list[Event], name: str, mode: str) -> None:
    def program(t: pw.Table) -> pw.Table:
        return t.groupby(t.k).reduce(t.k, r=REDUCERS[name](t))

    with paths(mode):
        check(program, stream)


@SETTINGS
@given(bursty_streams(), modes)
def test_folded_and_recomputed_reducers_on_both_paths(stream: list[Event], mode: str) -> None:
    def folded(t: pw.Table) -> pw.Table:
        return t.groupby(t.k).reduce(
            t.k,
            n=pw.reducers.count(),
            s=pw.reducers.sum(t.v),
            a=pw.reducers.avg(t.v),
            lo=pw.reducers.min(t.v),
            hi=pw.reducers.max(t.v),
        )

    def whole(t: pw.Table) -> pw.Table:
        return t.reduce(
            n=pw.reducers.count(),
            hi=pw.reducers.max(t.v),
            any=pw.reducers.any(t.v),
            s=pw.reducers.sum(t.v),
        )

    def by_pointer(t: pw.Table) -> pw.Table:
        keyed = t.select(t.v, p=t.pointer_from(t.k))
        return keyed.groupby(keyed.p, id=keyed.p).reduce(
            m=pw.reducers.argmax(keyed.v), n=pw.reducers.count()
        )

    def by_two_keys(t: pw.Table) -> pw.Table:
        # Two key columns, one a string: hashed as a struct on the small path (keys.py)
        # and by the expression on the big one; a disagreement would split a group.
        keyed = t.select(t.v, odd=t.k % 2, name=t.k.to_string())
        return keyed.groupby(keyed.odd, keyed.name).reduce(
            keyed.odd, keyed.name, n=pw.reducers.count(), s=pw.reducers.sum(keyed.v)
        )

    with paths(mode):
        check(folded, stream)
        check(whole, stream)
        check(by_pointer, stream)
        check(by_two_keys, stream)


# Values near the ends of the 64-bit range (a few copies of the first two leave it).
INT64_EDGES = [2**60 + 1, -(2**60) - 3, 2**62, 2**63 - 1, -(2**63), 3]


def _wrapped(total: int) -> int:
    return (total + 2**63) % 2**64 - 2**63


@st.composite
def repeated_rows(draw: st.DrawFn) -> list[list[tuple[int, int, int, int]]]:
    """Times of changes to rows present several times (one id, one value, ``copies`` of it:
    a diff above 1 once consolidated) whose values lie near the ends of the 64-bit range."""
    live: dict[int, tuple[int, int, int]] = {}  # label: (k, v, copies)
    next_label = 1
    times: list[list[tuple[int, int, int, int]]] = []
    for _ in range(draw(st.integers(1, 4))):
        changes: list[tuple[int, int, int, int]] = []  # (label, k, v, diff)
        for _ in range(draw(st.integers(1, 6))):
            touched = {label for label, *_ in changes}
            candidates = sorted(set(live) - touched)
            if candidates and draw(st.booleans()):
                label = draw(st.sampled_from(candidates))
                k, v, copies = live.pop(label)
                changes.extend([(label, k, v, -1)] * copies)
            else:
                label = next_label
                next_label += 1
                k, v = draw(st.integers(0, 1)), draw(st.sampled_from(INT64_EDGES))
                copies = draw(st.sampled_from([1, 2, 8]))
                live[label] = (k, v, copies)
                changes.extend([(label, k, v, 1)] * copies)
        times.append(changes)
    return times


@pytest.mark.parametrize("mode", sorted(MODES))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(times=repeated_rows())
def test_int_sums_wrap_at_64_bits_on_every_path(
    times: list[list[tuple[int, int, int, int]]], mode: str
) -> None:
    """Int sums wrap around at 64 bits, as Polars' and Pathway's do, on every path: rows
    present several times (diffs above 1) with values near the ends of the range, folded
    minibatch by minibatch, give the wrapped sum of the whole at every time (the few-row
    Python fold used to raise OverflowError on such a row)."""
    lines = ["id | k | v | __time__ | __diff__"]
    for at, changes in enumerate(times):
        lines += [f"{label} | {k} | {v} | {2 + 2 * at} | {diff}" for label, k, v, diff in changes]
    with paths(mode):
        pw.clear_graph()
        table = pw.debug.table_from_markdown("\n".join(lines))
        sums = table.groupby(table.k).reduce(
            table.k, n=pw.reducers.count(), s=pw.reducers.sum(table.v)
        )
        got: dict[int, Counter] = {}
        for time, row, diff in pw.debug.table_to_stream(sums):
            got.setdefault(time, Counter())[(row["k"], row["n"], row["s"])] += diff
    state: Counter = Counter()
    expected: Counter = Counter()  # the groups' rows, as a recomputation gives them
    for at, changes in enumerate(times):
        for _, k, v, diff in changes:
            state[(k, v)] += diff
        rows = Counter()
        for k in (0, 1):
            members = [(v, n) for (key, v), n in state.items() if key == k and n]
            if members:
                rows[(k, sum(n for _, n in members), _wrapped(sum(v * n for v, n in members)))] += 1
        delta = Counter(rows)
        delta.subtract(expected)
        change = {row: d for row, d in delta.items() if d}
        assert {row: d for row, d in got.pop(2 + 2 * at, Counter()).items() if d} == change
        expected = rows
    assert not got


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bursty_streams(), st.sampled_from(["few", "small", "aggregated"]))
def test_column_path_folds_a_few_rows_as_numpy_does(stream: list[Event], mode: str) -> None:
    """The column path's Python fold of a few rows (``fold_few``), its NumPy fold and its
    fold of deltas aggregated per group give the results a recomputation gives, float sums
    and averages included."""

    def simple(t: pw.Table) -> pw.Table:
        scaled = t.select(t.k, t.v, f=t.v * 0.1)
        return scaled.groupby(scaled.k).reduce(
            scaled.k,
            n=pw.reducers.count(),
            s=pw.reducers.sum(scaled.v),
            a=pw.reducers.avg(scaled.v),
            fs=pw.reducers.sum(scaled.f),
            fa=pw.reducers.avg(scaled.f),
        )

    def extremes(t: pw.Table) -> pw.Table:
        return t.groupby(t.k).reduce(
            t.k, n=pw.reducers.count(), lo=pw.reducers.min(t.v), hi=pw.reducers.max(t.v)
        )

    with paths(mode):
        check(simple, stream)
        check(extremes, stream)


@SETTINGS
@given(
    bursty_streams(),
    bursty_streams(label_base=100),
    st.sampled_from(["inner", "left", "right", "outer"]),
    modes,
)
def test_joins_on_both_paths(left: list[Event], right: list[Event], how: str, mode: str) -> None:
    def program(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = getattr(a, f"join_{how}")(b, a.k == b.k)
        return joined.select(lv=pw.left.v, rv=pw.right.v, k=pw.this.k, lid=a.id, rid=b.id)

    with paths(mode):
        check(program, left, right)


@SETTINGS
@given(bursty_streams(), bursty_streams(label_base=100), modes)
def test_join_variants_on_both_paths(left: list[Event], right: list[Event], mode: str) -> None:
    def two_keys_left_ids(a: pw.Table, b: pw.Table) -> pw.Table:
        unique_right = b.groupby(b.k, b.v).reduce(b.k, b.v, n=pw.reducers.count())
        return a.join_left(
            unique_right, a.k == unique_right.k, a.v == unique_right.v, id=a.id
        ).select(a.k, a.v, n=unique_right.n)

    def pipeline(a: pw.Table, b: pw.Table) -> pw.Table:
        joined = a.join_outer(b, a.k == b.k).select(
            k=pw.this.k, x=pw.coalesce(pw.left.v, 0) + pw.coalesce(pw.right.v, 0)
        )
        totals = joined.groupby(pw.this.k).reduce(pw.this.k, v=pw.reducers.sum(pw.this.x))
        per_key = a.groupby(a.k).reduce(a.k, v=pw.reducers.max(a.v))
        return per_key.update_rows(totals).filter(pw.this.v > -2)

    with paths(mode):
        check(two_keys_left_ids, left, right)
        check(pipeline, left, right)


# --- the arrangement on its own -------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 5), st.integers(0, 3), st.sampled_from([1, -1]), st.integers(0, 6)
            ),
            max_size=9,
        ),
        max_size=12,
    ),
    st.lists(st.integers(0, 5), max_size=4),
    st.integers(1, 6),
    st.integers(0, 8),
)
def test_lookup_rows_equals_lookup(
    batches: list[list[tuple[int, int, int, int]]], keys: list[int], tail_rows: int, small: int
) -> None:
    saved = arrangement.TAIL_ROWS, arrangement.SMALL_INSERT
    arrangement.TAIL_ROWS, arrangement.SMALL_INSERT = tail_rows, small
    try:
        target = arrangement.Arrangement(ignore=(TIME,))
        present: Counter = Counter()  # each row's multiplicity so far
        for generated in batches:
            # Inserted deltas are consolidated (as every batch in the engine is).
            summed: dict[tuple[int, int], list[int]] = {}
            for row_id, v, diff, time in generated:
                entry = summed.setdefault((row_id, v), [0, time])
                entry[0] += diff
                entry[1] = min(entry[1], time)
            # A collection never holds a row a negative number of times: a deletion only
            # retracts what is there (the engine's invariant; with a negative count in
            # between, which insertion a row's time belongs to is not defined).
            # Nor is it defined which copy a retraction takes from a row present several times
            # (the earliest time's or another's): a retraction removes every copy or none.
            for key, entry in summed.items():
                entry[0] = max(entry[0], -present[key])
                if entry[0] < 0 and entry[0] != -present[key]:
                    entry[0] = 0
                present[key] += entry[0]
            rows = [(i, v, d, tm) for (i, v), (d, tm) in summed.items() if d != 0]
            if rows:
                target.insert(
                    pl.DataFrame(
                        {
                            "_id": pl.Series([r[0] for r in rows], dtype=pl.UInt128),
                            "v": [r[1] for r in rows],
                            "_kh": pl.Series([r[0] % 3 for r in rows], dtype=pl.UInt64),
                            "_diff": [r[2] for r in rows],
                            "__time": [r[3] for r in rows],
                        }
                    )
                )
        khs = {k % 3 for k in keys}
        fast_rows = target.lookup_rows(khs)
        fast = Counter()
        for row in fast_rows:
            fast[row[:2]] += row[3]
        found = target.lookup(pl.Series(sorted(khs), dtype=pl.UInt64))
        slow_rows = [] if found is None else found.rows()
        slow = Counter()
        for row in slow_rows:
            slow[row[:2]] += row[3]
        assert +fast == +slow and -fast == -slow
        # Both answers are consolidated: each row once, no zero diffs.
        for rows in (fast_rows, slow_rows):
            assert len({row[:2] for row in rows}) == len(rows)
            assert all(row[3] != 0 for row in rows)
        # The time kept for a row is the smallest of its insertions' times.
        assert {row[:2]: row[4] for row in fast_rows} == {row[:2]: row[4] for row in slow_rows}
    finally:
        arrangement.TAIL_ROWS, arrangement.SMALL_INSERT = saved


def test_arrangement_keeps_timestamps_out_of_the_python_tail() -> None:
    """Datetime columns lose nanoseconds in Python; such arrangements never use the tail."""
    target = arrangement.Arrangement()
    frame = pl.DataFrame(
        {
            "_id": pl.Series([1], dtype=pl.UInt128),
            "d": pl.Series([1_000_000_001], dtype=pl.Datetime("ns")),
            "_kh": pl.Series([7], dtype=pl.UInt64),
            "_diff": [1],
        }
    )
    target.insert(frame)
    assert target._tail_count == 0 and len(target.runs) == 1
    assert target.lookup(pl.Series([7], dtype=pl.UInt64))["d"].dt.epoch("ns").to_list() == [
        1_000_000_001
    ]


# --- reducers whose values Python and Polars compute separately --------------------------------


@pytest.mark.parametrize("mode", sorted(MODES))
def test_float_and_string_reductions_agree(mode: str) -> None:
    table = pw.debug.table_from_markdown("""
          | k | s  | f    | __time__ | __diff__
        1 | 1 | b  | 1.5  | 2        | 1
        2 | 1 | a  | -0.5 | 2        | 1
        3 | 2 | zz | 2.25 | 4        | 1
        4 | 1 | c  | 4.0  | 4        | 1
        2 | 1 | a  | -0.5 | 6        | -1
        5 | 2 | y  | 3.0  | 6        | 1
    """)
    with paths(mode):
        result = table.groupby(table.k).reduce(
            table.k,
            lo=pw.reducers.min(table.s),
            hi=pw.reducers.max(table.s),
            f=pw.reducers.max(table.f),
            a=pw.reducers.avg(table.f),
            t=pw.reducers.sorted_tuple(table.s),
            n=pw.reducers.count_distinct(table.s),
        )
        stream = pw.debug.table_to_stream(result)
    final: Counter = Counter()
    for _, row, diff in stream:
        final[(row["k"], row["lo"], row["hi"], row["f"], row["a"], row["t"], row["n"])] += diff
    assert +final == Counter(
        {(1, "b", "c", 4.0, 2.75, ("b", "c"), 2): 1, (2, "y", "zz", 3.0, 2.625, ("y", "zz"), 2): 1}
    )


@pytest.mark.parametrize("mode", sorted(MODES))
def test_ndarray_values_compare_without_errors(mode: str) -> None:
    table = pw.debug.table_from_markdown("""
          | k | v | __time__ | __diff__
        1 | 1 | 1 | 2        | 1
        2 | 1 | 2 | 4        | 1
        2 | 1 | 2 | 6        | -1
    """)
    with paths(mode):
        result = table.groupby(table.k).reduce(table.k, a=pw.reducers.ndarray(table.v))
        rows = pw.debug.table_to_pandas(result)
    assert [list(v) for v in rows["a"]] == [[1]]
    assert isinstance(rows["a"].iloc[0], np.ndarray)


# --- which path runs ---------------------------------------------------------------------------


def test_streaming_deltas_take_the_python_path_and_big_batches_polars() -> None:
    """Small deltas of a plain groupby and join never reach the frame path (their state lives
    in the Python structures afterwards); a big batch goes through Polars frames."""
    from deltaflow import plan
    from deltaflow._ids import sequence_ids
    from deltaflow.engine.boundary import Source, SourceHandle
    from deltaflow.engine.runtime import Runtime
    from deltaflow.engine.stateful.join import JoinOperator
    from deltaflow.engine.stateful.reduce import ReduceOperator
    from deltaflow.table import input_table

    class Idle(Source):
        def start(self, handle: SourceHandle) -> None:
            pass

    class Event(pw.Schema):
        k: int
        v: int

    events = input_table(Event, Idle(), name="events")
    totals = events.groupby(events.k).reduce(
        events.k, n=pw.reducers.count(), top=pw.reducers.max(events.v)
    )
    joined = events.join(totals, events.k == totals.k).select(events.v, totals.n)
    seen: list[tuple[int, int, int]] = []
    pw.io.subscribe(
        joined,
        lambda key, row, time, is_addition: seen.append(
            (row["v"], row["n"], 1 if is_addition else -1)
        ),
    )
    runtime = Runtime(plan.REGISTRY.take())
    reduce_op = next(op for op in runtime.operators if isinstance(op, ReduceOperator))
    join_op = next(op for op in runtime.operators if isinstance(op, JoinOperator))
    assert reduce_op.small and reduce_op.foldable and join_op.small

    def push(time: int, start: int, keys: list[int]) -> None:
        batch = pl.DataFrame(
            [
                sequence_ids("events", start, len(keys)),
                pl.Series("k", keys),
                pl.Series("v", keys),
                pl.Series("_diff", [1] * len(keys)),
            ]
        )
        runtime._process(time, [(0, batch)])

    push(2, 0, [1, 2, 1])
    # Python state was used: group rows live in the path's NumPy columns, not yet in the
    # arrangement
    assert reduce_op._columns is not None and reduce_op._columns.dirty
    assert not reduce_op.groups.size
    assert Counter(seen) == Counter({(1, 2, 1): 2, (2, 1, 1): 1})
    seen.clear()
    from deltaflow.engine.stateful.reduce import COLUMN_DELTA_ROWS

    per_key = COLUMN_DELTA_ROWS // 3 + 100  # bigger than COLUMN_DELTA_ROWS: frame path
    push(4, 3, [k % 3 for k in range(3 * per_key)])
    assert not reduce_op._known and reduce_op._columns is None
    final: Counter = Counter()
    for v, n, diff in seen:
        final[(v, n)] += diff
    assert final[(1, 2)] == -2 and final[(1, per_key + 2)] == per_key + 2
    assert final[(0, per_key)] == per_key


def test_column_path_takes_deltas_above_the_row_limit() -> None:
    """A simple reduction keeps its NumPy group columns for deltas bigger than the row
    path's limit (up to COLUMN_DELTA_ROWS): no write-back to the arrangement, same counts."""
    from deltaflow import plan
    from deltaflow._ids import sequence_ids
    from deltaflow.engine.boundary import Source, SourceHandle
    from deltaflow.engine.runtime import Runtime
    from deltaflow.engine.stateful.reduce import (
        COLUMN_DELTA_ROWS,
        SMALL_DELTA_ROWS,
        ReduceOperator,
    )
    from deltaflow.table import input_table

    class Idle(Source):
        def start(self, handle: SourceHandle) -> None:
            pass

    class Word(pw.Schema):
        k: int

    words = input_table(Word, Idle(), name="words")
    counts = words.groupby(words.k).reduce(words.k, n=pw.reducers.count())
    final: Counter = Counter()
    pw.io.subscribe(
        counts,
        lambda key, row, time, is_addition: final.update(
            {(row["k"], row["n"]): 1 if is_addition else -1}
        ),
    )
    runtime = Runtime(plan.REGISTRY.take())
    reduce_op = next(op for op in runtime.operators if isinstance(op, ReduceOperator))
    size = (SMALL_DELTA_ROWS + COLUMN_DELTA_ROWS) // 2
    assert SMALL_DELTA_ROWS < size <= COLUMN_DELTA_ROWS
    for step in range(3):
        keys = [(i * 7 + step) % 500 for i in range(size)]
        batch = pl.DataFrame(
            [
                sequence_ids("words", step * size, size),
                pl.Series("k", keys),
                pl.Series("_diff", [1] * size),
            ]
        )
        runtime._process(2 * (step + 1), [(0, batch)])
        assert reduce_op._columns is not None and reduce_op._columns.dirty
        assert not reduce_op.groups.size  # never written back: no frame-path step ran
    expected = Counter((i * 7 + s) % 500 for s in range(3) for i in range(size))
    assert {k: n for (k, n), d in final.items() if d > 0} == dict(expected)
