"""Rows whose values all have exactly their column's Python type take a shorter way to a
frame (``_DictRows.exact_frame``); whatever the rows, the result is the general path's."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow import _types as t
from deltaflow.io._core.base import DictsContext
from deltaflow.io._core.json_parsing import TypedRowsParser, _DictRows
from deltaflow.io._core.parsing import ColumnSpec

_TYPES = [t.INT, t.FLOAT, t.BOOL, t.STR, t.optional(t.INT), t.optional(t.STR)]
_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
    | st.just("\ud800")  # a lone surrogate: no UTF-8 text holds it
)


@st.composite
def _case(draw: st.DrawFn) -> tuple[list[ColumnSpec], list[dict[str, Any]]]:
    types = draw(st.lists(st.sampled_from(_TYPES), min_size=1, max_size=4))
    specs = [ColumnSpec(f"c{i}", dtype) for i, dtype in enumerate(types)]
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        row = {}
        for spec in specs:
            if draw(st.integers(0, 9)) == 0:
                continue  # a missing field
            exact = {
                t.INT: st.integers(-(2**63), 2**63 - 1),
                t.FLOAT: st.floats(allow_nan=False),
                t.BOOL: st.booleans(),
                t.STR: st.text(max_size=4),
            }[spec.dtype.strip_optional()]
            # Mostly values of the column's own type (the shorter way), sometimes any value.
            row[spec.name] = draw(exact if draw(st.integers(0, 3)) else _VALUES)
        rows.append(row)
    return specs, rows


@settings(max_examples=300, deadline=None)
@given(_case())
def test_the_shorter_way_builds_the_general_paths_frame(
    case: tuple[list[ColumnSpec], list[dict[str, Any]]],
) -> None:
    specs, rows = case
    fast = _DictRows(specs, origin="python")
    assert fast._exact is not None
    general = _DictRows(specs, origin="python")
    general._exact = None
    where = [f"row {i + 1}" for i in range(len(rows))]
    frame, errors, good = fast.frame_from_dicts(rows, where)
    expected_frame, expected_errors, expected_good = general.frame_from_dicts(rows, where)
    assert frame.equals(expected_frame)
    assert frame.schema == expected_frame.schema
    assert [(e.where, e.reason) for e in errors] == [(e.where, e.reason) for e in expected_errors]
    assert good == expected_good


def test_a_field_path_or_another_type_keeps_the_general_path() -> None:
    assert _DictRows([ColumnSpec("a", t.INT)], {"a": "/x/a"})._exact is None
    assert _DictRows([ColumnSpec("a", t.INT), ColumnSpec("j", t.JSON)])._exact is None
    assert _DictRows([ColumnSpec("a", t.INT), ColumnSpec("s", t.STR)])._exact is not None


@settings(max_examples=200, deadline=None)
@given(_case(), st.sampled_from(["insert", "upsert", "delete"]))
def test_a_subjects_exact_block_is_the_parsed_block(
    case: tuple[list[ColumnSpec], list[dict[str, Any]]], kind: str
) -> None:
    """The block a subject's exactly typed rows take at once (``exact_block``) is the one
    the general parse gives; rows it cannot take are left to that parse."""
    specs, rows = case
    parser = TypedRowsParser(specs)
    block = parser.exact_block(rows, kind)
    expected = parser.parse(DictsContext(rows, kinds=kind, metadata={"path": "message"}))
    if block is None:
        assert (
            expected.errors
            or any(set(row) != {s.name for s in specs} for row in rows)
            or (not _all_exact(specs, rows))
        )
        return
    assert block.frame.equals(expected.frame)
    assert block.frame.schema == expected.frame.schema
    assert (block.kind, block.keys, block.errors) == (expected.kind, None, [])
    assert expected.keys is None and not expected.errors


def _all_exact(specs: list[ColumnSpec], rows: list[dict[str, Any]]) -> bool:
    python = {t.INT: int, t.FLOAT: float, t.BOOL: bool, t.STR: str}
    return all(
        type(row[s.name]) is python[s.dtype.strip_optional()]
        or (s.dtype.is_optional and row[s.name] is None)
        for row in rows
        for s in specs
    )
