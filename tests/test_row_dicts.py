"""Row dicts as callbacks and Python writers get them (``_values.row_dicts``)."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from deltaflow import _types as t

_NAMES = st.lists(st.text(min_size=1, max_size=6), max_size=5, unique=True)


@given(names=_NAMES, height=st.integers(0, 4))
def test_row_dicts_equal_a_dict_per_row_whatever_the_names(names: list[str], height: int) -> None:
    # Names with quotes, backslashes, braces or line breaks go into generated source.
    frame = pl.DataFrame({name: [f"{name}{row}" for row in range(height)] for name in names})
    expected = [{name: f"{name}{row}" for name in names} for row in range(height)]
    if not names:
        frame = pl.DataFrame({"other": list(range(height))})
        expected = [{} for _ in range(height)]
    assert t.row_dicts(frame, names) == expected


def test_row_dicts_hold_user_values_and_fresh_dicts() -> None:
    frame = pl.DataFrame(
        {"id": pl.Series([5, 6], dtype=pl.UInt128), "x": [1, None], "o'k\"}": [0.5, 1.5]}
    )
    rows = t.row_dicts(frame, ["id", "o'k\"}", "x"])
    assert rows == [
        {"id": t.Pointer(5), "o'k\"}": 0.5, "x": 1},
        {"id": t.Pointer(6), "o'k\"}": 1.5, "x": None},
    ]
    assert type(rows[0]["id"]) is t.Pointer
    rows[0]["x"] = 9  # each row its own dict: a callback may change it
    assert rows[1]["x"] is None and t.row_dicts(frame, ["x"])[0] == {"x": 1}
