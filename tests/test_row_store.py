"""RowsById: the input session's current row per id, by column, out of the collector's way."""

from __future__ import annotations

import datetime as dt
import gc
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow import _types as t
from deltaflow._ids import ID_DTYPE, fmix_int, hash_columns
from deltaflow._row_store import RowsById, id_halves, ids_of_halves
from deltaflow._stored_columns import ArrayColumn, TextColumn

# Ids spread over the whole 128-bit range (both halves matter), a few of them so that
# operations meet the same ids again.
_IDS = [fmix_int(i) for i in range(12)] + [0, 1, 2**64 - 1, 2**64, 2**128 - 1]
#: The ids of int keys 0..199 (a store with an ``int_key`` keeps them in a dense table).
_KEY_IDS = hash_columns(pl.DataFrame({"k": range(200)}), [("k", t.INT)]).to_list()
_COLUMNS = [
    ("n", pl.Int64()),
    ("x", pl.Float64()),
    ("s", pl.String()),
    ("b", pl.Boolean()),
    ("t", pl.Datetime("us")),
]

_id = st.one_of(st.sampled_from(_IDS), st.sampled_from(_KEY_IDS[:12]))
_value = st.tuples(
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), st.floats(allow_nan=False)),
    st.one_of(st.none(), st.text(max_size=3)),
    st.one_of(st.none(), st.booleans()),
    st.one_of(
        st.none(),
        st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    ),
)
_rows = st.lists(st.tuples(_id, _value), max_size=10)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _rows),
        st.tuples(st.just("replace"), _rows),
        # Many serial keys at once (more than are coded in Python), some seen before.
        st.tuples(
            st.just("replace"),
            st.builds(
                lambda start, count, value: [(i, value) for i in _KEY_IDS[start : start + count]],
                st.integers(0, 100),
                st.integers(60, 100),
                _value,
            ),
        ),
        # Rows keyed by their own n (ids from the key), which the store may read instead.
        st.tuples(
            st.just("keyed"),
            st.builds(
                lambda start, count, value: [
                    (_KEY_IDS[k], (k, *value[1:])) for k in range(start, start + count)
                ],
                st.integers(0, 120),
                st.sampled_from([1, 3, 70]),
                _value,
            ),
        ),
        st.tuples(st.just("pop"), st.lists(_id, max_size=6)),
        st.tuples(st.just("pop"), st.lists(st.sampled_from(_KEY_IDS), max_size=80)),
        st.tuples(st.just("take_all")),
        st.tuples(st.just("clear")),
    ),
    max_size=40,
)


def _frame(rows: list[tuple[int, tuple]]) -> pl.DataFrame:
    columns = [pl.Series("_id", [i for i, _ in rows], dtype=ID_DTYPE)]
    for position, (name, dtype) in enumerate(_COLUMNS):
        columns.append(pl.Series(name, [v[position] for _, v in rows], dtype=dtype))
    return pl.DataFrame(columns)


def _rows_of(frame: pl.DataFrame | None) -> list[tuple]:
    if frame is None:
        return []
    assert frame.columns == ["_id", *(name for name, _ in _COLUMNS)]
    assert frame.dtypes == [ID_DTYPE, *(dtype for _, dtype in _COLUMNS)]
    return [(row[0], tuple(row[1:])) for row in frame.rows()]


def _same(a: tuple, b: tuple) -> bool:
    """Rows equal as consolidation sees them (0.0 and -0.0 differ)."""
    return [_exact(x) for x in a] == [_exact(y) for y in b]


def _exact(value: object) -> object:
    return (value, math.copysign(1.0, value)) if isinstance(value, float) else value


def _store(int_keys: bool = False) -> RowsById:
    return RowsById("_id", _COLUMNS, int_key="n" if int_keys else None)


@pytest.mark.parametrize("int_keys", [False, True])
@settings(max_examples=300, deadline=None)
@given(ops=_ops)
def test_behaves_as_a_dict_of_rows(int_keys: bool, ops: list[tuple]) -> None:
    store = _store(int_keys)
    model: dict[int, tuple] = {}
    for op in ops:
        if op[0] in ("put", "replace", "keyed"):
            rows = op[1]
            before = dict(model)
            model.update(rows)  # the later row of an id wins
            if op[0] == "put":
                store.put(_frame(rows))
                continue
            replaced = store.replace(_frame(rows), ids_from_key=op[0] == "keyed")
            assert replaced.exact  # every column type compares exactly
            # Of the batch, the last row of each id, unless equal to the row it replaces;
            # and the rows these replace: the changes of storing the rows one by one, net.
            last = {
                k: v for k, v in dict(rows).items() if k not in before or not _same(v, before[k])
            }
            assert sorted(_rows_of(replaced.old)) == sorted(
                (k, before[k]) for k in last if k in before
            )
            assert sorted(_rows_of(replaced.new)) == sorted(last.items())
        elif op[0] == "pop":
            expected = []
            for key in op[1]:
                if key in model:
                    expected.append((key, model.pop(key)))
            ids = pl.Series("_id", op[1], dtype=ID_DTYPE)
            assert _rows_of(store.pop(ids)) == expected
        elif op[0] == "take_all":
            assert sorted(_rows_of(store.take_all())) == sorted(model.items())
            model.clear()
        else:
            store.clear()
            model.clear()
        assert len(store) == len(model)
    assert sorted(_rows_of(store.take_all())) == sorted(model.items())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**128 - 1), max_size=20))
def test_halves_of_ids_give_the_ids_back(values: list[int]) -> None:
    ids = pl.Series("_id", values, dtype=ID_DTYPE)
    low, high = id_halves(ids)
    assert [int(lo) + (int(hi) << 64) for lo, hi in zip(low, high, strict=True)] == values
    assert ids_of_halves(low, high, "_id").to_list() == values


def test_grows_and_reuses_freed_slots() -> None:
    store = _store()
    first = [(fmix_int(i), (i, None, f"row {i}", None, None)) for i in range(5000)]
    store.put(_frame(first))  # past the first allocation
    evens = pl.Series("_id", [fmix_int(i) for i in range(0, 5000, 2)], dtype=ID_DTYPE)
    assert _rows_of(store.pop(evens)) == first[::2]
    used = store._next
    store.put(_frame([(fmix_int(i), (-i, 1.5, "again", True, None)) for i in range(0, 5000, 2)]))
    assert store._next == used  # the freed slots were taken again
    replaced = store.replace(_frame([(fmix_int(4), (0, None, None, None, None))]))
    assert _rows_of(replaced.old) == [(fmix_int(4), (-4, 1.5, "again", True, None))]
    assert len(store) == 5000


def test_storing_fresh_rows_leaves_nothing_big_for_the_collector() -> None:
    store = _store()
    store.put(_frame([(fmix_int(i), (i, 0.5, str(i), True, None)) for i in range(10_000)]))
    gc.collect()
    store.put(_frame([(fmix_int(10_001), (1, 1.0, "fresh", False, None))]))
    store.replace(_frame([(fmix_int(3), (3, 3.0, "replaced", None, None))]))
    # The ids sit in a C hash table, their slots and the values in NumPy arrays or (text) in
    # a few Polars Series: never walked by a collection, whatever the number of rows.
    assert not gc.is_tracked(store._ids._khash)
    assert not gc.is_tracked(store._ids._slot_of)
    for column in store._columns:
        if isinstance(column, TextColumn):
            assert not gc.is_tracked(column._where)
            assert sum(series is not None for series in column._series) <= 2
        else:
            assert isinstance(column, ArrayColumn)
            assert not gc.is_tracked(column.values)


def test_rows_of_python_objects_are_not_compared() -> None:
    store = RowsById("_id", [("n", pl.Int64()), ("l", pl.List(pl.Int64()))])
    frame = pl.DataFrame(
        [
            pl.Series("_id", [5, 6], dtype=ID_DTYPE),
            pl.Series("n", [1, 2]),
            pl.Series("l", [[1], None], dtype=pl.List(pl.Int64())),
        ]
    )
    store.put(frame)
    replaced = store.replace(frame)
    # Not known to be equal: both rows are in old and new, for consolidation to cancel.
    assert not replaced.exact
    assert replaced.old is not None and replaced.old.rows() == frame.rows()
    assert replaced.new.rows() == frame.rows()


_PYTHON_COLUMNS = [
    ("n", pl.Int64()),
    ("x", pl.Float64()),
    ("f", pl.Float32()),
    ("u", pl.UInt64()),
    ("s", pl.String()),
    ("b", pl.Boolean()),
]
_python_value = st.tuples(
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), st.sampled_from([0.0, -0.0, math.nan, 1.5, -2.25, math.inf])),
    st.one_of(st.none(), st.sampled_from([0.0, -0.0, 0.5, math.nan])),
    st.one_of(st.none(), st.integers(0, 2**64 - 1)),
    st.one_of(st.none(), st.text(max_size=3)),
    st.one_of(st.none(), st.booleans()),
)


def _python_frame(rows: list[tuple[int, tuple]]) -> pl.DataFrame:
    columns = [pl.Series("_id", [i for i, _ in rows], dtype=ID_DTYPE)]
    for position, (name, dtype) in enumerate(_PYTHON_COLUMNS):
        columns.append(pl.Series(name, [v[position] for _, v in rows], dtype=dtype))
    return pl.DataFrame(columns)


def _bits(frame: pl.DataFrame) -> list[tuple]:
    """Rows with floats told apart as consolidation does (0.0 from -0.0; NaN equal to NaN)."""
    return [
        tuple(("nan",) if isinstance(v, float) and v != v else _exact(v) for v in row)
        for row in frame.rows()
    ]


@pytest.mark.parametrize("int_keys", [False, True])
@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.lists(st.tuples(_id, _python_value), max_size=8), max_size=25))
def test_changes_of_a_few_rows_are_those_of_replace(
    int_keys: bool, batches: list[list[tuple]]
) -> None:
    few, general = (
        RowsById("_id", _PYTHON_COLUMNS, int_key="n" if int_keys else None) for _ in range(2)
    )
    for rows in batches:
        frame = _python_frame(rows)
        changes = few.changes_of_few(frame, "_diff")
        assert changes is not None
        delta, replaced_rows, exact = changes
        replaced = general.replace(frame)
        assert exact and replaced.exact
        old = [] if replaced.old is None else _bits(replaced.old)
        new = _bits(replaced.new)
        assert replaced_rows == len(old)
        # The replaced rows first (-1), then the rows that changed something (+1).
        assert delta.columns == ["_id", *(n for n, _ in _PYTHON_COLUMNS), "_diff"]
        assert delta.dtypes == [ID_DTYPE, *(d for _, d in _PYTHON_COLUMNS), pl.Int64]
        assert delta["_diff"].to_list() == [-1] * len(old) + [1] * len(new)
        assert _bits(delta.drop("_diff")) == old + new
        assert len(few) == len(general)
    # Both hold the same rows at the end.
    held = [store.take_all() for store in (few, general)]
    assert [None if h is None else sorted(_bits(h), key=repr) for h in held] == [
        None if held[1] is None else sorted(_bits(held[1]), key=repr)
    ] * 2


def test_a_few_rows_with_dates_or_python_objects() -> None:
    # Dates are stored converted: the few-rows path leaves them to replace().
    assert _store().changes_of_few(_frame([(5, (1, None, None, None, None))]), "_diff") is None
    store = RowsById("_id", [("n", pl.Int64()), ("l", pl.List(pl.Int64()))])
    frame = pl.DataFrame(
        [
            pl.Series("_id", [5, 6], dtype=ID_DTYPE),
            pl.Series("n", [1, 2]),
            pl.Series("l", [[1], None], dtype=pl.List(pl.Int64())),
        ]
    )
    changes = store.changes_of_few(frame, "_diff")
    assert changes is not None and changes[1:] == (0, True)
    delta, replaced_rows, exact = store.changes_of_few(frame, "_diff") or (None, 0, True)
    # A list is not compared here: row 5 is retracted and inserted again (not exact); row 6
    # holds None both times, which is known to be no change.
    assert delta is not None and (replaced_rows, exact) == (1, False)
    assert delta.rows() == [(5, 1, [1], -1), (5, 1, [1], 1)]
