"""Parsers, formatters and the shared value serialization."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow as pw
from deltaflow import _types as t
from deltaflow.io._core import parsing
from deltaflow.io._core.base import DictsContext, KeyValueContext, RawContext, RowsContext
from deltaflow.io._core.formats import (
    BinaryParser,
    CsvFormatter,
    CsvParser,
    CsvParserSettings,
    JsonLinesFormatter,
    JsonLinesParser,
    OnlyMetadataParser,
    PlaintextByFileParser,
    PlaintextParser,
    TypedRowsFormatter,
    TypedRowsParser,
    column_specs,
    parser_for_format,
)
from deltaflow.io._core.serialization import (
    column_from_values,
    json_value,
    parse_pointer,
    parse_text_column,
    text_column,
)


class Mixed(pw.Schema):
    a: int
    b: float
    c: bool
    d: str
    e: int | None
    f: str = pw.column_definition(default_value="dflt")


def csv_parse(
    text: str | bytes, settings: CsvParserSettings | None = None, schema: type[pw.Schema] = Mixed
):
    parser = CsvParser(column_specs(schema), settings)
    return parser.parse(RawContext([text], {"path": "in.csv"}))


def test_csv_parser_types_defaults_and_optional() -> None:
    block = csv_parse("a,b,c,d,e\n1,1.5,True,hello,\n2,2,false,x y,5\n")
    assert block.errors == []
    assert block.frame.to_dicts() == [
        {"a": 1, "b": 1.5, "c": True, "d": "hello", "e": None, "f": "dflt"},
        {"a": 2, "b": 2.0, "c": False, "d": "x y", "e": 5, "f": "dflt"},
    ]
    assert block.frame.schema == pl.Schema(
        {
            "a": pl.Int64,
            "b": pl.Float64,
            "c": pl.Boolean,
            "d": pl.String,
            "e": pl.Int64,
            "f": pl.String,
        }
    )


def test_csv_parser_quotes_and_embedded_newlines() -> None:
    block = csv_parse('a,b,c,d,e\n1,1,True,"x,""y""\nz",None\n')
    assert block.errors == []
    assert block.frame["d"].to_list() == ['x,"y"\nz']
    assert block.frame["e"].to_list() == [None]


def test_csv_parser_reports_bad_rows_with_line_and_reason() -> None:
    text = (
        "a,b,c,d,e\n1,1.5,True,ok,\n2,abc,True,bad float,\n3,1,True\n4,1,maybe,bad bool,\n"
        "5,1,True,ok,\n"
    )
    block = csv_parse(text)
    assert block.frame["a"].to_list() == [1, 5]
    where = [(e.where, e.reason) for e in block.errors]
    # reported in line order, whichever check found the problem
    assert where[0][0] == "in.csv:3" and "'abc' in column 'b'" in where[0][1]
    assert where[1][0] == "in.csv:4" and "expected 5 fields" in where[1][1]
    assert where[2][0] == "in.csv:5" and "'maybe' in column 'c'" in where[2][1]
    assert len(where) == 3


def test_csv_parser_reads_every_spelling_of_a_bool() -> None:
    spellings = {
        True: ["true", "TRUE", "True", "t", "T", "1", "yes", "On", " true "],
        False: ["false", "FALSE", "f", "F", "0", "no", "OFF"],
    }
    cells = [(text, value) for value, texts in spellings.items() for text in texts]
    text = "a,b,c,d,e\n" + "".join(f"{i},1,{cell},x,\n" for i, (cell, _) in enumerate(cells))
    block = csv_parse(text + "99,1,tru,x,\n")
    assert block.frame["c"].to_list() == [value for _, value in cells]
    assert [e.where for e in block.errors] == [f"in.csv:{len(cells) + 2}"]  # 'tru' is no bool


class WithDefaults(pw.Schema):
    k: str
    n: int = pw.column_definition(default_value=7)
    m: int | None = pw.column_definition(default_value=8)
    x: float = pw.column_definition(default_value=0.5)
    when: pw.DateTimeNaive = pw.column_definition(
        default_value=pw.DateTimeNaive("2024-01-02T03:04:05")
    )
    s: str = pw.column_definition(default_value="unused")


def test_csv_parser_empty_cells_take_the_column_default() -> None:
    block = csv_parse(
        "k,n,m,x,when,s\nfull,1,2,1.5,2020-01-01T00:00:00,text\nempty,,,,,\nblank, ,2,1,,\n",
        schema=WithDefaults,
    )
    assert block.frame.to_dicts() == [
        {"k": "full", "n": 1, "m": 2, "x": 1.5, "when": datetime(2020, 1, 1), "s": "text"},
        # empty cells of typed columns take the default; an empty text cell stays ""
        {"k": "empty", "n": 7, "m": 8, "x": 0.5, "when": datetime(2024, 1, 2, 3, 4, 5), "s": ""},
    ]
    # a cell of blanks is not empty: a bad int, reported
    assert [(e.where, "' '" in e.reason) for e in block.errors] == [("in.csv:4", True)]


def test_csv_parser_missing_required_column_is_reported_once_per_file() -> None:
    # (issue #15: one message for the header, not one per row)
    block = csv_parse("a,b,c\n1,1,True\n2,2,False\n")
    assert block.frame.height == 0
    assert [e.where for e in block.errors] == ["in.csv:1"]
    assert "lacks the column 'd'" in block.errors[0].reason


def test_csv_parser_settings() -> None:
    settings = CsvParserSettings(delimiter=";", quote="'", comment_character="#")
    block = csv_parse("a;b;c;d;e\n# a comment\n1;2;true;'x;y';\n", settings)
    assert block.errors == []
    assert block.frame["d"].to_list() == ["x;y"]
    unquoted = CsvParserSettings(enable_quoting=False)
    block = csv_parse('a,b,c,d,e\n1,2,true,"q",\n', unquoted)
    assert block.frame["d"].to_list() == ['"q"']
    with pytest.raises(ValueError, match="single character"):
        CsvParserSettings(delimiter=";;")


def test_csv_parser_reads_key_value_messages() -> None:
    parser = CsvParser(column_specs(Mixed))
    block = parser.parse(KeyValueContext([None], ["a,b,c,d,e\n7,1,True,m,\n"]))
    assert block.frame["a"].to_list() == [7]


def test_json_parser_with_field_paths_and_errors() -> None:
    class S(pw.Schema):
        name: str
        n: int
        tags: tuple[int, int] | None

    parser = JsonLinesParser(column_specs(S), {"n": "/inner/n"})
    text = (
        '{"name": "a", "inner": {"n": 1}, "tags": [1, 2]}\n'
        "not json\n"
        '{"name": "b", "inner": {"n": "x"}}\n'
        "\n"
        '{"inner": {"n": 3}}\n'
        "[1, 2]\n"
        '{"name": "c", "inner": {"n": 4}}\n'
    )
    block = parser.parse(RawContext([text.encode()], {"path": "in.jsonl"}))
    assert block.frame.to_dicts()[0]["name"] == "a"
    assert block.frame["n"].to_list() == [1, 4]
    assert block.frame["tags"].to_list()[0] == (1, 2)
    reasons = {e.where: e.reason for e in block.errors}
    assert set(reasons) == {"in.jsonl:2", "in.jsonl:3", "in.jsonl:5", "in.jsonl:6"}
    assert "invalid JSON" in reasons["in.jsonl:2"]
    assert "'x' is not an int" in reasons["in.jsonl:3"]
    assert "missing required field 'name'" in reasons["in.jsonl:5"]
    assert "JSON object" in reasons["in.jsonl:6"]


def test_plaintext_parsers_binary_and_metadata() -> None:
    context = RawContext([b"one\r\ntwo\n\nfour\n"], {"path": "p.txt", "size": 15})
    assert PlaintextParser().parse(context).frame["data"].to_list() == ["one", "two", "", "four"]
    assert PlaintextByFileParser().parse(context).frame["data"].to_list() == ["one\r\ntwo\n\nfour"]
    assert BinaryParser().parse(context).frame["data"].to_list() == [b"one\r\ntwo\n\nfour\n"]
    meta = OnlyMetadataParser().parse(context).frame["_metadata"].to_list()
    assert meta == [t.Json({"path": "p.txt", "size": 15})]
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        parser_for_format("xml", [])


def test_typed_rows_parser_dicts_kinds_keys_and_frames() -> None:
    class S(pw.Schema):
        k: int
        when: pw.DateTimeNaive
        p: pw.Pointer | None

    parser = TypedRowsParser(column_specs(S))
    pointer = t.Pointer(12345)
    block = parser.parse(
        DictsContext(
            [
                {"k": 1, "when": "2024-01-02T03:04:05", "p": str(pointer)},
                {"k": 2, "when": pd.Timestamp("2024-01-03")},
            ],
            kinds=["insert", "delete"],
            keys=[t.Pointer(7), t.Pointer(8)],
        )
    )
    assert block.errors == []
    assert block.kind == "column"
    assert block.frame["_kind"].to_list() == ["insert", "delete"]
    assert block.keys.to_list() == [7, 8]
    assert t.values_from_series(block.frame["p"]) == [pointer, None]
    frame_block = parser.parse(RowsContext(block.frame.drop("_kind"), kind="upsert"))
    assert frame_block.kind == "upsert" and frame_block.frame.height == 2


# ------------------------------------------------------------------------------------------
# Formatters (exact Pathway output)
# ------------------------------------------------------------------------------------------


def _batch() -> tuple[pl.DataFrame, dict[str, t.DType]]:
    columns = {
        "name": t.STR,
        "flag": t.Optional(t.BOOL),
        "x": t.Optional(t.FLOAT),
        "n": t.INT,
        "s": t.Optional(t.STR),
    }
    frame = pl.DataFrame(
        {
            "_id": pl.Series([1, 2, 3], dtype=pl.UInt128),
            "name": ["Alice", "Bob", "Carol"],
            "flag": [True, False, None],
            "x": [1.5, 2.0, None],
            "n": [1, 2, 3],
            "s": ["hello", None, 'say "hi"'],
            "_diff": pl.Series([1, 1, -1], dtype=pl.Int64),
        }
    )
    return frame, columns


def test_csv_formatter_matches_pathway() -> None:
    frame, columns = _batch()
    formatter = CsvFormatter(columns)
    assert formatter.header() == b'"name","flag","x","n","s","time","diff"\n'
    assert formatter.format(frame, 2).decode() == (
        '"Alice","True","1.5","1","hello","2","1"\n'
        '"Bob","False","2.0","2","None","2","1"\n'
        '"Carol","None","None","3","say ""hi""","2","-1"\n'
    )


def test_json_formatter_matches_pathway() -> None:
    frame, columns = _batch()
    lines = JsonLinesFormatter(columns).format(frame, 4).decode().splitlines()
    assert lines == [
        '{"name":"Alice","flag":true,"x":1.5,"n":1,"s":"hello","diff":1,"time":4}',
        '{"name":"Bob","flag":false,"x":2.0,"n":2,"s":null,"diff":1,"time":4}',
        '{"name":"Carol","flag":null,"x":null,"n":3,"s":"say \\"hi\\"","diff":-1,"time":4}',
    ]


def test_formatters_special_types() -> None:
    columns = {
        "when": t.DATE_TIME_NAIVE,
        "utc": t.DATE_TIME_UTC,
        "d": t.DURATION,
        "tup": t.Tuple(t.INT, t.BOOL),
        "p": t.POINTER,
        "js": t.JSON,
        "b": t.BYTES,
    }
    stamp = pd.Timestamp("2024-01-02 03:04:05.123456")
    data = {
        "when": [stamp],
        "utc": [pd.Timestamp("2024-01-02 03:04:05", tz="UTC")],
        "d": [pd.Timedelta(seconds=1.5)],
        "tup": [(2, False)],
        "p": [t.Pointer(1)],
        "js": [t.Json({"a": [1, None]})],
        "b": [b"\x00hi"],
    }
    frame = pl.DataFrame(
        [pl.Series("_id", [1], dtype=pl.UInt128)]
        + [t.series_from_values(n, v, columns[n]) for n, v in data.items()]
        + [pl.Series("_diff", [1], dtype=pl.Int64)]
    )
    csv_line = CsvFormatter(columns).format(frame, 0).decode()
    assert csv_line.startswith(
        '"2024-01-02T03:04:05.123456000","2024-01-02T03:04:05.000000000'
        '+0000","1500000000","[2,false]","^000000000000000000000000'
        '01","{""a"":[1,null]}"'
    )
    row = json.loads(JsonLinesFormatter(columns).format(frame, 0))
    assert row["when"] == "2024-01-02T03:04:05.123456000"
    assert row["d"] == 1500000000
    assert row["tup"] == [2, False]
    assert row["js"] == {"a": [1, None]}
    assert base64.b64decode(row["b"]) == b"\x00hi"
    typed = TypedRowsFormatter(columns).format(frame, 6)
    key, values, time_, diff = typed[0]
    assert (key, time_, diff) == (t.Pointer(1), 6, 1)
    assert values["when"] == stamp and values["tup"] == (2, False)


# ------------------------------------------------------------------------------------------
# Serialization round trips
# ------------------------------------------------------------------------------------------


ROUND_TRIP = [
    (t.INT, [1, -5, None]),
    (t.FLOAT, [1.5, 1e20, -0.0, None]),
    (t.BOOL, [True, False, None]),
    (t.STR, ["a", "", "x,y"]),
    (t.BYTES, [b"abc", None]),
    (t.DATE_TIME_NAIVE, [pd.Timestamp("2024-01-02 03:04:05.123456789"), None]),
    (t.DATE_TIME_UTC, [pd.Timestamp("2024-01-02 03:04:05", tz="UTC"), None]),
    (t.DURATION, [pd.Timedelta(1500, unit="ms"), None]),
    (t.POINTER, [t.Pointer(2**127 + 5), None]),
    (t.JSON, [t.Json({"a": 1}), t.Json([1])]),
    (t.Tuple(t.INT, t.STR), [(1, "a"), None]),
    (t.List(t.INT), [(1, 2, 3), None]),
]


@pytest.mark.parametrize(("dtype", "values"), ROUND_TRIP, ids=lambda x: repr(x)[:20])
def test_text_and_json_round_trip(dtype: t.DType, values: list) -> None:
    nullable = t.Optional(dtype) if None in values and dtype != t.JSON else dtype
    series = t.series_from_values("c", values, nullable)
    if dtype != t.STR:
        parsed, bad = parse_text_column(text_column(series, nullable), nullable)
        assert not bad.any()
        assert t.values_from_series(parsed) == t.values_from_series(series)
    back, errors = column_from_values(
        "c", [json.loads(json.dumps(json_value(v))) for v in t.values_from_series(series)], nullable
    )
    assert errors == {}
    assert t.values_from_series(back) == t.values_from_series(series)


def test_conversion_errors_name_the_problem() -> None:
    _, errors = column_from_values("n", [1, "2", True, 3.5], t.INT)
    assert set(errors) == {1, 2, 3}
    assert "'2' is not an int" in errors[1]
    _, errors = column_from_values("s", [None], t.STR)
    assert "null for a non-optional column" in errors[0]
    with pytest.raises(ValueError):
        parse_pointer("^!!")
    array, errors = column_from_values("a", [[1, 2]], t.ARRAY)
    assert errors == {} and isinstance(array[0], np.ndarray)


def test_csv_parser_blank_lines_are_skipped_even_when_field_counts_balance() -> None:
    # The blank line lacks 4 delimiters and the long line has 1 extra, so only an exact
    # read (not the byte-count shortcut) may accept the file.
    text = "a,b,c,d,e\n1,1.5,True,ok,\n\n2,1,True,ok,,,,,\n3,1,False,fine,\n"
    block = csv_parse(text)
    assert block.frame["a"].to_list() == [1, 3]
    assert [e.where for e in block.errors] == ["in.csv:4"]
    single = CsvParser(column_specs(pw.schema_from_types(a=int)))
    block = single.parse(RawContext(["a\n1\n\n2\n"], {"path": "one.csv"}))
    assert block.frame["a"].to_list() == [1, 2]
    assert block.errors == []
    assert csv_parse("  \n \n").frame.height == 0


_CELLS = ["1", "-7", "2.5", "true", "False", "", "None", "word", "x y", "0"]


@st.composite
def _csv_documents(draw: st.DrawFn) -> str:
    """CSV text with a header of some of Mixed's columns (and an unknown one), then lines
    of random field counts, blank lines and empty values: malformed lines included."""
    names = draw(st.permutations(["a", "b", "c", "d", "e", "zz"]))
    header = names[: draw(st.integers(min_value=1, max_value=len(names)))]
    lines = [",".join(header)]
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            lines.append("")
            continue
        count = len(header) + draw(st.sampled_from([0, 0, 0, 0, -1, -2, 1]))
        lines.append(",".join(draw(st.sampled_from(_CELLS)) for _ in range(max(count, 1))))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_csv_documents())
def test_csv_fast_path_matches_the_exact_reader(text: str) -> None:
    # An escape character (absent from the text) forces the exact, line-by-line reader.
    exact = csv_parse(text, CsvParserSettings(escape="\\"))
    for small_documents in (parsing.SMALL_DOCUMENT_BYTES, 0):  # Python's split, then Polars'
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(parsing, "SMALL_DOCUMENT_BYTES", small_documents)
            fast = csv_parse(text)
        assert fast.frame.equals(exact.frame), text
        assert [(e.where, e.reason) for e in fast.errors] == [
            (e.where, e.reason) for e in exact.errors
        ], text


def _in_pieces(text: str, cuts: list[int]) -> list[RawContext]:
    """``text`` as consecutive pieces of whole lines, cut after the given line indexes."""
    lines = text.encode().split(b"\n")
    ends = sorted({c % max(len(lines) - 1, 1) for c in cuts})
    pieces, start = [], 0
    for end in ends:
        if end + 1 > start:
            pieces.append(b"\n".join(lines[start : end + 1]) + b"\n")
            start = end + 1
    pieces.append(b"\n".join(lines[start:]))
    metadata = {"path": "in.csv"}
    return [
        RawContext([piece], metadata, continues=i > 0, continued=i < len(pieces) - 1)
        for i, piece in enumerate(pieces)
    ]


_QUOTED_CELLS = [*_CELLS, '"a,b"', '"two\nlines"', '"say ""hi"""', '"']


@st.composite
def _csv_with_quotes(draw: st.DrawFn) -> str:
    text = draw(_csv_documents())
    if draw(st.booleans()):  # sprinkle quoted cells (with delimiters and newlines inside)
        lines = text.split("\n")
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            index = draw(st.integers(min_value=1, max_value=max(len(lines) - 1, 1)))
            if index < len(lines) and lines[index]:
                cells = lines[index].split(",")
                cells[0] = draw(st.sampled_from(_QUOTED_CELLS))
                lines[index] = ",".join(cells)
        text = "\n".join(lines)
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _csv_with_quotes(),
    st.lists(st.integers(min_value=0, max_value=20), max_size=4),
    st.sampled_from([None, CsvParserSettings(escape="\\")]),
)
def test_csv_read_in_pieces_matches_the_whole_document(
    text: str, cuts: list[int], csv_settings: CsvParserSettings | None
) -> None:
    # A file read in pieces of whole lines (a big file, see FileReader(chunk_bytes=)) must
    # give the rows and the errors, with their line numbers, of the whole document.
    whole = csv_parse(text, csv_settings)
    parser = CsvParser(column_specs(Mixed), csv_settings)
    blocks = [parser.parse(context) for context in _in_pieces(text, cuts)]
    frame = pl.concat([b.frame for b in blocks], how="vertical_relaxed")
    assert frame.equals(whole.frame), (text, cuts)
    assert [(e.where, e.reason) for b in blocks for e in b.errors] == [
        (e.where, e.reason) for e in whole.errors
    ], (text, cuts)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                '{"a": 1, "d": "x"}',
                '{"a": "bad"}',
                "",
                "not json",
                '{"a": 2, "b": 1.5, "c": true, "d": "y"}',
                "[1]",
            ]
        ),
        max_size=12,
    ),
    st.lists(st.integers(min_value=0, max_value=20), max_size=4),
)
def test_json_lines_in_pieces_keep_their_line_numbers(lines: list[str], cuts: list[int]) -> None:
    text = "\n".join(lines) + "\n"
    whole = JsonLinesParser(column_specs(Mixed)).parse(RawContext([text], {"path": "in.csv"}))
    parser = JsonLinesParser(column_specs(Mixed))
    blocks = [parser.parse(context) for context in _in_pieces(text, cuts)]
    frame = pl.concat([b.frame for b in blocks], how="vertical_relaxed")
    assert frame.equals(whole.frame)
    assert [(e.where, e.reason) for b in blocks for e in b.errors] == [
        (e.where, e.reason) for e in whole.errors
    ]


_JSON_VALUES = [1, -7, 2.5, 1.0, True, False, None, "x", "1", "", [1], {"k": 1}, 2**70]


@st.composite
def _json_lines(draw: st.DrawFn) -> str:
    """JSON lines over Mixed's columns: values of every type in every column, missing and
    repeated keys, nested objects reusing a column name, spacing variants, bad lines."""
    lines = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        kind = draw(st.integers(min_value=0, max_value=19))
        if kind == 0:
            lines.append(draw(st.sampled_from(["", "not json", "[1, 2]", "5", '"s"'])))
            continue
        fields = []
        for name in draw(st.lists(st.sampled_from("abcdef"), max_size=7)):
            value = draw(st.sampled_from(_JSON_VALUES))
            if kind == 1:
                value = {name: value}  # the column's name one level down
            fields.append((name, value))
        colon = draw(st.sampled_from([":", ": "])) if kind == 2 else ":"
        lines.append(
            "{" + ",".join(f"{json.dumps(k)}{colon}{json.dumps(v)}" for k, v in fields) + "}"
        )
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


_GOOD_VALUES = {
    "a": st.integers(-(2**63), 2**63 - 1),
    "b": st.floats(allow_nan=False, allow_infinity=False),
    "c": st.booleans(),
    "d": st.text(max_size=5),
    "e": st.none() | st.integers(-9, 9),
    "f": st.text(max_size=3),
}


@st.composite
def _good_json_lines(draw: st.DrawFn) -> str:
    """Complete rows of the right types (the fast path's case), perhaps with one flaw."""
    rows = [
        {name: draw(values) for name, values in _GOOD_VALUES.items()}
        for _ in range(draw(st.integers(min_value=1, max_value=6)))
    ]
    spacing = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    lines = [json.dumps(row, separators=spacing) for row in rows]
    flaw = draw(st.integers(min_value=0, max_value=6))
    index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
    name = draw(st.sampled_from("abcdef"))
    if flaw == 1:  # a value of another type
        rows[index][name] = draw(st.sampled_from(_JSON_VALUES))
        lines[index] = json.dumps(rows[index], separators=spacing)
    elif flaw == 2:  # a field repeated (JSON readers keep the last)
        lines[index] = (
            lines[index][:-1]
            + f',"{name}":'
            + json.dumps(draw(st.sampled_from(_JSON_VALUES)))
            + "}"
        )
    elif flaw == 3:  # a field missing
        del rows[index][name]
        lines[index] = json.dumps(rows[index], separators=spacing)
    elif flaw == 4:  # a nested object reusing a column's name
        rows[index]["zz"] = {name: 1}
        lines[index] = json.dumps(rows[index], separators=spacing)
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json_lines(), _good_json_lines()))
def test_json_lines_fast_read_matches_the_exact_reader(text: str) -> None:
    # json_field_paths (here naming the same fields) forces the line-by-line reader; a small
    # document is read line by line anyway, so Polars is made to read every one.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parsing, "SMALL_DOCUMENT_BYTES", 0)
        fast = JsonLinesParser(column_specs(Mixed)).parse(RawContext([text], {"path": "in.jsonl"}))
    paths = {name: f"/{name}" for name in "abcdef"}
    exact = JsonLinesParser(column_specs(Mixed), paths).parse(
        RawContext([text], {"path": "in.jsonl"})
    )
    assert fast.frame.equals(exact.frame), text
    assert [(e.where, e.reason) for e in fast.errors] == [
        (e.where, e.reason) for e in exact.errors
    ], text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json_lines(), _good_json_lines()), st.sampled_from(["", " ", "\r", "\ud800"]))
def test_json_lines_read_at_once_match_the_lines_read_one_by_one(text: str, flaw: str) -> None:
    """A record of clean lines is scanned at once (without the per-line checks); one flaw
    anywhere sends it to the per-line reader. Both give the rows and reports (with their line
    numbers) that the lines give read one at a time."""
    lines = text.split("\n")[:-1]
    if flaw and lines:  # a space or CR around an object, or a lone surrogate escaped
        lines[-1] = lines[-1] + flaw if flaw != "\ud800" else '{"d":"\\ud800"}'
    text = "".join(line + "\n" for line in lines)
    specs = column_specs(Mixed)
    paths = {name: f"/{name}" for name in "abcdef"}  # no Polars: the line readers alone
    whole = JsonLinesParser(specs, paths).parse(RawContext([text], {"path": "in.jsonl"}))
    single = [
        JsonLinesParser(specs, paths).parse(
            RawContext([line + "\n"], {"path": "in.jsonl"}, first_line=number)
        )
        for number, line in enumerate(lines, start=1)
    ]
    assert whole.frame.equals(pl.concat([b.frame for b in single]) if single else whole.frame)
    assert [(e.where, e.reason) for e in whole.errors] == [
        (e.where, e.reason) for b in single for e in b.errors
    ], text


def test_json_lines_of_plain_values_are_read_by_polars() -> None:
    text = "".join(
        json.dumps({"a": i, "b": i / 2, "c": i % 2 == 0, "d": f"w{i}", "f": "z"}) + "\n"
        for i in range(50)
    )
    parser = JsonLinesParser(column_specs(Mixed))
    assert parser._read_fast(text.encode()) is not None  # the fast path applies here
    block = parser.parse(RawContext([text], {"path": "in.jsonl"}))
    assert block.frame["d"].to_list() == [f"w{i}" for i in range(50)]


def test_json_lines_with_a_field_repeated_as_null_keep_the_last_value() -> None:
    # Found by the property above: the repeated null balanced the key count, so Polars' first
    # value (0) was kept where JSON readers keep the last (null).
    text = (
        '{"a":0,"b":0.0,"c":false,"d":"","e":null,"f":""}\n'
        '{"a":0,"b":0.0,"c":false,"d":"","e":0,"f":"","e":null}\n'
    )
    parser = JsonLinesParser(column_specs(Mixed))
    assert parser._read_fast(text.encode()) is None
    block = parser.parse(RawContext([text], {"path": "in.jsonl"}))
    assert block.frame["e"].to_list() == [None, None]
