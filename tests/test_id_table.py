"""IdTable: slots by 128-bit id (dense mode; a khash of low halves, overflow ids), against a
dict model."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deltaflow import _id_table
from deltaflow._id_table import IdTable

# Ids with equal low halves (overflow ids), equal high halves, the extremes of the 64-bit
# halves, and many ids at once (the label arrays grow): labels freed and given back,
# overflow ids whose label's owner goes away, and rebuilds are exercised.
_TOP = (1 << 64) - 1
_POOL = (
    [(i, 0) for i in range(8)]
    + [(0, i) for i in range(1, 8)]
    + [(i, i) for i in range(8)]
    + [(_TOP, 0), (_TOP, _TOP), (1 << 63, 1), (1 << 63, 0), ((1 << 63) - 1, 5)]
)
_id = st.one_of(st.sampled_from(_POOL), st.tuples(st.integers(0, 3000), st.integers(0, 2)))
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(_id, max_size=700)),
        st.tuples(st.just("add_few"), st.lists(_id, max_size=8, unique=True)),
        st.tuples(st.just("remove"), st.lists(st.sampled_from(_POOL), max_size=6)),
        st.tuples(st.just("remove"), st.lists(_id, max_size=40)),
        st.tuples(st.just("remove_share"), st.integers(2, 6)),
        st.tuples(st.just("clear")),
    ),
    max_size=25,
)


def _halves(ids: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([lo for lo, _ in ids], dtype=np.uint64),
        np.array([hi for _, hi in ids], dtype=np.uint64),
    )


@settings(max_examples=150, deadline=None)
@given(_ops)
@example(
    [("add", [(1, 1), (2, 2), (3, 3)]), ("remove", [(1, 1)]), ("add", [(4, 4), (2, 2), (4, 4)])]
)
def test_behaves_as_a_dict(ops: list[tuple]) -> None:
    with _rebuilds_at(8):  # free labels past 8 (and past the live ids) rebuild the table
        _check_against_a_dict(ops)


# Dense mode: ids with a high half of 0 and small low halves (the codes of serial int keys),
# in runs or shuffled, repeated within a batch, and now and then one that does not fit (a
# high half, or a low half past the array's limit), which moves the table to khash.
_small = st.tuples(st.integers(0, 200), st.just(0))
_dense_id = st.one_of(
    _small, _small, _small, st.sampled_from(_POOL), st.tuples(st.integers(0, 5000), st.just(0))
)
_serial = st.builds(
    lambda start, count: [(start + i, 0) for i in range(count)],
    st.one_of(st.integers(0, 150), st.integers(10**6, 10**6 + 150)),  # from 0, or far from it
    st.integers(1, 120),
)
_dense_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), _serial),
        st.tuples(st.just("add"), st.lists(_small, max_size=60)),
        st.tuples(st.just("add"), st.lists(_dense_id, max_size=60)),
        st.tuples(
            st.just("add"),
            st.lists(st.tuples(st.integers(10**6 - 5, 10**6 + 300), st.just(0)), max_size=60),
        ),
        st.tuples(st.just("add_few"), st.lists(_dense_id, max_size=8, unique=True)),
        st.tuples(st.just("add_few"), st.lists(_small, max_size=8, unique=True)),
        st.tuples(st.just("remove"), st.lists(_small, max_size=40)),
        st.tuples(st.just("remove_share"), st.integers(2, 6)),
        st.tuples(st.just("clear")),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(_dense_ops)
@example([("add", [(3, 0), (1, 0), (3, 0)]), ("add", [(1, 0), (2, 0), (2, 0), (70, 0)])])
@example([("add", [(5, 0), (6, 0)]), ("remove", [(5, 0)]), ("add_few", [(9, 1), (6, 0)])])
def test_dense_mode_behaves_as_a_dict(ops: list[tuple]) -> None:
    with _rebuilds_at(8), _dense_limits(cells=64, per_id=2):
        _check_against_a_dict(ops, dense_below=64)


@contextmanager
def _rebuilds_at(free: int) -> Iterator[None]:
    kept = _id_table._REBUILD_FREE
    _id_table._REBUILD_FREE = free
    try:
        yield
    finally:
        _id_table._REBUILD_FREE = kept


@contextmanager
def _dense_limits(cells: int, per_id: int) -> Iterator[None]:
    kept = _id_table._DENSE_CELLS, _id_table._DENSE_PER_ID
    _id_table._DENSE_CELLS, _id_table._DENSE_PER_ID = cells, per_id
    try:
        yield
    finally:
        _id_table._DENSE_CELLS, _id_table._DENSE_PER_ID = kept


def _check_against_a_dict(ops: list[tuple], dense_below: int = 0) -> None:
    """Run ``ops`` on a table and on a dict. With ``dense_below``: while every id added
    since the last clear has a high half of 0 and a low half below it, the table must be
    in dense mode."""
    table = IdTable()
    model: dict[tuple[int, int], int] = {}
    next_slot = 0
    fits_dense = True
    for op in ops:
        if op[0] in ("add", "add_few"):
            fits_dense &= all(hi == 0 and lo < dense_below for lo, hi in op[1])
        elif op[0] == "clear":
            fits_dense = True
        if op[0] == "add":
            ids = op[1]
            given: dict[int, int] = {}  # position -> the slot new_slots gave it

            def new_slots(positions: np.ndarray, given: dict[int, int] = given) -> np.ndarray:
                nonlocal next_slot
                slots = np.arange(next_slot, next_slot + len(positions), dtype=np.int64)
                next_slot += len(positions)
                for position, slot in zip(positions.tolist(), slots.tolist(), strict=True):
                    assert position not in given
                    given[position] = slot
                return slots

            slots, held = table.find_or_add(*_halves(ids), new_slots)
            firsts = {}  # new id -> its first position
            for position, key in enumerate(ids):
                if key not in model:
                    firsts.setdefault(key, position)
            # A slot was asked for exactly the first occurrence of each id not held.
            assert sorted(given) == sorted(firsts.values())
            assert held.tolist() == [key in model for key in ids]
            for key, position in firsts.items():
                model[key] = given[position]
            assert slots.tolist() == [model[key] for key in ids]
        elif op[0] == "add_few":
            ids = op[1]
            added: list[int] = []

            def new_slot(added: list[int] = added) -> int:
                nonlocal next_slot
                next_slot += 1
                added.append(next_slot - 1)
                return next_slot - 1

            slots_, held_ = table.find_or_add_values(
                [lo for lo, _ in ids], [hi for _, hi in ids], new_slot
            )
            assert held_ == [key in model for key in ids]
            fresh = [key for key in ids if key not in model]
            assert len(added) == len(fresh)
            model.update(zip(fresh, added, strict=True))
            assert slots_ == [model[key] for key in ids]
        elif op[0] == "remove_share":  # all but one id in k: free labels pile up
            gone = [key for i, key in enumerate(sorted(model)) if i % op[1]]
            table.remove(*_halves(gone))
            for key in gone:
                del model[key]
        elif op[0] == "remove":
            found = table.find(*_halves(op[1]))
            assert found.tolist() == [model.get(i, -1) for i in op[1]]
            table.remove(*_halves(list(dict.fromkeys(i for i in op[1] if i in model))))
            for key in op[1]:
                model.pop(key, None)
        else:
            table.clear()
            model.clear()
        assert len(table) == len(model)
        if dense_below and fits_dense:
            assert table._dense is not None
        low, high, slots = table.entries()
        held = zip(low.tolist(), high.tolist(), slots.tolist(), strict=True)
        assert sorted(((lo, hi), s) for lo, hi, s in held) == sorted(model.items())
        everything = [*_POOL, *model]  # also past the cells of removed ids
        found = table.find(*_halves(everything))
        assert found.tolist() == [model.get(i, -1) for i in everything]


def test_arrays_are_not_tracked_by_the_collector() -> None:
    table = IdTable()
    table.find_or_add(*_halves([(i, 7) for i in range(5000)]), lambda at: at)
    assert not gc.is_tracked(table._khash)
    assert not gc.is_tracked(table._slot_of)


def test_dense_mode_starts_where_an_empty_tables_keys_start() -> None:
    # Serial keys far from 0 (a sequence that did not start at 0) stay dense; a key below
    # the window's start moves the table to khash, with every id kept.
    with _dense_limits(cells=64, per_id=2):
        table = IdTable()
        start = 5 * 10**9
        low = np.arange(start, start + 100, dtype=np.uint64)
        high = np.zeros(100, dtype=np.uint64)
        slots, held = table.find_or_add(low, high, lambda at: at + 7)
        assert table._dense is not None and len(table._dense) < 1000
        assert slots.tolist() == list(range(7, 107)) and not held.any()
        later = np.arange(start + 50, start + 150, dtype=np.uint64)  # half of them held
        more, held = table.find_or_add(later, high, lambda at: at + 200)
        assert table._dense is not None
        assert more.tolist() == [*range(57, 107), *range(250, 300)]
        assert held.tolist() == [True] * 50 + [False] * 50
        found, _ = table.find_or_add_values([start - 1, start + 3], [0, 0], lambda: 999)
        assert table._dense is None  # start - 1 is below the window
        assert found == [999, 10]
        assert table.find(low[:2], high[:2]).tolist() == [7, 8]
        assert len(table) == 151


def test_dense_mode_up_to_the_last_low_half() -> None:
    # The codes of negative int keys are just below 2**64: the window's arithmetic must not
    # wrap at the top.
    table = IdTable()
    low = np.arange(_TOP - 99, _TOP - 49, dtype=np.uint64)
    high = np.zeros(50, dtype=np.uint64)
    slots, _ = table.find_or_add(low, high, lambda at: at)
    assert table._dense is not None and len(table._dense) <= 1 << 16
    assert slots.tolist() == list(range(50))
    assert table.find_or_add_values([_TOP - 60, _TOP], [0, 0], lambda: 500) == (
        [39, 500],
        [True, False],
    )
    assert table._dense is not None
    entries = table.entries()
    assert entries[0].tolist() == [*low.tolist(), _TOP]
    assert entries[2].tolist() == [*range(50), 500]
    assert table.find(np.array([_TOP, 0], dtype=np.uint64), high[:2]).tolist() == [500, -1]
