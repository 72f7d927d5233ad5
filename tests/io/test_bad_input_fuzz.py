"""Fuzz tests of the CSV and JSON lines parsers on hostile input (issue #15).

Random bytes, unicode, quotes, line breaks, invalid UTF-8, deep nesting and lone surrogates,
read whole and in pieces of whole lines (as big files are, see ``FileReader(chunk_bytes=)``;
the pieces here are a few bytes, so inputs are many times the piece size). Each test checks:
the parser never raises; every good record comes out exactly as Python's ``csv``/``json``
modules read it; every other record is reported, on its line.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow.io._core.base import ParsedBlock, RawContext
from deltaflow.io._core.formats import (
    CsvParser,
    CsvParserSettings,
    JsonLinesParser,
    PlaintextParser,
    column_specs,
)
from deltaflow.io._core.json_text import MAX_JSON_DEPTH

_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Text2(pw.Schema):
    a: str
    b: str | None


def pieces(data: bytes, cuts: list[int]) -> list[RawContext]:
    """``data`` cut into pieces of whole lines after the given byte offsets (moved to the
    next line end), as the file reader cuts a big file."""
    ends: list[int] = []
    for cut in sorted(cuts):
        end = data.find(b"\n", min(cut, len(data)))
        if end >= 0 and end + 1 < len(data) and (not ends or end + 1 > ends[-1]):
            ends.append(end + 1)
    bounds = [0, *ends, len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    metadata = {"path": "in"}
    return [
        RawContext([chunk], metadata, continues=i > 0, continued=i < len(chunks) - 1)
        for i, chunk in enumerate(chunks)
    ]


def parse_in_pieces(parser: Any, data: bytes, cuts: list[int]) -> ParsedBlock:
    blocks = [parser.parse(context) for context in pieces(data, cuts)]
    frame = pl.concat([b.frame for b in blocks], how="vertical_relaxed")
    return ParsedBlock(frame, errors=[e for b in blocks for e in b.errors])


def error_lines(block: ParsedBlock) -> list[int]:
    return [int(e.where.rpartition(":")[2]) for e in block.errors]


# --- CSV ------------------------------------------------------------------------------------

_CSV_ATOMS = [
    "a",
    "b",
    "x y",
    "1",
    "",
    ",",
    ",",
    '"',
    '"',
    '""',
    "\n",
    "\n",
    "\r\n",
    "\r",
    "é",
    "日本",
    "\t",
    " ",
    "'",
    "\\",
    "#",
]
_BAD_BYTES = [b"\xff", b"\xc3", b"\xe6\x97", b"\xed\xa0\x80", b"\x80"]


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """A header ``a,b`` then random text: quotes anywhere (opening, closing, literal in an
    unquoted field), line breaks inside and outside quotes, invalid UTF-8 now and then."""
    parts: list[bytes] = [draw(st.sampled_from([b"a,b\n", b'"a","b"\n', b"\na,b\r\n"]))]
    for _ in range(draw(st.integers(min_value=0, max_value=60))):
        if draw(st.integers(min_value=0, max_value=30)) == 0:
            parts.append(draw(st.sampled_from(_BAD_BYTES)))
        elif draw(st.integers(min_value=0, max_value=4)) == 0:
            parts.append(
                draw(st.text(max_size=4))
                .encode("utf-8", errors="surrogatepass")
                .decode("utf-8", errors="ignore")
                .encode()
            )
        else:
            parts.append(draw(st.sampled_from(_CSV_ATOMS)).encode())
    return b"".join(parts)


class _Lines:
    """Lines for ``csv.reader``, noticing a request past the last one."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.ran_out = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            return next(self._lines)
        except StopIteration:
            self.ran_out = True
            raise


def csv_reference(data: bytes) -> tuple[list[dict[str, Any]], list[int]]:
    """What the connector must give for ``data`` under ``Text2``, by Python's csv module:
    the good rows, and the lines of the bad records (wrong field count, invalid UTF-8, a
    record the end of the file cuts inside a quoted field, a record csv refuses)."""
    text = data.decode("utf-8", errors="surrogateescape")
    lines = _Lines(text)
    reader = csv.reader(lines, strict=False)
    header: list[str] | None = None
    good: list[dict[str, Any]] = []
    bad: list[int] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            bad.append(reader.line_num)
            continue
        if lines.ran_out:
            bad.append(-1)  # the line is where the record starts: checked apart
            continue
        if not row:
            continue
        undecodable = any(re.search("[\udc80-\udcff]", cell) for cell in row)
        if header is None:
            assert not undecodable  # (the generated header is valid)
            header = row
            continue
        if undecodable or len(row) != len(header):
            bad.append(reader.line_num)
            continue
        record = dict(zip(header, row, strict=True))
        good.append({"a": record["a"], "b": record["b"]})
    return good, bad


def _check_csv(block: ParsedBlock, data: bytes) -> None:
    good, bad = csv_reference(data)
    assert block.frame.to_dicts() == good, data
    lines = error_lines(block)
    assert len(lines) == len(bad), (data, block.errors)
    assert [line for line, ref in zip(lines, bad, strict=True) if ref != -1] == [
        ref for ref in bad if ref != -1
    ], (data, block.errors)


@_SETTINGS
@given(csv_bytes(), st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_csv_fuzz_whole_and_in_pieces(data: bytes, cuts: list[int]) -> None:
    whole = CsvParser(column_specs(Text2)).parse(RawContext([data], {"path": "in"}))
    _check_csv(whole, data)
    split = parse_in_pieces(CsvParser(column_specs(Text2)), data, cuts)
    assert split.frame.equals(whole.frame), (data, cuts)
    assert [(e.where, e.reason) for e in split.errors] == [
        (e.where, e.reason) for e in whole.errors
    ], (data, cuts)


@_SETTINGS
@given(
    st.lists(
        st.sampled_from(["plain", "quoted", "multiline", "literal", "bad_utf8", "short"]),
        max_size=40,
    ),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
)
def test_csv_literal_quotes_and_multiline_fields_across_pieces(
    kinds: list[str], cuts: list[int]
) -> None:
    # The case of issue #15: a literal quote in an unquoted field (which makes the quotes
    # of a piece pair up wrongly) and a quoted field holding line breaks across a cut.
    rows = {
        "plain": b"x,y\n",
        "quoted": b'"a,b","c"\n',
        "multiline": b'm,"one\ntwo\nthree"\n',
        "literal": b'5" tall,ok\n',
        "bad_utf8": b"\xff,z\n",
        "short": b"lonely\n",
    }
    data = b"a,b\n" + b"".join(rows[k] for k in kinds)
    whole = CsvParser(column_specs(Text2)).parse(RawContext([data], {"path": "in"}))
    _check_csv(whole, data)
    split = parse_in_pieces(CsvParser(column_specs(Text2)), data, cuts)
    assert split.frame.to_dicts() == whole.frame.to_dicts()
    assert [(e.where, e.reason) for e in split.errors] == [
        (e.where, e.reason) for e in whole.errors
    ]
    assert split.frame.filter(pl.col("a") == "m")["b"].to_list() == [
        "one\ntwo\nthree"
    ] * kinds.count("multiline")


@_SETTINGS
@given(csv_bytes(), st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_csv_fuzz_with_escapes_never_raises_and_pieces_agree(data: bytes, cuts: list[int]) -> None:
    # Escapes and comments: the exact reader only; the pieces must agree with the whole.
    options = CsvParserSettings(escape="\\", comment_character="#")
    whole = CsvParser(column_specs(Text2), options).parse(RawContext([data], {"path": "in"}))
    split = parse_in_pieces(CsvParser(column_specs(Text2), options), data, cuts)
    assert split.frame.equals(whole.frame), (data, cuts)
    assert [(e.where, e.reason) for e in split.errors] == [
        (e.where, e.reason) for e in whole.errors
    ], (data, cuts)
    for row in whole.frame.to_dicts():
        assert not re.search("[\udc80-\udcff\ufffd]", row["a"] + (row["b"] or ""))


# --- JSON lines -----------------------------------------------------------------------------


class Fast(pw.Schema):
    """Every column a plain value: Polars may read the lines in one call."""

    a: int
    b: str


class Slow(pw.Schema):
    """A Json column: the exact reader only."""

    a: int
    b: str
    c: pw.Json | None


_STRINGS = [
    "x",
    "",
    "é",
    "日本",
    "\\ud83d\\ude00",
    "\\ud800",
    "\\udc00x",
    "a\\\\ud800",
    "\\u0000",
    "\\n",
    '\\"',
    "\\\\",
]


@st.composite
def json_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(min_value=0, max_value=9))
    a = draw(st.sampled_from(["1", "-5", "2.5", '"x"', "null", "99999999999999999999"]))
    b = '"' + "".join(draw(st.lists(st.sampled_from(_STRINGS), max_size=3))) + '"'
    if kind == 0:
        depth = draw(st.integers(min_value=MAX_JSON_DEPTH - 3, max_value=MAX_JSON_DEPTH + 3))
        c = "[" * depth + "]" * depth
        return f'{{"a": {a}, "b": {b}, "c": {c}}}'.encode()
    if kind == 1:
        return b'{"a": 1, "b": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # issue #15
    if kind == 2:
        raw = f'{{"a": {a}, "b": {b}}}'.encode()
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        return raw[:at] + draw(st.sampled_from(_BAD_BYTES)) + raw[at:]
    if kind == 3:
        return draw(
            st.sampled_from([b"", b"  ", b"not json", b"[1]", b"{", b'{"a": 1, "b"}', b'"s"'])
        )
    return f'{{"a": {a}, "b": {b}}}'.encode()


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def json_reference(lines: list[bytes], with_json: bool) -> tuple[list[dict[str, Any]], list[int]]:
    """The rows and the bad lines of JSON lines under ``Fast`` (or ``Slow``), by Python's
    json module: UTF-8, at most MAX_JSON_DEPTH levels, no unpaired surrogate, an object with
    an int ``a`` (64 bits) and a str ``b``."""
    good: list[dict[str, Any]] = []
    bad: list[int] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            document = json.loads(raw.decode("utf-8"))
            json.dumps(document, ensure_ascii=False).encode("utf-8")  # unpaired surrogates
        except (UnicodeError, ValueError, RecursionError):
            bad.append(number)
            continue
        a, b = (
            (document.get("a"), document.get("b")) if isinstance(document, dict) else (None, None)
        )
        if (
            _depth(document) > MAX_JSON_DEPTH
            or type(a) is not int
            or not -(2**63) <= a < 2**63
            or not isinstance(b, str)
        ):
            bad.append(number)
            continue
        row: dict[str, Any] = {"a": a, "b": b}
        if with_json:
            row["c"] = document.get("c")
        good.append(row)
    return good, bad


@_SETTINGS
@given(
    st.lists(json_line(), max_size=12),
    st.booleans(),
    st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
)
def test_json_lines_fuzz_whole_and_in_pieces(
    lines: list[bytes], with_json: bool, cuts: list[int]
) -> None:
    data = b"\n".join(lines) + b"\n"
    schema = Slow if with_json else Fast
    good, bad = json_reference(lines, with_json)
    for block in (
        JsonLinesParser(column_specs(schema)).parse(RawContext([data], {"path": "in"})),
        parse_in_pieces(JsonLinesParser(column_specs(schema)), data, cuts),
    ):
        rows = block.frame.to_dicts()
        if with_json:
            for row in rows:
                row["c"] = None if row["c"] is None else row["c"].value
        assert rows == good, data[:300]
        assert error_lines(block) == bad, (data[:300], block.errors)


# --- plaintext ------------------------------------------------------------------------------


#: The characters Pathway (Rust's ``char::is_whitespace``, Unicode White_Space) strips from the
#: ends of a plaintext line; Python's ``str.strip()`` would also strip U+001C..U+001F.
_WHITESPACE = "".join(
    chr(c)
    for c in [
        *range(0x09, 0x0E),
        0x20,
        0x85,
        0xA0,
        0x1680,
        *range(0x2000, 0x200B),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
    ]
)


@_SETTINGS
@given(
    st.lists(
        st.one_of(
            st.text(
                alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n"),
                max_size=5,
            ).map(str.encode),
            st.sampled_from(_BAD_BYTES),
        ),
        max_size=12,
    ),
    st.lists(st.integers(min_value=0, max_value=100), max_size=4),
)
def test_plaintext_fuzz_undecodable_lines_are_reported(lines: list[bytes], cuts: list[int]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    expected, bad = [], []
    for number, line in enumerate(lines, start=1):
        try:
            expected.append(line.decode("utf-8").strip(_WHITESPACE))
        except UnicodeDecodeError:
            bad.append(number)
    for block in (
        PlaintextParser().parse(RawContext([data], {"path": "in"})),
        parse_in_pieces(PlaintextParser(), data, cuts),
    ):
        assert block.frame["data"].to_list() == expected
        assert error_lines(block) == bad
