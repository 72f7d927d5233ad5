"""pw.io.jsonlines: reading with field paths and metadata, writing in Pathway's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import deltaflow as pw


class Event(pw.Schema):
    user: str
    amount: int
    note: str | None


def test_read_write_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"user": "a", "amount": 3}\n{"user": "b", "amount": 4, "note": "hi"}\n')
    table = pw.io.jsonlines.read(source, schema=Event, mode="static")
    out = tmp_path / "out.jsonl"
    pw.io.jsonlines.write(table, out)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["user"], r["amount"], r["note"], r["diff"]) for r in rows) == [
        ("a", 3, None, 1),
        ("b", 4, "hi", 1),
    ]
    first = out.read_text().splitlines()[0]
    assert list(json.loads(first)) == ["user", "amount", "note", "diff", "time"]
    assert ": " not in first  # compact, as Pathway writes it


def test_json_field_paths_and_metadata(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"who": {"name": "a"}, "amount": 3}\n')

    class S(pw.Schema):
        user: str
        amount: int

    table = pw.io.jsonlines.read(
        source, schema=S, mode="static", json_field_paths={"user": "/who/name"}, with_metadata=True
    )
    _, columns = pw.debug.table_to_dicts(table)
    assert list(columns["user"].values()) == ["a"]
    (metadata,) = columns["_metadata"].values()
    assert metadata.value["path"] == str(source)
    assert metadata.value["size"] == source.stat().st_size
    with pytest.raises(ValueError, match="not in the schema"):
        pw.io.jsonlines.read(source, schema=S, json_field_paths={"nope": "/x"})


def test_bad_lines_reported_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"user": "a", "amount": 1}\n{"user": "b"\n{"amount": 2}\n'
        '{"user": "c", "amount": 2.5}\n{"user": "d", "amount": 4}\n'
    )
    table = pw.io.jsonlines.read(source, schema=Event, mode="static")
    result = pw.debug.table_to_pandas(table, include_id=False)
    assert sorted(result["user"]) == ["a", "d"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert [e.split(" at ")[1].split(":")[1] for e in errors] == ["2", "3", "4"]
