"""``pw.apply`` with a class gives values of that class, and ``pw.DateTimeNaive`` /
``pw.DateTimeUtc`` refuse values on the wrong side of the timezone line (as in Pathway)."""

from __future__ import annotations

import datetime
from typing import Any, Optional  # noqa: F401 - Optional: the type Pathway reports

import pytest

import deltaflow as pw


def test_apply_with_a_class_has_that_type() -> None:
    table = pw.debug.table_from_markdown(
        """
        v
        1.5
        2
        """
    )
    result = table.select(
        f=pw.apply(float, table.v),
        i=pw.apply(int, table.v),
        s=pw.apply(str, table.v),
        b=pw.apply(bool, table.v),
        n=pw.apply(len, pw.apply(str, table.v)),  # a function without annotations: Any
    )
    assert result.schema.typehints() == {"f": float, "i": int, "s": str, "b": bool, "n": Any}
    rows = sorted(pw.debug.table_to_dicts(result)[1]["i"].values())
    assert rows == [1, 2]


def test_apply_with_a_class_feeds_typed_methods() -> None:
    # num.fill_na needs a float column: the class makes the column one.
    table = pw.debug.table_from_markdown(
        """
        v
        1.0
        nan
        None
        """
    ).with_columns(v=pw.require(pw.apply(float, pw.this.v), pw.this.v))
    assert table.schema.typehints()["v"] == Optional[float]  # noqa: UP045
    result = table.select(filled=table.v.num.fill_na(0))
    assert sorted(pw.debug.table_to_dicts(result)[1]["filled"].values()) == [0.0, 0.0, 1.0]


def test_datetime_annotations_refuse_the_wrong_timezone_kind() -> None:
    assert pw.DateTimeNaive("2025-05-01T12:00:00").tzinfo is None
    assert pw.DateTimeUtc("2025-05-01T12:00:00+02:00").utcoffset() == datetime.timedelta(hours=2)
    with pytest.raises(ValueError, match="timezone"):
        pw.DateTimeNaive("2025-05-01T12:00:00+00:00")
    with pytest.raises(ValueError, match="timezone"):
        pw.DateTimeNaive(datetime.datetime(2025, 5, 1, tzinfo=datetime.timezone.utc))
    with pytest.raises(ValueError, match="timezone"):
        pw.DateTimeUtc("2025-05-01T12:00:00")
    with pytest.raises(ValueError, match="timezone"):
        pw.DateTimeUtc(datetime.datetime(2025, 5, 1))
