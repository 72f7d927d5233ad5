"""Bad input through the file connectors (issue #15): each case is reported and skipped, or
refused when the pipeline is defined; never a crash, never a silent wrong value."""

from __future__ import annotations

import csv
import datetime
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _io_helpers import BackgroundRun, Changes

import deltaflow as pw
from deltaflow.io import fs
from deltaflow.io._core import bad_records


class Row(pw.Schema):
    a: int
    b: str


class RowJson(pw.Schema):
    """With a Json column the JSON lines are read by the exact (Python) reader."""

    a: int
    b: str
    c: pw.Json | None


def rows_of(table: Any) -> list[dict[str, Any]]:
    _, columns = pw.debug.table_to_dicts(table)
    names = list(columns)
    keys = list(columns[names[0]]) if names else []
    rows = [{n: columns[n][k] for n in names} for k in keys]
    return sorted(rows, key=repr)


def skipped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "deltaflow.io"]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- JSON lines -----------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [Row, RowJson], ids=["polars", "python"])
def test_json_line_nested_200k_deep_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, schema: type[pw.Schema]
) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    source = write(
        tmp_path / "in.jsonl",
        b'{"a":1,"b":"x"}\n{"a":2,"b":"y","c":' + deep + b'}\n{"a":3,"b":"z"}\n',
    )
    rows = rows_of(pw.io.jsonlines.read(source, schema=schema, mode="static"))
    assert [(r["a"], r["b"]) for r in rows] == [(1, "x"), (3, "z")]
    assert len(skipped(caplog)) == 1
    assert "in.jsonl:2" in skipped(caplog)[0] and "nested deeper than 127" in skipped(caplog)[0]


def test_json_nesting_limit_is_pathways(tmp_path: Path) -> None:
    # Pathway reads a line nested 127 levels deep (its object counted) and refuses 128.
    lines = [f'{{"a":{d},"b":"x","c":{"[" * d}{"]" * d}}}' for d in (125, 126, 127, 128)]
    source = write(tmp_path / "in.jsonl", ("\n".join(lines) + "\n").encode())
    rows = rows_of(pw.io.jsonlines.read(source, schema=RowJson, mode="static"))
    assert [r["a"] for r in rows] == [125, 126]


@pytest.mark.parametrize("schema", [Row, RowJson], ids=["polars", "python"])
def test_lone_surrogate_is_reported_and_pairs_are_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, schema: type[pw.Schema]
) -> None:
    source = write(
        tmp_path / "in.jsonl",
        b'{"a":1,"b":"\\ud800"}\n'
        b'{"a":2,"b":"\\ud83d\\ude00"}\n'
        b'{"a":3,"b":"x\\udc00y"}\n{"a":4,"b":"ok"}\n',
    )
    rows = rows_of(pw.io.jsonlines.read(source, schema=schema, mode="static"))
    assert [(r["a"], r["b"]) for r in rows] == [(2, "\U0001f600"), (4, "ok")]
    messages = skipped(caplog)
    assert len(messages) == 2 and all("surrogate" in m for m in messages)
    assert "in.jsonl:1" in messages[0] and "in.jsonl:3" in messages[1]


@pytest.mark.parametrize("schema", [Row, RowJson], ids=["polars", "python"])
def test_json_invalid_utf8_line_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, schema: type[pw.Schema]
) -> None:
    source = write(tmp_path / "in.jsonl", b'{"a":1,"b":"\xff\xfe"}\n{"a":2,"b":"\xc3\xa9"}\n')
    rows = rows_of(pw.io.jsonlines.read(source, schema=schema, mode="static"))
    assert [(r["a"], r["b"]) for r in rows] == [(2, "é")]
    assert len(skipped(caplog)) == 1 and "not valid UTF-8" in skipped(caplog)[0]


# --- CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize("quoted", [False, True], ids=["polars", "python"])
def test_csv_invalid_utf8_row_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, quoted: bool
) -> None:
    q = b'"' if quoted else b""
    source = write(
        tmp_path / "in.csv",
        b"a,b\n1," + q + b"\xff\xfe" + q + b"\n2," + q + b"\xc3\xa9" + q + b"\n",
    )
    rows = rows_of(pw.io.csv.read(source, schema=Row, mode="static"))
    assert rows == [{"a": 2, "b": "é"}]
    assert len(skipped(caplog)) == 1
    assert (
        "in.csv:2" in skipped(caplog)[0] and "not valid UTF-8 (bytes ff fe)" in skipped(caplog)[0]
    )


def test_csv_invalid_utf8_in_an_ignored_column_still_rejects_the_row(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", b"a,b,extra\n1,x,\xff\n2,y,ok\n")
    assert rows_of(pw.io.csv.read(source, schema=Row, mode="static")) == [{"a": 2, "b": "y"}]


def test_csv_invalid_utf8_header_skips_the_file_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write(tmp_path / "in.csv", b"a,b\xff\n1,x\n2,y\n")
    assert rows_of(pw.io.csv.read(source, schema=Row, mode="static")) == []
    assert len(skipped(caplog)) == 1 and "header is not valid UTF-8" in skipped(caplog)[0]


def _big_csv(rows: int) -> tuple[bytes, list[list[str]]]:
    """A CSV whose unquoted fields hold literal quotes and whose quoted fields hold line
    breaks, with the rows Python's csv module reads from it."""
    lines = [b"a,b\n"]
    for i in range(rows):
        if i % 7 == 3:
            lines.append(f'{i},"line one\nline ""two"" of {i}\nthree"\n'.encode())
        elif i % 5 == 1:
            lines.append(f'{i},{i}" tall\n'.encode())  # a literal quote: no quoting here
        else:
            lines.append(f"{i},plain {i}\n".encode())
    data = b"".join(lines)
    expected = list(csv.reader(data.decode().splitlines(keepends=True)))[1:]
    return data, expected


@pytest.mark.parametrize("chunk_bytes", [64, 1000, 4096])
def test_csv_multiline_quoted_fields_across_pieces(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    chunk_bytes: int,
) -> None:
    # Issue #15: a quote inside an unquoted field made the quotes of a piece pair up, so a
    # quoted field with line breaks across the cut was truncated and its rest reported.
    monkeypatch.setattr(fs, "CHUNK_BYTES", chunk_bytes)
    data, expected = _big_csv(400)
    assert len(data) > 1.5 * chunk_bytes  # read in several pieces
    source = write(tmp_path / "in.csv", data)
    rows = rows_of(pw.io.csv.read(source, schema=Row, mode="static"))
    assert sorted((r["a"], r["b"]) for r in rows) == sorted((int(a), b) for a, b in expected)
    assert skipped(caplog) == []


@pytest.mark.slow
def test_csv_over_4_mib_with_multiline_fields_at_the_real_piece_size(tmp_path: Path) -> None:
    data, expected = _big_csv(250_000)
    assert len(data) > fs.CHUNK_BYTES
    source = write(tmp_path / "in.csv", data)
    rows = rows_of(pw.io.csv.read(source, schema=Row, mode="static"))
    assert len(rows) == len(expected)
    assert sorted((r["a"], r["b"]) for r in rows) == sorted((int(a), b) for a, b in expected)


def test_csv_file_ending_inside_a_quoted_field_reports_that_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write(tmp_path / "in.csv", b'a,b\n1,x\n2,"never closed\n3,y\n')
    assert rows_of(pw.io.csv.read(source, schema=Row, mode="static")) == [{"a": 1, "b": "x"}]
    assert len(skipped(caplog)) == 1 and "in.csv:3" in skipped(caplog)[0]


@pytest.mark.parametrize(
    "text", ["a,b,b\n1,x,y\n", '"a","b","b"\n1,"x","y"\n'], ids=["polars", "python"]
)
def test_csv_header_repeating_a_schema_column_skips_the_file_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    source = write(tmp_path / "in.csv", text.encode())
    assert rows_of(pw.io.csv.read(source, schema=Row, mode="static")) == []
    assert len(skipped(caplog)) == 1
    assert "names the column 'b' 2 times" in skipped(caplog)[0]


def test_csv_header_repeating_another_column_is_fine(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", b"a,z,b,z\n1,p,x,q\n")
    assert rows_of(pw.io.csv.read(source, schema=Row, mode="static")) == [{"a": 1, "b": "x"}]


def test_csv_header_lacking_a_column_is_one_message_per_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write(tmp_path / "in.csv", b"a\n" + b"".join(b"%d\n" % i for i in range(200_000)))
    assert rows_of(pw.io.csv.read(source, schema=Row, mode="static")) == []
    assert len(skipped(caplog)) == 1
    assert "lacks the column 'b'" in skipped(caplog)[0] and "in.csv:1" in skipped(caplog)[0]


def test_csv_header_lacking_an_optional_or_defaulted_column_fills_it(tmp_path: Path) -> None:
    class Filled(pw.Schema):
        a: int
        b: str | None
        c: int = pw.column_definition(default_value=7)

    source = write(tmp_path / "in.csv", b"a\n1\n")
    rows = rows_of(pw.io.csv.read(source, schema=Filled, mode="static"))
    assert rows == [{"a": 1, "b": None, "c": 7}]


@pytest.mark.parametrize(
    "text", ['a,b\n1,""\n2,\n3,x\n', "a,b\n1,\n2,\n3,x\n"], ids=["python", "polars"]
)
def test_csv_empty_text_is_empty_string_also_when_optional(tmp_path: Path, text: str) -> None:
    class Optional(pw.Schema):
        a: int
        b: str | None

    source = write(tmp_path / "in.csv", text.encode())
    rows = rows_of(pw.io.csv.read(source, schema=Optional, mode="static"))
    assert rows == [{"a": 1, "b": ""}, {"a": 2, "b": ""}, {"a": 3, "b": "x"}]


# --- plaintext ------------------------------------------------------------------------------


def test_plaintext_undecodable_line_is_reported_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write(tmp_path / "in.txt", b"one\nt\xffwo\nthree\n")
    rows = rows_of(pw.io.plaintext.read(source, mode="static"))
    assert rows == [{"data": "one"}, {"data": "three"}]
    assert len(skipped(caplog)) == 1 and "in.txt:2" in skipped(caplog)[0]


def test_plaintext_by_file_undecodable_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", b"fine\n")
    write(tmp_path / "bad.txt", b"n\xffo\n")
    rows = rows_of(pw.io.fs.read(tmp_path, format="plaintext_by_file", mode="static"))
    assert rows == [{"data": "fine"}]  # the final newline stripped, as in Pathway


def test_plaintext_empty_file_has_no_line(tmp_path: Path) -> None:
    source = write(tmp_path / "in.txt", b"")
    assert rows_of(pw.io.plaintext.read(source, mode="static")) == []


# --- schema mistakes: refused when the pipeline is defined ----------------------------------


@pytest.mark.parametrize(
    ("dtype", "default", "error"),
    [
        (int, "x", TypeError),
        (int, None, TypeError),
        (int, 1.5, TypeError),
        (int, 2**70, TypeError),
        (str, 3, TypeError),
        (bytes, "s", TypeError),
        (bool, 1, TypeError),
        (list[int], [1, "x"], TypeError),
        (pw.DateTimeNaive, "2020-01-01", ValueError),
    ],
)
def test_default_of_the_wrong_type_is_refused_by_the_connector(
    tmp_path: Path, dtype: Any, default: Any, error: type[Exception]
) -> None:
    schema = pw.schema_builder(
        {
            "a": pw.column_definition(dtype=int),
            "b": pw.column_definition(dtype=dtype, default_value=default),
        }
    )
    source = write(tmp_path / "in.csv", b"a\n1\n")
    with pytest.raises(error, match="column 'b'"):
        pw.io.csv.read(source, schema=schema, mode="static")
    with pytest.raises(error, match="column 'b'"):
        pw.io.jsonlines.read(source, schema=schema, mode="static")


@pytest.mark.parametrize(
    ("dtype", "default"),
    [
        (float, 1),
        (int, True),
        (int | None, None),
        (pw.Json, {"k": [1]}),
        (tuple[int, str], (1, "x")),
        (pw.DateTimeNaive, datetime.datetime(2020, 1, 1)),
        (int, np.int64(3)),
        (float, np.float32(0.5)),
        (bool, np.bool_(True)),
    ],
)
def test_default_of_the_right_type_is_used(tmp_path: Path, dtype: Any, default: Any) -> None:
    schema = pw.schema_builder(
        {
            "a": pw.column_definition(dtype=int),
            "b": pw.column_definition(dtype=dtype, default_value=default),
        }
    )
    source = write(tmp_path / "in.csv", b"a\n1\n")
    rows = rows_of(pw.io.csv.read(source, schema=schema, mode="static"))
    assert len(rows) == 1 and rows[0]["a"] == 1


@pytest.mark.parametrize("annotation", [set, frozenset, set[int], set | None, complex])
def test_set_column_type_is_refused_when_the_schema_is_defined(annotation: Any) -> None:
    with pytest.raises(TypeError, match="column 'a'"):
        pw.schema_from_types(a=annotation)
    with pytest.raises(TypeError):

        class WithSet(pw.Schema):
            a: annotation  # type: ignore[valid-type]


# --- reporting: rate-limited logs, the error log --------------------------------------------


def test_many_bad_rows_are_logged_with_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = b"".join(b"%d,x\n" % i if i % 2 else b"%d\n" % i for i in range(10_000))
    source = write(tmp_path / "in.csv", b"a,b\n" + lines)
    rows = rows_of(pw.io.csv.read(source, schema=Row, mode="static"))
    assert len(rows) == 5000
    messages = skipped(caplog)
    assert len(messages) <= bad_records.LOGGED_ONE_BY_ONE + 2
    assert "4990 more bad records (5000 in all)" in messages[-1]
    assert "in.csv:10000" in messages[-1]


def test_summary_comes_at_most_every_interval() -> None:
    from deltaflow.io._core.base import ParseError

    now = [0.0]
    log = bad_records.BadRecordLog("src", clock=lambda: now[0])
    with _captured("deltaflow.io") as records:
        for step in range(100):
            now[0] = step * 1.0
            log.report([ParseError(f"f:{step}", "bad")])
        log.flush()
    summaries = [r for r in records if "more bad records" in r]
    # 90 counted over 90 s: a summary every 10 s, then the rest when the input stops.
    assert 8 <= len(summaries) <= 10
    assert sum(int(s.split(": ", 1)[1].split(" ")[0]) for s in summaries) == 90


class _captured:
    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[str] = []

    def __enter__(self) -> list[str]:
        outer = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                outer.messages.append(record.getMessage())

        self.handler = Handler()
        logging.getLogger(self.name).addHandler(self.handler)
        return self.messages

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(self.name).removeHandler(self.handler)


def test_skipped_rows_are_in_the_error_log_when_errors_are_kept(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", b"a,b\n1,x\n2\n3,y,z\n4,w\n")
    table = pw.io.csv.read(source, schema=Row, mode="static")
    seen: list[dict[str, Any]] = []
    log: list[str] = []
    pw.io.subscribe(table, lambda key, row, time, is_addition: seen.append(row))
    pw.io.subscribe(
        pw.global_error_log(), lambda key, row, time, is_addition: log.append(row["message"])
    )
    pw.run(terminate_on_error=False, monitoring_level=pw.MonitoringLevel.NONE)
    assert sorted(r["a"] for r in seen) == [1, 4]
    assert sorted(log) == [
        "expected 2 fields (as in the header), got 1",
        "expected 2 fields (as in the header), got 3",
    ]


def test_skipped_rows_stay_out_of_the_error_log_by_default(tmp_path: Path) -> None:
    # (as in Pathway: with terminate_on_error=True they are only logged)
    source = write(tmp_path / "in.csv", b"a,b\n1,x\n2\n")
    table = pw.io.csv.read(source, schema=Row, mode="static")
    log: list[str] = []
    pw.io.subscribe(table, lambda key, row, time, is_addition: None)
    pw.io.subscribe(
        pw.global_error_log(), lambda key, row, time, is_addition: log.append(row["message"])
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert log == []


def test_streaming_file_rewritten_with_bad_rows(tmp_path: Path) -> None:
    # An update stream: a file replaced by one with bad rows retracts the old rows and
    # adds only the good new ones.
    source = write(tmp_path / "in.csv", b"a,b\n1,x\n2,y\n")
    table = pw.io.csv.read(tmp_path, schema=Row, mode="streaming", autocommit_duration_ms=10)
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 2)
        write(source, b'a,b\n1,x\n\xff,q\n3\n4,"multi\nline"\n')
        os.utime(source, ns=(1, 1))  # a different mtime even on coarse clocks
        changes.wait_for(lambda c: {"a": 4, "b": "multi\nline"} in c.state())
        assert changes.state() == [{"a": 1, "b": "x"}, {"a": 4, "b": "multi\nline"}]


def test_docs_example(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The example of docs/bad_input.md prints what the page shows and logs its three lines.
    page = (Path(__file__).parents[2] / "docs" / "bad_input.md").read_text()
    code = page.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "bad_input.md", "exec"), {})
    printed = capsys.readouterr().out.split()
    shown = [w for line in code.splitlines() if line.startswith("# ") for w in line[2:].split()]
    assert printed == shown
    logged = page.split("with where and why:\n\n```\n", 1)[1].split("```", 1)[0].splitlines()
    assert skipped(caplog) == logged


@pytest.mark.parametrize(
    "values", [{"b": "\ud800"}, {"b": "ok", "c": {"k": ["\udc00"]}}], ids=["str", "json"]
)
def test_python_connector_lone_surrogate_skips_the_row(
    values: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # It stopped the input with a UnicodeEncodeError; Pathway skips the row too.
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(a=1, **values)
            self.next(a=2, b="fine")

    table = pw.io.python.read(Subject(), schema=RowJson)
    assert rows_of(table) == [{"a": 2, "b": "fine", "c": None}]
    assert len(skipped(caplog)) == 1 and "surrogate" in skipped(caplog)[0]


def test_python_connector_json_messages_nested_too_deep_or_with_a_lone_surrogate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A deep message stopped the run with a RecursionError; it is reported like a bad line.
    deep = '{"a": 1, "b": "x", "c": ' + "[" * 200_000 + "]" * 200_000 + "}"

    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next_str(deep)
            self.next_str('{"a": 2, "b": "\\ud800"}')
            self.next_bytes(b'{"a": 3, "b": "d\xffve"}')
            self.next_str('{"a": 4, "b": "\\ud83d\\ude00"}')

    table = pw.io.python.read(Subject(), schema=RowJson, format="json")
    assert rows_of(table) == [{"a": 4, "b": "\U0001f600", "c": None}]
    reports = skipped(caplog)
    assert len(reports) == 3, reports
    assert "message 1" in reports[0] and "nested deeper than 127 levels" in reports[0]
    assert "message 2" in reports[1] and "surrogate" in reports[1]
    assert "message 3" in reports[2] and "utf-8" in reports[2].lower()


def test_python_connector_raw_message_that_is_not_utf8_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # It was read with U+FFFD in place of the bytes; Pathway stops the run.
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next_str("first")
            self.next_bytes(b"d\xffve")
            self.next_bytes(b"third")

    table = pw.io.python.read(Subject(), format="raw")
    assert rows_of(table) == [{"data": "first"}, {"data": "third"}]
    assert skipped(caplog) == [
        "python:Subject: skipped the record at message 2: the message is not valid UTF-8 "
        "(byte ff at offset 1)"
    ]


def test_rest_bodies_nested_too_deep_with_a_surrogate_or_not_utf8_get_400() -> None:
    # They were a 500 with a traceback (deep, not UTF-8) or a request left waiting for ever
    # (a lone surrogate, skipped on its way into the pipeline).
    from _http_helpers import call, free_port, wait_serving

    class Query(pw.Schema):
        b: str

    port = free_port()
    queries, writer = pw.io.http.rest_connector(
        host="127.0.0.1",
        port=port,
        schema=Query,
        delete_completed_queries=True,
        autocommit_duration_ms=10,
    )
    writer(queries.select(result=pw.this.b))
    url = f"http://127.0.0.1:{port}/"
    with BackgroundRun():
        wait_serving(port)
        deep = call("POST", url, '{"b": "x", "c": ' + "[" * 200_000 + "]" * 200_000 + "}")
        assert deep.status == 400 and "nested deeper than 127 levels" in deep.text
        lone = call("POST", url, '{"b": "\\ud800"}', timeout=5)
        assert lone.status == 400 and "surrogate" in lone.text
        undecodable = call("POST", url, b'{"b": "d\xffve"}')
        assert undecodable.status == 400 and "UTF-8" in undecodable.text
        assert call("POST", url, {"b": "fine"}).json() == "fine"


def test_postgres_json_value_nested_too_deep_is_a_bad_value_not_a_recursion_error() -> None:
    # PostgreSQL stores json thousands of levels deep; decoding it ended the read with a
    # RecursionError. A bad value is reported and its row skipped (io/postgres/_rows.py).
    from deltaflow import _types as t
    from deltaflow.io.postgres._decode import BadValue, PgType, decoder_for

    for name in ("json", "jsonb"):
        decode = decoder_for(PgType(name, "U"), t.JSON)
        assert decode is not None
        assert decode('{"a": [1, {"b": null}]}') == pw.Json({"a": [1, {"b": None}]})
        with pytest.raises(BadValue, match="nested deeper than 127 levels"):
            decode("[" * 5000 + "]" * 5000)
        with pytest.raises(BadValue, match="surrogate"):
            decode('{"a": "\\ud800"}')


class JsonAndList(pw.Schema):
    a: int
    j: pw.Json
    ints: list[int]


def test_csv_json_and_list_values_nested_too_deep_are_reported_briefly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A value 3,000 levels deep ended the run with a RecursionError; its report shows only
    # the start of the value.
    deep = "[" * 3000 + "]" * 3000
    path = write(
        tmp_path / "deep.csv",
        (
            'a,j,ints\n1,"{""x"": 1}","[1,2]"\n2,' + deep + ',"[1]"\n3,"""\\ud800""","[3]"\n'
            '4,"2",' + deep + '\n5,"5","[5]"\n'
        ).encode(),
    )
    table = pw.io.csv.read(str(path), schema=JsonAndList, mode="static")
    assert rows_of(table) == [
        {"a": 1, "j": pw.Json({"x": 1}), "ints": (1, 2)},
        {"a": 5, "j": pw.Json(5), "ints": (5,)},
    ]
    reports = skipped(caplog)
    assert [r.split("record at ")[1].split(":")[1] for r in reports] == ["3", "4", "5"], reports
    assert all(len(r) < 400 for r in reports), reports
    assert "(6000 characters) in column 'j'" in reports[0]
    assert "(6000 characters) in column 'ints'" in reports[2]


def test_sqlite_json_value_nested_too_deep_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    class Doc(pw.Schema):
        id: int = pw.column_definition(primary_key=True)
        doc: pw.Json

    path = tmp_path / "docs.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, doc TEXT)")
        connection.executemany(
            "INSERT INTO docs VALUES (?, ?)",
            [(1, '{"a": 1}'), (2, "[" * 3000 + "]" * 3000), (3, "[2]")],
        )
    table = pw.io.sqlite.read(str(path), "docs", Doc, mode="static")
    assert rows_of(table) == [{"id": 1, "doc": pw.Json({"a": 1})}, {"id": 3, "doc": pw.Json([2])}]
    # (It ended the read with a RecursionError.)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("deltaflow.io")]
    assert any("skipped 1 row(s) of table 'docs'" in m for m in logged), logged
