"""A ListFrame (a few rows kept as Python lists) is, to everything that reads it as a frame,
the frame of its values; its lists are read without a Polars call while they describe it."""

from __future__ import annotations

import copy
import math
import pickle

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow import _types as t
from deltaflow._small_frames import ListFrame, column_values, list_frame_of
from deltaflow.engine.batch import consolidate, has_distinct_ids, mark_distinct_ids

_VALUES = {
    pl.Int64(): st.integers(-(2**63), 2**63 - 1),
    pl.UInt128(): st.integers(0, 2**128 - 1),
    pl.Float64(): st.floats(allow_nan=True, allow_infinity=True),
    pl.Boolean(): st.booleans(),
    pl.String(): st.text(max_size=5),
}


@st.composite
def _columns(draw: st.DrawFn) -> list[tuple[str, pl.DataType, list[object]]]:
    rows = draw(st.integers(0, 8))
    types = draw(st.lists(st.sampled_from(sorted(_VALUES, key=str)), min_size=1, max_size=4))
    return [
        (
            f"c{i}",
            dtype,
            draw(st.lists(st.none() | _VALUES[dtype], min_size=rows, max_size=rows)),
        )
        for i, dtype in enumerate(types)
    ]


@settings(max_examples=150, deadline=None)
@given(_columns())
def test_a_list_frame_is_the_frame_of_its_values(columns) -> None:
    expected = pl.DataFrame(
        [pl.Series(name, values, dtype=dtype) for name, dtype, values in columns]
    )
    listed = ListFrame(columns)
    # What is read without making the frame ...
    assert listed.height == expected.height and len(listed) == expected.height
    assert listed.width == expected.width
    assert listed.columns == expected.columns
    assert listed.dtypes == expected.dtypes
    assert listed.schema == expected.schema
    for name, _, values in columns:
        assert column_values(listed, name) is values
    assert listed._made is None
    # ... and everything else, through the frame made from the lists.
    assert listed.equals(expected)
    assert listed.lists is not None  # still describes it
    for name in expected.columns:
        assert _plain(column_values(listed, name)) == _plain(expected.get_column(name).to_list())
    rows = t.row_dicts(listed, listed.columns)
    expected_rows = t.row_dicts(expected, expected.columns)
    assert [_plain(list(r.values())) for r in rows] == [
        _plain(list(r.values())) for r in expected_rows
    ]
    assert [list(r) for r in rows] == [list(r) for r in expected_rows]


def _plain(values: list[object]) -> list[object]:
    """The values with NaN made comparable (NaN != NaN in a list comparison)."""
    return ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in values]


def test_frames_derived_from_a_list_frame_are_plain_frames() -> None:
    listed = ListFrame([("a", pl.Int64(), [1, 2, 3]), ("b", pl.String(), ["x", None, "z"])])
    filtered = listed.filter(pl.col("a") > 1)
    assert type(filtered) is pl.DataFrame
    assert filtered.to_dict(as_series=False) == {"a": [2, 3], "b": [None, "z"]}
    assert pl.concat([listed, listed]).height == 6
    for twin in (copy.copy(listed), copy.deepcopy(listed), pickle.loads(pickle.dumps(listed))):
        assert twin.equals(listed)
        assert list_frame_of(twin) is None  # a frame of its own, without the lists


def test_renaming_in_place_forgets_the_lists() -> None:
    listed = ListFrame([("a", pl.Int64(), [1])])
    listed.columns = ["z"]
    assert list_frame_of(listed) is None
    assert listed.columns == ["z"]
    assert column_values(listed, "z") == [1]


def test_the_engine_marks_and_consolidates_a_list_frame() -> None:
    listed = ListFrame(
        [("_id", pl.UInt128(), [5, 7]), ("v", pl.Int64(), [1, 2]), ("_diff", pl.Int64(), [1, 0])]
    )
    mark_distinct_ids(listed)
    assert has_distinct_ids(listed)
    out = consolidate(listed)  # a zero diff is dropped
    assert out.to_dict(as_series=False) == {"_id": [5], "v": [1], "_diff": [1]}
