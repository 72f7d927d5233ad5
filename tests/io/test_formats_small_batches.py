"""Small batches of plain columns are formatted in Python to the bytes Polars writes."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaflow import _types as t
from deltaflow.engine.batch import DIFF, ID
from deltaflow.io._core import formats
from deltaflow.io._core.formats import CsvFormatter, JsonLinesFormatter

_KINDS = {
    "int": (t.INT, pl.Int64, st.integers(-(2**63), 2**63 - 1)),
    "str": (t.STR, pl.String, st.text()),
    "bool": (t.BOOL, pl.Boolean, st.booleans()),
}


@st.composite
def batches(draw: st.DrawFn) -> tuple[dict[str, t.DType], pl.DataFrame, int]:
    kinds = draw(st.lists(st.sampled_from(sorted(_KINDS)), min_size=0, max_size=4))
    names = draw(
        st.lists(st.text(min_size=1, max_size=5), min_size=len(kinds), max_size=len(kinds))
        .filter(lambda found: len(set(found)) == len(found))
        .filter(lambda found: not {ID, DIFF, "time", "diff"} & set(found))
    )
    rows = draw(st.integers(0, 6))
    columns: dict[str, t.DType] = {}
    series = [pl.Series(ID, list(range(rows)), dtype=pl.UInt128)]
    for name, kind in zip(names, kinds, strict=True):
        dtype, polars_type, values = _KINDS[kind]
        optional = draw(st.booleans())
        columns[name] = t.Optional(dtype) if optional else dtype
        cells = st.none() | values if optional else values
        series.append(
            pl.Series(name, draw(st.lists(cells, min_size=rows, max_size=rows)), polars_type)
        )
    series.append(
        pl.Series(
            DIFF,
            draw(st.lists(st.sampled_from([1, -1, 2]), min_size=rows, max_size=rows)),
            pl.Int64,
        )
    )
    return columns, pl.DataFrame(series), draw(st.sampled_from([0, 2, 10**12, 2**63 + 5]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.sampled_from([",", ";", "\t"]))
def test_python_and_polars_write_the_same_bytes(batch: tuple, delimiter: str) -> None:
    columns, frame, time = batch
    written = {}
    for rows in (formats.PYTHON_FORMAT_ROWS, 0):  # Python for small batches, then Polars
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(formats, "PYTHON_FORMAT_ROWS", rows)
            written[rows] = (
                CsvFormatter(columns, delimiter).format(frame, time),
                JsonLinesFormatter(columns).format(frame, time),
            )
    python, polars = written[formats.PYTHON_FORMAT_ROWS], written[0]
    assert python[0] == polars[0], (columns, frame.rows())
    assert python[1] == polars[1], (columns, frame.rows())


def test_a_float_column_keeps_the_polars_path() -> None:
    # Floats are written by Polars' own number formatting: not reproduced in Python.
    assert not formats._plain_columns({"x": t.FLOAT})
    assert formats._plain_columns({"a": t.INT, "b": t.Optional(t.STR), "c": t.BOOL})
