"""Schemas, column definitions and the type system."""

from __future__ import annotations

import datetime
from typing import Any, Optional

import numpy as np
import pandas as pd
import pytest

import deltaflow as pw
from _util import snapshot
from deltaflow import _types as t


class Person(pw.Schema):
    name: str = pw.column_definition(primary_key=True)
    age: int
    nickname: Optional[str] = pw.column_definition(default_value=None)  # noqa: UP045


def test_schema_class() -> None:
    assert Person.column_names() == ["name", "age", "nickname"]
    assert Person.primary_key_columns() == ["name"]
    assert Person.typehints() == {"name": str, "age": int, "nickname": Optional[str]}  # noqa: UP045
    assert Person.default_values() == {"nickname": None}
    assert Person["age"].dtype == t.INT


def test_column_definition_name_and_dtype() -> None:
    class S(pw.Schema):
        a: float = pw.column_definition(name="renamed", dtype=float)

    assert S.column_names() == ["renamed"]
    assert S.dtypes()["renamed"] == t.FLOAT
    with pytest.raises(TypeError, match="annotated"):

        class Mismatch(pw.Schema):
            a: int = pw.column_definition(dtype=str)

    with pytest.raises(ValueError, match="should be a column definition"):

        class PlainDefault(pw.Schema):
            a: int = 1

    with pytest.raises(ValueError, match="lack type annotation"):

        class Unannotated(pw.Schema):
            a = pw.column_definition()

    with pytest.raises(ValueError, match="ambiguous property"):

        class Ambiguous(pw.Schema, append_only=True):
            a: int = pw.column_definition(append_only=False)


def test_schema_builders() -> None:
    s1 = pw.schema_from_types(a=int, b=str)
    assert s1.dtypes() == {"a": t.INT, "b": t.STR}
    s2 = pw.schema_from_dict({"a": int, "b": {"dtype": str, "primary_key": True}})
    assert s2.primary_key_columns() == ["b"]
    s3 = pw.schema_builder({"x": pw.column_definition(dtype=bool)}, name="Flags")
    assert s3.dtypes() == {"x": t.BOOL}
    with pytest.raises(ValueError, match="unknown options"):
        pw.schema_from_dict({"a": {"dtype": int, "bogus": 1}})


def test_schema_with_types_without_and_union() -> None:
    s = Person.with_types(age=float)
    assert s.dtypes()["age"] == t.FLOAT
    assert Person.without("nickname").column_names() == ["name", "age"]
    union = pw.schema_from_types(a=int) | pw.schema_from_types(b=str)
    assert union.column_names() == ["a", "b"]
    with pytest.raises(ValueError, match="both"):
        _ = union | pw.schema_from_types(a=int)
    with pytest.raises(KeyError):
        Person.with_types(nope=int)


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (int, t.INT),
        (float, t.FLOAT),
        (str, t.STR),
        (bool, t.BOOL),
        (bytes, t.BYTES),
        (pw.DateTimeNaive, t.DATE_TIME_NAIVE),
        (pw.DateTimeUtc, t.DATE_TIME_UTC),
        (pw.Duration, t.DURATION),
        (pw.Json, t.JSON),
        (pw.Pointer, t.POINTER),
        (np.ndarray, t.ARRAY),
        (Any, t.ANY),
        (pw.PyObjectWrapper, t.PY_OBJECT_WRAPPER),
        (Optional[int], t.Optional(t.INT)),  # noqa: UP045
        (int | None, t.Optional(t.INT)),
        (tuple[int, str], t.Tuple(t.INT, t.STR)),
        (list[int], t.List(t.INT)),
        (tuple[int, ...], t.List(t.INT)),
    ],
)
def test_type_wrapping(annotation: Any, expected: t.DType) -> None:
    assert t.wrap(annotation) == expected


def test_every_type_goes_through_a_table() -> None:
    class All(pw.Schema):
        i: int
        f: float
        s: str
        b: bool
        by: bytes
        dn: pw.DateTimeNaive
        du: pw.DateTimeUtc
        d: pw.Duration
        j: pw.Json
        p: pw.Pointer
        a: np.ndarray
        tu: tuple[int, str]
        li: list[int]
        o: pw.PyObjectWrapper
        an: Any
        op: Optional[int]  # noqa: UP045

    pointer = pw.Pointer(12345)
    row = (
        1,
        2.5,
        "x",
        True,
        b"\x00\x01",
        pd.Timestamp("2024-01-02 03:04:05.123456789"),
        pd.Timestamp("2024-01-02 03:04:05", tz="UTC"),
        pd.Timedelta("1s500ms"),
        pw.Json({"k": [1, None]}),
        pointer,
        np.array([1.0, 2.0]),
        (1, "a"),
        (1, 2),
        pw.wrap_py_object({"any": "object"}),
        {"free": 1},
        None,
    )
    table = pw.debug.table_from_rows(All, [row])
    (got,) = snapshot(table.select(*pw.this))
    for index, (expected, actual) in enumerate(zip(row, got, strict=True)):
        if isinstance(expected, np.ndarray):
            assert np.array_equal(expected, actual)
        else:
            assert actual == expected, All.column_names()[index]
    assert got[5].nanosecond == 789


def test_row_ids_are_deterministic_and_key_based() -> None:
    class Keyed(pw.Schema):
        k: str = pw.column_definition(primary_key=True)
        v: int

    a = pw.debug.table_from_rows(Keyed, [("x", 1), ("y", 2)])
    b = pw.debug.table_from_rows(Keyed, [("y", 5), ("x", 7)])
    ids_a = pw.debug.table_to_dicts(a)[1]["k"]
    ids_b = pw.debug.table_to_dicts(b)[1]["k"]
    assert {v: k for k, v in ids_a.items()} == {v: k for k, v in ids_b.items()}
    # Same ids in another process: the id of key "x" is a fixed 128-bit value.
    from deltaflow._ids import pointer_from_values

    assert pointer_from_values("x") == {v: k for k, v in ids_a.items()}["x"]
    assert int(pointer_from_values("x")) == int(pointer_from_values("x"))
    assert pointer_from_values(1) != pointer_from_values("1")
    assert pointer_from_values("a", "b") != pointer_from_values("ab")


def test_pointer_rendering() -> None:
    p = pw.Pointer(2**127 + 5)
    assert str(p).startswith("^") and len(str(p)) == 27
    assert repr(p) == f'Pointer("{p}")'
    assert p.short() == str(p)[:8] + "..."


def test_datetime_values() -> None:
    naive = datetime.datetime(2024, 1, 2, 3, 4, 5)
    table = pw.debug.table_from_rows(pw.schema_from_types(t=pw.DateTimeNaive), [(naive,)])
    assert snapshot(table) == [(pd.Timestamp(naive),)]


def test_a_local_schema_survives_pickling_by_value() -> None:
    # A forked child's rerun pickles its target by value, schema classes included: columns
    # without a default must still have none afterwards.
    cloudpickle = pytest.importorskip("cloudpickle")

    def make() -> type[pw.Schema]:
        class Local(pw.Schema):
            a: int
            b: str = pw.column_definition(default_value="x")

        return Local

    copy = cloudpickle.loads(cloudpickle.dumps(make()))
    assert copy.typehints() == {"a": int, "b": str}
    assert copy.default_values() == {"b": "x"}
    rows = pw.debug.table_to_pandas(pw.debug.table_from_rows(copy, [(1, "y")]), include_id=False)
    assert rows.to_dict("records") == [{"a": 1, "b": "y"}]
