"""RowsById: the input session's current row per id, kept out of the garbage collector's way."""

from __future__ import annotations

import gc

from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow._row_store import RowsById

_ids = st.integers(min_value=0, max_value=40)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _ids, st.integers()),
        st.tuples(st.just("put_rows"), st.lists(st.tuples(_ids, st.integers()), max_size=12)),
        st.tuples(st.just("replace"), st.lists(st.tuples(_ids, st.integers()), max_size=12)),
        st.tuples(st.just("pop"), _ids),
        st.tuples(st.just("clear")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_behaves_as_a_dict_of_rows(ops: list[tuple]) -> None:
    store = RowsById()
    model: dict[int, tuple[int, int]] = {}
    for op in ops:
        if op[0] == "put":
            row = (op[1], op[2])
            store.put(op[1], row)
            model[op[1]] = row
        elif op[0] == "put_rows":
            rows = [(key, value) for key, value in op[1]]
            store.put_rows(rows)
            model.update((row[0], row) for row in rows)
        elif op[0] == "replace":
            rows = [(key, value) for key, value in op[1]]
            expected = []
            for row in rows:  # what one put after another replaces
                if row[0] in model:
                    expected.append(model[row[0]])
                model[row[0]] = row
            assert store.replace_rows(rows) == expected
        elif op[0] == "pop":
            assert store.pop(op[1]) == model.pop(op[1], None)
        else:
            store.clear()
            model.clear()
        assert len(store) == len(model)
    assert sorted(store.values()) == sorted(model.values())
    for key in range(41):
        assert store.get(key) == model.get(key)


def test_grows_and_reuses_freed_slots() -> None:
    store = RowsById()
    store.put_rows([(i, f"row {i}") for i in range(5000)])  # past the first allocation
    for i in range(0, 5000, 2):
        assert store.pop(i) == (i, f"row {i}")
    used = store._next
    store.put_rows([(i, "again") for i in range(0, 5000, 2)])
    assert store._next == used  # the freed slots were taken again
    assert store.get(4) == (4, "again") and store.get(5) == (5, "row 5")
    assert len(store) == 5000


def test_storing_fresh_rows_leaves_nothing_big_for_the_collector() -> None:
    store = RowsById()
    store.put_rows([(i, str(i)) for i in range(10_000)])
    gc.collect()
    store.put(10_001, (10_001, "fresh"))  # a new, tracked tuple
    store.put(3, (3, "replaced"))
    # The id -> slot map holds only ints and the rows sit in a NumPy array: neither is ever
    # walked by a collection, whatever the number of rows.
    assert not gc.is_tracked(store._slots)
    assert not gc.is_tracked(store._rows)
