"""The key hashes of a small delta, computed on its Series, equal the expression's."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow.engine.stateful import keys
from deltaflow.engine.stateful.keys import key_hash_expr, key_hash_series

_COLUMNS = {
    "i": (st.integers(-(2**63), 2**63 - 1), pl.Int64),
    "s": (st.text(max_size=6), pl.String),
    "f": (st.floats(allow_nan=True, allow_infinity=True), pl.Float64),
    "b": (st.booleans(), pl.Boolean),
    "p": (st.integers(0, 2**128 - 1), pl.UInt128),  # row ids: Pointer keys
    "t": (st.integers(-(2**62), 2**62), pl.Datetime("ns")),
    "l": (st.lists(st.integers(-5, 5), max_size=3), pl.List(pl.Int64)),
}


@st.composite
def _frames(draw: st.DrawFn) -> pl.DataFrame:
    names = draw(st.lists(st.sampled_from(sorted(_COLUMNS)), min_size=1, max_size=4, unique=True))
    rows = draw(st.integers(1, 6))
    return pl.DataFrame(
        [
            pl.Series(
                name,
                draw(st.lists(st.none() | _COLUMNS[name][0], min_size=rows, max_size=rows)),
                dtype=_COLUMNS[name][1],
            )
            for name in names
        ]
    )


@settings(max_examples=150, deadline=None)
@given(_frames())
def test_series_hashes_equal_the_expression(frame: pl.DataFrame) -> None:
    expected = frame.select(key_hash_expr(frame.columns)).to_series().to_list()
    hashed = key_hash_series(frame.get_columns())
    assert hashed is not None
    assert hashed.name == keys.KH
    assert hashed.dtype == pl.UInt64
    assert hashed.to_list() == expected


def test_the_shortcut_is_checked_against_this_polars() -> None:
    # The import-time check passed with the Polars the project pins; were it to fail, the
    # Series' own hash (a query) would be used and the test above still holds.
    assert keys._hash_rows_agrees()


def test_python_object_keys_have_no_series_hash() -> None:
    objects = pl.Series("o", [object()], dtype=pl.Object)
    assert key_hash_series([objects]) is None
    assert key_hash_series([]) is None
