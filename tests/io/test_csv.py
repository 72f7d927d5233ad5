"""pw.io.csv: static reading, writing in Pathway's format, bad input."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

import deltaflow as pw
from deltaflow.io._core.base import Writer
from deltaflow.io._core.formats import CsvFormatter, JsonLinesFormatter
from deltaflow.io._core.output_session import write_table


class Person(pw.Schema):
    name: str
    age: int
    score: float | None


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_static_file_and_write_round_trip(tmp_path: Path) -> None:
    source = write_text(tmp_path / "in.csv", "name,age,score\nalice,30,1.5\nbob,25,\n")
    table = pw.io.csv.read(source, schema=Person, mode="static")
    out = tmp_path / "out.csv"
    pw.io.csv.write(table.select(pw.this.name, older=pw.this.age + 1), out)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["name", "older", "time", "diff"]
    body = sorted(rows[1:])
    assert [r[:2] for r in body] == [["alice", "31"], ["bob", "26"]]
    assert {r[3] for r in body} == {"1"}
    assert len({r[2] for r in body}) == 1 and int(body[0][2]) % 2 == 0
    text = out.read_text()
    assert text.splitlines()[1].startswith('"')  # every field quoted, as Pathway does


def test_primary_key_gives_ids_from_key(tmp_path: Path) -> None:
    class Keyed(pw.Schema):
        name: str = pw.column_definition(primary_key=True)
        age: int

    source = write_text(tmp_path / "in.csv", "name,age\nalice,30\n")
    table = pw.io.csv.read(source, schema=Keyed, mode="static")
    keys, _ = pw.debug.table_to_dicts(table)
    plain = pw.debug.table_from_markdown("name | age\nalice | 30").with_id_from(pw.this.name)
    other_keys, _ = pw.debug.table_to_dicts(plain)
    assert keys == other_keys


def test_output_is_written_in_time_order_with_retractions(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown(
        """
        | name  | n | __time__ | __diff__
      1 | Alice | 1 | 2        | 1
      2 | Bob   | 2 | 2        | 1
      1 | Alice | 1 | 4        | -1
        """
    )
    out = tmp_path / "o.csv"
    pw.io.csv.write(table, out)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert out.read_text().splitlines() == [
        '"name","n","time","diff"',
        '"Alice","1","2","1"',
        '"Bob","2","2","1"',
        '"Alice","1","4","-1"',
    ]


def test_malformed_rows_reported_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write_text(
        tmp_path / "in.csv", "name,age,score\nalice,30,1\nbob,old,2\ncarl,3\ndan,4,x\neve,5,\n"
    )
    table = pw.io.csv.read(source, schema=Person, mode="static")
    result = pw.debug.table_to_pandas(table, include_id=False)
    assert sorted(result["name"]) == ["alice", "eve"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 3
    joined = "\n".join(errors)
    assert f"{source}:3" in joined and "'old'" in joined
    assert f"{source}:4" in joined and "expected 3 fields" in joined
    assert f"{source}:5" in joined and "'x'" in joined


def test_definition_time_errors(tmp_path: Path) -> None:
    source = write_text(tmp_path / "in.csv", "name,age,score\n")
    with pytest.raises(ValueError, match="schema is required"):
        pw.io.csv.read(source)
    with pytest.raises(TypeError, match="pw.Schema subclass"):
        pw.io.csv.read(source, schema={"name": str})
    with pytest.raises(ValueError, match="autocommit_duration_ms"):
        pw.io.csv.read(source, schema=Person, autocommit_duration_ms=-1)
    with pytest.raises(ValueError, match="mode must be"):
        pw.io.csv.read(source, schema=Person, mode="batch")
    with pytest.raises(ValueError, match="max_backlog_size"):
        pw.io.csv.read(source, schema=Person, max_backlog_size=0)
    table = pw.io.csv.read(source, schema=Person, mode="static")
    pw.io.csv.write(table, tmp_path / "nodir" / "out.csv")  # a missing directory fails the run
    pw.clear_graph()
    with pytest.raises(KeyError):
        pw.io.csv.write(table, tmp_path / "out.csv", sort_by=["nope"])


def test_empty_input_still_writes_header(tmp_path: Path) -> None:
    source = write_text(tmp_path / "in.csv", "name,age,score\n")
    out = tmp_path / "out.csv"
    pw.io.csv.write(pw.io.csv.read(source, schema=Person, mode="static"), out)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert out.read_text() == '"name","age","score","time","diff"\n'
    assert os.path.getsize(out) > 0


class _Payloads(Writer):
    """Keeps every payload it is given (it offers no stream, so it gets bytes)."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def write(self, payload: bytes) -> None:
        self.payloads.append(payload)


def test_files_are_formatted_in_place_exactly_as_payloads(tmp_path: Path) -> None:
    # Files take the formatter's output straight into the open file; other writers get
    # bytes. Both must be the same text, over several times, retractions and odd values.
    table = pw.debug.table_from_markdown(
        """
        | name    | n  | x    | __time__ | __diff__
      1 | Alice   | 1  | 1.5  | 2        | 1
      2 | None    | -2 | 1e20 | 2        | 1
      3 | "q,x"   | 3  | None | 4        | 1
      1 | Alice   | 1  | 1.5  | 6        | -1
        """
    )
    csv_out, json_out = tmp_path / "o.csv", tmp_path / "o.jsonl"
    pw.io.csv.write(table, csv_out)
    pw.io.jsonlines.write(table, json_out)
    columns = dict(table._columns)
    as_csv, as_json = _Payloads(), _Payloads()
    write_table(table, as_csv, CsvFormatter(columns), name="bytes-csv")
    write_table(table, as_json, JsonLinesFormatter(columns), name="bytes-json")
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert len(as_csv.payloads) == 3  # one per time
    assert csv_out.read_bytes() == CsvFormatter(columns).header() + b"".join(as_csv.payloads)
    assert json_out.read_bytes() == b"".join(as_json.payloads)
    assert csv_out.read_text().splitlines()[-1] == '"Alice","1","1.5","6","-1"'


class _Blob(pw.Schema):
    k: int
    data: bytes
    grid: np.ndarray[None, int]  # type: ignore[type-arg]


@pytest.mark.parametrize("writer", ["csv", "jsonlines"])
def test_bytes_and_arrays_round_trip_in_pathways_forms(tmp_path: Path, writer: str) -> None:
    rows = [
        (1, b"\xff\x00\xfe not utf-8", np.arange(6).reshape(2, 3)),
        (2, b"", np.array([7])),
    ]
    table = pw.debug.table_from_rows(_Blob, rows)
    out = tmp_path / f"out.{writer}"
    getattr(pw.io, writer).write(table, out)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    text = out.read_text().replace('""', '"')
    assert "/wD+IG5vdCB1dGYtOA==" in text  # bytes as base64, as Pathway writes them
    assert '{"shape":[2,3],"elements":[0,1,2,3,4,5]}' in text  # arrays as shape + elements
    pw.clear_graph()
    back = getattr(pw.io, writer).read(out, schema=_Blob, mode="static")
    frame = pw.debug.table_to_pandas(back, include_id=False).sort_values("k")
    assert list(frame["data"]) == [rows[0][1], rows[1][1]]
    assert [a.tolist() for a in frame["grid"]] == [[[0, 1, 2], [3, 4, 5]], [7]]


def test_text_that_is_not_base64_is_a_bad_bytes_value(tmp_path: Path) -> None:
    class Blob(pw.Schema):
        k: int
        data: bytes

    path = tmp_path / "in.csv"
    path.write_text("k,data\n1,aGk=\n2,not base64!\n")
    table = pw.io.csv.read(path, schema=Blob, mode="static")
    frame = pw.debug.table_to_pandas(table, include_id=False)
    assert list(frame["data"]) == [b"hi"]  # row 2 reported and skipped, never b"not base64!"
