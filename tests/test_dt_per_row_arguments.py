"""``.dt`` methods whose format or unit comes from a column: one format (unit) per row.

Expected values were observed with Pathway 0.33 on the same inputs.
"""

from __future__ import annotations

import datetime

import pandas as pd
import pytest

import deltaflow as pw


class _TextAndFormat(pw.Schema):
    s: str
    fmt: str


class _IntAndUnit(pw.Schema):
    v: int
    unit: str


def _values(table: pw.Table, column: str) -> list:
    return sorted(pw.debug.table_to_pandas(table)[column].tolist())


def test_strptime_format_per_row_naive() -> None:
    t = pw.debug.table_from_rows(
        _TextAndFormat,
        [
            ("1960-02-03 12:45:12", "%Y-%m-%d %H:%M:%S"),
            ("11:14:45 2023-05-12", "%H:%M:%S %Y-%m-%d"),
            ("2023-03-25T16:43:21.567891234", "%Y-%m-%dT%H:%M:%S.%f"),
            ("11:00:00", "%H:%M:%S"),  # a time of day: on 1900-01-01
        ],
    )
    r = t.select(d=t.s.dt.strptime(t.fmt, contains_timezone=False))
    assert r.schema.typehints()["d"] is pw.DateTimeNaive
    assert _values(r, "d") == [
        pd.Timestamp("1900-01-01 11:00:00"),
        pd.Timestamp("1960-02-03 12:45:12"),
        pd.Timestamp("2023-03-25 16:43:21.567891234"),
        pd.Timestamp("2023-05-12 11:14:45"),
    ]


def test_strptime_format_per_row_utc() -> None:
    t = pw.debug.table_from_rows(
        _TextAndFormat,
        [
            ("2023-01-01 10:00:00+01:00", "%Y-%m-%d %H:%M:%S%z"),
            ("02.01.2023 11:00 +0000", "%d.%m.%Y %H:%M %z"),
        ],
    )
    r = t.select(d=t.s.dt.strptime(t.fmt, contains_timezone=True))
    assert r.schema.typehints()["d"] is pw.DateTimeUtc
    assert _values(r, "d") == [
        pd.Timestamp("2023-01-01 09:00:00", tz="UTC"),
        pd.Timestamp("2023-01-02 11:00:00", tz="UTC"),
    ]


def test_strptime_format_per_row_needs_contains_timezone_and_checks_rows() -> None:
    t = pw.debug.table_from_rows(_TextAndFormat, [("2023-01-01", "%Y-%m-%d")])
    with pytest.raises(ValueError, match="contains_timezone"):
        t.s.dt.strptime(t.fmt)
    # the result would be UTC, but the row's format reads no offset: refused when run
    utc = t.select(d=t.s.dt.strptime(t.fmt, contains_timezone=True))
    with pytest.raises(ValueError, match="no time zone directive"):
        pw.debug.table_to_pandas(utc)
    bad = pw.debug.table_from_rows(_TextAndFormat, [("2023-01-01", "%d.%m.%Y")])
    with pytest.raises(ValueError, match='"2023-01-01" does not match the format'):
        pw.debug.table_to_pandas(bad.select(d=bad.s.dt.strptime(bad.fmt, contains_timezone=False)))
    # a format column that may be None has no such method (as in Pathway)
    maybe = t.select(s=t.s, fmt=pw.if_else(t.s == "", None, t.fmt))
    with pytest.raises(AttributeError):
        maybe.select(d=maybe.s.dt.strptime(maybe.fmt, contains_timezone=False))


def test_strftime_format_per_row_on_an_update_stream() -> None:
    class Rows(pw.Schema):
        s: str
        fmt: str

    t = pw.debug.table_from_rows(
        Rows,
        [
            ("2023-03-25 16:43:21", "%Y/%m/%d", 2, 1),
            ("2023-05-12 11:14:45", "%H:%M", 2, 1),
            ("2023-05-12 11:14:45", "%H:%M", 4, -1),
            ("2023-05-12 11:14:45", "%d %H:%M:%S.%6f", 4, 1),
        ],
        is_stream=True,
    )
    d = t.select(d=t.s.dt.strptime("%Y-%m-%d %H:%M:%S"), fmt=t.fmt)
    r = d.select(out=d.d.dt.strftime(d.fmt))
    assert r.schema.typehints()["out"] is str
    changes = sorted((time, row["out"], diff) for time, row, diff in pw.debug.table_to_stream(r))
    assert changes == [
        (2, "11:14", 1),
        (2, "2023/03/25", 1),
        (4, "11:14", -1),
        (4, "12 11:14:45.000000", 1),
    ]


def test_strftime_format_per_row_refuses_offsets_of_naive_datetimes_when_run() -> None:
    t = pw.debug.table_from_rows(_TextAndFormat, [("2023-03-25 16:43:21", "%H %z")])
    d = t.select(d=t.s.dt.strptime("%Y-%m-%d %H:%M:%S"), fmt=t.fmt)
    r = d.select(out=d.d.dt.strftime(d.fmt))  # defining it is fine: the formats are data
    with pytest.raises(ValueError, match="prints a time zone"):
        pw.debug.table_to_pandas(r)


def test_to_duration_unit_per_row() -> None:
    units = ["W", "D", "days", "h", "hr", "hours", "m", "minutes", "s", "sec", "ms", "millis"]
    units += ["us", "micro", "ns", "nanoseconds"]
    t = pw.debug.table_from_rows(_IntAndUnit, [(2, u) for u in units])
    r = t.select(t.unit, d=t.v.dt.to_duration(t.unit))
    assert r.schema.typehints()["d"] is pw.Duration
    got = dict(zip(*(pw.debug.table_to_pandas(r)[c].tolist() for c in ("unit", "d")), strict=True))
    one = {
        "W": datetime.timedelta(weeks=1),
        "D": datetime.timedelta(days=1),
        "h": datetime.timedelta(hours=1),
        "m": datetime.timedelta(minutes=1),
        "s": datetime.timedelta(seconds=1),
        "ms": datetime.timedelta(milliseconds=1),
        "us": datetime.timedelta(microseconds=1),
    }
    aliases = {"days": "D", "hr": "h", "hours": "h", "minutes": "m", "sec": "s", "millis": "ms"}
    aliases.update({"micro": "us"})
    for unit in units:
        if unit in ("ns", "nanoseconds"):
            assert got[unit] == pd.Timedelta(2, unit="ns")
        else:
            assert got[unit] == pd.Timedelta(2 * one[aliases.get(unit, unit)])


def test_to_duration_units_are_pathways_names_only() -> None:
    t = pw.debug.table_from_rows(_IntAndUnit, [(1, "H")])
    # pandas would take "H" (hours); Pathway does not, constant or per row
    with pytest.raises(ValueError, match="unknown unit 'H'"):
        t.v.dt.to_duration("H")
    with pytest.raises(ValueError, match="unknown unit 'H'"):
        pw.debug.table_to_pandas(t.select(d=t.v.dt.to_duration(t.unit)))
    with pytest.raises(AttributeError):  # an int is no unit
        t.select(d=t.v.dt.to_duration(t.v))
