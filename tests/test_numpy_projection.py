"""Small frames' simple arithmetic runs in NumPy (expressions/numpy_eval.py): the values and
types must be those the Polars path gives, including int64 wraparound, NaN and infinities."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.expressions import evaluate

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


class Numbers(pw.Schema):
    a: int
    b: int
    x: float
    f: bool


EXPRESSIONS: dict[str, Any] = {
    "sum": lambda t: t.a + t.b,
    "diff_const": lambda t: t.a - 7,
    "product": lambda t: t.a * t.b,
    "negated": lambda t: -t.a,
    "mixed": lambda t: t.a * t.x + 1.5,
    "float_neg": lambda t: -t.x,
    "less": lambda t: t.a < t.b,
    "equal_const": lambda t: t.b == 3,
    "logic": lambda t: (t.a >= t.b) & ~t.f | (t.f ^ (t.a != 0)),
}


def _rows(table: pw.Table) -> list[tuple[Any, ...]]:
    frame = pw.debug.table_to_pandas(table, include_id=False)
    return [tuple(row) for row in frame.itertuples(index=False)]


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or left == right
    return bool(left == right) and type(left) is type(right)


def _polars_reference(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The same expressions computed by Polars itself over the whole input."""
    frame = pl.DataFrame(
        rows, schema={"a": pl.Int64, "b": pl.Int64, "x": pl.Float64, "f": pl.Boolean}
    )
    a, b, x, f = (pl.col(c) for c in "abxf")
    exprs = {
        "sum": a + b,
        "diff_const": a - 7,
        "product": a * b,
        "negated": -a,
        "mixed": a * x + 1.5,
        "float_neg": -x,
        "less": a < b,
        "equal_const": b == 3,
        "logic": ((a >= b) & ~f) | (f ^ (a != 0)),
    }
    out = frame.select(**exprs)
    return {name: out[name].to_list() for name in exprs}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries({"a": INT64, "b": INT64, "x": FLOATS, "f": st.booleans()}),
        min_size=1,
        max_size=30,
    )
)
def test_numpy_path_matches_polars(rows: list[dict[str, Any]]) -> None:
    pw.clear_graph()
    table = pw.debug.table_from_rows(Numbers, [(r["a"], r["b"], r["x"], r["f"]) for r in rows])
    result = table.select(**{name: make(pw.this) for name, make in EXPRESSIONS.items()})
    got = sorted(_rows(result), key=repr)
    reference = _polars_reference(rows)
    expected = sorted(zip(*(reference[name] for name in EXPRESSIONS), strict=True), key=repr)
    assert len(got) == len(expected)
    for got_row, expected_row in zip(got, expected, strict=True):
        for value, want in zip(got_row, expected_row, strict=True):
            assert _same(_plain(value), want), (got_row, expected_row)


def _plain(value: Any) -> Any:
    """NumPy/pandas scalars from table_to_pandas as Python values."""
    return value.item() if hasattr(value, "item") else value


def test_simple_projection_takes_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = evaluate.CompiledProjection.numpy_outputs

    def counted(self: Any, frame: pl.DataFrame) -> Any:
        out = original(self, frame)
        calls.append(0 if out is None else 1)
        return out

    monkeypatch.setattr(evaluate.CompiledProjection, "numpy_outputs", counted)
    table = pw.debug.table_from_rows(Numbers, [(1, 2, 0.5, True), (3, 4, 1.5, False)])
    doubled = table.select(pw.this.a, w=pw.this.b * 2, m=pw.this.a * pw.this.x)
    assert sorted(_rows(doubled)) == [(1, 4, 0.5), (3, 8, 4.5)]
    assert 1 in calls
    schema = doubled.schema.typehints()
    assert schema["w"] is int and schema["m"] is float


def test_optional_and_division_keep_the_polars_path() -> None:
    table = pw.debug.table_from_markdown("""
        a | b
        1 | 2
        4 |
    """)
    out = table.select(s=pw.this.a + pw.this.b, q=pw.this.a / 2)
    keys, columns = pw.debug.table_to_dicts(out)
    got = sorted(((columns["s"][k], columns["q"][k]) for k in keys), key=repr)
    assert got == sorted([(3, 0.5), (None, 2.0)], key=repr)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(INT64, INT64, st.booleans()), min_size=1, max_size=30),
    st.integers(min_value=-5, max_value=5),
)
def test_filter_with_simple_conditions(rows: list[tuple[int, int, bool]], bound: int) -> None:
    pw.clear_graph()
    table = pw.debug.table_from_rows(Numbers, [(a, b, 0.0, f) for a, b, f in rows])
    kept = table.filter((pw.this.a > bound) & ~pw.this.f | (pw.this.a == pw.this.b))
    got = sorted((a, b, f) for a, b, _, f in _rows(kept))
    expected = sorted((a, b, f) for a, b, f in rows if (a > bound and not f) or a == b)
    assert [tuple(_plain(v) for v in row) for row in got] == expected
