"""pw.io.fs / pw.io.plaintext: directories, formats, metadata, streaming add/modify/delete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _io_helpers import BackgroundRun, Changes

import deltaflow as pw


class Item(pw.Schema):
    name: str
    qty: int


def test_static_directory_with_pattern(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name,qty\napple,1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.csv").write_text("name,qty\npear,2\n")
    (tmp_path / "notes.txt").write_text("not csv")
    table = pw.io.fs.read(
        tmp_path, format="csv", schema=Item, mode="static", object_pattern="*.csv"
    )
    result = pw.debug.table_to_pandas(table, include_id=False)
    assert sorted(zip(result["name"], result["qty"], strict=True)) == [("apple", 1), ("pear", 2)]


def test_glob_path(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name,qty\napple,1\n")
    (tmp_path / "b.tsv").write_text("name,qty\npear,2\n")
    table = pw.io.fs.read(str(tmp_path / "*.csv"), format="csv", schema=Item, mode="static")
    assert list(pw.debug.table_to_pandas(table)["name"]) == ["apple"]


def test_glob_matching_a_directory_reads_all_of_it(tmp_path: Path) -> None:
    (tmp_path / "foo" / "deep").mkdir(parents=True)
    (tmp_path / "foo" / "deep" / "a.txt").write_text("a\nb\n")
    (tmp_path / "foo" / "c.log").write_text("c\n")
    (tmp_path / "f1.txt").write_text("d\n")
    (tmp_path / "bar.txt").write_text("e\n")
    table = pw.io.plaintext.read(str(tmp_path / "f*"), mode="static")
    assert sorted(pw.debug.table_to_pandas(table)["data"]) == ["a", "b", "c", "d"]
    # object_pattern filters the files found in the directories too
    table = pw.io.plaintext.read(str(tmp_path / "f*"), mode="static", object_pattern="*.txt")
    assert sorted(pw.debug.table_to_pandas(table)["data"]) == ["a", "b", "d"]


def test_plaintext_binary_by_file_and_metadata_formats(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "b.txt").write_text("three\n")
    lines = pw.io.plaintext.read(tmp_path, mode="static")
    assert sorted(pw.debug.table_to_pandas(lines)["data"]) == ["one", "three", "two"]
    by_file = pw.io.fs.read(tmp_path, format="plaintext_by_file", mode="static")
    assert sorted(pw.debug.table_to_pandas(by_file)["data"]) == ["one\ntwo", "three"]
    binary = pw.io.fs.read(tmp_path / "b.txt", format="binary", mode="static")
    assert list(pw.debug.table_to_pandas(binary)["data"]) == [b"three\n"]
    meta = pw.io.fs.read(tmp_path, format="only_metadata", mode="static")
    assert meta.column_names() == ["_metadata"]
    values = pw.debug.table_to_pandas(meta)["_metadata"]
    paths = sorted(v.value["path"] for v in values)
    assert paths == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    assert {"created_at", "modified_at", "owner", "size", "seen_at"} <= set(values.iloc[0].value)
    with_meta = pw.io.plaintext.read(tmp_path / "b.txt", mode="static", with_metadata=True)
    assert with_meta.column_names() == ["data", "_metadata"]


def test_write_json_format(tmp_path: Path) -> None:
    table = pw.debug.table_from_markdown("name | qty\napple | 1")
    pw.io.fs.write(table, tmp_path / "o.jsonl", format="json")
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    assert (tmp_path / "o.jsonl").read_text() == '{"name":"apple","qty":1,"diff":1,"time":0}\n'


def test_streaming_add_modify_delete(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name,qty\napple,1\npear,2\n")
    table = pw.io.fs.read(
        tmp_path, format="csv", schema=Item, mode="streaming", autocommit_duration_ms=10
    )
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 2)
        (tmp_path / "b.csv").write_text("name,qty\nplum,3\n")  # a new file adds its rows
        changes.wait_for(lambda c: len(c.rows) == 3)
        assert changes.state() == [
            {"name": "apple", "qty": 1},
            {"name": "pear", "qty": 2},
            {"name": "plum", "qty": 3},
        ]
        # A modified file: old rows retracted and new rows added in one transaction.
        path = tmp_path / "a.csv"
        path.write_text("name,qty\napple,10\n")
        os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
        changes.wait_for(lambda c: len(c.rows) == 6)
        modified = changes.rows[3:]
        assert len({time for _, time, _ in modified}) == 1
        assert changes.state() == [{"name": "apple", "qty": 10}, {"name": "plum", "qty": 3}]
        (tmp_path / "b.csv").unlink()  # a deleted file retracts its rows
        changes.wait_for(lambda c: len(c.rows) == 7)
        assert changes.state() == [{"name": "apple", "qty": 10}]
    assert changes.ended


def test_streaming_truncated_and_vanishing_files_do_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("name,qty\napple,1\npear,2\n")
    table = pw.io.csv.read(tmp_path, schema=Item, autocommit_duration_ms=10)
    changes = Changes().subscribe(table)
    with BackgroundRun():
        changes.wait_for(lambda c: len(c.rows) == 2)
        path.write_text("name,qty\nappl")  # truncated mid-row
        os.utime(path, ns=(2, 2))
        changes.wait_for(lambda c: len(c.rows) >= 4)
        path.unlink()
        (tmp_path / "b.csv").write_text("name,qty\nfig,5\n")
        changes.wait_for(lambda c: {"name": "fig", "qty": 5} in c.state())
        assert changes.state() == [{"name": "fig", "qty": 5}]


@pytest.mark.parametrize("layout", ["directory", "file", "pattern"])
def test_streaming_read_waits_for_a_path_that_does_not_exist_yet(
    tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    target = {"directory": inbox, "file": inbox / "a.csv", "pattern": inbox / "*.csv"}[layout]
    with caplog.at_level("WARNING", logger="deltaflow.io.fs"):
        table = pw.io.csv.read(str(target), schema=Item, autocommit_duration_ms=10)
    assert "does not exist yet" in caplog.text and str(inbox) in caplog.text
    changes = Changes().subscribe(table)
    with BackgroundRun():
        inbox.mkdir()
        (inbox / "a.csv").write_text("name,qty\nkiwi,4\n")
        changes.wait_for(lambda c: len(c.rows) == 1)
        assert changes.state() == [{"name": "kiwi", "qty": 4}]


def test_static_read_of_a_missing_path_fails_when_the_run_starts(tmp_path: Path) -> None:
    """Not when the pipeline is defined: the program may create its input before pw.run."""
    late = tmp_path / "late.txt"
    table = pw.io.fs.read(late, format="plaintext", mode="static")
    late.write_text("made after the definition\n")
    assert pw.debug.table_to_pandas(table)["data"].tolist() == ["made after the definition"]

    for path, message in [
        (tmp_path / "nope", "the path .*nope' does not exist"),
        (tmp_path / "nope" / "*.csv", "directory .*nope' of the pattern"),
    ]:
        pw.clear_graph()
        table = pw.io.fs.read(str(path), format="plaintext", mode="static", name="typo")
        pw.io.subscribe(table, lambda **kwargs: None)
        with pytest.raises(FileNotFoundError, match=message) as caught:
            pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        assert isinstance(caught.value, pw.ConnectorError) and "typo" in str(caught.value)


def test_definition_time_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        pw.io.fs.read(tmp_path, format="xml")
    with pytest.raises(ValueError, match="does not fit"):
        pw.io.fs.read(tmp_path, format="binary", schema=Item)
    with pytest.raises(ValueError, match="takes no schema"):
        pw.io.fs.read(tmp_path, format="only_metadata", schema=Item)
    with pytest.raises(ValueError, match="unknown format"):
        pw.io.fs.write(pw.debug.table_from_markdown("a\n1"), tmp_path / "o", format="xml")
