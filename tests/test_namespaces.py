"""The ``.str``, ``.dt`` and ``.num`` namespaces.

Expected values of the datetime, parsing and rounding methods were observed with Pathway 0.33
on the same inputs; string methods follow Python's ``str`` (as Pathway's do).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

import deltaflow as pw

TEXTS = ["hello wORLD foo-bar it's ÉCOLE 3rd", "  ab  xx ", "", "ßaß", "a1b2", "ab\u0301c"]


class _Text(pw.Schema):
    s: str


def _rows(table: pw.Table) -> list[dict[str, Any]]:
    ids, columns = pw.debug.table_to_dicts(table)
    return [{name: columns[name][i] for name in table.column_names()} for i in ids]


def _by(table: pw.Table, key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in _rows(table)}


def _texts() -> pw.Table:
    return pw.debug.table_from_rows(_Text, [(s,) for s in TEXTS])


# ------------------------------------------------------------------------------------------
# .str
# ------------------------------------------------------------------------------------------

STRING_CASES: dict[str, tuple[Any, Any]] = {
    "lower": (lambda c: c.str.lower(), str.lower),
    "upper": (lambda c: c.str.upper(), str.upper),
    "title": (lambda c: c.str.title(), str.title),
    "swapcase": (lambda c: c.str.swapcase(), str.swapcase),
    "strip": (lambda c: c.str.strip(), str.strip),
    "strip_chars": (lambda c: c.str.strip(" ax"), lambda s: s.strip(" ax")),
    "len": (lambda c: c.str.len(), len),
    "reversed": (lambda c: c.str.reversed(), lambda s: s[::-1]),
    "slice": (lambda c: c.str.slice(1, -2), lambda s: s[1:-2]),
    "slice_wide": (lambda c: c.str.slice(-3, 100), lambda s: s[-3:100]),
    "slice_neg": (lambda c: c.str.slice(-10, 2), lambda s: s[-10:2]),
    "startswith": (lambda c: c.str.startswith("he"), lambda s: s.startswith("he")),
    "endswith": (lambda c: c.str.endswith(" "), lambda s: s.endswith(" ")),
    "count": (lambda c: c.str.count("a"), lambda s: s.count("a")),
    "count_empty": (lambda c: c.str.count(""), lambda s: s.count("")),
    "count_range": (lambda c: c.str.count("a", 1, 5), lambda s: s.count("a", 1, 5)),
    "find": (lambda c: c.str.find("a"), lambda s: s.find("a")),
    "find_c": (lambda c: c.str.find("c"), lambda s: s.find("c")),
    "find_from": (lambda c: c.str.find("a", 2), lambda s: s.find("a", 2)),
    "rfind": (lambda c: c.str.rfind("a"), lambda s: s.rfind("a")),
    "rfind_range": (lambda c: c.str.rfind("a", 0, 3), lambda s: s.rfind("a", 0, 3)),
    "replace": (lambda c: c.str.replace("a", "Z"), lambda s: s.replace("a", "Z")),
    "replace_once": (lambda c: c.str.replace("a", "Z", 1), lambda s: s.replace("a", "Z", 1)),
    "replace_none": (lambda c: c.str.replace("a", "Z", 0), lambda s: s.replace("a", "Z", 0)),
    "replace_empty": (lambda c: c.str.replace("", "-"), lambda s: s.replace("", "-")),
    "removeprefix": (lambda c: c.str.removeprefix("he"), lambda s: s.removeprefix("he")),
    "removesuffix": (lambda c: c.str.removesuffix("b2"), lambda s: s.removesuffix("b2")),
}


@pytest.mark.parametrize("name", list(STRING_CASES))
def test_string_method_matches_python(name: str) -> None:
    method, expected = STRING_CASES[name]
    t = _texts()
    r = t.select(t.s, v=method(t.s))
    assert {row["s"]: row["v"] for row in _rows(r)} == {s: expected(s) for s in TEXTS}


def test_string_result_types() -> None:
    t = _texts()
    r = t.select(
        a=t.s.str.len(),
        b=t.s.str.upper(),
        c=t.s.str.startswith("x"),
        d=t.s.str.find("x"),
        e=t.s.str.parse_int(optional=True),
        f=t.s.str.parse_float(),
        g=t.s.str.parse_bool(),
    )
    assert r.schema.typehints() == {
        "a": int,
        "b": str,
        "c": bool,
        "d": int,
        "e": int | None,
        "f": float,
        "g": bool,
    }


def test_string_methods_with_column_arguments() -> None:
    t = pw.debug.table_from_markdown("""
        s       | p  | n
        abcabc  | bc | 1
        xyz     | y  | 2
    """)
    r = t.select(
        t.s,
        st=t.s.str.startswith(t.p),
        sl=t.s.str.slice(t.n, t.n + 2),
        cnt=t.s.str.count(t.p),
        rep=t.s.str.replace(t.p, "_", t.n),
        rm=t.s.str.removeprefix(t.p),
        f=t.s.str.find(t.p, t.n),
    )
    got = _by(r, "s")
    assert got["abcabc"] == {
        "s": "abcabc",
        "st": False,
        "sl": "bc",
        "cnt": 2,
        "rep": "a_abc",
        "rm": "abcabc",
        "f": 1,
    }
    assert got["xyz"] == {
        "s": "xyz",
        "st": False,
        "sl": "z",
        "cnt": 1,
        "rep": "x_z",
        "rm": "xyz",
        "f": -1,
    }


def test_string_methods_on_update_stream() -> None:
    t = pw.debug.table_from_markdown("""
          | s     | __time__ | __diff__
        1 | Foo   | 2        | 1
        2 | bar   | 2        | 1
        1 | Foo   | 4        | -1
        1 | QuUx  | 4        | 1
        2 | bar   | 6        | -1
    """)
    r = t.select(low=t.s.str.lower(), n=t.s.str.len())
    got = sorted(
        (time, row["low"], row["n"], diff) for time, row, diff in pw.debug.table_to_stream(r)
    )
    assert got == [
        (2, "bar", 3, 1),
        (2, "foo", 3, 1),
        (4, "foo", 3, -1),
        (4, "quux", 4, 1),
        (6, "bar", 3, -1),
    ]


def test_string_methods_propagate_none() -> None:
    t = pw.debug.table_from_markdown("""
        s
        Ab
        None
    """)
    r = t.select(a=t.s.str.lower(), b=t.s.str.title(), c=t.s.str.parse_int(optional=True))
    assert r.schema.typehints()["a"] == str | None
    assert sorted(_rows(r), key=repr) == sorted(
        [{"a": "ab", "b": "Ab", "c": None}, {"a": None, "b": None, "c": None}], key=repr
    )


PARSE_INPUTS = [
    "Ab",
    "",
    " 12 ",
    "1.5e3",
    "TRUE",
    "-0",
    "+7",
    "inf",
    "nan",
    "1_000",
    " true ",
    "Infinity",
    "-inf",
    "1e400",
    "0x10",
    "١٢",
    "99999999999999999999",
    ".5",
    "5.",
    "YES",
    "On",
    "off",
    "0",
]

# Observed with Pathway 0.33 (None: not parsable).
PARSED_INT = {" 12 ": 12, "-0": 0, "+7": 7, "0": 0}
PARSED_FLOAT = {
    " 12 ": 12.0,
    "1.5e3": 1500.0,
    "-0": -0.0,
    "+7": 7.0,
    "inf": math.inf,
    "nan": math.nan,
    "Infinity": math.inf,
    "-inf": -math.inf,
    "1e400": math.inf,
    "99999999999999999999": 1e20,
    ".5": 0.5,
    "5.": 5.0,
    "0": 0.0,
}
PARSED_BOOL = {"TRUE": True, " true ": True, "YES": True, "On": True, "off": False, "0": False}


def test_parse_methods_optional() -> None:
    t = pw.debug.table_from_rows(_Text, [(s,) for s in PARSE_INPUTS])
    r = t.select(
        t.s,
        i=t.s.str.parse_int(optional=True),
        f=t.s.str.parse_float(optional=True),
        b=t.s.str.parse_bool(optional=True),
        c=t.s.str.parse_bool(["AB", "yes"], ["0x10"], optional=True),
    )
    for row in _rows(r):
        s = row["s"]
        assert row["i"] == PARSED_INT.get(s), s
        expected = PARSED_FLOAT.get(s)
        if expected is not None and math.isnan(expected):
            assert math.isnan(row["f"])
        else:
            assert row["f"] == expected, s
        assert row["b"] == PARSED_BOOL.get(s), s
        assert row["c"] == {"Ab": True, "YES": True, "0x10": False}.get(s), s


@pytest.mark.parametrize(
    ("method", "target"),
    [
        (lambda c: c.str.parse_int(), "int"),
        (lambda c: c.str.parse_float(), "float"),
        (lambda c: c.str.parse_bool(), "bool"),
    ],
)
def test_parse_failure_raises_at_run_time(method: Any, target: str) -> None:
    t = pw.debug.table_from_rows(_Text, [("1",), ("x",)])
    r = t.select(v=method(t.s))
    with pytest.raises(ValueError, match=f'"x" is not a valid {target}'):
        pw.debug.table_to_stream(r)


def test_parse_bool_rejects_overlapping_values() -> None:
    t = _texts()
    with pytest.raises(ValueError, match="both"):
        t.s.str.parse_bool(["yes"], ["YES"])


def test_string_method_on_int_column_names_column_and_table() -> None:
    t = pw.debug.table_from_markdown("""
        a | s
        1 | x
    """)
    with pytest.raises(
        TypeError,
        match=r"table_from_markdown.*str\.lower\(\) needs a str "
        r"column, but column 'a' has type int",
    ):
        t.select(v=t.a.str.lower())
    with pytest.raises(TypeError, match=r"argument 'prefix' must be str, got int"):
        t.select(v=t.s.str.startswith(t.a))
    with pytest.raises(TypeError, match=r"argument 'start' must be int"):
        t.select(v=t.s.str.slice("a", 2))


# ------------------------------------------------------------------------------------------
# .dt
# ------------------------------------------------------------------------------------------


class _Times(pw.Schema):
    d: pw.DateTimeNaive
    u: pw.DateTimeUtc
    du: pw.Duration


TIMES = [
    (
        pd.Timestamp("2023-03-26 01:30:45.123456789"),
        pd.Timestamp("2023-03-26 01:30:45.123456789", tz="UTC"),
        pd.Timedelta("-1 days 02:03:04.005006007"),
    ),
    (
        pd.Timestamp("1969-12-31 23:59:59.5"),
        pd.Timestamp("1969-12-31 23:59:59.5", tz="UTC"),
        pd.Timedelta("90s"),
    ),
    (
        pd.Timestamp("2023-03-26 02:30:00"),
        pd.Timestamp("1970-01-01 00:00:02.5", tz="UTC"),
        pd.Timedelta("-1ns"),
    ),
    (
        pd.Timestamp("2023-10-29 02:30:00"),
        pd.Timestamp("1969-12-31 23:59:58.5", tz="UTC"),
        pd.Timedelta("15D"),
    ),
]


def _times() -> pw.Table:
    return pw.debug.table_from_rows(_Times, TIMES)


def test_datetime_parts() -> None:
    t = _times()
    r = t.select(
        t.d,
        ns=t.d.dt.nanosecond(),
        us=t.d.dt.microsecond(),
        ms=t.d.dt.millisecond(),
        s=t.d.dt.second(),
        mi=t.d.dt.minute(),
        h=t.d.dt.hour(),
        day=t.d.dt.day(),
        mo=t.d.dt.month(),
        y=t.d.dt.year(),
        wd=t.d.dt.weekday(),
        uwd=t.u.dt.weekday(),
        uh=t.u.dt.hour(),
    )
    got = _by(r, "d")
    first = got[pd.Timestamp("2023-03-26 01:30:45.123456789")]
    assert (first["ns"], first["us"], first["ms"], first["s"], first["mi"], first["h"]) == (
        123456789,
        123456,
        123,
        45,
        30,
        1,
    )
    assert (first["day"], first["mo"], first["y"], first["wd"], first["uh"]) == (26, 3, 2023, 6, 1)
    second = got[pd.Timestamp("1969-12-31 23:59:59.5")]
    assert (second["ns"], second["ms"], second["wd"], second["y"]) == (500000000, 500, 2, 1969)
    assert got[pd.Timestamp("2023-03-26 02:30:00")]["uwd"] == 3  # 1970-01-01 was a Thursday


def test_duration_parts_truncate_toward_zero() -> None:
    t = _times()
    r = t.select(
        t.du,
        w=t.du.dt.weeks(),
        d=t.du.dt.days(),
        h=t.du.dt.hours(),
        m=t.du.dt.minutes(),
        s=t.du.dt.seconds(),
        ms=t.du.dt.milliseconds(),
        us=t.du.dt.microseconds(),
        ns=t.du.dt.nanoseconds(),
    )
    got = {
        row["du"]: tuple(row[k] for k in ("w", "d", "h", "m", "s", "ms", "us", "ns"))
        for row in _rows(r)
    }
    assert got[pd.Timedelta("-1 days 02:03:04.005006007")] == (
        0,
        0,
        -21,
        -1316,
        -79015,
        -79015994,
        -79015994993,
        -79015994993993,
    )
    assert got[pd.Timedelta("90s")] == (0, 0, 0, 1, 90, 90000, 90000000, 90000000000)
    assert got[pd.Timedelta("-1ns")] == (0, 0, 0, 0, 0, 0, 0, -1)
    assert got[pd.Timedelta("15D")][:3] == (2, 15, 360)


def test_strftime_uses_chrono_codes() -> None:
    t = _times()
    r = t.select(
        t.d,
        a=t.d.dt.strftime("%Y-%m-%d %H:%M:%S.%f|%3f|%.f|%a %b %j %p %e %s"),
        b=t.u.dt.strftime("%Y-%m-%dT%H:%M:%S%z %Z %.f"),
    )
    got = _by(r, "d")[pd.Timestamp("2023-03-26 01:30:45.123456789")]
    assert got["a"] == "2023-03-26 01:30:45.123456789|123|.123456789|Sun Mar 085 AM 26 1679794245"
    assert got["b"] == "2023-03-26T01:30:45+0000 UTC .123456789"


def test_strftime_rejects_bad_formats_at_definition() -> None:
    t = _times()
    with pytest.raises(TypeError, match=r"prints a time zone, but column 'd' holds naive"):
        t.select(v=t.d.dt.strftime("%H %z"))
    with pytest.raises(
        TypeError,
        match=r"dt\.strftime\(\) needs a DateTimeNaive or "
        r"DateTimeUtc column, but column 'du' has type Duration",
    ):
        t.select(v=t.du.dt.strftime("%H"))


def test_strptime_naive_and_utc() -> None:
    t = pw.debug.table_from_rows(
        _Text,
        [
            (s,)
            for s in [
                "2023-03-25T13:45:26.987654321",
                "2023-03-25T13:45:26.987654",
                "2023-03-25T13:45:26.5",
            ]
        ],
    )
    r = t.select(
        t.s,
        a=t.s.dt.strptime("%Y-%m-%dT%H:%M:%S.%f"),
        b=(t.s + "+0130").dt.strptime("%Y-%m-%dT%H:%M:%S%.f%z"),
        c=t.s.str.slice(0, 10).dt.strptime("%Y-%m-%d"),
    )
    hints = r.schema.typehints()
    assert hints["a"] is pw.DateTimeNaive and hints["b"] is pw.DateTimeUtc
    got = _by(r, "s")
    assert got["2023-03-25T13:45:26.987654"]["a"] == pd.Timestamp("2023-03-25 13:45:26.987654")
    assert got["2023-03-25T13:45:26.987654321"]["a"] == pd.Timestamp(
        "2023-03-25 13:45:26.987654321"
    )
    assert got["2023-03-25T13:45:26.5"]["b"] == pd.Timestamp("2023-03-25 12:15:26.5", tz="UTC")
    assert got["2023-03-25T13:45:26.5"]["c"] == pd.Timestamp("2023-03-25")


def test_strptime_failure_and_bad_arguments() -> None:
    t = pw.debug.table_from_rows(_Text, [("garbage",)])
    with pytest.raises(ValueError, match=r'"garbage" does not match the format "%Y-%m-%d"'):
        pw.debug.table_to_stream(t.select(v=t.s.dt.strptime("%Y-%m-%d")))
    with pytest.raises(ValueError, match="no time zone directive"):
        t.s.dt.strptime("%Y", contains_timezone=True)
    with pytest.raises(ValueError, match="contains_timezone"):
        t.s.dt.strptime(t.s)  # a per-row format needs the result type said


def test_timestamps() -> None:
    t = _times()
    with pytest.warns(DeprecationWarning):
        plain = t.d.dt.timestamp()
    r = t.select(
        t.d,
        s=t.d.dt.timestamp(unit="s"),
        ms=t.d.dt.timestamp(unit="ms"),
        us=t.u.dt.timestamp(unit="us"),
        ns=plain,
    )
    hints = r.schema.typehints()
    assert hints["s"] is float and hints["ns"] is int
    got = _by(r, "d")
    first = got[pd.Timestamp("2023-03-26 01:30:45.123456789")]
    assert (first["s"], first["ms"], first["us"], first["ns"]) == (
        1679794245.1234567,
        1679794245123.4568,
        1679794245123456.8,
        1679794245123456789,
    )
    assert got[pd.Timestamp("1969-12-31 23:59:59.5")]["s"] == -0.5
    with pytest.raises(ValueError, match="unit must be one of"):
        t.d.dt.timestamp(unit="D")


def test_from_timestamp_and_to_duration() -> None:
    class Numbers(pw.Schema):
        i: int
        f: float

    t = pw.debug.table_from_rows(Numbers, [(-7, 2.5), (3, 1e300)])
    r = t.select(
        t.i,
        a=t.i.dt.from_timestamp("s"),
        b=t.i.dt.utc_from_timestamp("ms"),
        c=t.f.dt.from_timestamp("s"),
        d=t.i.dt.to_duration("D"),
        e=t.i.dt.to_duration("ms"),
    )
    hints = r.schema.typehints()
    assert hints["a"] is pw.DateTimeNaive and hints["b"] is pw.DateTimeUtc
    assert hints["d"] is pw.Duration
    got = _by(r, "i")
    assert got[-7]["a"] == pd.Timestamp("1969-12-31 23:59:53")
    assert got[-7]["b"] == pd.Timestamp("1969-12-31 23:59:59.993", tz="UTC")
    assert got[-7]["c"] == pd.Timestamp("1970-01-01 00:00:02.5")
    assert got[-7]["d"] == pd.Timedelta("-7D") and got[3]["e"] == pd.Timedelta("3ms")
    assert got[3]["c"].value == 2**63 - 1  # out of range saturates, as in Pathway


def test_floor_and_round() -> None:
    t = _times()
    r = t.select(
        t.u,
        f=t.u.dt.floor("1s"),
        r=t.u.dt.round(pd.Timedelta("1s")),
        r2=t.u.dt.round("2s"),
        w=t.u.dt.floor("7D"),
        h=t.d.dt.floor(t.du * 0 + pd.Timedelta("1h")),
    )
    got = _by(r, "u")
    ts = pd.Timestamp
    half = got[ts("1969-12-31 23:59:59.5", tz="UTC")]
    assert half["f"] == ts("1969-12-31 23:59:59", tz="UTC")
    assert half["r"] == ts("1970-01-01", tz="UTC")  # halves round up
    below = got[ts("1969-12-31 23:59:58.5", tz="UTC")]
    assert below["r"] == ts("1969-12-31 23:59:59", tz="UTC")
    assert below["r2"] == ts("1969-12-31 23:59:58", tz="UTC")
    assert got[ts("1970-01-01 00:00:02.5", tz="UTC")]["r2"] == ts("1970-01-01 00:00:02", tz="UTC")
    assert below["w"] == ts("1969-12-25", tz="UTC")  # multiples of 7 days from the epoch
    assert got[ts("2023-03-26 01:30:45.123456789", tz="UTC")]["h"] == ts("2023-03-26 01:00")
    with pytest.raises(ValueError, match="must be positive"):
        t.u.dt.floor("0s")


def test_time_zone_conversions_follow_dst_like_pathway() -> None:
    t = _times()
    r = t.select(
        t.d,
        utc=t.d.dt.to_utc("Europe/Warsaw"),
        back=t.d.dt.to_utc("Europe/Warsaw").dt.to_naive_in_timezone("America/New_York"),
        plus=t.d.dt.add_duration_in_timezone(pd.Timedelta(hours=1), "Europe/Warsaw"),
        minus=t.d.dt.subtract_duration_in_timezone("1h", "Europe/Warsaw"),
        gap=t.d.dt.subtract_date_time_in_timezone(pd.Timestamp("2023-03-26"), "Europe/Warsaw"),
    )
    got = _by(r, "d")
    ts = pd.Timestamp
    skipped = got[ts("2023-03-26 02:30")]  # does not exist in Warsaw: the change instant
    assert skipped["utc"] == ts("2023-03-26 01:00", tz="UTC")
    assert skipped["plus"] == ts("2023-03-26 04:00")
    assert skipped["gap"] == pd.Timedelta("2h")
    twice = got[ts("2023-10-29 02:30")]  # happens twice: the later one
    assert twice["utc"] == ts("2023-10-29 01:30", tz="UTC")
    assert twice["plus"] == ts("2023-10-29 03:30")
    assert twice["back"] == ts("2023-10-28 21:30")
    normal = got[ts("2023-03-26 01:30:45.123456789")]
    assert normal["utc"] == ts("2023-03-26 00:30:45.123456789", tz="UTC")
    assert normal["minus"] == ts("2023-03-26 00:30:45.123456789")


def test_time_zone_arguments_checked_at_definition() -> None:
    t = _times()
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        t.d.dt.to_utc("Mars/Base")
    with pytest.raises(
        TypeError,
        match=r"dt\.to_utc\(\) needs a DateTimeNaive column, but "
        r"column 'u' has type DateTimeUtc",
    ):
        t.select(v=t.u.dt.to_utc("Europe/Warsaw"))


def test_dt_methods_on_update_stream() -> None:
    t = pw.debug.table_from_markdown("""
          | s          | __time__ | __diff__
        1 | 2024-01-05 | 2        | 1
        1 | 2024-01-05 | 4        | -1
        1 | 2024-02-29 | 4        | 1
    """)
    r = t.select(day=t.s.dt.strptime("%Y-%m-%d").dt.day())
    got = sorted((time, row["day"], diff) for time, row, diff in pw.debug.table_to_stream(r))
    assert got == [(2, 5, 1), (4, 5, -1), (4, 29, 1)]


# ------------------------------------------------------------------------------------------
# .num
# ------------------------------------------------------------------------------------------


class _Numbers(pw.Schema):
    k: int
    i: int
    f: float


NUMBERS = [
    (0, -5, 0.5),
    (1, 3, 1.5),
    (2, -7, 2.5),
    (3, 12345, -0.5),
    (4, 15, 2.675),
    (5, 25, 0.125),
    (6, 0, 904.55),
    (7, -15, 0.375),
]


def test_num_abs_and_round_like_pathway() -> None:
    t = pw.debug.table_from_rows(_Numbers, NUMBERS)
    r = t.select(
        t.k,
        a=t.i.num.abs(),
        fa=t.f.num.abs(),
        r=t.f.num.round(),
        r1=t.f.num.round(1),
        r2=t.f.num.round(2),
        ri=t.i.num.round(-1),
        rc=t.f.num.round(t.k % 3),
    )
    hints = r.schema.typehints()
    assert hints["a"] is int and hints["ri"] is int and hints["r"] is float
    for row in _rows(r):
        _, i, f = NUMBERS[row["k"]]
        assert row["a"] == abs(i) and row["fa"] == abs(f)
        # Halves to even on the exact value, as Python's round (and Pathway) do.
        assert (row["r"], row["r1"], row["r2"], row["ri"], row["rc"]) == (
            round(f),
            round(f, 1),
            round(f, 2),
            round(i, -1),
            round(f, row["k"] % 3),
        )
    got = _by(r, "k")
    assert (got[2]["r"], got[4]["r2"], got[6]["r1"], got[3]["ri"]) == (2.0, 2.67, 904.5, 12340)


def test_num_fill_na() -> None:
    class Optional(pw.Schema):
        x: float | None
        y: int | None

    t = pw.debug.table_from_rows(Optional, [(None, None), (1.5, 3), (math.nan, None)])
    r = t.select(x=t.x.num.fill_na(1), y=t.y.num.fill_na(2), z=t.x.num.fill_na(2.5))
    assert r.schema.typehints() == {"x": float, "y": int, "z": float}
    assert sorted(tuple(row.values()) for row in _rows(r)) == [
        (1.0, 2, 2.5),
        (1.0, 2, 2.5),
        (1.5, 3, 1.5),
    ]


def test_num_on_wrong_type_and_stream() -> None:
    t = pw.debug.table_from_markdown("""
          | s | x   | __time__ | __diff__
        1 | a | 1.5 | 2        | 1
        1 | a | 1.5 | 4        | -1
        1 | a | -2.5| 4        | 1
    """)
    with pytest.raises(
        TypeError,
        match=r"num\.abs\(\) needs a int or float column, but column "
        r"'s' has type str",
    ):
        t.select(v=t.s.num.abs())
    r = t.select(v=t.x.num.abs(), w=t.x.num.round())
    got = sorted(
        (time, row["v"], row["w"], diff) for time, row, diff in pw.debug.table_to_stream(r)
    )
    assert got == [(2, 1.5, 2.0, 1), (4, 1.5, 2.0, -1), (4, 2.5, -2.0, 1)]


def test_round_and_floor_take_frequency_strings() -> None:
    import datetime

    import pandas as pd

    offset = datetime.timezone(datetime.timedelta(hours=1, minutes=30))
    frame = pd.DataFrame({"t": [pd.Timestamp("2020-01-01 10:00", tz=offset)]})
    t = pw.debug.table_from_pandas(frame)  # a fixed offset becomes UTC
    r = t.select(floor=t.t.dt.floor("2H3T"), day=t.t.dt.round("D"), ms=t.t.dt.floor("14L"))
    (row,) = pw.debug.table_to_dicts(r)[1]["floor"].values()
    assert str(row) == "2020-01-01 08:09:00+00:00"
    (day,) = pw.debug.table_to_dicts(r)[1]["day"].values()
    assert str(day) == "2020-01-01 00:00:00+00:00"
