"""Json values: what a Json column stores for date-times, and reading them back."""

from __future__ import annotations

import datetime
from typing import Optional

import pandas as pd
import pytest
from tests._util import snapshot, stream

import deltaflow as pw

OBJECT = {
    "naive": datetime.datetime(2025, 3, 14, 10, 13),
    "aware": datetime.datetime(
        2025, 3, 14, 10, 13, 0, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    ),
    "stamp": pd.Timestamp("2025-03-14T10:13:00.123456789"),
    "duration": pd.Timedelta("4 days 2 microseconds"),
    "pair": (1, 2),
    "nested": pw.Json({"at": datetime.datetime(2025, 1, 1)}),
}
STORED = {
    "naive": "2025-03-14T10:13:00.000000000",
    "aware": "2025-03-14T10:13:00.000005000+02:00",
    "stamp": "2025-03-14T10:13:00.123456789",
    "duration": 345600000002000,
    "pair": [1, 2],
    "nested": {"at": "2025-01-01T00:00:00.000000000"},
}


class JsonSchema(pw.Schema):
    data: pw.Json


def _only(table: pw.Table) -> tuple:
    rows = snapshot(table)
    assert len(rows) == 1
    return rows[0]


def test_json_column_stores_datetimes_as_text_and_durations_as_nanoseconds() -> None:
    t = pw.debug.table_from_rows(JsonSchema, [(OBJECT,)])
    (value,) = _only(t)
    assert value == pw.Json(STORED)


def test_json_returned_by_a_udf_is_stored_the_same_way() -> None:
    t = pw.debug.table_from_markdown("""
    a
    1
    """)
    result = t.select(j=pw.apply_with_type(lambda _: pw.Json(OBJECT), pw.Json, t.a))
    (value,) = _only(result)
    assert value.as_dict() == STORED


def test_unpack_col_dict_parses_datetimes_and_durations() -> None:
    class Fields(pw.Schema):
        naive: pw.DateTimeNaive
        stamp: pw.DateTimeNaive
        duration: pw.Duration
        missing_at: Optional[pw.DateTimeUtc]  # noqa: UP045 (Pathway-style schema)
        missing_for: Optional[pw.Duration]  # noqa: UP045

    t = pw.debug.table_from_rows(
        JsonSchema, [({**OBJECT, "missing_at": None, "missing_for": None},)]
    )
    result = pw.utils.col.unpack_col_dict(t.data, Fields)
    assert result.typehints()["naive"] is pw.DateTimeNaive
    assert result.typehints()["missing_at"] == Optional[pw.DateTimeUtc]  # noqa: UP045
    assert _only(result) == (
        pd.Timestamp("2025-03-14T10:13:00"),
        pd.Timestamp("2025-03-14T10:13:00.123456789"),
        pd.Timedelta("4 days 2 microseconds"),
        None,
        None,
    )


@pytest.mark.parametrize("dtype", [pw.DateTimeNaive, pw.DateTimeUtc, pw.Duration, int])
def test_unpack_col_dict_refuses_a_missing_required_field(dtype: object) -> None:
    t = pw.debug.table_from_rows(JsonSchema, [({"col": None},)])
    schema = pw.schema_builder(columns={"col": pw.column_definition(dtype=dtype)})
    result = pw.utils.col.unpack_col_dict(t.data, schema)
    with pytest.raises(ValueError):
        pw.debug.table_to_dicts(result)


def test_negative_json_array_index_is_null_on_a_stream() -> None:
    t = pw.debug.table_from_markdown("""
    id | n | __time__ | __diff__
    1  | 0 |     2    |    1
    1  | 0 |     4    |   -1
    1  | 2 |     4    |    1
    """)
    data = t.select(t.n, j=pw.apply_with_type(lambda n: pw.Json([10, 11, 12]), pw.Json, t.n))
    result = data.select(
        data.n, first=data.j[0], last=data.j[-1], got=data.j.get(-1, pw.Json("none"))
    )
    assert stream(result) == [
        (2, 0, pw.Json(10), pw.Json(None), pw.Json("none"), 1),
        (4, 0, pw.Json(10), pw.Json(None), pw.Json("none"), -1),
        (4, 2, pw.Json(10), pw.Json(None), pw.Json("none"), 1),
    ]
