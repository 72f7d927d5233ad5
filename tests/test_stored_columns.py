"""The row store's column stores, held to a dict of values by slot."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow._stored_columns as columns_module
from deltaflow._stored_columns import ArrayColumn, TextColumn, stored_column

_SLOTS = 12
_text = st.none() | st.text(max_size=4) | st.sampled_from(["a" * 40, "é" * 20])
_ops = st.lists(
    st.one_of(
        # A batch: distinct slots (a row store writes each slot once per batch).
        st.tuples(
            st.just("write"),
            st.lists(
                st.tuples(st.integers(0, _SLOTS - 1), _text), max_size=8, unique_by=lambda x: x[0]
            ),
        ),
        st.tuples(st.just("set"), st.integers(0, _SLOTS - 1), _text),
        st.tuples(
            st.just("release"), st.lists(st.integers(0, _SLOTS - 1), max_size=4, unique=True)
        ),
        st.tuples(st.just("reset")),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops)
def test_text_column_behaves_as_a_dict_of_values(ops: list[tuple]) -> None:
    # Tiny limits, so that loose values, merged small chunks and compactions all happen.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(columns_module, "_LOOSE_VALUES", 3)
        patch.setattr(columns_module, "_SMALL_CHUNK", 4)
        patch.setattr(columns_module, "_DEAD_VALUES", 5)
        column = stored_column("s", pl.String)
        assert isinstance(column, TextColumn)
        column.grow(_SLOTS)
        model: dict[int, str | None] = {}
        for op in ops:
            if op[0] == "write":
                slots = np.array([s for s, _ in op[1]], dtype=np.int64)
                values = column.values_of(pl.Series("x", [v for _, v in op[1]], dtype=pl.String))
                held = [s for s, _ in op[1] if s in model]
                if held:
                    mask = np.isin(slots, held)
                    same = column.same(slots[mask], column.pick(values, mask))
                    expected = [model[s] == v for s, v in op[1] if s in model]
                    assert same.tolist() == expected
                column.write(slots, values)
                model.update(op[1])
            elif op[0] == "set":
                column.set(op[1], op[2])
                model[op[1]] = op[2]
            elif op[0] == "release":
                gone = [s for s in op[1] if s in model]
                column.release(np.array(gone, dtype=np.int64))
                for slot in gone:
                    del model[slot]
            else:
                column.reset()
                column.grow(_SLOTS)
                model.clear()
            # Every value reads back, one at a time and as a batch.
            slots = sorted(model)
            assert [column.get(s) for s in slots] == [model[s] for s in slots]
            read = column.read(np.array(slots, dtype=np.int64))
            assert read.name == "s" and read.dtype == pl.String
            assert read.to_list() == [model[s] for s in slots]
            # Every position is a live value or counted as replaced; replaced values never
            # outnumber the live ones by much: compaction drops them.
            assert column._stored + len(column._loose) - column._dead == len(model)
            assert int(np.count_nonzero(column._where >= 0)) == len(model)
            assert column._dead <= 4 * max(5, len(model)) + 3
            assert len(column._chunks) <= len(model) + 3


def test_text_column_compacts_into_one_chunk_in_slot_order() -> None:
    column = TextColumn("s", pl.String())
    column.grow(200_000)
    slots = np.arange(100_000, dtype=np.int64)
    for text in ("a", "b"):
        column.write(slots, pl.Series([text] * 100_000))
    assert column._dead == 100_000 and len(column._chunks) == 2  # as many as live: kept
    column.write(slots[::-1], pl.Series([str(i) for i in range(100_000)]))
    # 200,000 replaced values: more than the live ones and than _DEAD_VALUES.
    assert column._dead == 0 and len(column._chunks) == 1 and column._stored == 100_000
    assert column.read(np.array([0, 99_999])).to_list() == ["99999", "0"]
    assert column._where[:3].tolist() == [0, 1, 2]


def test_text_is_kept_by_the_text_column_and_other_types_by_arrays() -> None:
    assert isinstance(stored_column("s", pl.String), TextColumn)
    for dtype in (pl.Int64(), pl.Float32, pl.List(pl.Int64()), pl.Datetime("us"), pl.Object):
        assert isinstance(stored_column("x", dtype), ArrayColumn)
