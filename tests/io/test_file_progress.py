"""Progress of static file inputs: bytes read of the files' total, in the monitor."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

import deltaflow as pw
from deltaflow import monitoring
from deltaflow.io import fs
from deltaflow.io._core.base import Data, Finished
from deltaflow.monitoring import Monitor, progress_bar, progress_text


class Item(pw.Schema):
    name: str
    qty: int


def _csv(path: Path, rows: int) -> int:
    path.write_text("name,qty\n" + "".join(f"item{i},{i}\n" for i in range(rows)))
    return path.stat().st_size


def test_reader_counts_bytes_piece_by_piece(tmp_path: Path) -> None:
    sizes = [_csv(tmp_path / "a.csv", 400), _csv(tmp_path / "b.csv", 50)]
    reader = fs.FileReader(str(tmp_path), chunk_bytes=1000)
    assert reader.progress() is None  # nothing listed yet
    seen = []
    while not isinstance(event := reader.read(), Finished):
        if isinstance(event, Data):
            seen.append(reader.progress())
    total = sum(sizes)
    assert all(p is not None and p[1] == total for p in seen)
    done = [p[0] for p in seen if p is not None]
    assert done == sorted(done) and len(done) > 3  # a.csv came in several pieces
    assert 0 < done[0] < total and done[-1] == total


def test_streaming_and_metadata_reads_have_no_progress(tmp_path: Path) -> None:
    _csv(tmp_path / "a.csv", 3)
    streaming = fs.FileReader(str(tmp_path), streaming=True)
    streaming.read()
    assert streaming.progress() is None
    metadata_only = fs.FileReader(str(tmp_path), read_contents=False)
    metadata_only.read()
    assert metadata_only.progress() is None


def test_monitor_reports_bytes_read_of_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fs, "CHUNK_BYTES", 2000)
    size = _csv(tmp_path / "big.csv", 2000)
    table = pw.io.csv.read(tmp_path / "big.csv", schema=Item, mode="static", name="big")
    session = table._node.source
    observed: list[tuple[int, int] | None] = []
    stop = threading.Event()

    def watch() -> None:  # what the monitor's thread sees while the file is read
        while not stop.is_set():
            observed.append(session.progress)
            stop.wait(0.001)

    pw.io.null.write(table)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with caplog.at_level(logging.INFO, logger="deltaflow.monitoring"):
            pw.run(monitoring_level=pw.MonitoringLevel.IN_OUT)
    finally:
        stop.set()
        watcher.join()
    assert session.progress == (size, size)  # kept after the reader closed
    done = [p[0] for p in observed if p is not None]
    assert done == sorted(done)
    lines = [r.getMessage() for r in caplog.records if r.name == "deltaflow.monitoring"]
    expected = f"{size / 1000:.1f} kB of {size / 1000:.1f} kB read (100%)"
    assert any(
        line.startswith("big: 2000 rows read") and line.endswith(expected) for line in lines
    ), lines


def test_monitor_rows_carry_progress_for_file_inputs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = _csv(tmp_path / "small.csv", 5)
    table = pw.io.csv.read(tmp_path / "small.csv", schema=Item, mode="static", name="small")
    pw.io.null.write(table, name="out")
    monitor = Monitor(interval_s=3600)
    captured: list[list[dict[str, object]]] = []
    original_stop = monitoring.Monitoring.stop

    def stop(self: monitoring.Monitoring) -> None:  # the figures the final report uses
        captured.append(monitor.rows())
        original_stop(self)

    monkeypatch.setattr(monitoring, "make_monitor", lambda level: monitor)
    monkeypatch.setattr(monitoring.Monitoring, "stop", stop)
    pw.run(monitoring_level=pw.MonitoringLevel.ALL)
    (rows,) = captured
    by_name = {row["name"]: row for row in rows}
    assert by_name["small"]["progress"] == (size, size)
    assert by_name["out"]["progress"] is None


def test_python_inputs_show_no_progress(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Subject(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            self.next(name="a", qty=1)

    table = pw.io.python.read(Subject(), schema=Item, name="py")
    pw.io.null.write(table)
    with caplog.at_level(logging.INFO, logger="deltaflow.monitoring"):
        pw.run(monitoring_level=pw.MonitoringLevel.IN_OUT)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("py:")]
    assert lines and not any("read (" in line for line in lines)


def test_progress_texts() -> None:
    assert progress_text(512, 2048) == "512 B of 2.0 kB read (25%)"
    assert progress_text(3_400_000, 10_000_000) == "3.4 MB of 10.0 MB read (34%)"
    assert progress_text(0, 0) == "0 B of 0 B read (100%)"  # empty files: nothing to wait for
    assert progress_bar(5, 10, width=10) == "█████░░░░░ 50% of 10 B"
    assert progress_bar(20, 10, width=4) == "████ 100% of 10 B"


def test_metrics_carry_bytes_of_file_inputs() -> None:
    pytest.importorskip("prometheus_client")
    from deltaflow.monitoring.metrics import MetricsServer

    rows = [
        {
            "kind": "input",
            "name": "big",
            "read": 1,
            "committed": 1,
            "skipped": 0,
            "backlog": 0,
            "lag_ms": 0.0,
            "progress": (300, 1200),
            "rate": 0.0,
        },
        {
            "kind": "input",
            "name": "py",
            "read": 1,
            "committed": 1,
            "skipped": 0,
            "backlog": 0,
            "lag_ms": 0.0,
            "progress": None,
            "rate": 0.0,
        },
    ]
    families = {f.name: f for f in MetricsServer(lambda: rows, port=0).families()}
    read = {s.labels["connector"]: s.value for s in families["deltaflow_input_bytes_read"].samples}
    total = {
        s.labels["connector"]: s.value for s in families["deltaflow_input_bytes_total"].samples
    }
    assert read == {"big": 300} and total == {"big": 1200}
