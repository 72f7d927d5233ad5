"""The small-frame constructors give exactly what Polars' public constructors give."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow import _small_frames as sf

_VALUES = {
    pl.Int64: st.integers(-(2**63), 2**63 - 1),
    pl.UInt64: st.integers(0, 2**64 - 1),
    pl.UInt128: st.integers(0, 2**128 - 1),
    pl.Float64: st.floats(allow_nan=True, allow_infinity=True),
    pl.Boolean: st.booleans(),
    pl.String: st.text(max_size=5),
}


def test_the_fast_constructors_are_in_use() -> None:
    # The probe compares them with the public ones at import; on this Polars they must pass.
    assert sf.FAST_CONSTRUCTORS


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(sorted(_VALUES, key=str)))
def test_series_of_values_equals_the_public_constructor(data: st.DataObject, dtype) -> None:
    values = data.draw(st.lists(st.one_of(st.none(), _VALUES[dtype]), max_size=30))
    built = sf.series_of_values("c", values, dtype)
    expected = pl.Series("c", values, dtype=dtype)
    assert built.dtype == expected.dtype
    assert built.equals(expected, check_names=True)


def test_series_of_values_converts_like_polars_when_types_are_mixed() -> None:
    # An int in a float column takes the public constructor's conversion, not an error.
    assert sf.series_of_values("f", [1, 2.5, None], pl.Float64).to_list() == [1.0, 2.5, None]
    with pytest.raises((TypeError, pl.exceptions.PolarsError)):
        sf.series_of_values("i", ["x"], pl.Int64)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.integers(-(2**31) + 1, 2**31 - 1), max_size=30),
    numpy_type=st.sampled_from([np.int64, np.uint32, np.int32, np.float64, np.bool_]),
    step=st.sampled_from([1, 2]),
)
def test_series_of_array_equals_the_public_constructor(values, numpy_type, step) -> None:
    if numpy_type in (np.uint32,):
        values = [abs(v) for v in values]
    array = np.array(values, dtype=numpy_type)[::step]  # step 2: not contiguous
    built = sf.series_of_array("c", array)
    expected = pl.Series("c", array)
    assert built.dtype == expected.dtype
    assert built.equals(expected, check_names=True)


def test_frame_of_checks_names_and_heights_as_polars_does() -> None:
    a, b = pl.Series("a", [1, 2]), pl.Series("b", ["x", "y"])
    assert sf.frame_of([a, b]).equals(pl.DataFrame([a, b]))
    with pytest.raises(pl.exceptions.DuplicateError):
        sf.frame_of([a, a])
    with pytest.raises(pl.exceptions.ShapeError):
        sf.frame_of([a, pl.Series("c", [1])])


def test_without_the_fast_constructors_the_public_ones_serve(monkeypatch) -> None:
    monkeypatch.setattr(sf, "FAST_CONSTRUCTORS", False)
    monkeypatch.setattr(sf, "_ARRAY_MAKERS", {})
    monkeypatch.setattr(sf, "_LIST_MAKERS", {})
    assert sf.series_of_values("c", [1, None], pl.Int64).to_list() == [1, None]
    assert sf.series_of_array("c", np.arange(3)).to_list() == [0, 1, 2]
    assert sf.frame_of([pl.Series("a", [1])]).to_dict(as_series=False) == {"a": [1]}
