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
    # Tiny limits, so that loose values, open and closed chunks, re-gathering and dropping of
    # chunks all happen.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(columns_module, "_LOOSE_VALUES", 3)
        patch.setattr(columns_module, "_CHUNK", 4)
        patch.setattr(columns_module, "_FEW_READ", 2)
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
            # Each chunk counts the values in use; replaced values are dropped as they go, so
            # that they never outnumber the ones in use by more than a few chunks.
            live = column._live[: len(column._series)]
            assert int(live.sum()) == len(model)
            where = column._where[column._where >= 0]
            assert np.array_equal(np.bincount(where >> 32, minlength=len(live)), live)
            # Closed chunks no more than half in use wait to be re-gathered, and a batch
            # operation leaves none waiting while it has credit for them.
            for chunk, series in enumerate(column._series):
                if series is not None and 2 * live[chunk] <= column._size[chunk]:
                    assert chunk in column._sparse
            if op[0] in ("write", "release"):
                assert not (column._sparse and column._credit > 0)
            written = int(column._size[: len(column._series)].sum())
            assert written - len(model) <= len(model) + 3 * 4 + 3


def test_text_column_drops_replaced_values_a_chunk_at_a_time() -> None:
    column = TextColumn("s", pl.String())
    column.grow(200_000)
    slots = np.arange(100_000, dtype=np.int64)
    column.write(slots, pl.Series(["a"] * 100_000))
    chunks = [c for c in column._series if c is not None]
    assert [len(c) for c in chunks] == [16_384] * 6  # slices of the batch
    assert column._series[column._open] is None and column._size[column._open] == 1_696
    # Every value replaced: the old chunks are dropped whole, without a gather.
    column.write(slots[::-1], pl.Series([str(i) for i in range(100_000)]))
    assert sum(c is not None for c in column._series) == 6
    assert column._size[column._open] == 2 * 1_696 and column._live[column._open] == 1_696
    assert column.read(np.array([0, 99_999, 5] * 20)).to_list() == ["99999", "0", "99994"] * 20
    # Every other value replaced one at a time: chunks half in use are re-gathered, a step
    # of at most a few chunks per operation, and the replaced values do not pile up.
    for slot in range(0, 100_000, 2):
        column.set(slot, "x")
    written = int(column._size[: len(column._series)].sum())
    assert written - 100_000 <= 2 * 16_384
    assert column.get(0) == "x" and column.get(1) == "99998"
    # A batch replacing every odd value pays for re-gathering what it leaves half in use.
    column.write(slots[1::2], pl.Series(["y"] * 50_000))
    assert not column._sparse
    written = int(column._size[: len(column._series)].sum())
    assert written - 100_000 <= 2 * 16_384
    assert column.read(np.arange(0, 100_000, 1000)).to_list() == [
        "x" if i % 2 == 0 else str(99_999 - i) for i in range(0, 100_000, 1000)
    ]


def test_text_is_kept_by_the_text_column_and_other_types_by_arrays() -> None:
    assert isinstance(stored_column("s", pl.String), TextColumn)
    for dtype in (pl.Int64(), pl.Float32, pl.List(pl.Int64()), pl.Datetime("us"), pl.Object):
        assert isinstance(stored_column("x", dtype), ArrayColumn)
