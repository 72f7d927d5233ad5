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
    "d": (st.integers(-(2**63), 2**63 - 1), pl.Duration("us")),
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
    expected = frame.select(key_hash_expr(frame.columns, frame.dtypes)).to_series().to_list()
    hashed = key_hash_series(frame.get_columns())
    assert hashed is not None
    assert hashed.name == keys.KH
    assert hashed.dtype == pl.UInt64
    assert hashed.to_list() == expected


@settings(max_examples=150, deadline=None)
@given(_frames())
def test_hashes_of_python_values_equal_the_expression(frame: pl.DataFrame) -> None:
    """Int64 keys given as Python values (a live update's) hash as the expression does;
    keys of other types are left to the Series."""
    hashed = keys.key_hashes_of_values(
        [column.to_list() for column in frame.get_columns()], frame.dtypes
    )
    if any(dtype != pl.Int64 for dtype in frame.dtypes):
        assert hashed is None
        return
    expected = frame.select(key_hash_expr(frame.columns, frame.dtypes)).to_series().to_list()
    assert hashed == expected


def test_the_shortcut_is_checked_against_this_polars() -> None:
    # The import-time check passed with the Polars the project pins; were it to fail, the
    # Series' own hash (a query) would be used and the test above still holds.
    assert keys._hash_rows_agrees()


def test_python_object_keys_have_no_series_hash() -> None:
    objects = pl.Series("o", [object()], dtype=pl.Object)
    assert key_hash_series([objects]) is None
    assert key_hash_series([]) is None


def test_int_keys_are_multiplied_alike_in_python_and_polars() -> None:
    # Integer keys take the multiplication (not Polars' hash): the small path computes it in
    # Python, and both must agree on the extremes, on negatives and on null.
    assert keys._multiplication_agrees()
    values = [0, 1, -1, 7, 2**63 - 1, -(2**63), None, 10**18]
    column = pl.Series("k", values, dtype=pl.Int64)
    by_polars = column.to_frame().select(key_hash_expr(["k"], [pl.Int64])).to_series()
    assert key_hash_series([column]).to_list() == by_polars.to_list()
    # (and above the Python limit, where the Series path queries Polars instead)
    many = pl.Series("k", range(-3000, 3000), dtype=pl.Int64)
    assert many.len() > keys._PYTHON_INT_KEYS
    expected = many.to_frame().select(key_hash_expr(["k"], [pl.Int64])).to_series()
    assert key_hash_series([many]).to_list() == expected.to_list()
    # Every size goes its own way (Python, NumPy, a Polars query): all agree with the
    # expression, with and without nulls, for Int64, Datetime and row-id keys.
    for rows in (3, 100, 700, 5000):
        frame = pl.DataFrame(
            {
                "i": [None if n % 7 == 0 else n - rows for n in range(rows)],
                "j": list(range(rows)),
                "t": [None if n % 5 == 0 else n for n in range(rows)],
                "z": list(range(rows)),
                "d": [None if n % 3 == 0 else -n for n in range(rows)],
                "p": [n << 65 | n for n in range(rows)],
            },
            schema={
                "i": pl.Int64,
                "j": pl.Int64,
                "t": pl.Datetime("ns"),
                "z": pl.Datetime("us", "Europe/Warsaw"),
                "d": pl.Duration("ms"),
                "p": pl.UInt128,
            },
        )
        for names in (["i"], ["j"], ["t"], ["z"], ["d"], ["p"], ["j", "t"], ["i", "p"], ["z", "d"]):
            expected = frame.select(key_hash_expr(names, [frame.schema[n] for n in names]))
            hashed = key_hash_series([frame.get_column(n) for n in names])
            assert hashed is not None
            assert hashed.to_list() == expected.to_series().to_list(), (rows, names)
    # Two keys read from one column (groupby(t.a, t.a)): equal to two distinct columns.
    pair = pl.DataFrame({"a": many, "b": many})
    expected = pair.select(key_hash_expr(["a", "b"], [pl.Int64, pl.Int64])).to_series()
    assert key_hash_series([many, many]).to_list() == expected.to_list()
    # A null key has its own hash, shared only with the smallest Int64.
    hashes = by_polars.to_list()
    assert hashes[values.index(None)] == hashes[values.index(-(2**63))]
    assert len(set(hashes)) == len(values) - 1


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**62), st.integers(2, 5), st.sampled_from([pl.Int64, pl.UInt128]))
def test_consecutive_int_keys_spread_over_workers(
    start: int, workers: int, dtype: pl.DataType
) -> None:
    # Workers take their share of keys from the hash's high bits: a run of consecutive keys
    # (counters, or row ids given as small ints) must not land on one worker, as the low
    # bits of a product would.
    from deltaflow.engine.workers import placement

    column = pl.Series("k", range(start, start + 1000), dtype=dtype)
    hashes = key_hash_series([column])
    assert hashes is not None
    owners = ((hashes // placement._SHARE_DIVISOR) % workers).value_counts()["count"]
    assert len(owners) == workers
    assert owners.min() > 1000 / workers / 2
