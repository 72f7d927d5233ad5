"""Monitoring: per-connector log lines and the monitoring level."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import deltaflow as pw
from deltaflow.monitoring import Monitor, make_monitor


class Item(pw.Schema):
    name: str
    qty: int


def test_run_logs_rows_per_connector(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "in.csv"
    source.write_text("name,qty\na,1\nb,2\nc,x\n")
    table = pw.io.csv.read(source, schema=Item, mode="static", name="items")
    pw.io.null.write(table, name="sink")
    # A file output writes on its own thread: the last report waits until it is done.
    pw.io.csv.write(table, tmp_path / "out.csv", name="file")
    with caplog.at_level(logging.INFO, logger="deltaflow.monitoring"):
        pw.run(monitoring_level=pw.MonitoringLevel.IN_OUT)
    lines = [r.getMessage() for r in caplog.records if r.name == "deltaflow.monitoring"]
    assert any(
        line.startswith("items: 2 rows read, 2 committed") and "1 skipped" in line for line in lines
    )
    assert any(line.startswith("sink: 2 rows written") for line in lines)
    assert [line for line in lines if line.startswith("file:")][-1].startswith(
        "file: 2 rows written"
    )


def test_tables_from_data_count_their_rows_as_read(caplog: pytest.LogCaptureFixture) -> None:
    table = pw.debug.table_from_markdown("""
        name | qty | __time__ | __diff__
        a    | 1   | 2        | 1
        b    | 2   | 2        | 1
        a    | 1   | 4        | -1
    """)
    pw.io.null.write(table, name="sink")
    with caplog.at_level(logging.INFO, logger="deltaflow.monitoring"):
        pw.run(monitoring_level=pw.MonitoringLevel.IN_OUT)
    lines = [r.getMessage() for r in caplog.records if r.name == "deltaflow.monitoring"]
    reads = [line for line in lines if " rows read, " in line]
    assert reads and " 3 rows read, 3 committed" in reads[-1], lines


def test_monitoring_levels() -> None:
    assert make_monitor(pw.MonitoringLevel.NONE) is None
    monitor = make_monitor(pw.MonitoringLevel.ALL)
    assert isinstance(monitor, Monitor) and not monitor.dashboard
