"""Small CSV documents split in Python give what Polars' reader gives (csv_fast_split)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.io._core import csv_fast_split, parsing
from deltaflow.io._core.base import ParsedBlock, RawContext
from deltaflow.io._core.formats import CsvParser, column_specs


class Typed(pw.Schema):
    i: int
    f: float
    b: bool
    s: str
    oi: int | None
    of: float | None


#: Cells written plainly (the Python split converts them) ...
_PLAIN = {
    "i": ["0", "7", "-12", "123456789012345678"],
    "f": ["1.5", ".5", "5.", "-0.0", "1e3", "2.5E-3", "-.25"],
    "b": ["true", "false"],
    "s": ["", "word", " spaced ", "é", "1"],
    "oi": ["3", "-4", ""],
    "of": ["0.25", "", "-7"],
    "extra": ["anything", ""],
}
#: ... and cells that Polars reads in its own way or not at all (the document goes to it).
_TRICKY = {
    "i": ["+5", " 5", "05", "1e3", "", "x", "9" * 20],
    "f": ["inf", "NaN", "+1", "", "1;5", "e5"],
    "b": ["True", "FALSE", "1", "", "yes"],
    "oi": ["abc", " 3"],
    "of": ["z", "+1.5"],
}


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    names = draw(st.permutations(sorted(_PLAIN)))
    header = [n for n in names if draw(st.integers(0, 5)) > 0 or n in ("i", "f", "b", "s")]
    lines = [",".join(header)]
    for _ in range(draw(st.integers(0, 8))):
        cells = []
        for name in header:
            tricky = name in _TRICKY and draw(st.integers(0, 40)) == 0
            cells.append(draw(st.sampled_from((_TRICKY if tricky else _PLAIN)[name])))
        shape = draw(st.integers(0, 30))
        if shape == 0:
            cells = cells[:-1]  # a short line
        elif shape == 1:
            cells.append("")  # a trailing delimiter
        lines.append(",".join(cells))
    text = "\n".join(lines) + ("\n" if draw(st.booleans()) else "")
    return text.encode()


def _parse(data: bytes) -> ParsedBlock:
    return CsvParser(column_specs(Typed)).parse(RawContext([data], {"path": "doc.csv"}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_small_documents_parse_as_polars_reads_them(data: bytes) -> None:
    small = _parse(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parsing, "SMALL_DOCUMENT_BYTES", 0)  # Polars for every document
        reference = _parse(data)
    assert small.frame.schema == reference.frame.schema, data
    assert small.frame.equals(reference.frame), data
    assert [(e.where, e.reason) for e in small.errors] == [
        (e.where, e.reason) for e in reference.errors
    ], data


def test_a_plain_small_document_is_split_without_polars() -> None:
    data = b"i,f,b,s,oi,of\n1,2.5,true,x,,\n-3,.5,false,,4,-1e2\n"
    header = data.split(b"\n")[0].decode().split(",")
    names, frame = csv_fast_split._split_small(data, header, column_specs(Typed), ",")
    assert names == header
    assert frame.rows() == [
        (1, 2.5, True, "x", None, None),
        (-3, 0.5, False, "", 4, -100.0),
    ]
    # A cell Polars reads in its own way leaves the document to Polars.
    tricky = data.replace(b"-3,", b"+3,")
    assert csv_fast_split._split_small(tricky, header, column_specs(Typed), ",") is None
