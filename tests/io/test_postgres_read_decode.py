"""The pieces of pw.io.postgres.read that need no server: value decoding, array literals,
pgoutput messages. The column-at-once (Polars) decoding must give exactly what the value-by-
value decoder gives, or step aside."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow import _types as t
from deltaflow.io.postgres._decode import BadValue, PgType, decode_fast, decoder_for, parse_array
from deltaflow.io.postgres._pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    PgOutputError,
    Relation,
    Truncate,
    Update,
    format_lsn,
    parse_lsn,
    parse_message,
)


def exact(texts: list[Any], pg: PgType, dtype: t.DType) -> list[Any]:
    decode = decoder_for(pg, dtype)
    assert decode is not None
    out = []
    for text in texts:
        if text is None:
            out.append(None)
            continue
        try:
            out.append(decode(text))
        except (BadValue, ValueError, OverflowError):
            out.append("bad")
    return out


def check_fast_agrees(texts: list[Any], pg: PgType, dtype: t.DType) -> None:
    decode = decoder_for(pg, dtype)
    assert decode is not None
    fast = decode_fast("c", texts, decode, dtype)
    if fast is None:
        return  # the exact decoder handles the column
    expected = exact(texts, pg, dtype)
    assert "bad" not in expected
    stored = t.series_from_values("c", expected, dtype)
    assert fast.to_list() == stored.to_list() or [repr(v) for v in fast.to_list()] == [
        repr(v) for v in stored.to_list()
    ]


INT8 = PgType("int8", "N")
FLOAT8 = PgType("float8", "N")
TIMESTAMP = PgType("timestamp", "D")
TIMESTAMPTZ = PgType("timestamptz", "D")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(-(2**70), 2**70).map(str),
            st.sampled_from(["", "1.0", " 5", "x"]),
        ),
        max_size=8,
    )
)
def test_fast_ints_agree_with_exact(texts: list[Any]) -> None:
    check_fast_agrees(texts, INT8, t.Optional(t.INT))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.floats(allow_nan=True).map(repr),
            st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "12.25"]),
        ),
        max_size=8,
    )
)
def test_fast_floats_agree_with_exact(texts: list[Any]) -> None:
    check_fast_agrees(texts, FLOAT8, t.Optional(t.FLOAT))


def _pg_timestamp(value: datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.year < 1000:
        text = f"{value.year:04d}" + text[text.index("-") :]
    return text + (f".{value.microsecond:06d}".rstrip("0") if value.microsecond else "")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.datetimes(min_value=datetime(1, 1, 1)).map(_pg_timestamp),
            st.just("infinity"),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_fast_timestamps_agree_with_exact(texts: list[Any], utc: bool) -> None:
    if utc:
        texts = [x if x in (None, "infinity") else x + "+00" for x in texts]
        check_fast_agrees(texts, TIMESTAMPTZ, t.Optional(t.DATE_TIME_UTC))
    else:
        check_fast_agrees(texts, TIMESTAMP, t.Optional(t.DATE_TIME_NAIVE))


def test_out_of_range_timestamps_are_bad_values_not_wrapped() -> None:
    decode = decoder_for(TIMESTAMP, t.DATE_TIME_NAIVE)
    assert decode is not None
    assert decode_fast("c", ["0001-01-01 00:00:00"], decode, t.DATE_TIME_NAIVE) is None
    with pytest.raises(BadValue):
        decode("0001-01-01 00:00:00")
    with pytest.raises(BadValue):
        decode("2024-01-01 00:00:00 BC")


@pytest.mark.parametrize(
    "text, nanos",
    [
        ("P1DT2H3M4.5S", ((26 * 60 + 3) * 60 + 4.5) * 10**9),
        ("PT-1.000001S", -1_000_001_000),
        ("P-1DT2H", (-24 + 2) * 3600 * 10**9),
        ("PT0S", 0),
    ],
)
def test_intervals(text: str, nanos: float) -> None:
    decode = decoder_for(PgType("interval", "T"), t.DURATION)
    assert decode is not None and decode(text) == int(nanos)


@pytest.mark.parametrize("text", ["P1M", "P1Y2D", "1 day", "P"])
def test_intervals_without_fixed_length_are_refused(text: str) -> None:
    decode = decoder_for(PgType("interval", "T"), t.DURATION)
    assert decode is not None
    with pytest.raises(BadValue):
        decode(text)


@pytest.mark.parametrize(
    "text, value",
    [
        ("{}", []),
        ("{1,NULL,3}", ["1", None, "3"]),
        ('{"a b","c\\"d","NULL",""}', ["a b", 'c"d', "NULL", ""]),
        ("{{1,2},{3,4}}", [["1", "2"], ["3", "4"]]),
        ("[0:1]={7,8}", ["7", "8"]),
    ],
)
def test_array_literals(text: str, value: Any) -> None:
    assert parse_array(text) == value


@pytest.mark.parametrize("text", ["{1,2", "{1}}", "1,2", '{"a}'])
def test_malformed_array_literals(text: str) -> None:
    with pytest.raises(BadValue):
        parse_array(text)


def test_type_compatibility() -> None:
    assert decoder_for(PgType("text", "S"), t.INT) is None
    assert decoder_for(PgType("int4", "N"), t.STR) is None
    assert decoder_for(PgType("geometry", "U"), t.STR) is str
    assert decoder_for(PgType("_int4", "A", PgType("int4", "N")), t.List(t.INT)) is not None
    assert decoder_for(PgType("_text", "A", PgType("text", "S")), t.List(t.INT)) is None
    big = decoder_for(PgType("int8", "N"), t.FLOAT)
    assert big is not None
    with pytest.raises(BadValue):
        big(str(2**53 + 1))


# --- pgoutput -------------------------------------------------------------------------------
def _tuple(*values: Any) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED:
            out += b"u"
        else:
            data = value.encode()
            out += b"t" + struct.pack("!i", len(data)) + data
    return out


def test_pgoutput_messages() -> None:
    assert parse_message(b"B" + struct.pack("!qqI", 100, 5, 42)) == Begin(100, 5, 42)
    assert parse_message(b"C\x00" + struct.pack("!qqq", 100, 120, 5)) == Commit(100, 120, 5)
    relation = parse_message(
        b"R"
        + struct.pack("!I", 77)
        + b"public\x00My T\x00d"
        + struct.pack("!h", 2)
        + b"\x01id\x00"
        + struct.pack("!Ii", 23, -1)
        + b"\x00v\x00"
        + struct.pack("!Ii", 25, -1)
    )
    assert isinstance(relation, Relation)
    assert relation.name == "My T" and [c.name for c in relation.columns] == ["id", "v"]
    assert relation.columns[0].part_of_key and not relation.columns[1].part_of_key
    assert parse_message(b"I" + struct.pack("!I", 77) + b"N" + _tuple("1", None)) == Insert(
        77, ("1", None)
    )
    update = parse_message(
        b"U" + struct.pack("!I", 77) + b"K" + _tuple("1", None) + b"N" + _tuple("2", UNCHANGED)
    )
    assert update == Update(77, ("1", None), True, ("2", UNCHANGED))
    assert parse_message(b"U" + struct.pack("!I", 77) + b"N" + _tuple("3", "é")) == Update(
        77, None, False, ("3", "é")
    )
    assert parse_message(b"D" + struct.pack("!I", 77) + b"O" + _tuple("1", "x")) == Delete(
        77, ("1", "x"), False
    )
    assert parse_message(b"T" + struct.pack("!ib", 2, 1) + struct.pack("!II", 77, 78)) == Truncate(
        (77, 78), True, False
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Z",
        b"I\x00\x00",
        b"B\x00",
        b"D" + bytes(4) + b"N",
        b"I" + bytes(4) + b"N" + struct.pack("!h", 1) + b"b",
    ],
)
def test_malformed_pgoutput_messages(data: bytes) -> None:
    with pytest.raises(PgOutputError):
        parse_message(data)


def test_lsn_text() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("0/1506368")) == "0/1506368"
    assert format_lsn(timedelta(0).days) == "0/0"
