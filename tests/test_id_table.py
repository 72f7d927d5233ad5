"""IdTable: slots by 128-bit id (a khash of low halves, overflow ids), against a dict model."""

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


@contextmanager
def _rebuilds_at(free: int) -> Iterator[None]:
    kept = _id_table._REBUILD_FREE
    _id_table._REBUILD_FREE = free
    try:
        yield
    finally:
        _id_table._REBUILD_FREE = kept


def _check_against_a_dict(ops: list[tuple]) -> None:
    table = IdTable()
    model: dict[tuple[int, int], int] = {}
    next_slot = 0
    for op in ops:
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
